/**
 * Issue 14: generic defaults (an untyped cache types results from the loader, `CacheOptions` needs no
 * type argument) and user names used as object keys (`__proto__` is a cache name like any other).
 */
import { Cache, type CacheOptions, CacheRegistry, type CacheStats } from 'hotpath/cache';
import { describe, expect, expectTypeOf, it } from 'vitest';

describe('Cache generics', () => {
  it('types an untyped cache from its loader, and a typed one as its V', async () => {
    const options: CacheOptions = { max: 10, ttlMs: 1_000 };
    const untyped = new Cache(options);
    const quote = await untyped.getOrSet('ACME', async () => ({ symbol: 'ACME', price: 42 }));
    expectTypeOf(quote).toEqualTypeOf<{ symbol: string; price: number }>();
    expect(quote.price).toBe(42);

    const typed = new Cache<string>({ max: 10, ttlMs: 1_000 });
    const text = await typed.getOrSet('k', () => 'x');
    expectTypeOf(text).toEqualTypeOf<string>();
    const wrapped = typed.wrap((n: number) => `#${n}`, { key: (n) => String(n) });
    expectTypeOf(wrapped).toEqualTypeOf<(n: number) => Promise<string>>();

    const registry = new CacheRegistry();
    const fromRegistry = registry.create('quotes', { max: 10, ttlMs: 1_000 });
    expectTypeOf(fromRegistry).toEqualTypeOf<Cache<unknown>>();
    const price = await fromRegistry.getOrSet('ACME', () => 42);
    expectTypeOf(price).toEqualTypeOf<number>();
    await Promise.all([untyped.close(), typed.close(), registry.close()]);
  });
});

describe('CacheRegistry names', () => {
  it('keeps caches named __proto__, constructor and hasOwnProperty in stats like any other', async () => {
    const registry = new CacheRegistry();
    const names = ['__proto__', 'constructor', 'hasOwnProperty', 'quotes'];
    for (const name of names) registry.create(name, { max: 10, ttlMs: 1_000 }).set('k', name);
    const stats = registry.stats();
    expect(Object.keys(stats.caches)).toEqual(names);
    for (const name of names) expect((stats.caches[name] as CacheStats).size).toBe(1);
    expect(stats.total.size).toBe(4);
    expect(JSON.stringify(stats)).toContain('"__proto__":{"hits"');
    expect(registry.get('__proto__')?.get('k')).toBe('__proto__');
    expect(registry.names()).toEqual(names);
    await registry.close();
  });
});
