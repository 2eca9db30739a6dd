/**
 * DataLoader's behavioural test cases (graphql/dataloader, src/__tests__/dataloader.test.js and
 * abuse.test.js, MIT) ported to `Batcher`, so its contract is checked on every run. Cases that test
 * what Batcher deliberately does differently are ported with the difference asserted and named
 * (see docs/batch.md, "Differences from DataLoader"); cases about options Batcher does not have
 * (`batch: false`, `batchScheduleFn`, `name`, `clearAll`, `this` in the batch function) are left out.
 */
import { Batcher } from 'hotpath/batch';
import { ConfigError } from 'hotpath/core';
import { describe, expect, it } from 'vitest';

function idLoader<K>(options: ConstructorParameters<typeof Batcher<K, K>>[1] = {}) {
  const loadCalls: K[][] = [];
  const loader = new Batcher<K, K>(async (keys) => {
    loadCalls.push([...keys]);
    return keys;
  }, options);
  return [loader, loadCalls] as const;
}

const nextMacroTask = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('DataLoader port: primary API', () => {
  it('builds a really really simple data loader', async () => {
    const loader = new Batcher<number, number>(async (keys) => keys);
    expect(loader.load(1)).toBeInstanceOf(Promise);
    expect(await loader.load(1)).toBe(1);
  });

  it('supports loading multiple keys in one call (difference: per-key result objects)', async () => {
    const loader = new Batcher<number, number>(async (keys) => keys);
    expect(await loader.loadMany([1, 2])).toEqual([
      { ok: true, value: 1 },
      { ok: true, value: 2 },
    ]);
    expect(await loader.loadMany([])).toEqual([]);
  });

  it('supports loading multiple keys in one call with errors', async () => {
    const loader = new Batcher<string, string>(async (keys) =>
      keys.map((key) => (key === 'bad' ? new Error('Bad Key') : key)),
    );
    const values = await loader.loadMany(['a', 'b', 'bad']);
    expect(values.slice(0, 2)).toEqual([
      { ok: true, value: 'a' },
      { ok: true, value: 'b' },
    ]);
    expect(values[2]).toEqual({ ok: false, error: new Error('Bad Key') });
  });

  it('batches multiple requests', async () => {
    const [loader, loadCalls] = idLoader<number>();
    expect(await Promise.all([loader.load(1), loader.load(2)])).toEqual([1, 2]);
    expect(loadCalls).toEqual([[1, 2]]);
  });

  it('batches multiple requests with max batch sizes', async () => {
    const [loader, loadCalls] = idLoader<number>({ maxBatchSize: 2 });
    expect(await Promise.all([loader.load(1), loader.load(2), loader.load(3)])).toEqual([1, 2, 3]);
    expect(loadCalls).toEqual([[1, 2], [3]]);
  });

  it('applies maxBatchSize correctly with duplicate keys', async () => {
    // DataLoader's case uses a 100 ms batchScheduleFn; maxWaitMs is Batcher's window.
    for (const maxWaitMs of [0, 20]) {
      const [loader, loadCalls] = idLoader<string>({ maxBatchSize: 3, maxWaitMs });
      const values = ['a', 'b', 'a', 'a', 'a', 'b', 'c'];
      expect(await Promise.all(values.map((value) => loader.load(value)))).toEqual(values);
      expect(loadCalls).toEqual([['a', 'b', 'c']]);
    }
  });

  it('batches cached requests', async () => {
    const loadCalls: number[][] = [];
    let resolveBatch = () => {};
    const loader = new Batcher<number, number>(
      (keys) => {
        loadCalls.push([...keys]);
        return new Promise((resolve) => {
          resolveBatch = () => resolve(keys);
        });
      },
      { cache: new Map() },
    );
    loader.prime(1, 1);
    let isResolved1 = false;
    let isResolved2 = false;
    const promise1 = loader.load(1).then((value) => {
      isResolved1 = true;
      return value;
    });
    const promise2 = loader.load(2).then((value) => {
      isResolved2 = true;
      return value;
    });
    await nextMacroTask();
    // Difference: a cached key resolves at once; DataLoader holds it back until its batch resolves.
    expect(isResolved1).toBe(true);
    expect(isResolved2).toBe(false);
    resolveBatch();
    await nextMacroTask();
    expect(isResolved2).toBe(true);
    expect(await Promise.all([promise1, promise2])).toEqual([1, 2]);
    expect(loadCalls).toEqual([[2]]);
  });

  it('max batch size respects cached results', async () => {
    const loadCalls: number[][] = [];
    const loader = new Batcher<number, number>(
      async (keys) => {
        loadCalls.push([...keys]);
        return keys;
      },
      { maxBatchSize: 1, cache: new Map() },
    );
    loader.prime(1, 1);
    expect(await Promise.all([loader.load(1), loader.load(2)])).toEqual([1, 2]);
    expect(loadCalls).toEqual([[2]]);
  });

  it('coalesces identical requests', async () => {
    const [loader, loadCalls] = idLoader<number>();
    const promise1a = loader.load(1);
    const promise1b = loader.load(1);
    expect(await Promise.all([promise1a, promise1b])).toEqual([1, 1]);
    expect(loadCalls).toEqual([[1]]);
  });

  it('coalesces identical requests across sized batches', async () => {
    const [loader, loadCalls] = idLoader<number>({ maxBatchSize: 2 });
    const values = await Promise.all([loader.load(1), loader.load(2), loader.load(1), loader.load(3)]);
    expect(values).toEqual([1, 2, 1, 3]);
    expect(loadCalls).toEqual([[1, 2], [3]]);
  });

  it('caches repeated requests (with a cache; difference: without one, only loads in flight are shared)', async () => {
    const [loader, loadCalls] = idLoader<string>({ cache: new Map() });
    expect(await Promise.all([loader.load('A'), loader.load('B')])).toEqual(['A', 'B']);
    expect(loadCalls).toEqual([['A', 'B']]);
    expect(await Promise.all([loader.load('A'), loader.load('C')])).toEqual(['A', 'C']);
    expect(loadCalls).toEqual([['A', 'B'], ['C']]);
    expect(await Promise.all([loader.load('A'), loader.load('B'), loader.load('C')])).toEqual(['A', 'B', 'C']);
    expect(loadCalls).toEqual([['A', 'B'], ['C']]);

    const [uncached, uncachedCalls] = idLoader<string>();
    await uncached.load('A');
    await uncached.load('A');
    expect(uncachedCalls).toEqual([['A'], ['A']]);
  });

  it('clears single value in loader', async () => {
    const [loader, loadCalls] = idLoader<string>({ cache: new Map() });
    expect(await Promise.all([loader.load('A'), loader.load('B')])).toEqual(['A', 'B']);
    expect(loader.clear('A')).toBe(loader);
    expect(await Promise.all([loader.load('A'), loader.load('B')])).toEqual(['A', 'B']);
    expect(loadCalls).toEqual([['A', 'B'], ['A']]);
  });

  it('allows priming the cache', async () => {
    const [loader, loadCalls] = idLoader<string>({ cache: new Map() });
    expect(loader.prime('A', 'A')).toBe(loader);
    expect(await Promise.all([loader.load('A'), loader.load('B')])).toEqual(['A', 'B']);
    expect(loadCalls).toEqual([['B']]);
  });

  it('allows forcefully priming the cache (difference: prime always overwrites, DataLoader keeps the old value)', async () => {
    const [loader, loadCalls] = idLoader<string>({ cache: new Map() });
    loader.prime('A', 'X');
    expect(await loader.load('A')).toBe('X');
    loader.prime('A', 'Y');
    expect(await loader.load('A')).toBe('Y');
    loader.clear('A').prime('A', 'Z');
    expect(await loader.load('A')).toBe('Z');
    expect(loadCalls).toEqual([]);
  });
});

