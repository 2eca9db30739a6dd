import { ClosedError, ConfigError, ManualClock, RateLimitError } from 'hotpath/core';
import { MemoryRateLimitStore, RateLimiter, type RateLimitStore } from 'hotpath/ratelimit';
import { describe, expect, it } from 'vitest';
import { recordingLogger, SwitchableStore } from './test-stores.js';

/** A memory store whose calls can be made to fail, and which records what it was asked. */
class ScriptedStore implements RateLimitStore {
  readonly inner = new MemoryRateLimitStore();
  readonly calls: string[] = [];
  failReserves = 0;
  error = new Error('store down');
  reserve(key: string, weight: number, limit: number, windowMs: number, nowMs: number): number {
    this.calls.push(`reserve ${key} ${weight} ${limit} ${windowMs} ${nowMs}`);
    if (this.failReserves > 0) {
      this.failReserves--;
      throw this.error;
    }
    return this.inner.reserve(key, weight, limit, windowMs, nowMs);
  }
  release(key: string, weight: number, reservedAtMs: number): void {
    this.calls.push(`release ${key} ${weight} ${reservedAtMs}`);
    this.inner.release(key, weight, reservedAtMs);
  }
}

/** A store whose reservations answer when the test says so. */
class DeferredStore extends SwitchableStore {
  override deferNext = Number.POSITIVE_INFINITY;
}

const T0 = 1_700_000_000_000;

describe('RateLimiter basics', () => {
  it('exposes limit, intervalMs and isClosed', async () => {
    const limiter = new RateLimiter({ limit: 3, intervalMs: 250, clock: new ManualClock() });
    expect([limiter.limit, limiter.intervalMs, limiter.isClosed]).toEqual([3, 250, false]);
    await limiter.close();
    expect(limiter.isClosed).toBe(true);
  });

  it('schedule() rejects a non-function with a ConfigError naming fn', async () => {
    const limiter = new RateLimiter({ limit: 1, intervalMs: 10, clock: new ManualClock() });
    const error = await limiter.schedule('nope' as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({
      option: 'RateLimiter.schedule.fn',
      message: 'RateLimiter.schedule: fn must be a function, got "nope"',
    });
  });

  it('after close every entry point refuses with ClosedError naming the limiter, and feedback is ignored', async () => {
    const clock = new ManualClock();
    const { logger, lines } = recordingLogger();
    const limiter = new RateLimiter({ limit: 2, intervalMs: 100, clock, name: 'quotes', logger });
    await expect(limiter.close()).resolves.toBeUndefined();
    await expect(limiter.close()).resolves.toBeUndefined();
    expect(() => limiter.tryAcquire()).toThrow('quotes is closed');
    await expect(limiter.tryAcquireAsync()).rejects.toThrow('quotes is closed');
    await expect(limiter.schedule(() => 1)).rejects.toThrow('quotes is closed');
    await expect(limiter.acquire()).rejects.toBeInstanceOf(ClosedError);
    limiter.penalize(1000);
    limiter.updateRemaining(0, 1000);
    limiter.reportOverLimit();
    expect(limiter.stats()).toMatchObject({ penalties: 0, pausedForMs: 0, rateFactor: 1 });
    expect(lines).toEqual([]);
  });

  it('close() rejects every waiter with ClosedError and leaves no timer', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 1, intervalMs: 100, clock, name: 'n' });
    await limiter.acquire();
    const waiting = [limiter.acquire(), limiter.schedule(() => 1)].map((p) => p.catch((e: unknown) => e));
    expect(clock.pendingTimers).toBe(1);
    await limiter.close();
    for (const error of await Promise.all(waiting)) {
      expect(error).toBeInstanceOf(ClosedError);
      expect((error as Error).message).toBe('n is closed');
    }
    expect(clock.pendingTimers).toBe(0);
    expect(limiter.stats()).toMatchObject({ queued: 0, queuedWeight: 0 });
  });
});

