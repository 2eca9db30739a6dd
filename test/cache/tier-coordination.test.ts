import {
  Cache,
  type CacheBus,
  type CacheBusListener,
  type CacheBusMessage,
  type CacheTierEntry,
  type CacheTierFillOptions,
  type CacheTierLookup,
  type CacheTierSetOptions,
  type CoordinatedCacheTier,
  isCoordinatedTier,
} from 'hotpath/cache';
import { ManualClock } from 'hotpath/core';
import { describe, expect, it } from 'vitest';
import { deferred, settle } from '../helpers/async.js';
import { logSpy } from './log-spy.js';

/** An in-process bus: records what is published and lets the test deliver messages from "elsewhere". */
class FakeBus implements CacheBus {
  readonly published: Array<[string, CacheBusMessage]> = [];
  readonly listeners = new Map<string, CacheBusListener>();
  unsubscribed: string[] = [];
  fail: 'throw' | 'reject' | undefined;
  subscribe(cacheName: string, listener: CacheBusListener): () => void {
    this.listeners.set(cacheName, listener);
    return () => {
      this.unsubscribed.push(cacheName);
      this.listeners.delete(cacheName);
    };
  }
  publish(cacheName: string, message: CacheBusMessage): Promise<void> {
    if (this.fail === 'throw') throw new Error('bus down (sync)');
    if (this.fail === 'reject') return Promise.reject(new Error('bus down'));
    this.published.push([cacheName, message]);
    return Promise.resolve();
  }
  deliver(cacheName: string, message: CacheBusMessage): void {
    this.listeners.get(cacheName)?.onMessage(message);
  }
  reset(cacheName: string): void {
    this.listeners.get(cacheName)?.onReset();
  }
}

/** A coordinating tier whose answers the test scripts. */
class ScriptedTier implements CoordinatedCacheTier<string> {
  readonly calls: string[] = [];
  readonly fills: Array<[string, string, CacheTierFillOptions]> = [];
  readonly sets: Array<[string, string, CacheTierSetOptions]> = [];
  lookups: Array<CacheTierLookup<string> | Error> = [];
  fillAnswer = true;
  async get(key: string): Promise<CacheTierEntry<string> | undefined> {
    this.calls.push(`get ${key}`);
    return undefined;
  }
  async set(key: string, value: string, options: CacheTierSetOptions): Promise<void> {
    this.calls.push(`set ${key}`);
    this.sets.push([key, value, options]);
  }
  async delete(key: string): Promise<void> {
    this.calls.push(`delete ${key}`);
  }
  async deleteTags(tags: readonly string[]): Promise<void> {
    this.calls.push(`deleteTags ${tags.join(',')}`);
  }
  async lookup(key: string): Promise<CacheTierLookup<string>> {
    this.calls.push(`lookup ${key}`);
    const next = this.lookups.shift() ?? { kind: 'lease', stamp: 's0', token: 't0' };
    if (next instanceof Error) throw next;
    return next;
  }
  async fill(key: string, value: string, options: CacheTierFillOptions): Promise<boolean> {
    this.calls.push(`fill ${key}`);
    this.fills.push([key, value, options]);
    return this.fillAnswer;
  }
  async release(key: string, token: string): Promise<void> {
    this.calls.push(`release ${key} ${token}`);
  }
}

describe('isCoordinatedTier', () => {
  it('needs lookup, fill and release to be functions', () => {
    const plain = {
      get: async () => undefined,
      set: async () => {},
      delete: async () => {},
      deleteTags: async () => {},
    };
    const full = { ...plain, lookup: async () => 0, fill: async () => true, release: async () => {} };
    expect(isCoordinatedTier(full as never)).toBe(true);
    expect(isCoordinatedTier(plain as never)).toBe(false);
    for (const missing of ['lookup', 'fill', 'release']) {
      expect(isCoordinatedTier({ ...full, [missing]: true } as never)).toBe(false);
    }
  });
});

