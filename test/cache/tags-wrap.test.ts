import { Cache, CacheRegistry, MAX_TAGS_PER_ENTRY } from 'hotpath/cache';
import { ConfigError, ManualClock } from 'hotpath/core';
import { describe, expect, it } from 'vitest';

describe('tags', () => {
  it('invalidateTags removes exactly the entries carrying any of the tags', async () => {
    const cache = new Cache<string>({ max: 100, ttlMs: 60_000, clock: new ManualClock() });
    cache.set('user:1', 'a', { tags: ['users', 'org:1'] });
    cache.set('user:2', 'b', { tags: ['users', 'org:2'] });
    cache.set('org:1', 'c', { tags: ['org:1'] });
    cache.set('plain', 'd');
    await cache.getOrSet('report:1', () => 'e', { tags: ['reports', 'org:1'] });
    expect(cache.stats().tags).toBe(4);
    expect(await cache.invalidateTags(['org:1'])).toBe(3);
    expect(cache.has('user:1')).toBe(false);
    expect(cache.has('org:1')).toBe(false);
    expect(cache.has('report:1')).toBe(false);
    expect(cache.get('user:2')).toBe('b');
    expect(cache.get('plain')).toBe('d');
    // user:1's other tag was cleaned from the index too: only user:2 remains under "users".
    expect(cache.stats().tags).toBe(2);
    expect(await cache.invalidateTags(['users', 'nope'])).toBe(1);
    expect(cache.stats()).toMatchObject({ size: 1, tags: 0 });
    await cache.close();
  });

  it('overwriting, deleting, evicting or expiring an entry drops it from the tag index', async () => {
    const clock = new ManualClock();
    const cache = new Cache<string>({ max: 2, ttlMs: 1_000, clock, purgeIntervalMs: 500 });
    cache.set('k', 'v1', { tags: ['old'] });
    cache.set('k', 'v2', { tags: ['new'] });
    expect(await cache.invalidateTags(['old'])).toBe(0);
    expect(cache.get('k')).toBe('v2');
    cache.delete('k');
    expect(cache.stats().tags).toBe(0);
    cache.set('a', 'a', { tags: ['t'] });
    cache.set('b', 'b', { tags: ['t'] });
    cache.set('c', 'c', { tags: ['t'] }); // evicts a
    expect(await cache.invalidateTags(['t'])).toBe(2);
    cache.set('x', 'x', { tags: ['gone'] });
    await clock.advance(1_600);
    expect(cache.stats()).toMatchObject({ size: 0, tags: 0 });
    await cache.close();
  });

  it('a load in flight with an invalidated tag answers its waiters but is not stored', async () => {
    const cache = new Cache<string>({ max: 10, ttlMs: 60_000, clock: new ManualClock() });
    let release!: (value: string) => void;
    const waiting = cache.getOrSet('k', () => new Promise<string>((resolve) => (release = resolve)), {
      tags: ['prices'],
    });
    await cache.invalidateTags(['prices']);
    release('pre-invalidation');
    expect(await waiting).toBe('pre-invalidation');
    expect(cache.has('k')).toBe(false);
    await cache.close();
  });

  it('keeps its own copy of the tags and bounds their number', async () => {
    const cache = new Cache<string>({ max: 10, ttlMs: 60_000, clock: new ManualClock() });
    const tags = ['a'];
    cache.set('k', 'v', { tags });
    tags[0] = 'b';
    expect(await cache.invalidateTags(['b'])).toBe(0);
    expect(await cache.invalidateTags(['a'])).toBe(1);
    const tooMany = Array.from({ length: MAX_TAGS_PER_ENTRY + 1 }, (_, i) => `t${i}`);
    expect(() => cache.set('k', 'v', { tags: tooMany })).toThrow(/at most 64 tags/);
    await expect(cache.invalidateTags('a' as unknown as string[])).rejects.toThrow(TypeError);
    await cache.close();
  });

  it('removes one tag among 100,000 tagged entries touching only its own entries', async () => {
    const cache = new Cache<number>({ max: 100_000, ttlMs: 60_000, clock: new ManualClock() });
    for (let i = 0; i < 100_000; i++) cache.set(`k${i}`, i, { tags: [`group:${i % 1_000}`] });
    expect(await cache.invalidateTags(['group:7'])).toBe(100);
    expect(cache.stats()).toMatchObject({ size: 99_900, tags: 999 });
    expect(cache.get('k8')).toBe(8);
    expect(cache.get('k7')).toBeUndefined();
    await cache.close();
  });
});