describe('RateLimiter tryAcquire', () => {
  it('behind a waiter: refused with the time until the timer fires; the release is a no-op', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 1, intervalMs: 100, clock });
    const first = limiter.tryAcquire();
    const waiting = limiter.acquire();
    const refused = limiter.tryAcquire();
    expect(refused).toMatchObject({ ok: false, retryAfterMs: 100 });
    refused.release();
    expect(limiter.stats()).toMatchObject({ running: 1, started: 1, done: 0 });
    await clock.advance(30);
    expect(limiter.tryAcquire().retryAfterMs).toBe(70);
    await expect(limiter.tryAcquireAsync()).resolves.toMatchObject({ ok: false, retryAfterMs: 70 });
    first.release();
    await clock.advance(70);
    (await waiting)();
  });

  it('rounds a fractional wait up, and never answers less than 1 ms', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 1, intervalMs: 100.5, clock });
    expect(limiter.tryAcquire().ok).toBe(true);
    await clock.advance(50);
    expect(limiter.tryAcquire().retryAfterMs).toBe(51);
    await clock.advance(50.25);
    expect(limiter.tryAcquire().retryAfterMs).toBe(1);
    expect((await limiter.tryAcquireAsync()).retryAfterMs).toBe(1);
  });

  it('at maxConcurrent: refused, retryAfterMs from the smoothed gap between completions', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: Number.POSITIVE_INFINITY, intervalMs: 100, maxConcurrent: 1, clock });
    const first = await limiter.acquire();
    expect(limiter.tryAcquire()).toMatchObject({ ok: false, retryAfterMs: 1 });
    const second = limiter.acquire();
    const third = limiter.acquire();
    const fourth = limiter.acquire();
    first(); // no gap measured yet
    (await second)();
    expect(limiter.tryAcquire().retryAfterMs).toBe(1);
    await clock.advance(40);
    const releaseThird = await third;
    expect(limiter.tryAcquire().retryAfterMs).toBe(1);
    releaseThird(); // 40 ms after the previous completion
    await clock.advance(0);
    expect(limiter.tryAcquire().retryAfterMs).toBe(40);
    expect((await limiter.tryAcquireAsync()).retryAfterMs).toBe(40);
    const releaseFourth = await fourth;
    const fifth = limiter.acquire();
    await clock.advance(20);
    releaseFourth(); // 20 ms: 40 × 0.8 + 20 × 0.2
    const releaseFifth = await fifth;
    expect(limiter.tryAcquire().retryAfterMs).toBe(36);
    releaseFifth();
    expect(limiter.tryAcquire().ok).toBe(true);
  });

  it('on a store that answers with a promise: ConfigError, and the reservation it made is given back', async () => {
    const clock = new ManualClock();
    const store = new DeferredStore();
    const limiter = new RateLimiter({ limit: 2, intervalMs: 100, clock, store, name: 'remote' });
    const error = (() => {
      try {
        limiter.tryAcquire();
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({
      option: 'RateLimiter.store',
      message: 'remote.tryAcquire answers synchronously and this store answers with a promise; use tryAcquireAsync()',
    });
    store.next().settle();
    await clock.advance(0);
    expect(store.releases).toEqual([`default 1 ${T0}`]);
    expect(store.inner.used('default', T0)).toBe(0);
    expect(limiter.stats()).toMatchObject({ running: 0, started: 0 });
  });
});

describe('RateLimiter tryAcquireAsync', () => {
  it('refused by the window: the wait and the remaining units, with spacing rolled back', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 2, intervalMs: 100, minTimeMs: 10, clock });
    expect(await limiter.tryAcquireAsync()).toMatchObject({ ok: true, retryAfterMs: 0, remaining: 1 });
    await clock.advance(10);
    expect(await limiter.tryAcquireAsync()).toMatchObject({ ok: true, remaining: 0 });
    await clock.advance(89);
    const refused = await limiter.tryAcquireAsync();
    expect(refused).toMatchObject({ ok: false, retryAfterMs: 1, remaining: 0 });
    refused.release();
    await clock.advance(1);
    // The refusal did not count as a start for minTimeMs.
    expect(await limiter.tryAcquireAsync()).toMatchObject({ ok: true, remaining: 0 });
    expect(limiter.stats()).toMatchObject({ running: 3, started: 3 });
  });

  it('held back by a pause: refused with the pause left, rounded up, without asking the store', async () => {
    const clock = new ManualClock();
    const store = new ScriptedStore();
    const limiter = new RateLimiter({ limit: 2, intervalMs: 100, clock, store });
    limiter.penalize(25.5);
    expect(await limiter.tryAcquireAsync()).toEqual({ ok: false, retryAfterMs: 26, release: expect.any(Function) });
    expect(store.calls).toEqual([]);
  });

  it('at maxConcurrent, counting reservations in flight', async () => {
    const clock = new ManualClock();
    const store = new DeferredStore();
    const limiter = new RateLimiter({ limit: 5, intervalMs: 100, maxConcurrent: 1, clock, store });
    const first = limiter.tryAcquireAsync();
    expect(limiter.stats().running).toBe(1);
    expect(await limiter.tryAcquireAsync()).toMatchObject({ ok: false, retryAfterMs: 1 });
    store.next().settle();
    const granted = await first;
    expect(granted).toMatchObject({ ok: true, retryAfterMs: 0 });
    expect(granted.remaining).toBeUndefined(); // reserve() only: no usage reported
    expect(limiter.stats()).toMatchObject({ running: 1, started: 1 });
    granted.release();
    expect(limiter.stats()).toMatchObject({ running: 0, done: 1 });
  });

  it('a store failure rejects with its error, logs it and undoes the start', async () => {
    const clock = new ManualClock();
    const store = new ScriptedStore();
    const { logger, lines } = recordingLogger();
    const limiter = new RateLimiter({ limit: 2, intervalMs: 100, minTimeMs: 50, clock, store, logger, name: 'up' });
    store.failReserves = 1;
    await expect(limiter.tryAcquireAsync()).rejects.toBe(store.error);
    expect(lines).toEqual([
      { level: 'warn', fields: { limiter: 'up', err: store.error }, msg: 'rate limit store failed' },
    ]);
    expect(limiter.stats()).toMatchObject({ running: 0, started: 0 });
    expect(await limiter.tryAcquireAsync()).toMatchObject({ ok: true }); // not held back by minTimeMs
  });

  it('closed while the reservation is in flight: the units go back and the call rejects', async () => {
    const clock = new ManualClock();
    const store = new DeferredStore();
    const limiter = new RateLimiter({ limit: 2, intervalMs: 100, clock, store, name: 'n' });
    const attempt = limiter.tryAcquireAsync(2);
    await limiter.close();
    store.next().settle();
    await expect(attempt).rejects.toThrow('n is closed');
    expect(store.releases).toEqual([`default 2 ${T0}`]);
    expect(store.inner.used('default', T0)).toBe(0);
    expect(limiter.stats()).toMatchObject({ running: 0, started: 0 });
  });

  it('weight 0 and an unlimited rate never ask the store', async () => {
    const clock = new ManualClock();
    const store = new ScriptedStore();
    const limiter = new RateLimiter({ limit: 2, intervalMs: 100, clock, store });
    expect(await limiter.tryAcquireAsync(0)).toMatchObject({ ok: true, remaining: undefined });
    const unlimited = new RateLimiter({ limit: Number.POSITIVE_INFINITY, intervalMs: 100, clock, store });
    expect(await unlimited.tryAcquireAsync(5)).toMatchObject({ ok: true });
    expect(store.calls).toEqual([]);
    expect(limiter.stats().started).toBe(1);
  });

  it('asks the store with the key, weight, limit and window, at the decision time', async () => {
    const clock = new ManualClock();
    const store = new ScriptedStore();
    const limiter = new RateLimiter({ limit: 4, intervalMs: 100, marginMs: 5, clock, store, key: 'api' });
    await limiter.tryAcquireAsync(3);
    limiter.tryAcquire(1);
    expect(store.calls).toEqual([`reserve api 3 4 105 ${T0}`, `reserve api 1 4 105 ${T0}`]);
  });
});