describe('Cache with a bus', () => {
  it('announces set, delete, clear and invalidateTags under its name, each after its tier write', async () => {
    const bus = new FakeBus();
    const tier = new ScriptedTier();
    const cache = new Cache<string>({ name: 'quotes', max: 10, ttlMs: 1_000, clock: new ManualClock(), bus, tier });
    cache.set('a', 'A', { tags: ['t'] });
    expect(bus.published).toEqual([]); // the tier write is not done yet
    await settle();
    expect(bus.published).toEqual([['quotes', { type: 'set', key: 'a' }]]);
    expect(tier.sets).toEqual([['a', 'A', { ttlMs: 1_000, tags: ['t'] }]]);
    cache.delete('a');
    cache.clear(); // ScriptedTier has no clear(): announced at once
    expect(bus.published.at(-1)).toEqual(['quotes', { type: 'clear' }]);
    const tags = ['x', 'y'];
    await cache.invalidateTags(tags);
    tags[0] = 'changed';
    await settle();
    expect(bus.published).toEqual([
      ['quotes', { type: 'set', key: 'a' }],
      ['quotes', { type: 'clear' }],
      ['quotes', { type: 'delete', key: 'a' }],
      ['quotes', { type: 'tags', tags: ['x', 'y'] }],
    ]);
    expect(tier.calls).toEqual(['set a', 'delete a', 'deleteTags x,y']);
    await cache.close();
    expect(bus.unsubscribed).toEqual(['quotes']);
  });

  it('without a tier, changes are announced at once', async () => {
    const bus = new FakeBus();
    const cache = new Cache<string>({ name: 'c', max: 10, ttlMs: 1_000, clock: new ManualClock(), bus });
    cache.set('a', 'A');
    cache.delete('a');
    cache.clear();
    await cache.invalidateTags(['t']);
    expect(bus.published).toEqual([
      ['c', { type: 'set', key: 'a' }],
      ['c', { type: 'delete', key: 'a' }],
      ['c', { type: 'clear' }],
      ['c', { type: 'tags', tags: ['t'] }],
    ]);
    await cache.close();
  });

  it('a disabled cache neither subscribes nor announces', async () => {
    const bus = new FakeBus();
    const cache = new Cache<string>({
      name: 'off',
      max: 10,
      ttlMs: 1_000,
      clock: new ManualClock(),
      bus,
      enabled: false,
    });
    expect(bus.listeners.size).toBe(0);
    cache.set('a', 'A');
    expect(cache.delete('a')).toBe(false);
    cache.clear();
    expect(await cache.invalidateTags(['t'])).toBe(0);
    expect(bus.published).toEqual([]);
    await cache.close();
  });

  it('a set or delete elsewhere drops the local copy, a remembered error and the result of a load in flight', async () => {
    const bus = new FakeBus();
    const clock = new ManualClock();
    const cache = new Cache<string>({ name: 'c', max: 10, ttlMs: 1_000, errorTtlMs: 5_000, clock, bus });
    cache.set('a', 'A');
    cache.set('b', 'B');
    bus.deliver('c', { type: 'set', key: 'a' });
    bus.deliver('c', { type: 'delete', key: 'b' });
    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('b')).toBeUndefined();
    // A remembered error is forgotten.
    await expect(
      cache.getOrSet('e', () => {
        throw new Error('down');
      }),
    ).rejects.toThrow('down');
    await expect(cache.getOrSet('e', () => 'never')).rejects.toThrow('down');
    bus.deliver('c', { type: 'set', key: 'e' });
    expect(await cache.getOrSet('e', () => 'E')).toBe('E');
    // A load in flight answers its waiters but is not stored.
    const gate = deferred<string>();
    const load = cache.getOrSet('l', () => gate.promise);
    bus.deliver('c', { type: 'delete', key: 'l' });
    gate.resolve('old');
    expect(await load).toBe('old');
    expect(cache.get('l')).toBeUndefined();
    expect(cache.stats().busMessages).toBe(4);
    await cache.close();
  });

  it('tags and clear from elsewhere act locally without being announced again', async () => {
    const bus = new FakeBus();
    const cache = new Cache<string>({ name: 'c', max: 10, ttlMs: 1_000, clock: new ManualClock(), bus });
    cache.set('a', 'A', { tags: ['red'] });
    cache.set('b', 'B', { tags: ['blue'] });
    cache.set('c', 'C');
    await settle();
    const before = bus.published.length;
    bus.deliver('c', { type: 'tags', tags: ['red'] });
    expect([cache.get('a'), cache.get('b'), cache.get('c')]).toEqual([undefined, 'B', 'C']);
    const gate = deferred<string>();
    const load = cache.getOrSet('tagged', () => gate.promise, { tags: ['blue'] });
    bus.deliver('c', { type: 'tags', tags: ['blue'] });
    gate.resolve('late');
    expect(await load).toBe('late');
    expect(cache.get('tagged')).toBeUndefined();
    expect(cache.get('b')).toBeUndefined();
    bus.deliver('c', { type: 'clear' });
    expect(cache.get('c')).toBeUndefined();
    expect(cache.stats()).toMatchObject({ size: 0, busMessages: 3, tags: 0 });
    expect(bus.published).toHaveLength(before);
    await cache.close();
  });

  it('a reset of the bus clears L1 and says why; after close() nothing from the bus is applied', async () => {
    const bus = new FakeBus();
    const { lines, logger } = logSpy();
    const cache = new Cache<string>({ name: 'c', max: 10, ttlMs: 1_000, clock: new ManualClock(), bus, logger });
    cache.set('a', 'A');
    const listener = bus.listeners.get('c') as CacheBusListener;
    bus.reset('c');
    expect(cache.get('a')).toBeUndefined();
    expect(lines).toEqual([
      ['info', 'cache bus reconnected; clearing L1 (messages may have been missed)', { cache: 'c' }],
    ]);
    await cache.close();
    listener.onMessage({ type: 'clear' });
    listener.onReset();
    expect(lines).toHaveLength(1);
    expect(cache.stats().busMessages).toBe(0);
  });

  it('a failing publish (thrown or rejected) is counted and logged, and never fails the write', async () => {
    const bus = new FakeBus();
    const { lines, logger } = logSpy();
    const cache = new Cache<string>({ name: 'c', max: 10, ttlMs: 1_000, clock: new ManualClock(), bus, logger });
    bus.fail = 'throw';
    cache.set('a', 'A');
    bus.fail = 'reject';
    cache.delete('a');
    await settle();
    expect(cache.stats().busErrors).toBe(2);
    expect(
      lines.map(([level, message, fields]) => [level, message, fields.cache, (fields.err as Error).message]),
    ).toEqual([
      ['warn', 'cache bus publish failed', 'c', 'bus down (sync)'],
      ['warn', 'cache bus publish failed', 'c', 'bus down'],
    ]);
    await cache.close();
  });
});

