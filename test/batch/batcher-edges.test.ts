import { Batcher } from 'hotpath/batch';
import { ClosedError, ConfigError, ManualClock } from 'hotpath/core';
import { describe, expect, it } from 'vitest';
import { type Deferred, deferred, settle, tick } from '../helpers/async.js';
import { caught } from '../helpers/errors.js';

/** A loadMany that records its calls and answers `v:<key>`. */
function recorder<K, V = string>(answer: (key: K) => V | Error = (key) => `v:${String(key)}` as V) {
  const calls: K[][] = [];
  const loadMany = async (keys: K[]): Promise<Array<V | Error>> => {
    calls.push([...keys]);
    return keys.map(answer);
  };
  return { calls, loadMany };
}

/** A Map-backed cache that logs every call. */
function spyCache<V>(entries: Array<[string, V | Error]> = []) {
  const store = new Map<string, V | Error>(entries);
  const log: string[] = [];
  return {
    store,
    log,
    cache: {
      get: (key: string) => {
        log.push(`get ${key}`);
        return store.get(key) as V | undefined;
      },
      set: (key: string, value: V) => {
        log.push(`set ${key}`);
        store.set(key, value);
      },
      delete: (key: string) => {
        log.push(`delete ${key}`);
        return store.delete(key);
      },
    },
  };
}

/** A profiler stand-in that keeps every record call as it was made. */
function profilerSpy() {
  const records: unknown[][] = [];
  return {
    records,
    profiler: {
      record: (...args: unknown[]) => {
        records.push(args);
      },
    },
  };
}

describe('Batcher edges: options and arguments', () => {
  it('names the argument and says what is wrong, exactly', async () => {
    const error = caught(() => new Batcher(42 as never));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({
      option: 'Batcher.loadMany',
      message: 'Batcher: loadMany must be a function (keys) => values',
    });
    const loadMany = async (keys: string[]) => keys;
    const full = { get: () => undefined, set: () => {}, delete: () => true };
    for (const missing of ['get', 'set', 'delete'] as const) {
      const cache = { ...full, [missing]: 'nope' };
      const bad = caught(() => new Batcher(loadMany, { cache: cache as never }));
      expect(bad).toBeInstanceOf(ConfigError);
      expect(bad).toMatchObject({
        option: 'Batcher.cache',
        message: 'Batcher.cache must have get, set and delete methods',
      });
    }
    expect(new Batcher(loadMany, { cache: full })).toBeInstanceOf(Batcher);
    expect(new Batcher(loadMany, undefined)).toBeInstanceOf(Batcher);
  });

  it('loadMany(keys) refuses what is not an iterable object with a ConfigError', async () => {
    const batcher = new Batcher(async (keys: string[]) => keys);
    for (const keys of [null, undefined, 'ab', 5, {}]) {
      const error = await batcher.loadMany(keys as never).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect(error).toMatchObject({
        option: 'Batcher.loadMany.keys',
        message: 'Batcher.loadMany: keys must be an array or an iterable',
      });
    }
    expect(await batcher.loadMany(new Set(['x', 'y']))).toEqual([
      { ok: true, value: 'x' },
      { ok: true, value: 'y' },
    ]);
    expect(batcher.stats().loads).toBe(2);
  });

  it('load(undefined) and prime() errors name the argument; the failed call is not counted as a load', async () => {
    const batcher = new Batcher(async (keys: string[]) => keys);
    const error = await batcher.load(undefined as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ option: 'Batcher.load.key', message: 'Batcher.load: key must not be undefined' });
    expect(batcher.stats().loads).toBe(0);
    expect(caught(() => batcher.prime('a', 'b'))).toMatchObject({
      option: 'Batcher.cache',
      message: 'Batcher.prime() needs a cache: pass the `cache` option',
    });
    const cached = new Batcher(async (keys: string[]) => keys, { cache: new Map() });
    const undefinedKey = caught(() => cached.prime(undefined as never, 'x'));
    expect(undefinedKey).toBeInstanceOf(ConfigError);
    expect(undefinedKey).toMatchObject({
      option: 'Batcher.prime.key',
      message: 'Batcher.prime: key must not be undefined',
    });
  });

  it('object and function keys without keyOf cannot be cached (a ConfigError); null can, as "null"', async () => {
    const { store, cache } = spyCache<string>();
    const batcher = new Batcher(async (keys: unknown[]) => keys.map((key) => `v:${String(key)}`), { cache });
    for (const key of [{}, () => 1]) {
      const error = await batcher.load(key).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect(error).toMatchObject({
        option: 'Batcher.keyOf',
        message: 'Batcher: object keys need the keyOf option to be cached',
      });
      expect(caught(() => batcher.prime(key, 'x'))).toMatchObject({ option: 'Batcher.keyOf' });
      expect(caught(() => batcher.clear(key))).toMatchObject({ option: 'Batcher.keyOf' });
    }
    expect(await batcher.load(null)).toBe('v:null');
    expect(store.get('null')).toBe('v:null');
    expect(await batcher.load(7)).toBe('v:7');
    expect(store.get('7')).toBe('v:7');
  });
});

