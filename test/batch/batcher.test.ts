import { Batcher } from 'hotpath/batch';
import { Cache } from 'hotpath/cache';
import { ClosedError, ConfigError, ManualClock } from 'hotpath/core';
import { Profiler } from 'hotpath/profiling';
import { describe, expect, it } from 'vitest';

/** A loadMany that records its calls and answers `v:<key>`. */
function recorder<K, V = string>(answer: (key: K) => V | Error = (key) => `v:${String(key)}` as V) {
  const calls: K[][] = [];
  const loadMany = async (keys: K[]): Promise<Array<V | Error>> => {
    calls.push([...keys]);
    return keys.map(answer);
  };
  return { calls, loadMany };
}

describe('Batcher', () => {
  it('coalesces loads of the same tick into one call, continuations of that tick included', async () => {
    const { calls, loadMany } = recorder<number>();
    const batcher = new Batcher(loadMany);
    const a = batcher.load(1);
    const b = batcher.load(2);
    // Loads made in promise continuations of the same tick still join (as with DataLoader).
    const c = Promise.resolve().then(() => batcher.load(3));
    expect(await Promise.all([a, b, c])).toEqual(['v:1', 'v:2', 'v:3']);
    expect(calls).toEqual([[1, 2, 3]]);
    // A later tick is a new batch.
    expect(await batcher.load(4)).toBe('v:4');
    expect(calls).toEqual([[1, 2, 3], [4]]);
    expect(batcher.stats()).toMatchObject({ loads: 4, batches: 2, keys: 4, meanBatchSize: 2 });
  });

  it('splits a window into batches of at most maxBatchSize keys', async () => {
    const { calls, loadMany } = recorder<number>();
    const batcher = new Batcher(loadMany, { maxBatchSize: 10 });
    const keys = Array.from({ length: 25 }, (_, i) => i);
    const results = await Promise.all(keys.map((key) => batcher.load(key)));
    expect(results).toEqual(keys.map((key) => `v:${key}`));
    expect(calls.map((batch) => batch.length)).toEqual([10, 10, 5]);
    expect(calls.flat()).toEqual(keys);
  });

  it('with maxWaitMs, collects loads over a window on the clock', async () => {
    const clock = new ManualClock();
    const { calls, loadMany } = recorder<string>();
    const batcher = new Batcher(loadMany, { maxWaitMs: 10, clock });
    const first = batcher.load('a');
    await clock.advance(5);
    const second = batcher.load('b');
    await clock.advance(4);
    expect(calls).toEqual([]); // still inside the 10 ms window opened by 'a'
    await clock.advance(1);
    expect(calls).toEqual([['a', 'b']]);
    expect(await Promise.all([first, second])).toEqual(['v:a', 'v:b']);
    const third = batcher.load('c');
    await clock.advance(9);
    expect(calls).toHaveLength(1);
    await clock.advance(1);
    expect(await third).toBe('v:c');
    expect(calls).toEqual([['a', 'b'], ['c']]);
  });

  it('with maxWaitMs, sends a full batch at once without waiting for the window', async () => {
    const clock = new ManualClock();
    const { calls, loadMany } = recorder<number>();
    const batcher = new Batcher(loadMany, { maxWaitMs: 1000, maxBatchSize: 3, clock });
    const loads = [1, 2, 3, 4].map((key) => batcher.load(key));
    await Promise.all(loads.slice(0, 3));
    expect(calls).toEqual([[1, 2, 3]]);
    expect(batcher.stats().pendingKeys).toBe(1);
    await clock.advance(1000);
    expect(await loads[3]).toBe('v:4');
    expect(calls).toEqual([[1, 2, 3], [4]]);
  });

  it('sends a key repeated within a window once and gives every caller its value', async () => {
    const { calls, loadMany } = recorder<string>();
    const batcher = new Batcher(loadMany);
    const results = await Promise.all(['x', 'y', 'x', 'x', 'y'].map((key) => batcher.load(key)));
    expect(results).toEqual(['v:x', 'v:y', 'v:x', 'v:x', 'v:y']);
    expect(calls).toEqual([['x', 'y']]);
    expect(batcher.stats()).toMatchObject({ loads: 5, deduplicated: 3, keys: 2 });
    const numbers = recorder<number>();
    const byNumber = new Batcher(numbers.loadMany);
    expect(await Promise.all([7, 8, 7, -1, 8].map((key) => byNumber.load(key)))).toEqual([
      'v:7',
      'v:8',
      'v:7',
      'v:-1',
      'v:8',
    ]);
    expect(numbers.calls).toEqual([[7, 8, -1]]);
  });

  it('maxBatchSize counts distinct keys: repeats in a window share one slot (a,b,a,a,a,b,c with 3 → one call)', async () => {
    const { calls, loadMany } = recorder<string>();
    const batcher = new Batcher(loadMany, { maxBatchSize: 3 });
    const keys = ['a', 'b', 'a', 'a', 'a', 'b', 'c', 'd', 'c'];
    expect(await Promise.all(keys.map((key) => batcher.load(key)))).toEqual(keys.map((key) => `v:${key}`));
    expect(calls).toEqual([['a', 'b', 'c'], ['d']]);
    expect(batcher.stats()).toMatchObject({ loads: 9, deduplicated: 5, batches: 2, keys: 4 });
  });

  it('a key loaded while its batch is in flight shares that load, with or without a cache', async () => {
    for (const cache of [undefined, new Map<string, string>()]) {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      const calls: string[][] = [];
      const batcher = new Batcher<string, string>(
        async (keys) => {
          calls.push([...keys]);
          await gate;
          return keys.map((key) => `v:${key}`);
        },
        { cache },
      );
      const first = batcher.load('a');
      await new Promise<void>((resolve) => setImmediate(resolve)); // the batch of 'a' is in flight
      expect(batcher.stats().inFlightBatches).toBe(1);
      const again = batcher.load('a');
      const other = batcher.load('b');
      await new Promise<void>((resolve) => setImmediate(resolve));
      expect(calls).toEqual([['a'], ['b']]);
      release();
      expect(await Promise.all([first, again, other])).toEqual(['v:a', 'v:a', 'v:b']);
      expect(batcher.stats().deduplicated).toBe(1);
      // Settled: a later load (no cache) is a new batch.
      await batcher.load('a');
      expect(calls.length).toBe(cache === undefined ? 3 : 2);
    }
  });

  it('a burst of 5,000 keys in flight drains, and the Batcher keeps sharing and loading after it', async () => {
    const { calls, loadMany } = recorder<string>();
    const batcher = new Batcher(loadMany, { maxBatchSize: 500 });
    const keys = Array.from({ length: 5000 }, (_, i) => `k${i}`);
    const first = await Promise.all([...keys, ...keys.slice(0, 100)].map((key) => batcher.load(key)));
    expect(first.slice(-100)).toEqual(keys.slice(0, 100).map((key) => `v:${key}`));
    expect(calls).toHaveLength(10);
    expect(batcher.stats().deduplicated).toBe(100);
    expect(await Promise.all([batcher.load('k1'), batcher.load('k1'), batcher.load('new')])).toEqual([
      'v:k1',
      'v:k1',
      'v:new',
    ]);
    expect(calls.at(-1)).toEqual(['k1', 'new']);
  });

  it('keys of a large burst in flight (several batches) are shared by loads arriving while they fly', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { calls, loadMany } = recorder<string>();
    const batcher = new Batcher<string, string>(
      async (keys) => {
        const values = await loadMany(keys);
        await gate;
        return values;
      },
      { maxBatchSize: 500 },
    );
    const keys = Array.from({ length: 3000 }, (_, i) => `k${i}`);
    const burst = Promise.all(keys.map((key) => batcher.load(key)));
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(batcher.stats().inFlightBatches).toBe(6);
    const late = Promise.all([batcher.load('k2999'), batcher.load('k0'), batcher.load('k1234'), batcher.load('new')]);
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(calls).toHaveLength(7);
    expect(calls.at(-1)).toEqual(['new']);
    release();
    expect(await late).toEqual(['v:k2999', 'v:k0', 'v:k1234', 'v:new']);
    expect((await burst).at(-1)).toBe('v:k2999');
    expect(batcher.stats()).toMatchObject({ deduplicated: 3, keys: 3001 });
  });

  it('clear(key) drops a load in flight, so the next load of the key starts a new batch', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { calls, loadMany } = recorder<string>();
    const batcher = new Batcher<string, string>(async (keys) => {
      const values = await loadMany(keys);
      await gate;
      return values;
    });
    const before = batcher.load('a');
    await new Promise<void>((resolve) => setImmediate(resolve));
    batcher.clear('a');
    const after = batcher.load('a');
    // A key still waiting in the window keeps its share through clear().
    const waiting = batcher.load('w');
    batcher.clear('w');
    const waitingAgain = batcher.load('w');
    release();
    expect(await Promise.all([before, after, waiting, waitingAgain])).toEqual(['v:a', 'v:a', 'v:w', 'v:w']);
    expect(calls).toEqual([['a'], ['a', 'w']]);
  });

  it('prime(key, error) makes load(key) reject with that error, without a call', async () => {
    const { calls, loadMany } = recorder<string>();
    const batcher = new Batcher(loadMany, { cache: new Cache<string>({ max: 10, ttlMs: 60_000 }) });
    const error = new Error('known missing');
    batcher.prime('gone', error);
    await expect(batcher.load('gone')).rejects.toBe(error);
    expect(await batcher.loadMany(['gone', 'ok'])).toEqual([
      { ok: false, error },
      { ok: true, value: 'v:ok' },
    ]);
    expect(calls).toEqual([['ok']]);
  });

  it('de-duplicates object keys through keyOf', async () => {
    const { calls, loadMany } = recorder<{ id: number }, number>((key) => key.id * 10);
    const batcher = new Batcher(loadMany, { keyOf: (key) => String(key.id) });
    const results = await Promise.all([batcher.load({ id: 1 }), batcher.load({ id: 1 }), batcher.load({ id: 2 })]);
    expect(results).toEqual([10, 10, 20]);
    expect(calls).toEqual([[{ id: 1 }, { id: 2 }]]);
  });

  it('a wrong-length result fails every caller of that batch with a clear error, and only them', async () => {
    let call = 0;
    const batcher = new Batcher(
      async (keys: number[]) => {
        call++;
        return call === 1 ? keys.slice(1) : keys;
      },
      { maxBatchSize: 2 },
    );
    const results = await batcher.loadMany([1, 2, 3]);
    expect(results[0]).toMatchObject({ ok: false });
    expect(results[1]).toMatchObject({ ok: false });
    expect(results[2]).toEqual({ ok: true, value: 3 });
    const error = (results[0] as { error: Error }).error;
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toMatch(/one value per key \(an array of 2.*got 1 values/);
    expect(batcher.stats()).toMatchObject({ batchErrors: 1, batches: 2 });
  });

  it('a per-key Error rejects only the callers of that key', async () => {
    const batcher = new Batcher(async (keys: string[]) =>
      keys.map((key) => (key === 'missing' ? new Error(`no user ${key}`) : key.toUpperCase())),
    );
    const a = batcher.load('ann');
    const missing1 = batcher.load('missing');
    const missing2 = batcher.load('missing');
    const b = batcher.load('bob');
    await expect(missing1).rejects.toThrow('no user missing');
    await expect(missing2).rejects.toThrow('no user missing');
    expect(await Promise.all([a, b])).toEqual(['ANN', 'BOB']);
    expect(batcher.stats()).toMatchObject({ keyErrors: 1, batches: 1 });
  });

  it('a loadMany that throws (sync or async) fails its batch; the Batcher stays usable', async () => {
    let mode: 'sync' | 'async' | 'ok' = 'sync';
    const batcher = new Batcher((keys: number[]) => {
      if (mode === 'sync') throw new Error('sync boom');
      if (mode === 'async') return Promise.reject(new Error('async boom'));
      return keys;
    });
    await expect(batcher.load(1)).rejects.toThrow('sync boom');
    mode = 'async';
    await expect(Promise.all([batcher.load(1), batcher.load(2)])).rejects.toThrow('async boom');
    mode = 'ok';
    expect(await batcher.load(1)).toBe(1);
  });

  it('serves cached keys without a call, caches values not errors, and supports prime/clear', async () => {
    const cache = new Cache<string>({ max: 100, ttlMs: 60_000 });
    let fail = true;
    const { calls, loadMany } = recorder<string>((key) => (key === 'flaky' && fail ? new Error('later') : `v:${key}`));
    const batcher = new Batcher(loadMany, { cache });
    expect(await batcher.load('a')).toBe('v:a');
    await expect(batcher.load('flaky')).rejects.toThrow('later');
    expect(await batcher.load('a')).toBe('v:a'); // from the cache
    fail = false;
    expect(await batcher.load('flaky')).toBe('v:flaky'); // the error was not cached
    batcher.prime('p', 'primed');
    expect(await batcher.load('p')).toBe('primed');
    batcher.clear('a');
    expect(await batcher.load('a')).toBe('v:a');
    expect(calls).toEqual([['a'], ['flaky'], ['flaky'], ['a']]);
    expect(batcher.stats()).toMatchObject({ cacheHits: 2, loads: 6 });
  });

  it('works with any get/set/delete cache, async get included', async () => {
    const store = new Map<string, number>([['1', 100]]);
    const cache = {
      get: async (key: string) => store.get(key),
      set: (key: string, value: number) => store.set(key, value),
      delete: (key: string) => store.delete(key),
    };
    const { calls, loadMany } = recorder<number, number>((key) => key);
    const batcher = new Batcher(loadMany, { cache });
    expect(await Promise.all([batcher.load(1), batcher.load(2), batcher.load(3)])).toEqual([100, 2, 3]);
    expect(calls).toEqual([[2, 3]]);
    expect(store.get('2')).toBe(2);
  });

  it('rejects bad options and bad input with typed errors, leaving the Batcher usable', async () => {
    const loadMany = async (keys: number[]) => keys;
    expect(() => new Batcher('x' as never)).toThrow(ConfigError);
    expect(() => new Batcher(loadMany, { maxBatchSize: 0 })).toThrow(/Batcher.maxBatchSize/);
    expect(() => new Batcher(loadMany, { maxWaitMs: -1 })).toThrow(/Batcher.maxWaitMs/);
    expect(() => new Batcher(loadMany, { cache: {} as never })).toThrow(/Batcher.cache/);
    expect(() => new Batcher(loadMany, { maxbatchsize: 3 } as never)).toThrow(/Batcher.maxbatchsize/);
    const batcher = new Batcher(loadMany);
    await expect(batcher.load(undefined as never)).rejects.toBeInstanceOf(ConfigError);
    expect(() => batcher.prime(1, 1)).toThrow(ConfigError);
    await expect(batcher.loadMany(5 as never)).rejects.toBeInstanceOf(ConfigError);
    const objects = new Batcher(async (keys: object[]) => keys, { cache: new Map() });
    await expect(objects.load({})).rejects.toThrow(/keyOf/);
    const picky = new Batcher(async (keys: string[]) => keys, {
      keyOf: (key) => {
        if (key === 'bad') throw new Error('unkeyable');
        return key;
      },
    });
    await expect(picky.load('bad')).rejects.toThrow('unkeyable');
    expect(await picky.load('good')).toBe('good');
    expect(await batcher.load(7)).toBe(7);
  });

  it('a load can stop waiting on its signal while the batch still serves the others', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const batcher = new Batcher(async (keys: number[]) => {
      await gate;
      return keys;
    });
    const controller = new AbortController();
    const waiting = batcher.load(1, { signal: controller.signal });
    const other = batcher.load(2);
    controller.abort(new Error('gave up'));
    await expect(waiting).rejects.toThrow('gave up');
    release();
    expect(await other).toBe(2);
  });

  it('records loadMany durations and closes by flushing the pending window', async () => {
    const profiler = new Profiler();
    const clock = new ManualClock();
    const { calls, loadMany } = recorder<number>();
    const batcher = new Batcher(loadMany, { maxWaitMs: 5000, clock, profiler });
    const pending = batcher.load(1);
    await batcher.close(); // does not wait for the window
    expect(await pending).toBe('v:1');
    expect(calls).toEqual([[1]]);
    await batcher.close();
    await expect(batcher.load(2)).rejects.toBeInstanceOf(ClosedError);
    expect(profiler.stats('batch.loadMany')).toMatchObject({ count: 1, errors: 0 });
    expect(clock.pendingTimers).toBe(0);
    profiler.close();
  });
});
