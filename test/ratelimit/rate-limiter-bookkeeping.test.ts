import { ManualClock, RateLimitError } from 'hotpath/core';
import { MemoryRateLimitStore, RateLimiter } from 'hotpath/ratelimit';
import { describe, expect, it } from 'vitest';
import { recordingLogger, SwitchableStore } from './test-stores.js';

const T0 = 1_700_000_000_000;

describe('RateLimiter bookkeeping', () => {
  it('tryAcquire and tryAcquireAsync record a wait of 0 in the profiler', async () => {
    const samples: string[] = [];
    const profiler = { record: (name: string, ms: number) => void samples.push(`${name} ${ms}`) };
    const limiter = new RateLimiter({ limit: 5, intervalMs: 100, clock: new ManualClock(), profiler });
    limiter.tryAcquire();
    await limiter.tryAcquireAsync();
    expect(samples).toEqual(['ratelimit.wait 0', 'ratelimit.wait 0']);
  });

  it('tryAcquireAsync does not cut the line, even when the window has room', async () => {
    const clock = new ManualClock();
    const store = new SwitchableStore();
    const limiter = new RateLimiter({ limit: 5, intervalMs: 100, clock, store });
    limiter.tryAcquire(3);
    const waiting = limiter.acquire({ weight: 5 });
    expect(await limiter.tryAcquireAsync(1)).toMatchObject({ ok: false, retryAfterMs: 100 });
    expect(store.inner.used('default', T0)).toBe(3);
    await clock.advance(100);
    (await waiting)();
  });

  it('tryAcquireAsync waits its turn behind a reservation in flight whose waiter left', async () => {
    const clock = new ManualClock();
    const store = new SwitchableStore();
    const limiter = new RateLimiter({ limit: 5, intervalMs: 100, clock, store });
    const controller = new AbortController();
    store.deferNext = 1;
    const aborted = limiter.acquire({ weight: 2, signal: controller.signal }).catch((e: unknown) => e);
    controller.abort(new Error('stop'));
    await aborted;
    expect(limiter.stats().queued).toBe(0);
    expect(limiter.isIdle()).toBe(false); // the reservation is still in flight
    expect(await limiter.tryAcquireAsync()).toMatchObject({ ok: false });
    expect(store.inner.used('default', T0)).toBe(0);
    store.next().settle();
    await clock.advance(0);
    expect(store.releases).toEqual([`default 2 ${T0}`]);
    expect(limiter.isIdle()).toBe(true);
    expect(limiter.stats()).toMatchObject({ queuedWeight: 0, aborted: 1 });
  });

  it('a failed reservation of a waiter that left does not touch the line', async () => {
    const clock = new ManualClock();
    const store = new SwitchableStore();
    const limiter = new RateLimiter({ limit: 5, intervalMs: 100, clock, store });
    const controller = new AbortController();
    store.deferNext = 1;
    const aborted = limiter.acquire({ weight: 2, signal: controller.signal }).catch((e: unknown) => e);
    controller.abort(new Error('stop'));
    expect(await aborted).toMatchObject({ message: 'stop' });
    store.next().fail(new Error('down'));
    await clock.advance(0);
    expect(limiter.stats()).toMatchObject({ queued: 0, queuedWeight: 0, aborted: 1 });
  });

  it('a store failure or refusal in flight does not undo a start made meanwhile', async () => {
    for (const outcome of ['fail', 'refuse'] as const) {
      const clock = new ManualClock();
      const store = new SwitchableStore();
      const limiter = new RateLimiter({ limit: 2, intervalMs: 1000, minTimeMs: 10, clock, store });
      if (outcome === 'refuse') store.inner.reserve('default', 1, 2, 1000, T0);
      store.deferNext = 1;
      const attempt = limiter.tryAcquireAsync(outcome === 'refuse' ? 2 : 1).catch((e: unknown) => e);
      await clock.advance(20);
      expect(limiter.tryAcquire(0).ok).toBe(true); // starts at T0 + 20 (weight 0: no store)
      if (outcome === 'fail') store.next().fail(new Error('down'));
      else store.next().settle();
      await attempt;
      await clock.advance(5);
      expect(limiter.tryAcquire(0)).toMatchObject({ ok: false, retryAfterMs: 5 }); // spaced from T0 + 20
    }
  });

  it('closed and refused while in flight: nothing to give back', async () => {
    const clock = new ManualClock();
    const store = new SwitchableStore();
    store.inner.reserve('default', 2, 2, 100, T0);
    const limiter = new RateLimiter({ limit: 2, intervalMs: 100, clock, store });
    store.deferNext = 1;
    const attempt = limiter.tryAcquireAsync().catch((e: unknown) => e);
    await limiter.close();
    store.next().settle();
    expect(await attempt).toMatchObject({ message: 'RateLimiter is closed' });
    expect(store.releases).toEqual([]);
  });

  it('a reservation refused while the call was being refused is not given back', async () => {
    const clock = new ManualClock();
    const store = new SwitchableStore();
    store.inner.reserve('default', 2, 2, 100, T0);
    const sync = new RateLimiter({ limit: 2, intervalMs: 100, clock, store });
    store.deferNext = 1;
    expect(() => sync.tryAcquire()).toThrow('use tryAcquireAsync()');
    store.next().settle();
    const queueless = new RateLimiter({ limit: 2, intervalMs: 100, clock, store, maxQueued: 0 });
    store.deferNext = 1;
    await expect(queueless.acquire()).rejects.toBeInstanceOf(RateLimitError);
    store.next().settle();
    await clock.advance(0);
    expect(store.releases).toEqual([]);
    expect(store.inner.used('default', T0)).toBe(2);
  });

  it('synchronous restamp, release and a store without pause() log nothing', async () => {
    const clock = new ManualClock();
    const moves: string[] = [];
    const restamping = Object.assign(new MemoryRateLimitStore(), {
      restamp: (_key: string, weight: number, from: number, to: number) => void moves.push(`${weight} ${from} ${to}`),
    });
    const { logger, lines } = recordingLogger();
    const a = new RateLimiter({ limit: 2, intervalMs: 100, clock, store: restamping, logger });
    await a.schedule(() => clock.set(clock.now() + 3));
    const b = new RateLimiter({ limit: 2, intervalMs: 100, clock, logger });
    await b.schedule(() => clock.set(clock.now() + 3));
    b.penalize(10);
    await clock.advance(0);
    expect(moves).toEqual([`1 ${T0} ${T0 + 3}`]);
    expect(lines.map((line) => `${line.level} ${line.msg}`)).toEqual(['info rate limiter paused by penalize()']);
  });

  it('reportOverLimit logs when the rate drops, not when a report is ignored', () => {
    const clock = new ManualClock();
    const { logger, lines } = recordingLogger();
    const limiter = new RateLimiter({ limit: 10, intervalMs: 1000, clock, logger });
    limiter.reportOverLimit();
    expect(lines).toHaveLength(1);
    limiter.reportOverLimit();
    limiter.reportOverLimit();
    expect(lines).toHaveLength(1);
  });

  it('updateRemaining names its arguments, and is ignored after close', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 10, intervalMs: 1000, clock });
    expect(() => limiter.updateRemaining(-1, 10)).toThrow(
      'RateLimiter.updateRemaining.remaining must be a number >= 0, got -1',
    );
    await limiter.close();
    limiter.updateRemaining(0, 1000);
    expect(limiter.isIdle()).toBe(true);
  });

  it('is not idle while a waiter is in line with nothing running', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 1, intervalMs: 100, clock });
    limiter.tryAcquire().release();
    const waiting = limiter.acquire();
    expect(limiter.stats()).toMatchObject({ running: 0, queued: 1 });
    expect(limiter.isIdle()).toBe(false);
    await clock.advance(100);
    (await waiting)();
  });

  it('the last waiter leaving clears the timer', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 1, intervalMs: 100, clock });
    limiter.tryAcquire();
    const controller = new AbortController();
    const waiting = limiter.acquire({ signal: controller.signal }).catch((e: unknown) => e);
    expect(clock.pendingTimers).toBe(1);
    controller.abort();
    await waiting;
    expect(clock.pendingTimers).toBe(0);
  });

  it('completion gaps are measured only while waiters are in line', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: Number.POSITIVE_INFINITY, intervalMs: 100, maxConcurrent: 1, clock });
    // Without contention: no gap is measured.
    for (let i = 0; i < 3; i++) {
      const release = await limiter.acquire();
      await clock.advance(40);
      release();
    }
    const held = await limiter.acquire();
    expect(limiter.tryAcquire().retryAfterMs).toBe(1);
    // Contention: the first completion starts the measure, it ends with the line.
    const next = limiter.acquire();
    held();
    await clock.advance(10);
    (await next)();
    await clock.advance(1000);
    const again = await limiter.acquire();
    const behind = limiter.acquire();
    again(); // the first completion of a new contention: no gap from the old one
    const releaseBehind = await behind;
    const third = limiter.acquire();
    expect(limiter.tryAcquire().retryAfterMs).toBe(1);
    releaseBehind();
    (await third)();
  });

  it('below maxConcurrent the estimate ignores the completion gap', async () => {
    const clock = new ManualClock();
    const store = new SwitchableStore();
    const limiter = new RateLimiter({ limit: 5, intervalMs: 100, maxConcurrent: 5, clock, store });
    const running = [limiter.tryAcquire(), limiter.tryAcquire(), limiter.tryAcquire()];
    store.deferNext = 1;
    const waiting = limiter.acquire(); // its reservation in flight: no timer
    await clock.advance(10);
    running[1]?.release();
    await clock.advance(20);
    running[2]?.release(); // a gap of 20 ms, measured with a waiter in line
    expect(clock.pendingTimers).toBe(0);
    expect(limiter.tryAcquire()).toMatchObject({ ok: false, retryAfterMs: 1 });
    store.next().settle();
    (await waiting)();
    running[0]?.release();
  });

  it('a weight-0 task does not move the late-task baseline', async () => {
    const clock = new ManualClock();
    const store = new SwitchableStore();
    const limiter = new RateLimiter({ limit: 5, intervalMs: 1000, marginMs: 40, clock, store });
    const free = await limiter.acquire({ weight: 0 });
    await clock.advance(1000);
    free();
    const counted = await limiter.acquire();
    await clock.advance(25);
    counted(); // 25 ms against a baseline of 0: late, moved to its release
    expect(store.releases).toEqual([`default 1 ${T0 + 1000}`]);
  });
});
