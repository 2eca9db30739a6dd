import { Cache, type CacheTier, type CacheTierEntry, type CacheTierSetOptions, MapCacheTier } from 'hotpath/cache';
import { ConfigError, ManualClock } from 'hotpath/core';
import { describe, expect, it } from 'vitest';
import { describeCacheTier } from './cache-tier-conformance.js';

describeCacheTier('MapCacheTier', async (clock) => ({
  tier: new MapCacheTier<string>({ clock }),
  close: async () => {},
}));

async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** A tier whose backend is down: every call fails, as a Redis tier would with the server gone. */
class UnreachableTier<V> implements CacheTier<V> {
  calls = 0;
  async get(_key: string): Promise<CacheTierEntry<V> | undefined> {
    this.calls++;
    throw new Error('ECONNREFUSED');
  }
  async set(_key: string, _value: V, _options: CacheTierSetOptions): Promise<void> {
    this.calls++;
    throw new Error('ECONNREFUSED');
  }
  async delete(_key: string): Promise<void> {
    this.calls++;
    throw new Error('ECONNREFUSED');
  }
  async deleteTags(_tags: readonly string[]): Promise<void> {
    this.calls++;
    throw new Error('ECONNREFUSED');
  }
}

describe('MapCacheTier', () => {
  it('stores with expiry and tags, bounded by max', async () => {
    const clock = new ManualClock();
    const tier = new MapCacheTier<string>({ max: 2, clock });
    await tier.set('a', 'A', { ttlMs: 1_000, tags: ['t'] });
    await tier.set('b', 'B', { ttlMs: 5_000, tags: [] });
    expect(await tier.get('a')).toEqual({ value: 'A', ttlMs: 1_000, tags: ['t'] });
    await tier.set('c', 'C', { ttlMs: 5_000, tags: ['t'] }); // b is least recently used
    expect(await tier.get('b')).toBeUndefined();
    await clock.advance(1_000);
    expect(await tier.get('a')).toBeUndefined();
    expect((await tier.get('c'))?.ttlMs).toBe(4_000);
    await tier.deleteTags(['t']);
    expect(await tier.get('c')).toBeUndefined();
    await tier.set('d', 'D', { ttlMs: Number.POSITIVE_INFINITY, tags: [] });
    await tier.delete('d');
    expect(tier.stats().size).toBe(0);
    await tier.set('e', 'E', { ttlMs: 1, tags: [] });
    await tier.clear();
    expect(tier.stats()).toMatchObject({ size: 0, sets: 5 });
    expect(() => new MapCacheTier({ max: 0 })).toThrow(ConfigError);
    await expect(tier.set('x', 'X', { ttlMs: 0, tags: [] })).rejects.toThrow(ConfigError);
  });
});

describe('Cache with a second-level tier', () => {
  it('shares values between two caches through the tier, keeping L1 in each process', async () => {
    const clock = new ManualClock();
    const tier = new MapCacheTier<string>({ clock });
    const instanceA = new Cache<string>({ name: 'a', max: 10, ttlMs: 60_000, tier, clock });
    const instanceB = new Cache<string>({ name: 'b', max: 10, ttlMs: 60_000, tier, clock });
    let loads = 0;
    const loader = async () => {
      loads++;
      return 'from-db';
    };
    expect(await instanceA.getOrSet('k', loader, { tags: ['t'] })).toBe('from-db');
    await settle(); // the tier write runs in the background
    expect(await instanceB.getOrSet('k', loader)).toBe('from-db');
    expect(loads).toBe(1);
    expect(instanceB.stats()).toMatchObject({ tierHits: 1, loads: 0, misses: 1 });
    // B's L1 now answers without the tier.
    const tierGets = tier.stats().gets;
    expect(await instanceB.getOrSet('k', loader)).toBe('from-db');
    expect(tier.stats().gets).toBe(tierGets);
    // Tags travel with the tier value: invalidating in B also covers the copy B took from the tier.
    expect(await instanceB.invalidateTags(['t'])).toBe(1);
    expect(await tier.get('k')).toBeUndefined();
    await instanceA.close();
    await instanceB.close();
  });

  it('consults the tier once per stampede, inside the shared load', async () => {
    const clock = new ManualClock();
    const tier = new MapCacheTier<string>({ clock });
    const cache = new Cache<string>({ max: 10, ttlMs: 60_000, tier, clock });
    let loads = 0;
    const values = await Promise.all(
      Array.from({ length: 100 }, () =>
        cache.getOrSet('k', async () => {
          loads++;
          return 'v';
        }),
      ),
    );
    expect(values.every((value) => value === 'v')).toBe(true);
    expect(loads).toBe(1);
    expect(tier.stats().gets).toBe(1);
    await settle();
    expect(tier.stats().sets).toBe(1);
    await cache.close();
  });

  it('never keeps a tier value in L1 longer than the tier said it stays fresh', async () => {
    const clock = new ManualClock();
    const tier = new MapCacheTier<string>({ clock });
    await tier.set('k', 'shared', { ttlMs: 300, tags: [] });
    const cache = new Cache<string>({ max: 10, ttlMs: 60_000, tier, clock });
    expect(await cache.getOrSet('k', () => 'db')).toBe('shared');
    await clock.advance(301);
    expect(cache.get('k')).toBeUndefined();
    await cache.close();
  });

  it('writes set() and delete() through, and a failing tier never fails reads (counted instead)', async () => {
    const clock = new ManualClock();
    const tier = new MapCacheTier<number>({ clock });
    const cache = new Cache<number>({ max: 10, ttlMs: 1_000, tier, clock });
    cache.set('k', 1, { tags: ['x'] });
    await settle();
    expect((await tier.get('k'))?.value).toBe(1);
    cache.delete('k');
    await settle();
    expect(await tier.get('k')).toBeUndefined();
    await cache.close();

    const warnings: string[] = [];
    const logger = { debug() {}, info() {}, warn: (_o: object, msg?: string) => warnings.push(msg ?? ''), error() {} };
    const down = new UnreachableTier<number>();
    const resilient = new Cache<number>({ max: 10, ttlMs: 1_000, tier: down, clock, logger });
    expect(await resilient.getOrSet('k', () => 7)).toBe(7);
    await settle();
    expect(resilient.get('k')).toBe(7);
    expect(resilient.stats()).toMatchObject({ tierErrors: 2, loads: 1 });
    await expect(resilient.invalidateTags(['x'])).rejects.toThrow('ECONNREFUSED');
    expect(resilient.stats().tierErrors).toBe(3);
    expect(warnings).toContain('cache tier read failed; calling the loader');
    expect(warnings).toContain('cache tier write failed');
    await resilient.close();
  });
});
