// StrykerJS mutation testing; run it per module through `npm run mutate -- <module>` (scripts/mutate.mjs sets
// `mutate`, the test directory and the report files). See docs/testing.md.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  plugins: ['@stryker-mutator/vitest-runner'],
  vitest: { configFile: 'vitest.config.ts', related: false },
  // Each mutant runs only the tests that covered its code in the dry run.
  coverageAnalysis: 'perTest',
  // 2 cores shared with other work: one test process at a time (`--concurrency n` to change).
  concurrency: 1,
  incremental: true,
  // Mutants in static initialisers would need a full reload per mutant; they are rare here and slow to test.
  ignoreStatic: true,
  // A mutant is a timeout (killed) once its tests take 2 × their dry-run time + 2 s: mutants that loop forever
  // are common in timer code, and every one of them costs this margin.
  timeoutMS: 2_000,
  timeoutFactor: 2,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  clearTextReporter: { allowColor: false, logTests: false, reportScoreTable: true, reportMutants: false },
  thresholds: { high: 90, low: 80, break: null },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