describe('RateLimiter penalize, updateRemaining, reportOverLimit', () => {
  it('penalize keeps the longer pause, counts every call and shares it with the store', async () => {
    const clock = new ManualClock();
    const paused: string[] = [];
    const store = Object.assign(new MemoryRateLimitStore(), {
      pause: (key: string, durationMs: number, nowMs: number) => void paused.push(`${key} ${durationMs} ${nowMs}`),
    });
    const { logger, lines } = recordingLogger();
    const limiter = new RateLimiter({ limit: 2, intervalMs: 100, clock, store, key: 'k', logger, name: 'n' });
    limiter.penalize(100);
    await clock.advance(10);
    limiter.penalize(50);
    expect(limiter.stats()).toMatchObject({ penalties: 2, pausedForMs: 90 });
    limiter.penalize(200);
    expect(limiter.stats()).toMatchObject({ penalties: 3, pausedForMs: 200 });
    expect(paused).toEqual([`k 100 ${T0}`, `k 50 ${T0 + 10}`, `k 200 ${T0 + 10}`]);
    expect(lines[0]).toEqual({
      level: 'info',
      fields: { limiter: 'n', retryAfterMs: 100 },
      msg: 'rate limiter paused by penalize()',
    });
    await clock.advance(200);
    expect(limiter.stats().pausedForMs).toBe(0);
    expect(() => limiter.penalize(-1)).toThrow('RateLimiter.penalize.retryAfterMs must be a number >= 0, got -1');
  });

  it('a store that cannot share the pause is logged, synchronously or not', async () => {
    const clock = new ManualClock();
    const failure = new Error('no pause');
    const { logger, lines } = recordingLogger();
    const throwing = Object.assign(new MemoryRateLimitStore(), {
      pause: () => {
        throw failure;
      },
    });
    const rejecting = Object.assign(new MemoryRateLimitStore(), { pause: () => Promise.reject(failure) });
    new RateLimiter({ limit: 1, intervalMs: 100, clock, store: throwing, logger, name: 'a' }).penalize(10);
    new RateLimiter({ limit: 1, intervalMs: 100, clock, store: rejecting, logger, name: 'b' }).penalize(10);
    await clock.advance(0);
    const warnings = lines.filter((line) => line.level === 'warn');
    expect(warnings).toEqual([
      { level: 'warn', fields: { limiter: 'a', err: failure }, msg: 'rate limit store could not share the pause' },
      { level: 'warn', fields: { limiter: 'b', err: failure }, msg: 'rate limit store could not share the pause' },
    ]);
  });

  it('updateRemaining subtracts the other running tasks and keeps the later reset of the same window', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 100, intervalMs: 1000, clock });
    const running = [limiter.tryAcquire(), limiter.tryAcquire(), limiter.tryAcquire()];
    limiter.updateRemaining(5, 1000); // 5 - (3 - 1) = 3
    limiter.updateRemaining(7, 1500); // same window (within 1 s): never raised, reset moves to 1500
    const attempts = [1, 2, 3, 4].map(() => limiter.tryAcquire());
    expect(attempts.map((a) => a.ok)).toEqual([true, true, true, false]);
    expect(attempts[3]?.retryAfterMs).toBe(1500);
    for (const attempt of [...running, ...attempts]) attempt.release();
    limiter.updateRemaining(1, 400); // a different window (1.1 s away from the known reset): replaces it
    expect(limiter.tryAcquire().ok).toBe(true);
    expect(limiter.tryAcquire()).toMatchObject({ ok: false, retryAfterMs: 400 });
    await clock.advance(400);
    expect(limiter.tryAcquire().ok).toBe(true);
    expect(() => limiter.updateRemaining(1, -1)).toThrow(
      'RateLimiter.updateRemaining.resetInMs must be a number >= 0, got -1',
    );
  });

  it('updateRemaining with no other task running keeps the whole budget; 0 stops every start', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 100, intervalMs: 1000, clock });
    limiter.updateRemaining(2, 300);
    expect([limiter.tryAcquire().ok, limiter.tryAcquire().ok, limiter.tryAcquire().ok]).toEqual([true, true, false]);
    expect(limiter.tryAcquire(0).ok).toBe(true); // weight 0 needs no budget
    await clock.advance(300);
    limiter.updateRemaining(0, 300);
    expect(limiter.tryAcquire()).toMatchObject({ ok: false, retryAfterMs: 300 });
  });

  it('reportOverLimit logs the drop once per burst, and does nothing without a rate limit', () => {
    const clock = new ManualClock();
    const { logger, lines } = recordingLogger();
    const limiter = new RateLimiter({ limit: 10, intervalMs: 1000, clock, logger, name: 'n' });
    limiter.reportOverLimit();
    limiter.reportOverLimit();
    expect(lines).toEqual([
      {
        level: 'info',
        fields: { limiter: 'n', rateFactor: 0.8 },
        msg: 'rate limiter slowed down by reportOverLimit()',
      },
    ]);
    const unlimited = new RateLimiter({ limit: Number.POSITIVE_INFINITY, intervalMs: 1000, clock, logger });
    unlimited.reportOverLimit();
    expect(unlimited.stats().rateFactor).toBe(1);
    expect(lines).toHaveLength(1);
  });

  it('after an over-limit report the store is asked with the lowered limit', () => {
    const clock = new ManualClock();
    const store = new ScriptedStore();
    const limiter = new RateLimiter({ limit: 10, intervalMs: 1000, clock, store });
    limiter.tryAcquire();
    limiter.reportOverLimit();
    limiter.tryAcquire();
    limiter.tryAcquire(9);
    expect(store.calls).toEqual([
      `reserve default 1 10 1000 ${T0}`,
      `reserve default 1 8 1000 ${T0}`,
      `reserve default 9 9 1000 ${T0}`,
    ]);
  });
});

