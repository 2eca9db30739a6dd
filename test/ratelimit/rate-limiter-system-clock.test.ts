import { RateLimiter } from 'hotpath/ratelimit';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

// The system clock reads Date.now(): with only Date faked (no timers), its time stands still until the
// test moves it, so the 1 ms guard the limiter adds on the system clock can be checked exactly.
describe('RateLimiter on the system clock (Date frozen)', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(1_700_000_000_000);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('minTimeMs is kept 1 ms longer; without minTimeMs starts are not spaced', async () => {
    const spaced = new RateLimiter({ limit: 10, intervalMs: 1000, minTimeMs: 10 });
    expect(spaced.tryAcquire().ok).toBe(true);
    vi.setSystemTime(1_700_000_000_010);
    expect(spaced.tryAcquire()).toMatchObject({ ok: false, retryAfterMs: 1 });
    vi.setSystemTime(1_700_000_000_011);
    expect(spaced.tryAcquire().ok).toBe(true);
    const unspaced = new RateLimiter({ limit: 10, intervalMs: 1000 });
    const attempts = [unspaced.tryAcquire(), unspaced.tryAcquire()];
    expect(attempts.map((attempt) => attempt.ok)).toEqual([true, true]);
    for (const attempt of attempts) attempt.release();
    expect(unspaced.isIdle()).toBe(true); // no spacing in force, not even the 1 ms guard
    await Promise.all([spaced.close(), unspaced.close()]);
  });

  it('a unit stays counted for intervalMs + the default margin + 1 ms', async () => {
    const limiter = new RateLimiter({ limit: 1, intervalMs: 1000 });
    expect(limiter.tryAcquire().ok).toBe(true);
    expect(limiter.tryAcquire()).toMatchObject({ ok: false, retryAfterMs: 1041 });
    vi.setSystemTime(1_700_000_001_040);
    expect(limiter.tryAcquire()).toMatchObject({ ok: false, retryAfterMs: 1 });
    vi.setSystemTime(1_700_000_001_041);
    expect(limiter.tryAcquire().ok).toBe(true);
    await limiter.close();
  });
});