describe('DataLoader port: represents errors', () => {
  it('resolves to error to indicate failure', async () => {
    const loadCalls: number[][] = [];
    const evenLoader = new Batcher<number, number>(async (keys) => {
      loadCalls.push([...keys]);
      return keys.map((key) => (key % 2 === 0 ? key : new Error(`Odd: ${key}`)));
    });
    await expect(evenLoader.load(1)).rejects.toThrow('Odd: 1');
    expect(await evenLoader.load(2)).toBe(2);
    expect(loadCalls).toEqual([[1], [2]]);
  });

  it('can represent failures and successes simultaneously', async () => {
    const loadCalls: number[][] = [];
    const evenLoader = new Batcher<number, number>(async (keys) => {
      loadCalls.push([...keys]);
      return keys.map((key) => (key % 2 === 0 ? key : new Error(`Odd: ${key}`)));
    });
    const promise1 = evenLoader.load(1);
    const promise2 = evenLoader.load(2);
    await expect(promise1).rejects.toThrow('Odd: 1');
    expect(await promise2).toBe(2);
    expect(loadCalls).toEqual([[1, 2]]);
  });

  it('does not cache failed fetches (difference: DataLoader caches the rejection)', async () => {
    const loadCalls: number[][] = [];
    const errorLoader = new Batcher<number, number>(
      async (keys) => {
        loadCalls.push([...keys]);
        return keys.map((key) => new Error(`Error: ${key}`));
      },
      { cache: new Map() },
    );
    await expect(errorLoader.load(1)).rejects.toThrow('Error: 1');
    await expect(errorLoader.load(1)).rejects.toThrow('Error: 1');
    expect(loadCalls).toEqual([[1], [1]]);
  });

  it('handles priming the cache with an error', async () => {
    const [loader, loadCalls] = idLoader<number>({ cache: new Map() });
    loader.prime(1, new Error('Error: 1'));
    await nextMacroTask();
    const error = await loader.load(1).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toBe('Error: 1');
    expect(loadCalls).toEqual([]);
  });

  it('can clear values from cache after errors', async () => {
    const loadCalls: number[][] = [];
    const errorLoader = new Batcher<number, number>(
      async (keys) => {
        loadCalls.push([...keys]);
        return keys.map((key) => new Error(`Error: ${key}`));
      },
      { cache: new Map() },
    );
    for (let i = 0; i < 2; i++) {
      await expect(
        errorLoader.load(1).catch((error: unknown) => {
          errorLoader.clear(1);
          throw error;
        }),
      ).rejects.toThrow('Error: 1');
    }
    expect(loadCalls).toEqual([[1], [1]]);
  });

  it('propagates error to all loads', async () => {
    const loadCalls: number[][] = [];
    const failLoader = new Batcher<number, number>((keys) => {
      loadCalls.push([...keys]);
      return Promise.reject(new Error('I am a terrible loader'));
    });
    const promise1 = failLoader.load(1);
    const promise2 = failLoader.load(2);
    const errorA = await promise1.catch((error: unknown) => error);
    const errorB = await promise2.catch((error: unknown) => error);
    expect((errorA as Error).message).toBe('I am a terrible loader');
    expect(errorB).toBe(errorA);
    expect(loadCalls).toEqual([[1, 2]]);
  });
});