describe('RateLimiter isIdle', () => {
  it('is idle only with nothing running or waiting and no pause, spacing, budget or slowdown in force', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 10, intervalMs: 100, minTimeMs: 20, clock });
    expect(limiter.isIdle()).toBe(true);
    const first = limiter.tryAcquire();
    expect(limiter.isIdle()).toBe(false); // running
    first.release();
    expect(limiter.isIdle()).toBe(false); // spacing until +20
    await clock.advance(19);
    expect(limiter.isIdle()).toBe(false);
    await clock.advance(1);
    expect(limiter.isIdle()).toBe(true);
    limiter.penalize(30);
    expect(limiter.isIdle()).toBe(false);
    await clock.advance(30);
    expect(limiter.isIdle()).toBe(true);
    limiter.updateRemaining(5, 40);
    expect(limiter.isIdle()).toBe(false);
    await clock.advance(40);
    expect(limiter.isIdle()).toBe(true);
    limiter.reportOverLimit();
    expect(limiter.isIdle()).toBe(false);
    await clock.advance(1000); // 0.8 + 0.02 × 10 = 1
    expect(limiter.isIdle()).toBe(true);
  });

  it('is not idle while a waiter is in line or a reservation is in flight', async () => {
    const clock = new ManualClock();
    const store = new DeferredStore();
    const limiter = new RateLimiter({ limit: 1, intervalMs: 100, clock, store });
    const pending = limiter.acquire();
    expect(limiter.stats()).toMatchObject({ running: 0, queued: 1 });
    expect(limiter.isIdle()).toBe(false);
    store.next().settle();
    (await pending)();
    expect(limiter.isIdle()).toBe(true);
    const inFlight = limiter.tryAcquireAsync();
    expect(limiter.isIdle()).toBe(false);
    store.next().settle();
    expect((await inFlight).ok).toBe(false);
    expect(limiter.isIdle()).toBe(true);
  });
});

