import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

it('examples/client/resilient-upstream.ts runs and reports what it did', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, [
    '--import',
    'tsx',
    'examples/client/resilient-upstream.ts',
  ]);
  expect(stdout).toContain('quote AAPL = 101.5 after 3 attempts');
  // Behaviour, not speed: Retry-After: 1 was honoured (the wait is at least 1 s; how much longer is the machine's).
  const waited = /waited (\d+) ms \(the server asked for 1 s\); limiter penalties: 2; slots taken: 3/.exec(stdout);
  expect(waited).not.toBeNull();
  expect(Number(waited?.[1])).toBeGreaterThanOrEqual(1_000);
  expect(stdout).toContain('10 identical GETs -> 10 answers, 9 shared an in-flight request');
  expect(stdout).toContain('cache hits: 1 (Cache stats: 1 hit)');
  expect(stdout).toContain('profiled routes: client.request GET /quotes/:symbol, client.request GET /symbols/MSFT');
});