describe('DataLoader port: keys', () => {
  it('accepts objects as keys (by identity; keyOf is needed only for the cache)', async () => {
    const [loader, loadCalls] = idLoader<object>();
    const keyA = {};
    const keyB = {};
    const [valueA, valueB] = await Promise.all([loader.load(keyA), loader.load(keyB), loader.load(keyA)]);
    expect(valueA).toBe(keyA);
    expect(valueB).toBe(keyB);
    expect(loadCalls).toHaveLength(1);
    expect(loadCalls[0]).toHaveLength(2);
    expect(loadCalls[0]?.[0]).toBe(keyA);
    expect(loadCalls[0]?.[1]).toBe(keyB);
  });

  it('accepts objects with a complex key (keyOf = cacheKeyFn)', async () => {
    const keyOf = (key: { id: number }) => `id:${key.id}`;
    const [loader, loadCalls] = idLoader<{ id: number }>({ keyOf, cache: new Map() });
    const key1 = { id: 123 };
    const key2 = { id: 123 };
    expect(await loader.load(key1)).toBe(key1);
    expect(await loader.load(key2)).toBe(key1);
    loader.clear(key2);
    expect(await loader.load(key1)).toBe(key1);
    expect(loadCalls).toEqual([[key1], [key1]]);
  });
});