describe('RateLimiter line and timer', () => {
  it('a full line refuses with RateLimitError naming the limiter and the head wait', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 1, intervalMs: 100, maxQueued: 1, clock, name: 'n' });
    await limiter.acquire();
    const waiting = limiter.acquire();
    await clock.advance(40);
    const error = await limiter.acquire().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitError);
    expect(error).toMatchObject({
      message: 'n: 1 waiters already in line (maxQueued 1); retry in ~60 ms',
      retryAfterMs: 60,
    });
    expect(limiter.stats()).toMatchObject({ rejected: 1, queued: 1 });
    await clock.advance(60);
    (await waiting)();
  });

  it('re-arms its single timer earlier when the head of the line changes', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 5, intervalMs: 100, clock });
    limiter.tryAcquire(3);
    await clock.advance(50);
    limiter.tryAcquire(2);
    const controller = new AbortController();
    const heavy = limiter.acquire({ weight: 5, priority: 1, signal: controller.signal }); // free at +150
    const starts: number[] = [];
    const light = limiter.schedule(() => starts.push(clock.now() - T0), { weight: 3 }); // free at +100
    expect(clock.pendingTimers).toBe(1);
    expect(limiter.tryAcquire().retryAfterMs).toBe(100);
    controller.abort();
    await expect(heavy).rejects.toBeDefined();
    expect(clock.pendingTimers).toBe(1);
    expect(limiter.tryAcquire().retryAfterMs).toBe(50);
    await clock.advance(50);
    await light;
    expect(starts).toEqual([100]);
    expect(clock.pendingTimers).toBe(0);
    expect(limiter.stats()).toMatchObject({ aborted: 1, queued: 0 });
  });

  it('keeps the earlier timer when a later wait comes up', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 1, intervalMs: 100, clock });
    limiter.tryAcquire();
    const starts: number[] = [];
    const waiting = limiter.schedule(() => starts.push(clock.now() - T0));
    limiter.penalize(500); // later than the window: the timer stays at +100, then waits for the pause
    expect(clock.pendingTimers).toBe(1);
    expect(limiter.tryAcquire().retryAfterMs).toBe(100);
    await clock.advance(100);
    expect(clock.pendingTimers).toBe(1);
    expect(limiter.tryAcquire().retryAfterMs).toBe(400);
    await clock.advance(400);
    await waiting;
    expect(starts).toEqual([500]);
  });

  it('a waiter whose store reservation throws gets the error; the next one starts', async () => {
    const clock = new ManualClock();
    const store = new ScriptedStore();
    const { logger, lines } = recordingLogger();
    const limiter = new RateLimiter({ limit: 1, intervalMs: 100, clock, store, logger, name: 'n' });
    limiter.tryAcquire();
    const doomed = limiter.acquire().catch((e: unknown) => e);
    const next = limiter.schedule(() => 'ran');
    store.failReserves = 1;
    await clock.advance(100);
    expect(await doomed).toBe(store.error);
    await expect(next).resolves.toBe('ran');
    expect(lines).toEqual([
      { level: 'warn', fields: { limiter: 'n', err: store.error }, msg: 'rate limit store failed' },
    ]);
  });

  it('a store that throws at once rejects the call (never throws)', async () => {
    const clock = new ManualClock();
    const store = new ScriptedStore();
    const limiter = new RateLimiter({ limit: 1, intervalMs: 100, clock, store });
    store.failReserves = 2;
    let scheduled: Promise<unknown> | undefined;
    expect(() => {
      scheduled = limiter.schedule(() => 1);
    }).not.toThrow();
    await expect(scheduled).rejects.toBe(store.error);
    await expect(limiter.acquire()).rejects.toBe(store.error);
    expect(limiter.stats()).toMatchObject({ running: 0, started: 0, queued: 0 });
  });

  it('an aborted signal rejects at once with its reason, for acquire too', async () => {
    const limiter = new RateLimiter({ limit: 1, intervalMs: 100, clock: new ManualClock() });
    const reason = new Error('gone');
    await expect(limiter.acquire({ signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(limiter.stats()).toMatchObject({ queued: 0, started: 0, aborted: 0 });
  });

  it('aborting a waiter that already started changes nothing', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 1, intervalMs: 100, clock });
    const controller = new AbortController();
    const release = await limiter.acquire({ signal: controller.signal });
    controller.abort();
    expect(limiter.stats()).toMatchObject({ aborted: 0, running: 1 });
    release();
  });
});

describe('RateLimiter on an asynchronous store', () => {
  it('the first call waits at the head of the line for its reservation, and later calls queue behind it', async () => {
    const clock = new ManualClock();
    const store = new DeferredStore();
    const limiter = new RateLimiter({ limit: 5, intervalMs: 100, clock, store });
    const order: string[] = [];
    const first = limiter.schedule(() => order.push('first'));
    const second = limiter.schedule(() => order.push('second'));
    expect(limiter.stats()).toMatchObject({ queued: 2, running: 0 });
    expect(store.pending).toHaveLength(1);
    store.next().settle();
    await first;
    store.next().settle();
    await second;
    expect(order).toEqual(['first', 'second']);
    expect(limiter.stats()).toMatchObject({ started: 2, queued: 0 });
  });

  it('a refused reservation arms the timer for the store wait', async () => {
    const clock = new ManualClock();
    const store = new DeferredStore();
    store.inner.reserve('default', 1, 1, 100, T0);
    const limiter = new RateLimiter({ limit: 1, intervalMs: 100, clock, store });
    const starts: number[] = [];
    const task = limiter.schedule(() => starts.push(clock.now() - T0));
    store.next().settle(); // refused: free in 100 ms
    await clock.advance(0);
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(99);
    expect(store.pending).toHaveLength(0);
    await clock.advance(1);
    store.next().settle();
    await task;
    expect(starts).toEqual([100]);
  });

  it('a failed reservation rejects its waiter with the error, logged, and the next one goes ahead', async () => {
    const clock = new ManualClock();
    const store = new DeferredStore();
    const { logger, lines } = recordingLogger();
    const limiter = new RateLimiter({ limit: 5, intervalMs: 100, clock, store, logger, name: 'n' });
    const failure = new Error('timeout');
    const first = limiter.acquire();
    const second = limiter.schedule(() => 'second');
    store.next().fail(failure);
    await expect(first).rejects.toBe(failure);
    await clock.advance(0);
    store.next().settle();
    await expect(second).resolves.toBe('second');
    expect(lines).toEqual([{ level: 'warn', fields: { limiter: 'n', err: failure }, msg: 'rate limit store failed' }]);
  });

  it('units reserved for a waiter that aborted meanwhile are given back', async () => {
    const clock = new ManualClock();
    const store = new DeferredStore();
    const limiter = new RateLimiter({ limit: 5, intervalMs: 100, clock, store });
    const controller = new AbortController();
    const aborted = limiter.acquire({ weight: 2, signal: controller.signal });
    controller.abort(new Error('stop'));
    await expect(aborted).rejects.toThrow('stop');
    store.next().settle();
    await clock.advance(0);
    expect(store.releases).toEqual([`default 2 ${T0}`]);
    expect(limiter.stats()).toMatchObject({ started: 0, aborted: 1 });
  });

  it('with maxQueued 0 a call refused while its reservation is in flight gives the units back', async () => {
    const clock = new ManualClock();
    const store = new DeferredStore();
    const limiter = new RateLimiter({ limit: 5, intervalMs: 100, clock, store, maxQueued: 0 });
    await expect(limiter.acquire({ weight: 3 })).rejects.toBeInstanceOf(RateLimitError);
    store.next().settle();
    await clock.advance(0);
    expect(store.releases).toEqual([`default 3 ${T0}`]);
    expect(store.inner.used('default', T0)).toBe(0);
  });
});

