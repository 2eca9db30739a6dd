import { Cache } from 'hotpath/cache';
import { ManualClock, TimeoutError } from 'hotpath/core';
import { describe, expect, it } from 'vitest';
import { deferred } from '../helpers/async.js';

/** Lets queued promise callbacks run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

describe('getOrSet stampede safety', () => {
  it('10,000 concurrent callers of one cold key share exactly one loader call', async () => {
    const cache = new Cache<string>({ max: 100, ttlMs: 60_000, clock: new ManualClock() });
    const gate = deferred<string>();
    let calls = 0;
    const loader = () => {
      calls++;
      return gate.promise;
    };
    const pending = Array.from({ length: 10_000 }, () => cache.getOrSet('hot', loader));
    expect(calls).toBe(1);
    expect(cache.stats().inflight).toBe(1);
    gate.resolve('value');
    const values = await Promise.all(pending);
    expect(values.every((value) => value === 'value')).toBe(true);
    expect(calls).toBe(1);
    expect(await cache.getOrSet('hot', loader)).toBe('value');
    expect(calls).toBe(1);
    expect(cache.stats()).toMatchObject({ loads: 1, misses: 10_000, hits: 1, inflight: 0 });
    await cache.close();
  });

  it('100 keys x 100 callers run exactly 100 loader calls, each key getting its own value', async () => {
    const cache = new Cache<string>({ max: 1_000, ttlMs: 60_000, clock: new ManualClock() });
    const callsByKey = new Map<string, number>();
    const loaderFor = (key: string) => async () => {
      callsByKey.set(key, (callsByKey.get(key) ?? 0) + 1);
      await settle();
      return `v:${key}`;
    };
    const pending: Array<Promise<[string, string]>> = [];
    for (let caller = 0; caller < 100; caller++) {
      for (let k = 0; k < 100; k++) {
        const key = `key${k}`;
        pending.push(cache.getOrSet(key, loaderFor(key)).then((value) => [key, value]));
      }
    }
    const results = await Promise.all(pending);
    expect(results.every(([key, value]) => value === `v:${key}`)).toBe(true);
    expect(callsByKey.size).toBe(100);
    expect([...callsByKey.values()].every((n) => n === 1)).toBe(true);
    expect(cache.stats()).toMatchObject({ loads: 100, misses: 10_000, size: 100 });
    await cache.close();
  });

  it('a loader error reaches every waiter as the same error, is not cached, and the next call retries', async () => {
    const cache = new Cache<number>({ max: 10, ttlMs: 60_000, clock: new ManualClock() });
    const failure = new Error('database down');
    let calls = 0;
    const failing = async () => {
      calls++;
      await settle();
      throw failure;
    };
    const outcomes = await Promise.allSettled(Array.from({ length: 100 }, () => cache.getOrSet('k', failing)));
    expect(calls).toBe(1);
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      expect((outcome as PromiseRejectedResult).reason).toBe(failure);
    }
    expect(await cache.getOrSet('k', () => 7)).toBe(7);
    expect(cache.stats()).toMatchObject({ loads: 2, loadErrors: 1, size: 1 });
    // A synchronous throw is shared the same way.
    const sync = () => {
      throw failure;
    };
    await expect(cache.getOrSet('other', sync)).rejects.toBe(failure);
    await cache.close();
  });

  it('errorTtlMs remembers a failure so callers fail fast until it expires', async () => {
    const clock = new ManualClock();
    const cache = new Cache<number>({ max: 10, ttlMs: 60_000, errorTtlMs: 1_000, clock });
    const failure = new Error('upstream 503');
    let calls = 0;
    const loader = () => {
      calls++;
      if (calls === 1) throw failure;
      return 42;
    };
    await expect(cache.getOrSet('k', loader)).rejects.toBe(failure);
    await expect(cache.getOrSet('k', loader)).rejects.toBe(failure);
    expect(calls).toBe(1);
    await clock.advance(1_001);
    expect(await cache.getOrSet('k', loader)).toBe(42);
    expect(calls).toBe(2);
    // set() clears a remembered error at once.
    const other = new Cache<number>({ max: 10, ttlMs: 60_000, errorTtlMs: 1_000, clock });
    await expect(other.getOrSet('k', () => Promise.reject(failure))).rejects.toBe(failure);
    other.set('k', 5);
    expect(await other.getOrSet('k', () => 6)).toBe(5);
    await cache.close();
    await other.close();
  });

  it("a caller's abort rejects only its own wait with the signal's reason", async () => {
    const cache = new Cache<string>({ max: 10, ttlMs: 60_000, clock: new ManualClock() });
    const gate = deferred<string>();
    let loaderSignal: AbortSignal | undefined;
    let calls = 0;
    const loader = ({ signal }: { signal: AbortSignal }) => {
      calls++;
      loaderSignal = signal;
      return gate.promise;
    };
    const controller = new AbortController();
    const reason = new Error('client went away');
    const aborted = cache.getOrSet('k', loader, { signal: controller.signal });
    const others = [cache.getOrSet('k', loader), cache.getOrSet('k', loader, { signal: new AbortController().signal })];
    controller.abort(reason);
    await expect(aborted).rejects.toBe(reason);
    expect(loaderSignal?.aborted).toBe(false);
    gate.resolve('shared');
    expect(await Promise.all(others)).toEqual(['shared', 'shared']);
    expect(calls).toBe(1);
    expect(cache.get('k')).toBe('shared');
    // An already-aborted signal rejects without starting a load.
    await expect(cache.getOrSet('fresh', loader, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(calls).toBe(1);
    await cache.close();
  });

  it('when every waiter has aborted, a later loader failure is counted, not an unhandled rejection', async () => {
    const cache = new Cache<string>({ max: 10, ttlMs: 60_000, clock: new ManualClock() });
    const gate = deferred<string>();
    const controller = new AbortController();
    const waiting = cache.getOrSet('k', () => gate.promise, { signal: controller.signal });
    controller.abort(new Error('gone'));
    await expect(waiting).rejects.toThrow('gone');
    gate.reject(new Error('late failure'));
    await settle();
    expect(cache.stats()).toMatchObject({ loadErrors: 1, misses: 1, inflight: 0 });
    await cache.close();
  });

  it('a load still in flight when its key is deleted answers its waiters but is not stored', async () => {
    const cache = new Cache<string>({ max: 10, ttlMs: 60_000, clock: new ManualClock() });
    const gate = deferred<string>();
    const waiting = cache.getOrSet('k', () => gate.promise);
    cache.delete('k');
    gate.resolve('old data');
    expect(await waiting).toBe('old data');
    expect(cache.has('k')).toBe(false);
    // A set() while loading wins over the load's older result.
    const gate2 = deferred<string>();
    const second = cache.getOrSet('k', () => gate2.promise);
    cache.set('k', 'newer');
    gate2.resolve('older');
    expect(await second).toBe('older');
    expect(cache.get('k')).toBe('newer');
    await cache.close();
  });
});

describe('stale-while-revalidate', () => {
  it('serves the stale value at once to 1,000 callers while exactly one refresh runs', async () => {
    const clock = new ManualClock();
    const cache = new Cache<string>({ max: 10, ttlMs: 1_000, staleWhileRevalidateMs: 5_000, clock });
    await cache.getOrSet('quote', () => 'v1');
    await clock.advance(1_500);
    const gate = deferred<string>();
    let calls = 0;
    let seenStale: string | undefined;
    const refresh = ({ staleValue }: { staleValue: string | undefined }) => {
      calls++;
      seenStale = staleValue;
      return gate.promise;
    };
    // The refresh never resolves before these do: they must not wait for it.
    const values = await Promise.all(Array.from({ length: 1_000 }, () => cache.getOrSet('quote', refresh)));
    expect(values.every((value) => value === 'v1')).toBe(true);
    expect(calls).toBe(1);
    expect(seenStale).toBe('v1');
    expect(cache.stats()).toMatchObject({ staleHits: 1_000, inflight: 1 });
    gate.resolve('v2');
    await settle();
    expect(await cache.getOrSet('quote', refresh)).toBe('v2');
    expect(calls).toBe(1);
    await cache.close();
  });

  it('keeps serving stale when the refresh fails (counted and logged), and waits once the window has passed', async () => {
    const clock = new ManualClock();
    const warnings: string[] = [];
    const logger = {
      debug() {},
      info() {},
      warn: (_obj: object, msg?: string) => warnings.push(msg ?? ''),
      error() {},
    };
    const cache = new Cache<string>({ max: 10, ttlMs: 1_000, staleWhileRevalidateMs: 2_000, clock, logger });
    await cache.getOrSet('k', () => 'v1');
    await clock.advance(1_500);
    expect(await cache.getOrSet('k', () => Promise.reject(new Error('refresh failed')))).toBe('v1');
    await settle();
    expect(cache.stats()).toMatchObject({ loadErrors: 1, staleHits: 1 });
    expect(warnings).toContain('cache background refresh failed');
    await clock.advance(2_000); // 3.5 s after write: outside the window
    const gate = deferred<string>();
    const waiting = cache.getOrSet('k', () => gate.promise);
    let isDone = false;
    void waiting.then(() => {
      isDone = true;
    });
    await settle();
    expect(isDone).toBe(false);
    gate.resolve('v3');
    expect(await waiting).toBe('v3');
    await cache.close();
  });
});

describe('grace', () => {
  it('serves the stale value when the loader throws within graceMs, and the error after it', async () => {
    const clock = new ManualClock();
    const cache = new Cache<string>({ max: 10, ttlMs: 1_000, graceMs: 5_000, clock, purgeIntervalMs: 0 });
    await cache.getOrSet('k', () => 'good');
    await clock.advance(2_000);
    const failure = new Error('db down');
    const failing = () => Promise.reject(failure);
    const served = await Promise.all(Array.from({ length: 50 }, () => cache.getOrSet('k', failing)));
    expect(served.every((value) => value === 'good')).toBe(true);
    expect(cache.stats()).toMatchObject({ staleHits: 50, misses: 1, loads: 2, loadErrors: 1 });
    await clock.advance(4_001); // 6,001 ms after write, 5,001 after expiry
    await expect(cache.getOrSet('k', failing)).rejects.toBe(failure);
    await cache.close();
  });

  it('serves the stale value when the loader hangs past loadTimeoutMs, then stores the late result', async () => {
    const clock = new ManualClock();
    const cache = new Cache<string>({ max: 10, ttlMs: 1_000, graceMs: 5_000, loadTimeoutMs: 100, clock });
    await cache.getOrSet('k', () => 'v1');
    await clock.advance(1_500);
    const gate = deferred<string>();
    let calls = 0;
    const slow = () => {
      calls++;
      return gate.promise;
    };
    const waiting = cache.getOrSet('k', slow);
    await clock.advance(100);
    expect(await waiting).toBe('v1');
    // While the slow load runs, later callers get the grace value at once without a second load.
    expect(await cache.getOrSet('k', slow)).toBe('v1');
    expect(calls).toBe(1);
    gate.resolve('v2');
    await settle();
    expect(cache.get('k')).toBe('v2');
    expect(cache.stats()).toMatchObject({ staleHits: 2, loads: 2, loadErrors: 0 });
    await cache.close();
  });

  it('aborts a loader still hanging when grace ends, and surfaces TimeoutError without a stale value', async () => {
    const clock = new ManualClock();
    const cache = new Cache<string>({
      max: 10,
      ttlMs: 1_000,
      graceMs: 2_000,
      loadTimeoutMs: 100,
      clock,
      purgeIntervalMs: 0,
    });
    await cache.getOrSet('k', () => 'v1');
    await clock.advance(1_001);
    let signal: AbortSignal | undefined;
    const hang = (context: { signal: AbortSignal }) => {
      signal = context.signal;
      return new Promise<string>(() => {});
    };
    const first = cache.getOrSet('k', hang);
    await clock.advance(100);
    expect(await first).toBe('v1');
    await clock.advance(1_899); // grace ends (2,000 ms after expiry)
    expect(signal?.aborted).toBe(true);
    expect(signal?.reason).toBeInstanceOf(TimeoutError);
    const late = cache.getOrSet('k', hang).catch((error: unknown) => error);
    await clock.advance(100);
    const error = await late;
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as TimeoutError).timeoutMs).toBe(100);
    expect(cache.stats()).toMatchObject({ loadErrors: 2, inflight: 0 });
    await cache.close();
  });

  it('within grace, a remembered error (errorTtlMs) serves the stale value and the loader sees staleValue', async () => {
    const clock = new ManualClock();
    const cache = new Cache<string>({ max: 10, ttlMs: 1_000, graceMs: 10_000, errorTtlMs: 5_000, clock });
    await cache.getOrSet('k', () => 'v1');
    await clock.advance(1_001);
    const seen: Array<string | undefined> = [];
    let calls = 0;
    const failing = ({ staleValue }: { staleValue: string | undefined }) => {
      calls++;
      seen.push(staleValue);
      throw new Error('down');
    };
    expect(await cache.getOrSet('k', failing)).toBe('v1');
    expect(await cache.getOrSet('k', failing)).toBe('v1'); // error remembered: no second call
    expect(calls).toBe(1);
    expect(seen).toEqual(['v1']);
    await clock.advance(5_001);
    expect(await cache.getOrSet('k', () => 'v2')).toBe('v2');
    await cache.close();
  });

  it('without graceMs, loadTimeoutMs rejects waiters with TimeoutError and aborts the loader', async () => {
    const clock = new ManualClock();
    const cache = new Cache<string>({ max: 10, ttlMs: 1_000, loadTimeoutMs: 250, clock });
    let signal: AbortSignal | undefined;
    const waiting = cache
      .getOrSet('k', (context) => {
        signal = context.signal;
        return new Promise<string>(() => {});
      })
      .catch((error: unknown) => error);
    await clock.advance(250);
    expect(await waiting).toBeInstanceOf(TimeoutError);
    expect(signal?.aborted).toBe(true);
    // The next call starts a fresh load.
    expect(await cache.getOrSet('k', () => 'ok')).toBe('ok');
    await cache.close();
  });
});
