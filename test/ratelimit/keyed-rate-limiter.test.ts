import { ClosedError, ConfigError, ManualClock } from 'hotpath/core';
import { KeyedRateLimiter, MemoryRateLimitStore } from 'hotpath/ratelimit';
import { describe, expect, it } from 'vitest';

describe('KeyedRateLimiter', () => {
  it('limits each key on its own', async () => {
    const clock = new ManualClock();
    const keyed = new KeyedRateLimiter({ limit: 2, intervalMs: 100, clock });
    expect(keyed.tryAcquire('a').ok).toBe(true);
    expect(keyed.tryAcquire('a').ok).toBe(true);
    expect(keyed.tryAcquire('a')).toMatchObject({ ok: false, retryAfterMs: 100 });
    expect(keyed.tryAcquire('b').ok).toBe(true);
    expect(keyed.for('a')).toBe(keyed.for('a'));
    const started: string[] = [];
    const later = keyed.schedule('a', () => void started.push('a3'));
    await keyed.schedule('c', () => void started.push('c1'));
    expect(started).toEqual(['c1']);
    await clock.advance(100);
    await later;
    expect(started).toEqual(['c1', 'a3']);
  });

  it('penalize(key) pauses that key only', async () => {
    const clock = new ManualClock();
    const keyed = new KeyedRateLimiter({ limit: 10, intervalMs: 100, clock });
    keyed.penalize('slow-host', 1000);
    expect(keyed.tryAcquire('slow-host')).toMatchObject({ ok: false, retryAfterMs: 1000 });
    expect(keyed.tryAcquire('other-host').ok).toBe(true);
  });

  // Under mutation testing (npm run mutate sets HOTPATH_MUTATION=1) instrumented code runs this ~50× slower:
  // 100,000 keys show the same bounds (the windows hold 5,000 keys either way).
  const KEYS = process.env.HOTPATH_MUTATION === '1' ? 100_000 : 1_000_000;
  it(`memory stays bounded under ${KEYS.toLocaleString('en')} distinct keys, and a dropped key keeps its window`, async () => {
    const clock = new ManualClock();
    const store = new MemoryRateLimitStore({ maxKeys: 50_000 });
    const keyed = new KeyedRateLimiter({ limit: 1, intervalMs: 50, clock, store });
    let maxLimiters = 0;
    for (let i = 0; i < KEYS; i++) {
      const attempt = keyed.tryAcquire(`user:${i}`);
      if (!attempt.ok) throw new Error(`key ${i} refused`);
      attempt.release();
      if (i % 100 === 99) {
        clock.set(clock.now() + 1); // 100 new keys per ms → 5,000 keys inside any 50 ms window
        maxLimiters = Math.max(maxLimiters, keyed.stats().keys);
      }
    }
    // Idle limiters are dropped: never more than the sweep threshold, far below 1,000,000.
    expect(maxLimiters).toBeLessThanOrEqual(128);
    expect(keyed.stats().created).toBe(KEYS);
    expect(keyed.stats().dropped).toBeGreaterThan(KEYS - 1_000);
    // Windows: only keys active within one interval stay, plus at most one doubling before a sweep.
    expect(store.stats().keys).toBeLessThanOrEqual(11_000);
    expect(store.stats().evictions).toBe(0);
    // The most recent key was dropped as a limiter, but its window still holds it back.
    const last = `user:${KEYS - 1}`;
    expect(keyed.tryAcquire(last).ok).toBe(false);
    await clock.advance(50);
    expect(keyed.tryAcquire(last).ok).toBe(true);
    await keyed.close();
  }, 60_000);

  it('keeps a limiter with work in flight, drops it once idle', async () => {
    const clock = new ManualClock();
    const keyed = new KeyedRateLimiter({ limit: 100, intervalMs: 100, maxConcurrent: 1, clock });
    const release = await keyed.acquire('busy');
    const busy = keyed.for('busy');
    for (let i = 0; i < 200; i++) keyed.tryAcquire(`k${i}`).release();
    expect(keyed.for('busy')).toBe(busy);
    expect(keyed.stats()).toMatchObject({ running: 1 });
    release();
    for (let i = 200; i < 400; i++) keyed.tryAcquire(`k${i}`).release();
    expect(keyed.for('busy')).not.toBe(busy);
  });

  it('close rejects waiters of every key and is idempotent', async () => {
    const clock = new ManualClock();
    const keyed = new KeyedRateLimiter({ limit: 1, intervalMs: 1000, clock });
    await keyed.schedule('a', () => 1);
    const waiting = keyed.schedule('a', () => 2);
    await keyed.close();
    await keyed.close();
    await expect(waiting).rejects.toBeInstanceOf(ClosedError);
    expect(() => keyed.for('a')).toThrow(ClosedError);
    await expect(keyed.schedule('b', () => 1)).rejects.toBeInstanceOf(ClosedError);
    expect(clock.pendingTimers).toBe(0);
  });

  it('shares one store between keyed limiters through keyPrefix', () => {
    const clock = new ManualClock();
    const store = new MemoryRateLimitStore();
    const a = new KeyedRateLimiter({ limit: 1, intervalMs: 100, clock, store, keyPrefix: 'a:' });
    const b = new KeyedRateLimiter({ limit: 1, intervalMs: 100, clock, store, keyPrefix: 'b:' });
    const sameA = new KeyedRateLimiter({ limit: 1, intervalMs: 100, clock, store, keyPrefix: 'a:' });
    expect(a.tryAcquire('x').ok).toBe(true);
    expect(b.tryAcquire('x').ok).toBe(true);
    expect(sameA.tryAcquire('x').ok).toBe(false);
  });

  it.each([
    [{ limit: 1 }, 'KeyedRateLimiter.intervalMs'],
    [{ limit: 1, intervalMs: 10, maxKeys: 0 }, 'KeyedRateLimiter.maxKeys'],
    [{ limit: 1, intervalMs: 10, key: 'x' }, 'KeyedRateLimiter.key'],
    [{ limit: 1, intervalMs: 10, keyPrefix: 3 }, 'KeyedRateLimiter.keyPrefix'],
    [{ limit: 1, intervalMs: 10, bogus: true }, 'KeyedRateLimiter.bogus'],
  ])('bad options %j → ConfigError naming %s', (options, option) => {
    expect(() => new KeyedRateLimiter(options as never)).toThrow(
      expect.objectContaining({ option }) as unknown as ConfigError,
    );
  });

  it('rejects bad keys without creating a limiter', async () => {
    const keyed = new KeyedRateLimiter({ limit: 1, intervalMs: 10, clock: new ManualClock() });
    expect(() => keyed.for('')).toThrow(ConfigError);
    expect(() => keyed.for(42 as never)).toThrow(ConfigError);
    expect(() => keyed.for('x'.repeat(1025))).toThrow(ConfigError);
    await expect(keyed.schedule('', () => 1)).rejects.toBeInstanceOf(ConfigError);
    expect(keyed.stats().keys).toBe(0);
  });
});