describe('Batcher edges: batching', () => {
  it('sends at most 1000 distinct keys per call by default', async () => {
    const { calls, loadMany } = recorder<number>();
    const batcher = new Batcher(loadMany);
    const keys = Array.from({ length: 1001 }, (_, i) => i);
    await Promise.all(keys.map((key) => batcher.load(key)));
    expect(calls.map((batch) => batch.length)).toEqual([1000, 1]);
  });

  it('counts exactly: a fresh Batcher reads all zeros, pendingKeys counts the loads of the tick (repeats included)', async () => {
    const { loadMany } = recorder<string>();
    const batcher = new Batcher(loadMany);
    expect(batcher.stats()).toEqual({
      loads: 0,
      cacheHits: 0,
      deduplicated: 0,
      batches: 0,
      keys: 0,
      meanBatchSize: 0,
      batchErrors: 0,
      keyErrors: 0,
      pendingKeys: 0,
      inFlightBatches: 0,
    });
    const loads = ['a', 'b', 'a'].map((key) => batcher.load(key));
    expect(batcher.stats().pendingKeys).toBe(3);
    await Promise.all(loads);
    expect(batcher.stats()).toEqual({
      loads: 3,
      cacheHits: 0,
      deduplicated: 1,
      batches: 1,
      keys: 2,
      meanBatchSize: 2,
      batchErrors: 0,
      keyErrors: 0,
      pendingKeys: 0,
      inFlightBatches: 0,
    });
  });

  it('with maxWaitMs, pendingKeys counts the distinct keys of the window and repeats share their slot', async () => {
    const clock = new ManualClock();
    const { calls, loadMany } = recorder<string>();
    const batcher = new Batcher(loadMany, { maxWaitMs: 10, clock });
    const loads = ['a', 'b', 'a', 'c', 'b'].map((key) => batcher.load(key));
    expect(batcher.stats()).toMatchObject({ pendingKeys: 3, deduplicated: 2, loads: 5 });
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(10);
    expect(await Promise.all(loads)).toEqual(['v:a', 'v:b', 'v:a', 'v:c', 'v:b']);
    expect(calls).toEqual([['a', 'b', 'c']]);
    expect(batcher.stats()).toMatchObject({ pendingKeys: 0, batches: 1, keys: 3, meanBatchSize: 3 });
  });

  it('with maxWaitMs, a window filled to maxBatchSize goes at once and the next key opens a new window', async () => {
    const clock = new ManualClock();
    const { calls, loadMany } = recorder<number>();
    const batcher = new Batcher(loadMany, { maxWaitMs: 50, maxBatchSize: 2, clock });
    const first = [batcher.load(1), batcher.load(2)];
    expect(clock.pendingTimers).toBe(0); // the full window's timer is cleared
    expect(await Promise.all(first)).toEqual(['v:1', 'v:2']);
    expect(calls).toEqual([[1, 2]]);
    const third = batcher.load(3);
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(49);
    expect(calls).toHaveLength(1);
    await clock.advance(1);
    expect(await third).toBe('v:3');
    expect(calls).toEqual([[1, 2], [3]]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('loads arriving while a batch flies fill a new window of maxBatchSize distinct keys (indexed path)', async () => {
    const gate = deferred();
    const calls: string[][] = [];
    const batcher = new Batcher<string, string>(
      async (keys) => {
        calls.push([...keys]);
        await gate.promise;
        return keys.map((key) => `v:${key}`);
      },
      { maxBatchSize: 2 },
    );
    const first = batcher.load('a');
    await tick(); // 'a' is in flight
    const later = ['b', 'c', 'b', 'a', 'd', 'e'].map((key) => batcher.load(key));
    expect(batcher.stats()).toMatchObject({ deduplicated: 2 });
    await tick();
    expect(calls).toEqual([['a'], ['b', 'c'], ['d', 'e']]);
    expect(batcher.stats().inFlightBatches).toBe(3);
    gate.resolve();
    expect(await Promise.all([first, ...later])).toEqual(['v:a', 'v:b', 'v:c', 'v:b', 'v:a', 'v:d', 'v:e']);
    expect(batcher.stats()).toMatchObject({ loads: 7, deduplicated: 2, batches: 3, keys: 5, inFlightBatches: 0 });
  });
});

describe('Batcher edges: failures', () => {
  it('a malformed result names what it got: a shorter array, null, or another type', async () => {
    for (const [answer, got] of [
      [['one'], '1 values'],
      [null, 'null'],
      [{ length: 2 }, 'object'],
      ['ab', 'string'],
      [undefined, 'undefined'],
    ] as const) {
      const batcher = new Batcher(async () => answer as never);
      const results = await batcher.loadMany(['a', 'b']);
      const error = (results[0] as { error: Error }).error;
      expect(error).toBeInstanceOf(TypeError);
      expect(error.message).toBe(
        `Batcher: loadMany must return one value per key (an array of 2, in key order), got ${got}`,
      );
      expect(results[1]).toEqual({ ok: false, error });
      expect(batcher.stats()).toMatchObject({ batchErrors: 1, keyErrors: 0 });
    }
    const longer = new Batcher(async (keys: string[]) => [...keys, 'extra']);
    const [result] = await longer.loadMany(['a']);
    expect((result as { error: Error }).error.message).toMatch(/an array of 1, in key order\), got 2 values$/);
  });

  it('records every loadMany call: its duration, and an error flag when it failed', async () => {
    const { records, profiler } = profilerSpy();
    let mode: 'ok' | 'throw' | 'reject' | 'short' = 'ok';
    const batcher = new Batcher(
      (keys: string[]) => {
        if (mode === 'throw') throw new Error('sync');
        if (mode === 'reject') return Promise.reject(new Error('async'));
        if (mode === 'short') return Promise.resolve([]);
        return Promise.resolve(keys);
      },
      { profiler },
    );
    await batcher.load('a');
    for (const next of ['throw', 'reject', 'short'] as const) {
      mode = next;
      await batcher.load('b').catch(() => undefined);
    }
    expect(records.map((args) => [args[0], typeof args[1], args[2]])).toEqual([
      ['batch.loadMany', 'number', undefined],
      ['batch.loadMany', 'number', true],
      ['batch.loadMany', 'number', true],
      ['batch.loadMany', 'number', true],
    ]);
    expect(records[0]).toHaveLength(2);
    for (const args of records) expect(args[1] as number).toBeGreaterThanOrEqual(0);
  });

  it('a failing batch rejects every caller: first loads, repeats in the tick and loads sharing the flight', async () => {
    const gate = deferred();
    const boom = new Error('source down');
    const batcher = new Batcher(async (_keys: string[]) => {
      await gate.promise;
      throw boom;
    });
    const tickLoads = ['a', 'b', 'a', 'b', 'a'].map((key) => batcher.load(key));
    await tick();
    const sharing = [batcher.load('a'), batcher.load('b')];
    gate.resolve();
    const results = await Promise.allSettled([...tickLoads, ...sharing]);
    expect(results).toEqual(Array.from({ length: 7 }, () => ({ status: 'rejected', reason: boom })));
    expect(batcher.stats()).toMatchObject({ batchErrors: 1, deduplicated: 5, batches: 1 });
  });

  it('a per-key Error reaches the loads sharing the key in flight, and is not cached', async () => {
    const gate = deferred();
    const { store, cache } = spyCache<string>();
    const missing = new Error('missing');
    const batcher = new Batcher(
      async (keys: string[]) => {
        await gate.promise;
        return keys.map((key) => (key === 'm' ? missing : `v:${key}`));
      },
      { cache },
    );
    const first = [batcher.load('m'), batcher.load('ok')];
    await tick();
    const sharing = [batcher.load('m'), batcher.load('ok')];
    gate.resolve();
    const results = await Promise.allSettled([...first, ...sharing]);
    expect(results).toEqual([
      { status: 'rejected', reason: missing },
      { status: 'fulfilled', value: 'v:ok' },
      { status: 'rejected', reason: missing },
      { status: 'fulfilled', value: 'v:ok' },
    ]);
    expect([...store.keys()]).toEqual(['ok']);
    expect(batcher.stats()).toMatchObject({ keyErrors: 1, deduplicated: 2 });
  });

  it('a cache whose set throws still answers the callers; a cache whose get throws fails only that load', async () => {
    const writes: string[] = [];
    const cache = {
      get: (key: string) => {
        if (key === 'bad') throw new Error('cache read failed');
        return undefined;
      },
      set: (key: string) => {
        writes.push(key);
        throw new Error('cache full');
      },
      delete: () => true,
    };
    const { calls, loadMany } = recorder<string>();
    const batcher = new Batcher(loadMany, { cache });
    const results = await batcher.loadMany(['a', 'bad', 'b']);
    expect(results).toEqual([
      { ok: true, value: 'v:a' },
      { ok: false, error: new Error('cache read failed') },
      { ok: true, value: 'v:b' },
    ]);
    expect(writes).toEqual(['a', 'b']);
    expect(calls).toEqual([['a', 'b']]);
    expect(batcher.stats()).toMatchObject({ loads: 3, cacheHits: 0 });
  });
});

describe('Batcher edges: cache, keyOf, prime and clear', () => {
  it('keyOf is the cache key for get, set, prime and clear', async () => {
    const { store, log, cache } = spyCache<number>();
    const { calls, loadMany } = recorder<{ id: number }, number>((key) => key.id * 10);
    const batcher = new Batcher(loadMany, { cache, keyOf: (key) => `user:${key.id}` });
    expect(await batcher.load({ id: 1 })).toBe(10);
    expect(batcher.prime({ id: 2 }, 99)).toBe(batcher);
    expect(await batcher.load({ id: 2 })).toBe(99);
    expect(batcher.clear({ id: 1 })).toBe(batcher);
    expect(store.has('user:1')).toBe(false);
    expect(await batcher.load({ id: 1 })).toBe(10);
    expect(log).toEqual([
      'get user:1',
      'set user:1',
      'set user:2',
      'get user:2',
      'delete user:1',
      'get user:1',
      'set user:1',
    ]);
    expect(calls).toEqual([[{ id: 1 }], [{ id: 1 }]]);
    expect(batcher.stats()).toMatchObject({ loads: 3, cacheHits: 1 });
  });

  it('an async cache: a hit counts, a primed Error rejects, a miss is batched', async () => {
    const store = new Map<string, string | Error>([
      ['hit', 'cached'],
      ['err', new Error('known bad')],
    ]);
    const cache = {
      get: async (key: string) => store.get(key),
      set: (key: string, value: string) => void store.set(key, value),
      delete: (key: string) => store.delete(key),
    };
    const { calls, loadMany } = recorder<string>();
    const batcher = new Batcher(loadMany, { cache });
    const results = await batcher.loadMany(['hit', 'err', 'miss']);
    expect(results).toEqual([
      { ok: true, value: 'cached' },
      { ok: false, error: new Error('known bad') },
      { ok: true, value: 'v:miss' },
    ]);
    expect(calls).toEqual([['miss']]);
    expect(batcher.stats()).toMatchObject({ loads: 3, cacheHits: 2, batches: 1 });
  });

  it('a primed Error in a sync cache rejects with that very error and counts as a hit', async () => {
    const error = new Error('gone');
    const { loadMany, calls } = recorder<string>();
    const batcher = new Batcher(loadMany, { cache: new Map() });
    batcher.prime('k', error);
    await expect(batcher.load('k')).rejects.toBe(error);
    expect(calls).toEqual([]);
    expect(batcher.stats()).toMatchObject({ cacheHits: 1, loads: 1 });
  });

  it('clear(key) of a key nothing holds is a no-op that returns the Batcher', async () => {
    const { calls, loadMany } = recorder<string>();
    const batcher = new Batcher(loadMany);
    expect(batcher.clear('never')).toBe(batcher);
    expect(await batcher.load('never')).toBe('v:never');
    expect(batcher.clear('never')).toBe(batcher);
    expect(calls).toEqual([['never']]);
  });

  it('clear(key) with keyOf drops the flight of that id, so the next load of an equal key is sent again', async () => {
    const gate = deferred();
    const calls: Array<Array<{ id: number }>> = [];
    const batcher = new Batcher<{ id: number }, number>(
      async (keys) => {
        calls.push([...keys]);
        await gate.promise;
        return keys.map((key) => key.id);
      },
      { keyOf: (key) => String(key.id) },
    );
    const first = batcher.load({ id: 1 });
    await tick();
    const shared = batcher.load({ id: 1 });
    batcher.clear({ id: 1 });
    const fresh = batcher.load({ id: 1 });
    await tick();
    gate.resolve();
    expect(await Promise.all([first, shared, fresh])).toEqual([1, 1, 1]);
    expect(calls).toEqual([[{ id: 1 }], [{ id: 1 }]]);
    expect(batcher.stats().deduplicated).toBe(1);
  });

  it('clear(key) during a maxWaitMs window keeps the waiting load shared; after the window it is sent again', async () => {
    const clock = new ManualClock();
    const gate = deferred();
    const calls: string[][] = [];
    const batcher = new Batcher<string, string>(
      async (keys) => {
        calls.push([...keys]);
        await gate.promise;
        return keys.map((key) => `v:${key}`);
      },
      { maxWaitMs: 5, clock },
    );
    const a1 = batcher.load('a');
    batcher.clear('a');
    const a2 = batcher.load('a');
    expect(batcher.stats()).toMatchObject({ pendingKeys: 1, deduplicated: 1 });
    await clock.advance(5);
    expect(calls).toEqual([['a']]);
    batcher.clear('a'); // now in flight: dropped
    const a3 = batcher.load('a');
    expect(batcher.stats().pendingKeys).toBe(1);
    await clock.advance(5);
    expect(calls).toEqual([['a'], ['a']]);
    gate.resolve();
    expect(await Promise.all([a1, a2, a3])).toEqual(['v:a', 'v:a', 'v:a']);
  });
});

describe('Batcher edges: close', () => {
  it('close() sends the loads of the current tick, waits for every batch in flight, then refuses loads', async () => {
    const gate = deferred();
    const calls: string[][] = [];
    const batcher = new Batcher<string, string>(async (keys) => {
      calls.push([...keys]);
      await gate.promise;
      return keys.map((key) => `v:${key}`);
    });
    const loads = [batcher.load('a'), batcher.load('b'), batcher.load('a')];
    let isClosed = false;
    const closing = batcher.close().then(() => {
      isClosed = true;
    });
    expect(calls).toEqual([['a', 'b']]); // sent at once, not on the next tick
    expect(batcher.stats()).toMatchObject({ pendingKeys: 0, inFlightBatches: 1 });
    await settle();
    expect(isClosed).toBe(false);
    gate.resolve();
    await closing;
    expect(await Promise.all(loads)).toEqual(['v:a', 'v:b', 'v:a']);
    const error = await batcher.load('c').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClosedError);
    expect((error as Error).message).toBe('Batcher is closed');
    expect(calls).toHaveLength(1);
    expect(batcher.stats().loads).toBe(3);
  });

  it('a load whose async cache read ends after close() is refused with ClosedError', async () => {
    const read = deferred<string | undefined>();
    const cache = { get: () => read.promise, set: () => {}, delete: () => true };
    const { calls, loadMany } = recorder<string>();
    const batcher = new Batcher(loadMany, { cache });
    const load = batcher.load('a');
    await batcher.close();
    read.resolve(undefined);
    await expect(load).rejects.toBeInstanceOf(ClosedError);
    expect(calls).toEqual([]);
  });

  it('await using closes it', async () => {
    const clock = new ManualClock();
    const { calls, loadMany } = recorder<number>();
    let pending: Promise<string> | undefined;
    {
      await using batcher = new Batcher(loadMany, { maxWaitMs: 1000, clock });
      pending = batcher.load(1);
    }
    expect(calls).toEqual([[1]]);
    expect(await pending).toBe('v:1');
    expect(clock.pendingTimers).toBe(0);
  });
});

describe('Batcher edges: the in-flight index across several batches', () => {
  it('when one of two flights settles, its keys load again and the other flight’s keys still share', async () => {
    for (const [first, second] of [
      ['x', 'y'],
      [0.5, 1.5], // keys the index keeps in its Map, not its table
    ] as const) {
      const gates = new Map<unknown, Deferred<void>>([
        [first, deferred()],
        [second, deferred()],
      ]);
      const calls: unknown[][] = [];
      const batcher = new Batcher<unknown, string>(async (keys) => {
        calls.push([...keys]);
        await gates.get(keys[0])?.promise;
        return keys.map((key) => `v:${String(key)}`);
      });
      const a = batcher.load(first);
      await tick(); // first flight
      const b = batcher.load(second);
      await tick(); // second flight
      gates.get(first)?.resolve();
      expect(await a).toBe(`v:${first}`);
      const again = batcher.load(first); // its batch settled: a new call
      const shared = batcher.load(second); // still in flight: shares
      await tick();
      expect(calls).toEqual([[first], [second], [first]]);
      gates.get(second)?.resolve();
      expect(await Promise.all([b, shared])).toEqual([`v:${second}`, `v:${second}`]);
      expect(await again).toBe(`v:${first}`);
      expect(batcher.stats().deduplicated).toBe(1);
    }
  });

  it('with keyOf, loads of equal ids share a window and a flight (object keys)', async () => {
    const clock = new ManualClock();
    const gate = deferred();
    const calls: Array<Array<{ id: number }>> = [];
    const batcher = new Batcher<{ id: number }, number>(
      async (keys) => {
        calls.push([...keys]);
        await gate.promise;
        return keys.map((key) => key.id);
      },
      { keyOf: (key) => String(key.id), maxWaitMs: 5, clock },
    );
    const window = [batcher.load({ id: 1 }), batcher.load({ id: 2 }), batcher.load({ id: 1 })];
    expect(batcher.stats()).toMatchObject({ pendingKeys: 2, deduplicated: 1 });
    await clock.advance(5);
    const flying = batcher.load({ id: 2 });
    expect(batcher.stats()).toMatchObject({ pendingKeys: 0, deduplicated: 2 });
    gate.resolve();
    expect(await Promise.all([...window, flying])).toEqual([1, 2, 1, 2]);
    expect(calls).toEqual([[{ id: 1 }, { id: 2 }]]);

    const burstGate = deferred();
    const burstCalls: Array<Array<{ id: number }>> = [];
    const burst = new Batcher<{ id: number }, number>(
      async (keys) => {
        burstCalls.push([...keys]);
        await burstGate.promise;
        return keys.map((key) => key.id);
      },
      { keyOf: (key) => String(key.id) },
    );
    const first = [burst.load({ id: 1 }), burst.load({ id: 2 })];
    await tick();
    const later = burst.load({ id: 2 });
    await tick();
    burstGate.resolve();
    expect(await Promise.all([...first, later])).toEqual([1, 2, 2]);
    expect(burstCalls).toEqual([[{ id: 1 }, { id: 2 }]]);
  });

  it('clear(key) of a key in flight while a new window is open drops the flight, and the key joins the window', async () => {
    const clock = new ManualClock();
    const gate = deferred();
    const calls: string[][] = [];
    const batcher = new Batcher<string, string>(
      async (keys) => {
        calls.push([...keys]);
        await gate.promise;
        return keys.map((key) => `v:${key}`);
      },
      { maxWaitMs: 5, clock },
    );
    const a = batcher.load('a');
    await clock.advance(5); // 'a' flies
    const b = batcher.load('b'); // a new window is open
    batcher.clear('a');
    const a2 = batcher.load('a');
    await clock.advance(5);
    expect(calls).toEqual([['a'], ['b', 'a']]);
    gate.resolve();
    expect(await Promise.all([a, b, a2])).toEqual(['v:a', 'v:b', 'v:a']);
  });

  it('close() sends a window waiting for the next tick once, not again when the tick comes', async () => {
    const gate = deferred();
    const calls: string[][] = [];
    const batcher = new Batcher<string, string>(async (keys) => {
      calls.push([...keys]);
      await gate.promise;
      return keys;
    });
    const a = batcher.load('a');
    await tick(); // 'a' flies: the next loads wait in an indexed window
    const b = batcher.load('b');
    const closing = batcher.close();
    await tick();
    gate.resolve();
    await closing;
    expect(await Promise.all([a, b])).toEqual(['a', 'b']);
    expect(calls).toEqual([['a'], ['b']]);
    const error = await batcher.load('c').catch((e: unknown) => e);
    expect((error as Error).message).toBe('Batcher is closed');
  });

  it('records the duration of each loadMany call, not a clock reading', async () => {
    const records: unknown[][] = [];
    const profiler = { record: (...args: unknown[]) => void records.push(args) };
    let isFailing = false;
    const batcher = new Batcher(
      async (keys: string[]) => {
        if (isFailing) throw new Error('x');
        return keys;
      },
      { profiler },
    );
    const before = performance.now();
    await batcher.load('a');
    isFailing = true;
    await batcher.load('b').catch(() => undefined);
    const window = performance.now() - before;
    expect(records).toHaveLength(2);
    for (const args of records) {
      expect(args[1] as number).toBeGreaterThanOrEqual(0);
      expect(args[1] as number).toBeLessThanOrEqual(window);
    }
  });
});
