#!/usr/bin/env node
/**
 * Mutation testing, one module at a time: `npm run mutate -- <module> [more modules] [--files a.ts,b.ts]`.
 *
 * For each module it runs StrykerJS (stryker.config.mjs) on `src/<module>/**` with the module's own tests
 * (`test/<module>/`), in incremental mode (reports/mutation/<module>.incremental.json: only mutants whose code or
 * tests changed since the last run are tested again), one test process at a time (`--concurrency` to change).
 * `--files` limits the mutated files (what CI passes: the files a change touched). Reports:
 * reports/mutation/<module>.html and .json; the score is printed at the end.
 */
import { existsSync } from 'node:fs';
import { Stryker } from '@stryker-mutator/core';
import config from '../stryker.config.mjs';

const args = process.argv.slice(2);
const option = (name) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? args[at + 1] : undefined;
};
const valueIndexes = new Set(
  ['files', 'concurrency']
    .map((name) => args.indexOf(`--${name}`))
    .filter((i) => i >= 0)
    .map((i) => i + 1),
);
const modules = args.filter((arg, i) => !arg.startsWith('--') && !valueIndexes.has(i));
const MODULES = ['core', 'profiling', 'ratelimit', 'cache', 'batch', 'client', 'storage', 'queue', 'app'];
if (modules.length === 0 || modules.some((name) => !MODULES.includes(name))) {
  console.error(
    `usage: npm run mutate -- <module> [more] [--files src/x/a.ts,…] [--concurrency n]; modules: ${MODULES.join(', ')}`,
  );
  process.exit(2);
}
const files = option('files')?.split(',').filter(Boolean);
const concurrency = Number(option('concurrency') ?? config.concurrency);

const scores = [];
for (const name of modules) {
  const mutate = files
    ? files.filter((file) => file.startsWith(`src/${name}/`))
    : [`src/${name}/**/*.ts`, `!src/${name}/index.ts`];
  if (mutate.length === 0) continue;
  if (!existsSync(`test/${name}`)) throw new Error(`no tests for ${name} under test/${name}`);
  process.env.HOTPATH_TEST_DIR = `test/${name}`; // read by vitest.config.ts in the test runner processes
  process.env.HOTPATH_MUTATION = '1'; // tests that record millions of samples use fewer (same properties)
  // Overrides only: Stryker reads stryker.config.mjs itself and merges these over it.
  const stryker = new Stryker({
    concurrency,
    mutate,
    incrementalFile: `reports/mutation/${name}.incremental.json`,
    htmlReporter: { fileName: `reports/mutation/${name}.html` },
    jsonReporter: { fileName: `reports/mutation/${name}.json` },
  });
  const startedAt = Date.now();
  const results = await stryker.runMutationTest();
  const count = (status) => results.filter((mutant) => mutant.status === status).length;
  const killed = count('Killed') + count('Timeout');
  const survived = count('Survived') + count('NoCoverage');
  const score = killed + survived > 0 ? (100 * killed) / (killed + survived) : 100;
  scores.push(
    `${name}: ${score.toFixed(1)} % (${killed} killed incl. ${count('Timeout')} timeouts, ${count('Survived')} survived, ` +
      `${count('NoCoverage')} no coverage, ${count('Ignored')} ignored, ${count('CompileError') + count('RuntimeError')} errors) ` +
      `in ${((Date.now() - startedAt) / 60_000).toFixed(1)} min`,
  );
}
console.log(`\nmutation scores:\n${scores.map((line) => `- ${line}`).join('\n')}`);