describe('Cache with a coordinating tier', () => {
  it('with the lease: calls the loader and fills the tier with the lease’s stamp and token, then announces "loaded"', async () => {
    const tier = new ScriptedTier();
    const bus = new FakeBus();
    tier.lookups = [{ kind: 'lease', stamp: 'stamp-1', token: 'token-1' }];
    const cache = new Cache<string>({ name: 'c', max: 10, ttlMs: 1_000, clock: new ManualClock(), tier, bus });
    expect(await cache.getOrSet('k', () => 'V', { tags: ['t'], ttlMs: 500 })).toBe('V');
    await settle();
    expect(tier.calls).toEqual(['lookup k', 'fill k']);
    expect(tier.fills).toEqual([['k', 'V', { ttlMs: 500, tags: ['t'], stamp: 'stamp-1', token: 'token-1' }]]);
    expect(bus.published).toEqual([['c', { type: 'loaded', key: 'k' }]]);
    expect(cache.get('k')).toBe('V');
    expect(cache.stats()).toMatchObject({ loads: 1, tierHits: 0, staleLoadsRefused: 0 });
    await cache.close();
  });

  it('a refused fill (invalidated meanwhile) drops the value from L1 too and is counted', async () => {
    const tier = new ScriptedTier();
    tier.fillAnswer = false;
    const cache = new Cache<string>({ name: 'c', max: 10, ttlMs: 1_000, clock: new ManualClock(), tier });
    expect(await cache.getOrSet('k', () => 'V')).toBe('V');
    await settle();
    expect(cache.get('k')).toBeUndefined();
    expect(cache.stats().staleLoadsRefused).toBe(1);
    // A newer value set meanwhile is kept.
    tier.lookups = [{ kind: 'lease', stamp: 's', token: 't' }];
    const gate = deferred<string>();
    const load = cache.getOrSet('n', () => gate.promise);
    await settle();
    gate.resolve('loaded');
    await load;
    cache.set('n', 'newer');
    await settle();
    expect(cache.get('n')).toBe('newer');
    expect(cache.stats().staleLoadsRefused).toBe(2);
    await cache.close();
  });

  it('a hit in the tier answers without the loader, with the shorter of the two ttls and the tier’s tags', async () => {
    const clock = new ManualClock();
    const tier = new ScriptedTier();
    tier.lookups = [{ kind: 'hit', entry: { value: 'from-tier', ttlMs: 100, tags: ['remote'] } }];
    const cache = new Cache<string>({ name: 'c', max: 10, ttlMs: 1_000, clock, tier });
    let calls = 0;
    expect(
      await cache.getOrSet('k', () => {
        calls++;
        return 'loaded';
      }),
    ).toBe('from-tier');
    expect(calls).toBe(0);
    expect(cache.stats()).toMatchObject({ tierHits: 1, loads: 0 });
    expect(await cache.invalidateTags(['remote'])).toBe(1);
    tier.lookups = [{ kind: 'hit', entry: { value: 'again', ttlMs: 100 } }];
    expect(await cache.getOrSet('k', () => 'loaded')).toBe('again');
    await clock.advance(100);
    expect(cache.get('k')).toBe('again');
    await clock.advance(1);
    expect(cache.get('k')).toBeUndefined();
    tier.lookups = [{ kind: 'hit', entry: { value: 'forever', ttlMs: 0 } }];
    expect(await cache.getOrSet('z', () => 'loaded')).toBe('forever');
    await clock.advance(1_000);
    expect(cache.get('z')).toBe('forever'); // a ttl of 0 from the tier means the cache's own
    await clock.advance(1);
    expect(cache.get('z')).toBeUndefined();
    expect(tier.fills).toEqual([]);
    await cache.close();
  });

  it('while another process loads: polls every 25 ms without a bus (at least 1 ms), then takes the value', async () => {
    const clock = new ManualClock();
    const tier = new ScriptedTier();
    tier.lookups = [
      { kind: 'busy', retryInMs: 500 },
      { kind: 'busy', retryInMs: 0 },
      { kind: 'hit', entry: { value: 'theirs', ttlMs: 1_000 } },
    ];
    const cache = new Cache<string>({ name: 'c', max: 10, ttlMs: 1_000, clock, tier, purgeIntervalMs: 0 });
    let calls = 0;
    const load = cache.getOrSet('k', () => {
      calls++;
      return 'mine';
    });
    await settle();
    expect(tier.calls).toEqual(['lookup k']);
    await clock.advance(24);
    expect(tier.calls).toEqual(['lookup k']);
    await clock.advance(1);
    expect(tier.calls).toEqual(['lookup k', 'lookup k']);
    await clock.advance(0);
    expect(tier.calls).toHaveLength(2);
    await clock.advance(1);
    expect(await load).toBe('theirs');
    expect(tier.calls).toEqual(['lookup k', 'lookup k', 'lookup k']);
    expect(calls).toBe(0);
    expect(clock.pendingTimers).toBe(0);
    await cache.close();
  });

  it('with a bus: waits up to 1 s, and a "loaded" message wakes the waiter at once', async () => {
    const clock = new ManualClock();
    const tier = new ScriptedTier();
    const bus = new FakeBus();
    tier.lookups = [
      { kind: 'busy', retryInMs: 5_000 },
      { kind: 'busy', retryInMs: 5_000 },
      { kind: 'hit', entry: { value: 'theirs', ttlMs: 1_000 } },
    ];
    const cache = new Cache<string>({ name: 'c', max: 10, ttlMs: 1_000, clock, tier, bus, purgeIntervalMs: 0 });
    const load = cache.getOrSet('k', () => 'mine');
    await settle();
    await clock.advance(999);
    expect(tier.calls).toEqual(['lookup k']);
    await clock.advance(1);
    expect(tier.calls).toEqual(['lookup k', 'lookup k']);
    await settle();
    bus.deliver('c', { type: 'loaded', key: 'other' }); // not this key: keeps waiting
    await settle();
    expect(tier.calls).toHaveLength(2);
    bus.deliver('c', { type: 'loaded', key: 'k' });
    expect(await load).toBe('theirs');
    expect(tier.calls).toHaveLength(3);
    expect(clock.pendingTimers).toBe(0);
    await cache.close();
  });

  it('a "loaded" message that arrives while the tier is being asked makes the next look immediate', async () => {
    const clock = new ManualClock();
    const tier = new ScriptedTier();
    const bus = new FakeBus();
    const busy = deferred<CacheTierLookup<string>>();
    let lookups = 0;
    tier.lookup = async (key: string) => {
      tier.calls.push(`lookup ${key}`);
      lookups++;
      if (lookups === 1) return busy.promise;
      return { kind: 'hit', entry: { value: 'theirs', ttlMs: 1_000 } };
    };
    const cache = new Cache<string>({ name: 'c', max: 10, ttlMs: 1_000, clock, tier, bus, purgeIntervalMs: 0 });
    const load = cache.getOrSet('k', () => 'mine');
    await settle();
    bus.deliver('c', { type: 'loaded', key: 'k' });
    busy.resolve({ kind: 'busy', retryInMs: 1_000 });
    expect(await load).toBe('theirs');
    expect(lookups).toBe(2);
    expect(clock.pendingTimers).toBe(0);
    await cache.close();
  });

  it('a failing lookup: counted, logged, the loader runs and nothing is written to the tier', async () => {
    const tier = new ScriptedTier();
    const { lines, logger } = logSpy();
    tier.lookups = [new Error('tier down')];
    const cache = new Cache<string>({ name: 'c', max: 10, ttlMs: 1_000, clock: new ManualClock(), tier, logger });
    expect(await cache.getOrSet('k', () => 'V')).toBe('V');
    await settle();
    expect(tier.calls).toEqual(['lookup k']);
    expect(cache.stats()).toMatchObject({ tierErrors: 1, loads: 1 });
    expect(lines.map(([level, message, fields]) => [level, message, fields.cache, fields.key])).toEqual([
      ['warn', 'cache tier read failed; calling the loader', 'c', 'k'],
    ]);
    expect(cache.get('k')).toBe('V');
    await cache.close();
  });

  it('a loader that fails, or a value superseded while asking, gives the lease back', async () => {
    const tier = new ScriptedTier();
    tier.lookups = [{ kind: 'lease', stamp: 's', token: 'failing' }];
    const cache = new Cache<string>({ name: 'c', max: 10, ttlMs: 1_000, clock: new ManualClock(), tier });
    await expect(
      cache.getOrSet('k', () => {
        throw new Error('loader broke');
      }),
    ).rejects.toThrow('loader broke');
    await settle();
    expect(tier.calls).toEqual(['lookup k', 'release k failing']);
    // A loader returning undefined stores nothing and releases the lease too.
    tier.lookups = [{ kind: 'lease', stamp: 's', token: 'undef' }];
    expect(await cache.getOrSet('u', () => undefined as unknown as string)).toBeUndefined();
    await settle();
    expect(tier.calls.slice(2)).toEqual(['lookup u', 'release u undef']);
    // Deleted while the tier was being asked: the lease goes back at once, the loader still answers.
    const asked = deferred<CacheTierLookup<string>>();
    tier.lookup = async (key: string) => {
      tier.calls.push(`lookup ${key}`);
      return asked.promise;
    };
    const load = cache.getOrSet('d', () => 'D');
    await settle();
    cache.delete('d');
    asked.resolve({ kind: 'lease', stamp: 's', token: 'superseded' });
    expect(await load).toBe('D');
    await settle();
    expect(tier.calls.slice(4)).toEqual(['lookup d', 'delete d', 'release d superseded']);
    expect(tier.fills).toEqual([]);
    expect(cache.get('d')).toBeUndefined();
    await cache.close();
  });

  it('a load that timed out while the tier was asked gives the lease back and never calls the loader', async () => {
    const clock = new ManualClock();
    const tier = new ScriptedTier();
    const asked = deferred<CacheTierLookup<string>>();
    tier.lookup = async (key: string) => {
      tier.calls.push(`lookup ${key}`);
      return asked.promise;
    };
    const cache = new Cache<string>({ name: 'c', max: 10, ttlMs: 1_000, loadTimeoutMs: 50, clock, tier });
    let calls = 0;
    const load = cache.getOrSet('k', () => {
      calls++;
      return 'V';
    });
    const outcome = load.catch((error: unknown) => error);
    await settle();
    await clock.advance(50);
    expect(await outcome).toMatchObject({ message: 'Cache "c": load of key "k" took longer than 50 ms' });
    asked.resolve({ kind: 'lease', stamp: 's', token: 'late' });
    await settle();
    expect(tier.calls).toEqual(['lookup k', 'release k late']);
    expect(calls).toBe(0);
    await cache.close();
  });
});

