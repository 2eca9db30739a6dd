import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = fileURLToPath(new URL('./src/', import.meta.url));
/** Set by `npm run mutate` (scripts/mutate.mjs): only the mutated module's tests, e.g. `test/cache`. */
const onlyDir = process.env.HOTPATH_TEST_DIR;

// HOTPATH_REDIS_URL names the suite's Redis (`.ci/run` exports it) and is also a variable `createHotpath` reads.
// Left in the environment, every app a test builds — and every child process a test spawns — would silently
// share its caches and limits through Redis, and tests of the in-process defaults would see Redis answers.
// The suite keeps the URL under its own name (test/helpers/services.ts reads it) and takes it out of the
// environment the test processes inherit; tests that want Redis pass it explicitly.
if (process.env.HOTPATH_REDIS_URL !== undefined) {
  process.env.HOTPATH_SUITE_REDIS_URL ??= process.env.HOTPATH_REDIS_URL;
  delete process.env.HOTPATH_REDIS_URL;
}

export default defineConfig({
  resolve: {
    // Tests and examples import `hotpath/<module>` as users do; resolve it to the sources.
    alias: [
      { find: /^hotpath$/, replacement: `${src}index.ts` },
      { find: /^hotpath\/(.*)$/, replacement: `${src}$1/index.ts` },
    ],
  },
  test: {
    include: [onlyDir ? `${onlyDir}/**/*.test.ts` : 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