describe('DataLoader port: job queue ordering', () => {
  it('batches loads occurring within promises', async () => {
    const [loader, loadCalls] = idLoader<string>();
    await Promise.all([
      loader.load('A'),
      Promise.resolve()
        .then(() => Promise.resolve())
        .then(() => {
          void loader.load('B');
          Promise.resolve()
            .then(() => Promise.resolve())
            .then(() => {
              void loader.load('C');
              Promise.resolve()
                .then(() => Promise.resolve())
                .then(() => {
                  void loader.load('D');
                });
            });
        }),
    ]);
    expect(loadCalls).toEqual([['A', 'B', 'C', 'D']]);
  });

  it('can call a loader from a loader', async () => {
    const deepLoadCalls: string[][][] = [];
    const deepLoader = new Batcher<string[], string[]>(async (keys) => {
      deepLoadCalls.push(keys);
      return keys;
    });
    const aLoadCalls: string[][] = [];
    const aLoader = new Batcher<string, string>((keys) => {
      aLoadCalls.push([...keys]);
      return deepLoader.load(keys);
    });
    const bLoadCalls: string[][] = [];
    const bLoader = new Batcher<string, string>((keys) => {
      bLoadCalls.push([...keys]);
      return deepLoader.load(keys);
    });
    const values = await Promise.all([aLoader.load('A1'), bLoader.load('B1'), aLoader.load('A2'), bLoader.load('B2')]);
    expect(values).toEqual(['A1', 'B1', 'A2', 'B2']);
    expect(aLoadCalls).toEqual([['A1', 'A2']]);
    expect(bLoadCalls).toEqual([['B1', 'B2']]);
    expect(deepLoadCalls).toEqual([
      [
        ['A1', 'A2'],
        ['B1', 'B2'],
      ],
    ]);
  });
});

describe('DataLoader port: abuse', () => {
  it('loader creation requires a function', () => {
    expect(() => new Batcher(undefined as never)).toThrow(ConfigError);
    expect(() => new Batcher({} as never)).toThrow(ConfigError);
  });

  it('load function requires a key', async () => {
    const [loader] = idLoader<number>();
    await expect(loader.load(undefined as never)).rejects.toBeInstanceOf(ConfigError);
    // null is a key like any other (as in DataLoader).
    expect(await loader.load(null as never)).toBeNull();
  });

  it('loadMany requires a list of keys', async () => {
    const [loader] = idLoader<number>();
    await expect(loader.loadMany(undefined as never)).rejects.toBeInstanceOf(ConfigError);
    await expect(loader.loadMany(1 as never)).rejects.toBeInstanceOf(ConfigError);
    expect(await loader.loadMany([])).toEqual([]);
  });

  it('batch function must return an array (sync or async) of the right length', async () => {
    const bad = [
      () => null,
      () => {
        throw new Error('sync boom');
      },
      () => 'not an array',
      async () => null,
      async (keys: number[]) => keys.slice(1),
    ];
    for (const loadMany of bad) {
      const loader = new Batcher<number, number>(loadMany as never);
      await expect(loader.load(1)).rejects.toThrow();
    }
    // Difference: a plain (not promised) array is accepted.
    expect(await new Batcher<number, number>((keys) => keys).load(1)).toBe(1);
  });

  it('cache must have get, set and delete; maxBatchSize a positive integer; keyOf a function', () => {
    const loadMany = async (keys: number[]) => keys;
    expect(() => new Batcher(loadMany, { cache: {} as never })).toThrow(ConfigError);
    expect(() => new Batcher(loadMany, { maxBatchSize: null as never })).toThrow(ConfigError);
    expect(() => new Batcher(loadMany, { maxBatchSize: 0 })).toThrow(ConfigError);
    expect(() => new Batcher(loadMany, { keyOf: null as never })).toThrow(ConfigError);
  });
});