describe('Cache with a coordinating tier and a bus: changes while waiting', () => {
  it('a set elsewhere while waiting for another process only makes the waiter look again (its result is kept)', async () => {
    const clock = new ManualClock();
    const tier = new ScriptedTier();
    const bus = new FakeBus();
    tier.lookups = [
      { kind: 'busy', retryInMs: 5_000 },
      { kind: 'lease', stamp: 's', token: 't' },
    ];
    const cache = new Cache<string>({ name: 'c', max: 10, ttlMs: 1_000, clock, tier, bus, purgeIntervalMs: 0 });
    const load = cache.getOrSet('k', () => 'mine');
    await settle();
    bus.deliver('c', { type: 'set', key: 'k' });
    expect(await load).toBe('mine');
    await settle();
    expect(tier.calls).toEqual(['lookup k', 'lookup k', 'fill k']);
    expect(cache.get('k')).toBe('mine'); // woken, not detached: stored
    expect(clock.pendingTimers).toBe(0);
    await cache.close();
  });

  it('a tag invalidation or a clear elsewhere wakes every waiter', async () => {
    for (const message of [{ type: 'tags', tags: ['x'] }, { type: 'clear' }] as const) {
      const clock = new ManualClock();
      const tier = new ScriptedTier();
      const bus = new FakeBus();
      tier.lookups = [
        { kind: 'busy', retryInMs: 5_000 },
        { kind: 'hit', entry: { value: 'theirs', ttlMs: 1_000 } },
      ];
      const cache = new Cache<string>({ name: 'c', max: 10, ttlMs: 1_000, clock, tier, bus, purgeIntervalMs: 0 });
      const load = cache.getOrSet('k', () => 'mine');
      await settle();
      bus.deliver('c', message);
      expect(await load).toBe('theirs');
      expect(clock.pendingTimers).toBe(0);
      await cache.close();
    }
  });

  it('close() while waiting for another process: the waiter rejects with ClosedError and the wait ends', async () => {
    const clock = new ManualClock();
    const tier = new ScriptedTier();
    tier.lookups = [{ kind: 'busy', retryInMs: 5_000 }];
    const cache = new Cache<string>({ name: 'c', max: 10, ttlMs: 1_000, clock, tier, purgeIntervalMs: 0 });
    let calls = 0;
    const load = cache.getOrSet('k', () => {
      calls++;
      return 'mine';
    });
    const outcome = load.catch((error: unknown) => error);
    await settle();
    await cache.close();
    expect(await outcome).toMatchObject({ message: 'Cache "c" is closed' });
    await settle();
    expect(calls).toBe(0);
    expect(tier.calls).toEqual(['lookup k']);
    expect(clock.pendingTimers).toBe(0);
  });

  it('a failed tier write is still announced, after the failure', async () => {
    const bus = new FakeBus();
    const tier = new ScriptedTier();
    tier.set = () => {
      throw new Error('sync set failure');
    };
    const cache = new Cache<string>({ name: 'c', max: 10, ttlMs: 1_000, clock: new ManualClock(), tier, bus });
    cache.set('a', 'A');
    await settle();
    expect(bus.published).toEqual([['c', { type: 'set', key: 'a' }]]);
    expect(cache.stats().tierErrors).toBe(1);
    tier.deleteTags = async () => {
      throw new Error('tags down');
    };
    await expect(cache.invalidateTags(['t'])).rejects.toThrow('tags down');
    await settle();
    expect(bus.published.at(-1)).toEqual(['c', { type: 'tags', tags: ['t'] }]);
    expect(cache.stats().tierErrors).toBe(2);
    await cache.close();
  });
});
