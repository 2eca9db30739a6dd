import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
// Under mutation testing (`npm run mutate` sets HOTPATH_MUTATION=1) this child-process test is skipped: the child
// never sees Stryker's active mutant (it is injected into the vitest worker only), so it can kill no mutant and
// would only run the instrumented sources once more (test/batch/example.test.ts: tsx cannot even load them there).
const isMutationRun = process.env.HOTPATH_MUTATION === '1';
const EXAMPLE = 'examples/cache/stock-quotes.ts';

describe.skipIf(isMutationRun)('examples/cache/stock-quotes.ts', () => {
  it('shares one query per key across concurrent requests and reports stats', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', EXAMPLE], { timeout: 30_000 });
    expect(stdout).toContain('300 concurrent quote requests -> 3 database queries');
    expect(stdout).toContain('300 more requests -> 0 database queries');
    expect(stdout).toContain('3 searches for "a" -> 1 database queries, result ["AAPL","NVDA"]');
    expect(stdout).toContain('after invalidation AAPL = 190');
    expect(stdout).toContain('stocks: hits=300 misses=301 loads=4');
    expect(stdout).toContain('caches=stocks,search,charts,aggregations');
  });

  it('becomes a pass-through with HOTPATH_CACHE_ENABLED=false', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', EXAMPLE], {
      timeout: 30_000,
      env: { ...process.env, HOTPATH_CACHE_ENABLED: 'false' },
    });
    expect(stdout).toContain('300 concurrent quote requests -> 300 database queries');
    expect(stdout).toContain('stocks: hits=0 misses=601 loads=601');
  });
});