describe('RateLimiter start stamps', () => {
  it('a task whose synchronous part takes time is counted from when it really started', async () => {
    const clock = new ManualClock();
    const store = new ScriptedStore();
    const limiter = new RateLimiter({ limit: 1, intervalMs: 100, clock, store });
    await limiter.schedule(() => clock.set(T0 + 7));
    expect(store.calls).toEqual([
      `reserve default 1 1 100 ${T0}`,
      `reserve default 1 Infinity 100 ${T0 + 7}`,
      `release default 1 ${T0}`,
    ]);
    expect(limiter.tryAcquire().retryAfterMs).toBe(100);
  });

  it('a task that throws after taking time is restamped and frees its slot', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 1, intervalMs: 100, minTimeMs: 10, clock });
    await expect(
      limiter.schedule(() => {
        clock.set(T0 + 5);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(limiter.stats()).toMatchObject({ running: 0, started: 1, done: 1 });
    expect(limiter.tryAcquire().retryAfterMs).toBe(10); // spaced from the real start, T0 + 5
    clock.set(T0 + 100);
    expect(limiter.tryAcquire().retryAfterMs).toBe(5); // its unit counts from T0 + 5 too
  });

  it('a store with restamp() moves the reservation itself; its failures are logged', async () => {
    const clock = new ManualClock();
    const moves: string[] = [];
    const failure = new Error('restamp lost');
    const store = Object.assign(new MemoryRateLimitStore(), {
      restamp: (key: string, weight: number, from: number, to: number) => {
        moves.push(`${key} ${weight} ${from} ${to}`);
        return Promise.reject(failure);
      },
    });
    const { logger, lines } = recordingLogger();
    const limiter = new RateLimiter({ limit: 2, intervalMs: 100, clock, store, logger, name: 'n' });
    await limiter.schedule(() => clock.set(T0 + 3), { weight: 2 });
    await limiter.schedule(() => 'same ms', { weight: 0 });
    await clock.advance(0);
    expect(moves).toEqual([`default 2 ${T0} ${T0 + 3}`]);
    expect(lines).toEqual([
      { level: 'warn', fields: { limiter: 'n', err: failure }, msg: 'rate limit store restamp failed' },
    ]);
  });

  it('a restamp on an asynchronous store releases the old stamp once the new one is recorded', async () => {
    const clock = new ManualClock();
    const store = new DeferredStore();
    const limiter = new RateLimiter({ limit: 2, intervalMs: 100, clock, store });
    const task = limiter.schedule(() => clock.set(T0 + 4));
    store.next().settle();
    await task;
    expect(store.releases).toEqual([]);
    store.next().settle();
    await clock.advance(0);
    expect(store.releases).toEqual([`default 1 ${T0}`]);
    expect(store.inner.used('default', T0 + 4)).toBe(1);
    expect(store.inner.used('default', T0 + 100)).toBe(1);
  });

  it('a store failing while a start is moved is logged and the start stands', async () => {
    const clock = new ManualClock();
    const store = new ScriptedStore();
    const { logger, lines } = recordingLogger();
    const limiter = new RateLimiter({ limit: 2, intervalMs: 100, clock, store, logger, name: 'n' });
    const result = await limiter.schedule(() => {
      clock.set(T0 + 2);
      store.failReserves = 1;
      return 'ok';
    });
    expect(result).toBe('ok');
    expect(lines).toEqual([
      { level: 'warn', fields: { limiter: 'n', err: store.error }, msg: 'rate limit store failed' },
    ]);
    expect(store.inner.used('default', T0 + 2)).toBe(1);
  });

  it('a failing release is logged', async () => {
    const clock = new ManualClock();
    const failure = new Error('release lost');
    const throwing = Object.assign(new MemoryRateLimitStore(), {
      release: () => {
        throw failure;
      },
    });
    const rejecting = Object.assign(new MemoryRateLimitStore(), { release: () => Promise.reject(failure) });
    const { logger, lines } = recordingLogger();
    for (const [name, store] of [
      ['a', throwing],
      ['b', rejecting],
    ] as const) {
      const limiter = new RateLimiter({ limit: 2, intervalMs: 100, clock, store, logger, name });
      await limiter.schedule(() => clock.set(clock.now() + 1));
    }
    await clock.advance(0);
    expect(lines).toEqual([
      { level: 'warn', fields: { limiter: 'a', err: failure }, msg: 'rate limit store release failed' },
      { level: 'warn', fields: { limiter: 'b', err: failure }, msg: 'rate limit store release failed' },
    ]);
  });

  it('without a margin a late release moves nothing', async () => {
    const clock = new ManualClock();
    const store = new ScriptedStore();
    const limiter = new RateLimiter({ limit: 1, intervalMs: 100, clock, store });
    const release = await limiter.acquire();
    await clock.advance(60);
    release();
    expect(store.calls).toEqual([`reserve default 1 1 100 ${T0}`]);
    expect(limiter.tryAcquire().retryAfterMs).toBe(40);
  });

  it('with a margin a prompt release moves nothing, a late one moves the units to the release', async () => {
    const clock = new ManualClock();
    const store = new ScriptedStore();
    const limiter = new RateLimiter({ limit: 2, intervalMs: 100, marginMs: 10, clock, store });
    const prompt = await limiter.acquire();
    prompt();
    const late = await limiter.acquire();
    await clock.advance(30);
    late();
    expect(store.calls).toEqual([
      `reserve default 1 2 110 ${T0}`,
      `reserve default 1 2 110 ${T0}`,
      `reserve default 1 Infinity 110 ${T0 + 30}`,
      `release default 1 ${T0}`,
    ]);
    const zero = await limiter.acquire({ weight: 0 });
    await clock.advance(30);
    zero();
    expect(store.calls).toHaveLength(4);
  });
});