describe('wrap', () => {
  it('caches an async function by key with one call per key even under concurrency', async () => {
    const clock = new ManualClock();
    const cache = new Cache<{ symbol: string; price: number }>({ max: 100, ttlMs: 60_000, clock });
    const calls: string[] = [];
    const fetchQuote = async (symbol: string, currency: string) => {
      calls.push(`${symbol}/${currency}`);
      await new Promise((resolve) => setImmediate(resolve));
      return { symbol, price: symbol.length };
    };
    const cachedQuote = cache.wrap(fetchQuote, {
      key: (symbol, currency) => `quote:${symbol}:${currency}`,
      ttlMs: 1_000,
      tags: (symbol) => [`symbol:${symbol}`],
    });
    const results = await Promise.all(Array.from({ length: 100 }, () => cachedQuote('AAPL', 'USD')));
    expect(results.every((quote) => quote.price === 4)).toBe(true);
    expect(await cachedQuote('MSFT', 'USD')).toEqual({ symbol: 'MSFT', price: 4 });
    expect(await cachedQuote('AAPL', 'USD')).toEqual({ symbol: 'AAPL', price: 4 });
    expect(calls).toEqual(['AAPL/USD', 'MSFT/USD']);
    await cache.invalidateTags(['symbol:AAPL']);
    await cachedQuote('AAPL', 'USD');
    expect(calls).toHaveLength(3);
    await clock.advance(1_001);
    await cachedQuote('MSFT', 'USD');
    expect(calls).toHaveLength(4);
    await cache.close();
  });

  it('rejects a missing key function and propagates a throwing key function as a rejection', async () => {
    const cache = new Cache<number>({ max: 10, ttlMs: 1_000, clock: new ManualClock() });
    expect(() => cache.wrap(async () => 1, {} as never)).toThrow(ConfigError);
    expect(() => cache.wrap(async () => 1, { key: () => 'k', ttlMs: -1 })).toThrow(ConfigError);
    const wrapped = cache.wrap(async (n: number) => n, {
      key: (n) => {
        if (n < 0) throw new RangeError('negative');
        return String(n);
      },
    });
    await expect(wrapped(-1)).rejects.toThrow(RangeError);
    expect(await wrapped(2)).toBe(2);
    await cache.close();
  });
});

describe('pass-through (enabled: false)', () => {
  it('stores nothing, calls the loader every time, and still counts', async () => {
    const samples: string[] = [];
    const cache = new Cache<number>({
      name: 'rollback',
      max: 10,
      ttlMs: 60_000,
      enabled: false,
      clock: new ManualClock(),
      profiler: { record: (name) => samples.push(name) },
    });
    let calls = 0;
    const loader = async () => ++calls;
    expect(await cache.getOrSet('k', loader)).toBe(1);
    expect(await cache.getOrSet('k', loader)).toBe(2);
    const concurrent = await Promise.all([cache.getOrSet('k', loader), cache.getOrSet('k', loader)]);
    expect(concurrent.sort()).toEqual([3, 4]);
    cache.set('k', 99);
    expect(cache.get('k')).toBeUndefined();
    expect(cache.has('k')).toBe(false);
    expect(await cache.invalidateTags(['x'])).toBe(0);
    await expect(cache.getOrSet('e', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    const wrapped = cache.wrap(async (n: number) => n * 2, { key: (n) => `d:${n}` });
    expect(await wrapped(21)).toBe(42);
    expect(cache.stats()).toMatchObject({ hits: 0, misses: 7, loads: 6, loadErrors: 1, size: 0 });
    expect(samples).toHaveLength(6);
    expect(samples[0]).toBe('cache.rollback.load');
    await cache.close();
  });
});

describe('CacheRegistry', () => {
  it('creates named caches with shared defaults and reports stats for each and in total', async () => {
    const clock = new ManualClock();
    const registry = new CacheRegistry({ clock });
    const stocks = registry.create<number>('stocks', { max: 500, ttlMs: 60_000 });
    const charts = registry.create<string>('charts', { max: 200, ttlMs: 300_000 });
    await stocks.getOrSet('AAPL', () => 1);
    stocks.get('AAPL');
    await charts.getOrSet('AAPL:1d', () => 'chart');
    charts.get('missing');
    const stats = registry.stats();
    expect(Object.keys(stats.caches)).toEqual(['stocks', 'charts']);
    expect(stats.caches.stocks).toMatchObject({ hits: 1, misses: 1, loads: 1, size: 1 });
    expect(stats.caches.charts).toMatchObject({ hits: 0, misses: 2, loads: 1, size: 1 });
    expect(stats.total).toMatchObject({ hits: 1, misses: 3, loads: 2, size: 2, hitRate: 0.25 });
    expect(registry.get<number>('stocks')).toBe(stocks);
    expect(registry.names()).toEqual(['stocks', 'charts']);
    expect(() => registry.create('stocks', { max: 1, ttlMs: 1 })).toThrow(ConfigError);
    // Time comes from the registry's clock.
    await clock.advance(60_001);
    expect(stocks.get('AAPL')).toBeUndefined();
    expect(charts.get('AAPL:1d')).toBe('chart');
    registry.clear();
    expect(registry.stats().total.size).toBe(0);
    await registry.close();
    expect(() => stocks.get('AAPL')).toThrow(/closed/);
    expect(registry.close()).toBe(registry.close());
  });

  it('enabled: false on the registry turns every cache into a pass-through', async () => {
    const registry = new CacheRegistry({ enabled: false, clock: new ManualClock() });
    const cache = registry.create<number>('any', { max: 10, ttlMs: 1_000, enabled: true });
    let calls = 0;
    await cache.getOrSet('k', () => ++calls);
    await cache.getOrSet('k', () => ++calls);
    expect(calls).toBe(2);
    const external = new Cache<number>({ name: 'external', max: 1, ttlMs: 1, clock: new ManualClock() });
    registry.add(external);
    expect(registry.names()).toEqual(['any', 'external']);
    expect(() => new CacheRegistry({ bogus: 1 } as never)).toThrow(ConfigError);
    await registry[Symbol.asyncDispose]();
  });
});
