import { createHook } from 'node:async_hooks';
import { Cache } from 'hotpath/cache';
import { ClosedError, ConfigError, isHotpathError, ManualClock } from 'hotpath/core';
import { describe, expect, it } from 'vitest';

describe('Cache basics', () => {
  it('stores, reads, checks and deletes values', async () => {
    const cache = new Cache<number>({ max: 10, ttlMs: 1_000, clock: new ManualClock() });
    cache.set('a', 1);
    expect(cache.get('a')).toBe(1);
    expect(cache.has('a')).toBe(true);
    expect(cache.has('b')).toBe(false);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.delete('a')).toBe(true);
    expect(cache.delete('a')).toBe(false);
    expect(cache.get('a')).toBeUndefined();
    cache.set('x', 0);
    cache.set('y', 0);
    cache.clear();
    expect(cache.stats().size).toBe(0);
    await cache.close();
  });

  it('expires values after ttlMs, per entry when given, measured on the injected clock', async () => {
    const clock = new ManualClock();
    const cache = new Cache<string>({ max: 10, ttlMs: 1_000, clock });
    cache.set('default', 'd');
    cache.set('short', 's', { ttlMs: 100 });
    cache.set('forever', 'f', { ttlMs: Number.POSITIVE_INFINITY });
    await clock.advance(99);
    expect(cache.get('short')).toBe('s');
    await clock.advance(2);
    expect(cache.get('short')).toBeUndefined();
    expect(cache.get('default')).toBe('d');
    await clock.advance(900);
    expect(cache.get('default')).toBeUndefined();
    await clock.advance(10_000_000);
    expect(cache.get('forever')).toBe('f');
    await cache.close();
  });

  it('jitter spreads the expiry of entries written together but never beyond ttlMs', async () => {
    const clock = new ManualClock();
    const cache = new Cache<number>({ max: 200, ttlMs: 1_000, jitter: 0.5, clock, purgeIntervalMs: 0 });
    for (let i = 0; i < 100; i++) cache.set(`k${i}`, i);
    const fresh = () => Array.from({ length: 100 }, (_, i) => cache.has(`k${i}`)).filter(Boolean).length;
    await clock.advance(499);
    expect(fresh()).toBe(100);
    await clock.advance(251);
    const atThreeQuarters = fresh();
    // Uniform TTLs in (500, 1000]: about half are left at 750 ms; all 100 on one side has odds 2^-99.
    expect(atThreeQuarters).toBeGreaterThan(0);
    expect(atThreeQuarters).toBeLessThan(100);
    await clock.advance(251);
    expect(fresh()).toBe(0);
    await cache.close();
  });

  it('evicts the least recently used entry at max and counts evictions', async () => {
    const cache = new Cache<number>({ max: 3, ttlMs: 60_000, clock: new ManualClock() });
    cache.set('a', 1);
    cache.set('b', 2);
    cache.set('c', 3);
    expect(cache.get('a')).toBe(1); // a becomes most recent, b is now the oldest
    cache.set('d', 4);
    expect(cache.has('b')).toBe(false);
    expect(cache.has('a')).toBe(true);
    expect(cache.has('c')).toBe(true);
    expect(cache.has('d')).toBe(true);
    expect(cache.stats()).toMatchObject({ size: 3, evictions: 1 });
    await cache.close();
  });

  it('respects maxSize with sizeOf and refuses an entry larger than maxSize', async () => {
    const cache = new Cache<string>({
      maxSize: 10,
      sizeOf: (value) => value.length,
      ttlMs: 60_000,
      clock: new ManualClock(),
    });
    cache.set('a', 'aaaa');
    cache.set('b', 'bbbb');
    cache.set('c', 'cccc'); // 12 > 10: a goes
    expect(cache.has('a')).toBe(false);
    expect(cache.get('b')).toBe('bbbb');
    expect(cache.get('c')).toBe('cccc');
    cache.set('huge', 'x'.repeat(11), { tags: ['big'] });
    expect(cache.has('huge')).toBe(false);
    expect(cache.stats().tags).toBe(0);
    expect(cache.stats().evictions).toBe(1);
    await cache.close();
  });

  it('rejects invalid options with ConfigError naming the option', () => {
    const bad: Array<[unknown, string]> = [
      [{ ttlMs: 1_000 }, 'Cache.max'],
      [{ max: 0, ttlMs: 1_000 }, 'Cache.max'],
      [{ max: 1.5, ttlMs: 1_000 }, 'Cache.max'],
      [{ max: 10 }, 'Cache.ttlMs'],
      [{ max: 10, ttlMs: 0 }, 'Cache.ttlMs'],
      [{ max: 10, ttlMs: Number.NaN }, 'Cache.ttlMs'],
      [{ max: 10, ttlMs: 1_000, jitter: 1 }, 'Cache.jitter'],
      [{ max: 10, ttlMs: 1_000, graceMs: -1 }, 'Cache.graceMs'],
      [{ max: 10, ttlMs: 1_000, loadTimeoutMs: 0 }, 'Cache.loadTimeoutMs'],
      [{ max: 10, ttlMs: 1_000, maxSize: 100 }, 'Cache.sizeOf'],
      [{ max: 10, ttlMs: 1_000, sizeOf: () => 1 }, 'Cache.sizeOf'],
      [{ max: 10, ttlMs: 1_000, enabled: 'no' }, 'Cache.enabled'],
      [{ max: 10, ttlMs: 1_000, ttl: 5 }, 'Cache.ttl'],
      [{ max: 10, ttlMs: 1_000, tier: { get() {} } }, 'Cache.tier'],
      [{ max: 10, ttlMs: 1_000, clock: { now: () => 0 } }, 'Cache.clock'],
      [{ max: 10, ttlMs: 1_000, profiler: {} }, 'Cache.profiler'],
      [{ max: 10, ttlMs: 1_000, max2: 1 }, 'Cache.max2'],
    ];
    for (const [options, option] of bad) {
      let caught: unknown;
      try {
        new Cache(options as never);
      } catch (error) {
        caught = error;
      }
      expect(caught, JSON.stringify(options)).toBeInstanceOf(ConfigError);
      expect((caught as ConfigError).option).toBe(option);
    }
  });

  it('accepts only string keys, with a clear TypeError, and leaves state unchanged', async () => {
    const cache = new Cache<number>({ max: 10, ttlMs: 1_000, clock: new ManualClock() });
    cache.set('1', 1);
    expect(() => cache.get(1 as unknown as string)).toThrow(/key must be a string, got 1/);
    expect(() => cache.set(2 as unknown as string, 2)).toThrow(TypeError);
    expect(() => cache.has({} as unknown as string)).toThrow(TypeError);
    expect(() => cache.delete(undefined as unknown as string)).toThrow(TypeError);
    await expect(cache.getOrSet(3 as unknown as string, () => 3)).rejects.toThrow(TypeError);
    expect(() => cache.set('t', 1, { tags: [1 as unknown as string] })).toThrow(/every tag must be a string/);
    expect(() => cache.set('t', 1, { ttlMs: -5 })).toThrow(ConfigError);
    expect(cache.stats()).toMatchObject({ size: 1, tags: 0, hits: 0, misses: 0 });
    await cache.close();
  });

  it('never stores undefined: set throws, a loader returning undefined is passed through uncached', async () => {
    const cache = new Cache<string | undefined>({ max: 10, ttlMs: 1_000, clock: new ManualClock() });
    expect(() => cache.set('k', undefined)).toThrow(/undefined is not cacheable/);
    let calls = 0;
    const loader = () => {
      calls++;
      return undefined;
    };
    expect(await cache.getOrSet('k', loader)).toBeUndefined();
    expect(await cache.getOrSet('k', loader)).toBeUndefined();
    expect(calls).toBe(2);
    expect(cache.stats().size).toBe(0);
    // null is a value: a cached negative answer.
    const negative = new Cache<string | null>({ max: 10, ttlMs: 1_000, clock: new ManualClock() });
    let nullCalls = 0;
    const nullLoader = () => {
      nullCalls++;
      return null;
    };
    expect(await negative.getOrSet('k', nullLoader)).toBeNull();
    expect(await negative.getOrSet('k', nullLoader)).toBeNull();
    expect(nullCalls).toBe(1);
    await cache.close();
    await negative.close();
  });

  it('purges expired entries on ONE background timer, keeping those inside the stale window', async () => {
    const clock = new ManualClock();
    const plain = new Cache<number>({ max: 1_000, ttlMs: 1_000, purgeIntervalMs: 1_000, clock });
    for (let i = 0; i < 100; i++) plain.set(`k${i}`, i);
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(2_001);
    expect(plain.stats()).toMatchObject({ size: 0, expirations: 100 });
    expect(clock.pendingTimers).toBe(1);
    await plain.close();
    expect(clock.pendingTimers).toBe(0);

    const withWindow = new Cache<number>({
      max: 1_000,
      ttlMs: 1_000,
      staleWhileRevalidateMs: 5_000,
      purgeIntervalMs: 1_000,
      clock,
    });
    for (let i = 0; i < 100; i++) withWindow.set(`k${i}`, i);
    await clock.advance(3_000);
    expect(withWindow.stats().size).toBe(100); // stale but still servable
    expect(withWindow.get('k1')).toBeUndefined(); // get() never returns stale values
    await clock.advance(3_500);
    expect(withWindow.stats()).toMatchObject({ size: 0, expirations: 100 });
    await withWindow.close();
  });

  it('counts stats exactly', async () => {
    const clock = new ManualClock();
    const cache = new Cache<number>({ max: 2, ttlMs: 1_000, staleWhileRevalidateMs: 1_000, clock });
    cache.get('a'); // miss
    await cache.getOrSet('a', () => 1); // miss + load
    cache.get('a'); // hit
    await cache.getOrSet('a', () => 99); // hit
    await expect(cache.getOrSet('b', () => Promise.reject(new Error('down')))).rejects.toThrow('down'); // miss + load error
    await clock.advance(1_500);
    expect(await cache.getOrSet('a', () => 2)).toBe(1); // stale hit + background load
    await clock.advance(0);
    expect(cache.get('a')).toBe(2); // hit
    cache.set('c', 3);
    cache.set('d', 4); // evicts a
    expect(cache.stats()).toEqual({
      hits: 3,
      misses: 3,
      staleHits: 1,
      loads: 3,
      loadErrors: 1,
      evictions: 1,
      expirations: 0,
      size: 2,
      inflight: 0,
      tags: 0,
      tierHits: 0,
      tierErrors: 0,
      staleLoadsRefused: 0,
      busMessages: 0,
      busErrors: 0,
      hitRate: 4 / 7,
    });
    await cache.close();
  });

  it('answers getOrSet hits with one shared resolved promise per entry (no allocation per hit)', async () => {
    const cache = new Cache<{ n: number }>({ max: 10, ttlMs: 1_000, clock: new ManualClock() });
    const loader = () => ({ n: 1 });
    const first = await cache.getOrSet('k', loader);
    const hitA = cache.getOrSet('k', loader);
    const hitB = cache.getOrSet('k', loader);
    expect(hitA).toBe(hitB);
    expect(await hitA).toBe(first);
    cache.set('k', { n: 2 });
    expect(cache.getOrSet('k', loader)).not.toBe(hitA); // a new entry gets its own promise
    expect((await cache.getOrSet('k', loader)).n).toBe(2);
    await cache.close();
  });

  it('reports every loader call to the profiler as cache.<name>.load', async () => {
    const samples: Array<[string, number, boolean | undefined]> = [];
    const profiler = { record: (name: string, ms: number, isError?: boolean) => samples.push([name, ms, isError]) };
    const cache = new Cache<number>({ name: 'quotes', max: 10, ttlMs: 1_000, profiler, clock: new ManualClock() });
    await cache.getOrSet('a', async () => 1);
    await cache.getOrSet('a', async () => 1);
    await expect(cache.getOrSet('b', async () => Promise.reject(new Error('x')))).rejects.toThrow('x');
    expect(samples.map(([name, , isError]) => [name, isError])).toEqual([
      ['cache.quotes.load', false],
      ['cache.quotes.load', true],
    ]);
    for (const [, ms] of samples) expect(ms).toBeGreaterThanOrEqual(0);
    await cache.close();
  });

  it('close() is idempotent, stops the timer, fails waiters and later calls with ClosedError', async () => {
    const clock = new ManualClock();
    const cache = new Cache<number>({ max: 10, ttlMs: 1_000, clock });
    let loaderSignal: AbortSignal | undefined;
    const waiting = cache.getOrSet('k', ({ signal }) => {
      loaderSignal = signal;
      return new Promise<number>(() => {});
    });
    const first = cache.close();
    expect(cache.close()).toBe(first);
    await first;
    await expect(waiting).rejects.toBeInstanceOf(ClosedError);
    expect(loaderSignal?.aborted).toBe(true);
    expect(clock.pendingTimers).toBe(0);
    expect(() => cache.get('k')).toThrow(ClosedError);
    expect(() => cache.set('k', 1)).toThrow(ClosedError);
    const rejected = await cache.getOrSet('k', () => 1).catch((error: unknown) => error);
    expect(isHotpathError(rejected, 'ERR_HOTPATH_CLOSED')).toBe(true);
    await cache[Symbol.asyncDispose]();
  });

  it('with the system clock, leaves no handle open once closed', async () => {
    // Every timer created from here on (unref'd ones too, which process.getActiveResourcesInfo() omits).
    const timers = new Set<number>();
    let created = 0;
    const hook = createHook({
      init(id, type) {
        if (type !== 'Timeout') return;
        created++;
        timers.add(id);
      },
      destroy(id) {
        timers.delete(id);
      },
    }).enable();
    try {
      const cache = new Cache<number>({ max: 10, ttlMs: 50, purgeIntervalMs: 10, loadTimeoutMs: 1_000 });
      await cache.getOrSet('k', async () => 1);
      expect(cache.get('k')).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 80));
      expect(cache.get('k')).toBeUndefined();
      expect(timers.size).toBeGreaterThan(0); // the purge timer is live while the cache is open
      await cache.close();
      await new Promise((resolve) => setImmediate(resolve)); // destroy hooks are emitted asynchronously
    } finally {
      hook.disable();
    }
    expect(created).toBeGreaterThan(1);
    expect(timers.size).toBe(0);
  });
});