describe('RateLimiter windows, budgets and estimates', () => {
  it('on the system clock the store holds a unit for intervalMs + the margin + 1 ms', () => {
    const store = new ScriptedStore();
    new RateLimiter({ limit: 1, intervalMs: 1000, store }).tryAcquire();
    new RateLimiter({ limit: 1, intervalMs: 1000, marginMs: 0, store, key: 'exact' }).tryAcquire();
    expect(store.calls.map((call) => call.split(' ').slice(0, 5).join(' '))).toEqual([
      'reserve default 1 1 1041',
      'reserve exact 1 1 1001',
    ]);
  });

  it('a fractional wait arms the timer rounded up', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 1, intervalMs: 100.5, clock });
    const starts: number[] = [];
    const tasks = [1, 2].map(() => limiter.schedule(() => starts.push(clock.now() - T0)));
    await clock.advance(100.5);
    expect(starts).toEqual([0]);
    await clock.advance(0.5);
    await Promise.all(tasks);
    expect(starts).toEqual([0, 101]);
  });

  it('without a rate limit, or with weight 0, a late start moves nothing in the store', async () => {
    const clock = new ManualClock();
    const store = new ScriptedStore();
    const unlimited = new RateLimiter({ limit: Number.POSITIVE_INFINITY, intervalMs: 100, marginMs: 10, clock, store });
    await unlimited.schedule(() => clock.set(clock.now() + 5));
    const release = await unlimited.acquire();
    await clock.advance(50);
    release();
    const limited = new RateLimiter({ limit: 2, intervalMs: 100, clock, store });
    await limited.schedule(() => clock.set(clock.now() + 5), { weight: 0 });
    expect(store.calls).toEqual([]);
    expect(limited.stats()).toMatchObject({ started: 1, done: 1 });
  });

  it('blocked by concurrency: the estimate includes a pause or the spacing in force', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 10, intervalMs: 100, maxConcurrent: 1, minTimeMs: 50, clock });
    const release = await limiter.acquire();
    expect(limiter.tryAcquire().retryAfterMs).toBe(50);
    limiter.penalize(300);
    expect(limiter.tryAcquire().retryAfterMs).toBe(300);
    release();
  });

  it('the longest of pause, spacing and upstream reset holds a start back', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 10, intervalMs: 100, minTimeMs: 50, clock });
    limiter.tryAcquire().release();
    limiter.penalize(30);
    expect(limiter.tryAcquire().retryAfterMs).toBe(50);
    limiter.penalize(80);
    expect(limiter.tryAcquire().retryAfterMs).toBe(80);
    limiter.updateRemaining(0, 120);
    expect(limiter.tryAcquire().retryAfterMs).toBe(120);
    limiter.penalize(200);
    expect(limiter.tryAcquire().retryAfterMs).toBe(200);
  });

  it('an upstream budget never goes below 0 (weight 0 still starts) and counts only starts before its reset', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 100, intervalMs: 1000, clock });
    const running = [limiter.tryAcquire(), limiter.tryAcquire(), limiter.tryAcquire()];
    limiter.updateRemaining(1, 1000); // 1 - 2 others running → 0
    expect(limiter.tryAcquire(0).ok).toBe(true);
    expect(limiter.tryAcquire(1).ok).toBe(false);
    for (const attempt of running) attempt.release();
    await clock.advance(1000);
    // At its reset the old window is over: a report within 1 s of it is a new window.
    limiter.updateRemaining(3, 50);
    expect([1, 2, 3, 4].map(() => limiter.tryAcquire().ok)).toEqual([true, true, true, false]);
  });

  it('a report whose reset is 1 s or more from the known one is a new window and may raise the budget', () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 100, intervalMs: 1000, clock });
    limiter.updateRemaining(1, 1000);
    limiter.updateRemaining(5, 2000);
    expect([1, 2, 3, 4, 5, 6].map(() => limiter.tryAcquire().ok)).toEqual([true, true, true, true, true, false]);
    expect(limiter.tryAcquire().retryAfterMs).toBe(2000);
  });

  it('an over-limit report right at the end of a pause counts', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 10, intervalMs: 1000, clock });
    limiter.penalize(50);
    await clock.advance(49);
    limiter.reportOverLimit();
    expect(limiter.stats().rateFactor).toBe(1);
    await clock.advance(1);
    limiter.reportOverLimit();
    expect(limiter.stats().rateFactor).toBe(0.8);
  });

  it('units reserved for a waiter rejected by close() meanwhile are given back', async () => {
    const clock = new ManualClock();
    const store = new DeferredStore();
    const limiter = new RateLimiter({ limit: 5, intervalMs: 100, clock, store, name: 'n' });
    const waiting = limiter.acquire({ weight: 2 }).catch((e: unknown) => e);
    await limiter.close();
    expect(await waiting).toBeInstanceOf(ClosedError);
    store.next().settle();
    await clock.advance(0);
    expect(store.releases).toEqual([`default 2 ${T0}`]);
    expect(limiter.stats()).toMatchObject({ started: 0, running: 0 });
  });

  it('stats() reports the weight waiting in line', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 5, intervalMs: 100, clock });
    limiter.tryAcquire(5);
    const waiting = [limiter.acquire({ weight: 2 }), limiter.acquire({ weight: 3, priority: 2 })];
    expect(limiter.stats()).toMatchObject({ queued: 2, queuedWeight: 5, running: 1 });
    await clock.advance(100);
    for (const release of await Promise.all(waiting)) release();
    expect(limiter.stats()).toMatchObject({ queued: 0, queuedWeight: 0, started: 3 });
  });
});

