import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
// Under mutation testing (`npm run mutate` sets HOTPATH_MUTATION=1) this child-process test is skipped: the child
// never sees Stryker's active mutant (it is injected into the vitest worker only), so it can kill no mutant, and
// tsx cannot even load the instrumented sources (esbuild rejects Stryker's `cond ? (x as number)-- : …` output).
const isMutationRun = process.env.HOTPATH_MUTATION === '1';

describe('examples/batch', () => {
  it.skipIf(isMutationRun)(
    'bulk-quotes.ts fetches with retries and progress, coalesces lookups, simulates in a worker',
    async () => {
      const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'examples/batch/bulk-quotes.ts'], {
        timeout: 30_000,
      });
      expect(stdout).toMatch(/^fetched 49\/50 quotes in \d+ ms with 10 in flight$/m);
      // S00, S07, … S49 fail once (8 retries) and S13 twice before giving up (2 more).
      expect(stdout).toContain('retries: 10; failed: S13: delisted');
      expect(stdout).toMatch(/progress reports: \d+, last: \{"done":50,"total":50,"failed":1\}/);
      expect(stdout).toContain('8 lookups -> 1 loadMany call with 5 distinct keys: 101 102 103 101 104 102 105 101');
      expect(stdout).toMatch(/simulated 20000 price paths in a worker thread: P\(up after 50 steps\) = 0\.\d{3}/);
      // No listener-leak warning: the example removes its abort listeners.
      expect(stderr).not.toContain('MaxListenersExceededWarning');
    },
  );
});
