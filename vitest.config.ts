import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = fileURLToPath(new URL('./src/', import.meta.url));
/** Set by `npm run mutate` (scripts/mutate.mjs): only the mutated module's tests, e.g. `test/cache`. */
const onlyDir = process.env.HOTPATH_TEST_DIR;

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