describe('RateLimiter reservations in flight', () => {
  it('tryAcquireAsync spaces concurrent calls by minTimeMs while the first is in flight', async () => {
    const clock = new ManualClock();
    const store = new DeferredStore();
    const limiter = new RateLimiter({ limit: 5, intervalMs: 100, minTimeMs: 10, clock, store });
    const first = limiter.tryAcquireAsync();
    expect(await limiter.tryAcquireAsync()).toMatchObject({ ok: false, retryAfterMs: 10 });
    expect(store.pending).toHaveLength(1);
    store.next().settle();
    expect((await first).ok).toBe(true);
  });

  it('a waiter blocked by a tryAcquireAsync in flight gets its turn when that one is refused', async () => {
    const clock = new ManualClock();
    const store = new DeferredStore();
    store.inner.reserve('default', 1, 2, 100, T0);
    const limiter = new RateLimiter({ limit: 2, intervalMs: 100, maxConcurrent: 1, clock, store });
    const attempt = limiter.tryAcquireAsync(2);
    const waiting = limiter.acquire();
    expect(store.pending).toHaveLength(1);
    store.next().settle();
    expect(await attempt).toMatchObject({ ok: false, retryAfterMs: 100, remaining: undefined });
    await clock.advance(0);
    expect(store.pending).toHaveLength(1); // the waiter's reservation
    store.next().settle();
    (await waiting)();
  });

  it('a waiter blocked by a tryAcquireAsync in flight gets its turn when the store fails', async () => {
    const clock = new ManualClock();
    const store = new DeferredStore();
    const limiter = new RateLimiter({ limit: 2, intervalMs: 100, maxConcurrent: 1, clock, store });
    const attempt = limiter.tryAcquireAsync().catch((e: unknown) => e);
    const waiting = limiter.acquire();
    const failure = new Error('down');
    store.next().fail(failure);
    expect(await attempt).toBe(failure);
    await clock.advance(0);
    expect(store.pending).toHaveLength(1);
    store.next().settle();
    (await waiting)();
  });

  it('a refused reservation of a waiter that aborted meanwhile lets the next waiter ask', async () => {
    const clock = new ManualClock();
    const store = new DeferredStore();
    store.inner.reserve('default', 2, 2, 100, T0);
    const limiter = new RateLimiter({ limit: 2, intervalMs: 100, clock, store });
    const controller = new AbortController();
    const first = limiter.acquire({ signal: controller.signal }).catch((e: unknown) => e);
    const second = limiter.acquire();
    controller.abort(new Error('stop'));
    expect(await first).toMatchObject({ message: 'stop' });
    store.next().settle(); // refused, and nobody is waiting for it
    await clock.advance(0);
    expect(store.pending).toHaveLength(1);
    expect(clock.pendingTimers).toBe(0);
    store.next().settle(); // the second waiter: refused too, waits for the window
    await clock.advance(0);
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(100);
    store.next().settle();
    (await second)();
    expect(store.releases).toEqual([]);
  });
});
