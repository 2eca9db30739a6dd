/**
 * Property tests (fast-check) for `Cache` on a ManualClock: random get / set / getOrSet / delete /
 * invalidateTags / clear / clock advances, checked against a model of what may be served:
 * - the size never exceeds `max`;
 * - one loader per key at a time: a delete, invalidation, clear or set while a load runs detaches that load
 *   (its result is already stale), and only then may the next caller start a fresh one;
 * - a value is served only if it is the key's latest write and still fresh: a deleted, invalidated,
 *   cleared, overwritten or expired value is never served afterwards — including the result of a load
 *   that started before the delete and finished after it (the classic stale resurrection).
 * Seeded; `PROPERTY_RUNS=500` runs a longer search.
 */
import fc from 'fast-check';
import { Cache } from 'hotpath/cache';
import { ManualClock } from 'hotpath/core';
import { describe, expect, it } from 'vitest';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 100);
const KEYS = ['a', 'b', 'c', 'd', 'e'];
const TAGS = ['t1', 't2'];

const keyArb = fc.constantFrom(...KEYS);
const stepArb = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('get' as const), key: keyArb }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('set' as const),
      key: keyArb,
      ttlMs: fc.integer({ min: 1, max: 100 }),
      tags: fc.subarray(TAGS),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('getOrSet' as const),
      key: keyArb,
      tags: fc.subarray(TAGS),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('settle' as const), pick: fc.nat(), fail: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), key: keyArb }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('invalidate' as const), tags: fc.subarray(TAGS, { minLength: 1 }) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('clear' as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 60 }) }) },
);
type Step = typeof stepArb extends fc.Arbitrary<infer S> ? S : never;

interface Servable {
  value: number;
  freshUntil: number;
  tags: readonly string[];
}

interface PendingLoad {
  key: string;
  settle: (value: number | Error) => void;
  value: number;
  tags: readonly string[];
}

async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
  await new Promise<void>((resolve) => setImmediate(resolve));
}

async function runScenario(max: number, ttlMs: number, steps: readonly Step[]): Promise<string[]> {
  const clock = new ManualClock();
  const cache = new Cache<number>({ max, ttlMs, clock, purgeIntervalMs: 0 });
  const problems: string[] = [];
  /** What may be served per key: the latest write, if fresh. A key absent here must not be served. */
  const model = new Map<string, Servable>();
  /** The load new callers of a key join; a write, delete, clear or tag invalidation detaches it (its result is stale). */
  const current = new Map<string, PendingLoad>();
  const pending: PendingLoad[] = [];
  const calls: Promise<unknown>[] = [];
  let nextValue = 1;

  const bump = (key: string) => {
    current.delete(key);
    model.delete(key);
  };
  const checkServed = (key: string, value: number | undefined, via: string) => {
    if (value === undefined) return;
    const allowed = model.get(key);
    if (allowed === undefined) problems.push(`${via}(${key}) served ${value}, but nothing may be served`);
    else if (allowed.value !== value) problems.push(`${via}(${key}) served ${value}, latest is ${allowed.value}`);
    // lru-cache semantics: a value is fresh through `ttlMs` inclusive.
    else if (clock.now() > allowed.freshUntil) problems.push(`${via}(${key}) served expired ${value}`);
  };

  for (const step of steps) {
    switch (step.kind) {
      case 'get':
        checkServed(step.key, cache.get(step.key), 'get');
        break;
      case 'set': {
        const value = nextValue++;
        cache.set(step.key, value, { ttlMs: step.ttlMs, tags: step.tags });
        bump(step.key);
        model.set(step.key, { value, freshUntil: clock.now() + step.ttlMs, tags: step.tags });
        break;
      }
      case 'getOrSet': {
        const key = step.key;
        const servableBefore = model.get(key);
        const call = cache.getOrSet(
          key,
          () => {
            if (current.has(key)) problems.push(`a second loader of ${key} while one is current`);
            const load: PendingLoad = { key, settle: () => {}, value: nextValue++, tags: step.tags };
            current.set(key, load);
            return new Promise<number>((resolve, reject) => {
              load.settle = (result) => {
                const isCurrent = current.get(key) === load;
                if (isCurrent) current.delete(key);
                if (result instanceof Error) {
                  reject(result);
                  return;
                }
                // Served from now on only if nothing wrote the key while the load ran.
                if (isCurrent) model.set(key, { value: result, freshUntil: clock.now() + ttlMs, tags: load.tags });
                resolve(result);
              };
              pending.push(load);
            });
          },
          { tags: step.tags },
        );
        // A hit answers synchronously-resolved: check it against what was servable when asked.
        calls.push(
          call.then(
            (value) => {
              if (servableBefore !== undefined && value !== servableBefore.value && value < servableBefore.value) {
                problems.push(`getOrSet(${key}) answered ${value}, older than servable ${servableBefore.value}`);
              }
            },
            () => {},
          ),
        );
        break;
      }
      case 'settle': {
        const load = pending.splice(step.pick % Math.max(1, pending.length), 1)[0];
        load?.settle(step.fail ? new Error('load failed') : load.value);
        break;
      }
      case 'delete':
        cache.delete(step.key);
        bump(step.key);
        break;
      case 'invalidate':
        await cache.invalidateTags(step.tags);
        for (const [key, servable] of [...model]) {
          if (servable.tags.some((tag) => step.tags.includes(tag))) bump(key);
        }
        // A load in flight carrying an invalidated tag is detached: its result must not be stored either.
        for (const [key, load] of [...current]) {
          if (load.tags.some((tag) => step.tags.includes(tag))) current.delete(key);
        }
        break;
      case 'clear':
        cache.clear();
        for (const key of KEYS) bump(key);
        break;
      case 'advance':
        await clock.advance(step.ms);
        break;
    }
    await flush();
    const size = cache.stats().size;
    if (size > max) problems.push(`size ${size} > max ${max}`);
    for (const key of KEYS) checkServed(key, cache.get(key), 'get');
  }
  for (const load of pending.splice(0)) load.settle(load.value);
  await flush();
  await Promise.all(calls);
  for (const key of KEYS) checkServed(key, cache.get(key), 'get');
  await cache.close();
  return problems;
}

describe('Cache properties (fast-check, ManualClock)', () => {
  it('size, single loader per key, and nothing deleted, invalidated or expired is ever served', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 100 }),
        fc.array(stepArb, { minLength: 5, maxLength: 80, size: 'max' }),
        async (max, ttlMs, steps) => {
          const problems = await runScenario(max, ttlMs, steps);
          expect(problems).toEqual([]);
        },
      ),
      { numRuns: RUNS, seed: 20261201 },
    );
  });

  it('regression: a load that started before delete() does not store its result after it', async () => {
    const problems = await runScenario(4, 50, [
      { kind: 'getOrSet', key: 'a', tags: [] },
      { kind: 'delete', key: 'a' },
      { kind: 'settle', pick: 0, fail: false },
      { kind: 'get', key: 'a' },
    ]);
    expect(problems).toEqual([]);
  });
});
