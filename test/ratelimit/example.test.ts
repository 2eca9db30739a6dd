import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const run = promisify(execFile);

it('examples/ratelimit/stock-quotes.ts runs and reports what it did', async () => {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'examples/ratelimit/stock-quotes.ts'], {
    timeout: 30_000,
  });
  expect(stdout).toMatch(/^fetched 50 quotes in \d+ ms$/m);
  const worst = Number(/most starts in any 200 ms window: (\d+)/.exec(stdout)?.[1]);
  expect(worst).toBeGreaterThan(0);
  expect(worst).toBeLessThanOrEqual(20);
  expect(stdout).toContain('after penalize(300) the next call started >= 300 ms later');
  expect(stdout).toContain('tryAcquire: ok=true');
  expect(stdout).toContain('second call refused: RateLimitError with retryAfterMs');
  expect(stdout).toContain('per host: api.a.example=true api.a.example=true api.a.example=false api.b.example=true');
  expect(stdout).toContain('stats: started=52 done=52 penalties=1 rejected=0');
});

it('examples/ratelimit/shared-redis.ts: three processes keep one limit through Redis', async () => {
  const { needsRedis, REDIS_URL } = await import('../helpers/services.js');
  if (!(await needsRedis())) return;
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'examples/ratelimit/shared-redis.ts'], {
    timeout: 60_000,
    env: { ...process.env, HOTPATH_REDIS_URL: REDIS_URL },
  });
  expect(stdout).toContain('3 processes started 60 tasks');
  const most = Number(/all processes together: (\d+)/.exec(stdout)?.[1]);
  expect(most).toBeGreaterThan(0);
  expect(most).toBeLessThanOrEqual(20);
});
