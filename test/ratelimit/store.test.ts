import { ConfigError, ManualClock, sleep } from 'hotpath/core';
import { MemoryRateLimitStore, RateLimiter, type RateLimitStore } from 'hotpath/ratelimit';
import { describe, expect, it } from 'vitest';

/** A store that answers a turn of the event loop later, as a network store would. */
class AsyncStore implements RateLimitStore {
  readonly inner = new MemoryRateLimitStore();
  reserves = 0;
  releases = 0;
  async reserve(key: string, weight: number, limit: number, windowMs: number, nowMs: number): Promise<number> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.reserves++;
    return this.inner.reserve(key, weight, limit, windowMs, nowMs);
  }
  async release(key: string, weight: number, reservedAtMs: number): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.releases++;
    this.inner.release(key, weight, reservedAtMs);
  }
}

describe('MemoryRateLimitStore', () => {
  it('counts a unit for exactly windowMs and says when the next one frees', () => {
    const store = new MemoryRateLimitStore();
    expect(store.reserve('k', 2, 3, 100, 1000)).toBe(0);
    expect(store.reserve('k', 1, 3, 100, 1040)).toBe(0);
    expect(store.reserve('k', 1, 3, 100, 1050)).toBe(50); // the 2 units of t=1000 free at 1100
    expect(store.reserve('k', 3, 3, 100, 1099)).toBe(41); // all three free once t=1040 expires
    expect(store.used('k', 1099)).toBe(3);
    expect(store.reserve('k', 2, 3, 100, 1100)).toBe(0);
    expect(store.used('k', 1100)).toBe(3);
    expect(store.reserve('k', 4, 3, 100, 5000)).toBe(Number.POSITIVE_INFINITY);
  });

  it('release gives back a reservation', () => {
    const store = new MemoryRateLimitStore();
    store.reserve('k', 1, 2, 100, 0);
    store.reserve('k', 1, 2, 100, 10);
    expect(store.reserve('k', 1, 2, 100, 20)).toBeGreaterThan(0);
    store.release('k', 1, 10);
    expect(store.used('k', 20)).toBe(1);
    expect(store.reserve('k', 1, 2, 100, 20)).toBe(0);
    store.release('unknown', 1, 0); // ignored
  });

  it('a full log merges into its newest entry: coarser, never more than the limit', () => {
    const store = new MemoryRateLimitStore({ maxEntriesPerKey: 4 });
    const starts: number[] = [];
    for (let t = 0; t < 1000; t++) if (store.reserve('k', 1, 10, 100, t) === 0) starts.push(t);
    for (let i = 10; i < starts.length; i++) {
      expect((starts[i] as number) - (starts[i - 10] as number)).toBeGreaterThanOrEqual(100);
    }
    expect(starts.length).toBeGreaterThan(20); // still admits work
  });

  it('drops expired windows, and past maxKeys forgets the oldest (counted)', () => {
    const store = new MemoryRateLimitStore({ maxKeys: 2000 });
    for (let i = 0; i < 5000; i++) store.reserve(`k${i}`, 1, 1, 10, i);
    expect(store.stats().keys).toBeLessThanOrEqual(2048);
    expect(store.stats().evictions).toBe(0); // all swept as expired
    for (let i = 0; i < 5000; i++) store.reserve(`live${i}`, 1, 1, 1_000_000, 10_000);
    expect(store.stats().keys).toBeLessThanOrEqual(2000);
    expect(store.stats().evictions).toBeGreaterThan(0);
    store.clear();
    expect(store.stats().keys).toBe(0);
  });

  it('rejects bad options', () => {
    expect(() => new MemoryRateLimitStore({ maxKeys: 0 })).toThrow(ConfigError);
    expect(() => new MemoryRateLimitStore({ maxEntriesPerKey: 1.5 })).toThrow(ConfigError);
    expect(() => new MemoryRateLimitStore({ max: 1 } as never)).toThrow(ConfigError);
  });
});

describe('RateLimiter on an asynchronous store', () => {
  it('keeps the window, order and concurrency when the store answers later', async () => {
    const clock = new ManualClock();
    const store = new AsyncStore();
    const limiter = new RateLimiter({ limit: 5, intervalMs: 100, maxConcurrent: 3, store, clock });
    const starts: { at: number; index: number }[] = [];
    let running = 0;
    let maxRunning = 0;
    const tasks = Array.from({ length: 40 }, (_, index) =>
      limiter.schedule(async () => {
        starts.push({ at: clock.now(), index });
        running++;
        maxRunning = Math.max(maxRunning, running);
        await sleep(30, { clock });
        running--;
      }),
    );
    for (let i = 0; i < 300 && (starts.length < 40 || running > 0); i++) await clock.advance(10);
    await Promise.all(tasks);
    expect(starts.map((s) => s.index)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    for (let i = 5; i < starts.length; i++) {
      expect((starts[i] as { at: number }).at - (starts[i - 5] as { at: number }).at).toBeGreaterThanOrEqual(100);
    }
    expect(maxRunning).toBe(3);
    expect(store.reserves).toBeGreaterThanOrEqual(40);
  });

  it('gives the units back when the waiter aborts while its reservation is in flight', async () => {
    const clock = new ManualClock();
    const store = new AsyncStore();
    const limiter = new RateLimiter({ limit: 2, intervalMs: 100, store, clock });
    const controller = new AbortController();
    const aborted = limiter.acquire({ signal: controller.signal });
    controller.abort(new Error('stop'));
    await expect(aborted).rejects.toThrow('stop');
    await clock.advance(0);
    expect(store.releases).toBe(1);
    expect(store.inner.used('default', clock.now())).toBe(0);
    const release = await limiter.acquire();
    release();
    expect(() => limiter.tryAcquire()).toThrow(ConfigError); // needs a synchronous store
  });
});

describe('tryAcquireAsync', () => {
  it('answers on an asynchronous store, concurrently, with the remaining quota', async () => {
    const clock = new ManualClock();
    const store = new AsyncStore();
    const limiter = new RateLimiter({ limit: 3, intervalMs: 100, store, clock });
    const answers = await Promise.all(Array.from({ length: 5 }, () => limiter.tryAcquireAsync()));
    expect(answers.filter((a) => a.ok)).toHaveLength(3);
    const refused = answers.find((a) => !a.ok);
    expect(refused?.retryAfterMs).toBeGreaterThanOrEqual(1);
    for (const answer of answers) answer.release();
    expect(limiter.stats().running).toBe(0);
    await expect(limiter.tryAcquireAsync(4)).rejects.toThrow(ConfigError);
  });

  it('reports remaining units on the memory store and respects maxConcurrent while in flight', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 5, intervalMs: 100, maxConcurrent: 1, clock });
    const first = await limiter.tryAcquireAsync(2);
    expect(first).toMatchObject({ ok: true, remaining: 3 });
    expect((await limiter.tryAcquireAsync()).ok).toBe(false); // concurrency 1 held
    first.release();
    expect(await limiter.tryAcquireAsync(3)).toMatchObject({ ok: true, remaining: 0 });
    await limiter.close();
    await expect(limiter.tryAcquireAsync()).rejects.toThrow('closed');
  });
});
