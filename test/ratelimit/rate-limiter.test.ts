import { ClosedError, ConfigError, isHotpathError, ManualClock, RateLimitError, sleep } from 'hotpath/core';
import { DEFAULT_MARGIN_MS, RateLimiter } from 'hotpath/ratelimit';
import { describe, expect, it } from 'vitest';

interface Start {
  at: number;
  weight: number;
  priority: number;
  seq: number;
}

/** Largest total weight started in any window [t, t + intervalMs) that begins at a recorded start. */
function maxWindowWeight(starts: ReadonlyArray<{ at: number; weight: number }>, intervalMs: number): number {
  const sorted = [...starts].sort((a, b) => a.at - b.at);
  let max = 0;
  let sum = 0;
  let tail = 0;
  for (let head = 0; head < sorted.length; head++) {
    sum += (sorted[head] as { weight: number }).weight;
    while ((sorted[head] as { at: number }).at - (sorted[tail] as { at: number }).at >= intervalMs) {
      sum -= (sorted[tail] as { weight: number }).weight;
      tail++;
    }
    max = Math.max(max, sum);
  }
  return max;
}

/** A small deterministic PRNG so failures reproduce. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

async function advanceUntil(clock: ManualClock, done: () => boolean, stepMs: number, maxSteps = 100_000) {
  for (let i = 0; i < maxSteps && !done(); i++) await clock.advance(stepMs);
  if (!done()) throw new Error('did not finish');
}

describe('RateLimiter sliding window', () => {
  it('never starts more than 20 units in any 200 ms, with priorities and weights (ManualClock, 300 tasks)', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 20, intervalMs: 200, clock });
    const random = prng(7);
    const starts: Start[] = [];
    const tasks: Promise<unknown>[] = [];
    let seq = 0;
    // Arrivals are spread over time (bursts every 37 ms) so the window slides over uneven start times.
    for (let burst = 0; burst < 30; burst++) {
      for (let i = 0; i < 10; i++) {
        const weight = 1 + Math.floor(random() * 3);
        const priority = Math.floor(random() * 3);
        const mySeq = seq++;
        tasks.push(
          limiter.schedule(
            async () => {
              starts.push({ at: clock.now(), weight, priority, seq: mySeq });
              await sleep(Math.floor(random() * 50), { clock });
            },
            { weight, priority },
          ),
        );
      }
      await clock.advance(37);
    }
    await advanceUntil(clock, () => starts.length === 300 && limiter.stats().running === 0, 5);
    await Promise.all(tasks);
    expect(starts).toHaveLength(300);
    const max = maxWindowWeight(starts, 200);
    expect(max).toBeLessThanOrEqual(20);
    // Not vacuous: the limit was reached.
    expect(max).toBe(20);
    expect(limiter.stats()).toMatchObject({ running: 0, queued: 0, done: 300, started: 300 });
    expect(clock.pendingTimers).toBe(0);
  });

  it('starts waiters by priority, FIFO within a priority', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 2, intervalMs: 100, clock });
    const order: string[] = [];
    const run = (name: string, priority: number, weight = 1) =>
      limiter.schedule(() => void order.push(name), { priority, weight });
    const all = [
      run('a0', 0),
      run('b0', 0), // a0 and b0 start at once (limit 2)
      run('c0', 0),
      run('d5', 5),
      run('e1', 1),
      run('f5', 5, 2),
      run('g1', 1),
      run('h9', 9),
    ];
    await advanceUntil(clock, () => order.length === 8, 10);
    await Promise.all(all);
    expect(order).toEqual(['a0', 'b0', 'h9', 'd5', 'f5', 'e1', 'g1', 'c0']);
  });

  it('holds the window on real start times (real clock, 20 per 200 ms, 200 tasks)', async () => {
    const limiter = new RateLimiter({ limit: 20, intervalMs: 200 });
    const starts: { at: number; weight: number }[] = [];
    const tasks: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) {
      tasks.push(
        limiter.schedule(
          () => {
            starts.push({ at: performance.timeOrigin + performance.now(), weight: 1 });
          },
          { priority: i % 3 },
        ),
      );
    }
    await Promise.all(tasks);
    expect(maxWindowWeight(starts, 200)).toBeLessThanOrEqual(20);
    await limiter.close();
  });
});

describe('RateLimiter concurrency and spacing', () => {
  it('never runs more than maxConcurrent, and spaces starts by minTimeMs', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 1000, intervalMs: 1000, maxConcurrent: 3, minTimeMs: 10, clock });
    const random = prng(11);
    let running = 0;
    let maxRunning = 0;
    const startTimes: number[] = [];
    const tasks = Array.from({ length: 200 }, () =>
      limiter.schedule(async () => {
        startTimes.push(clock.now());
        running++;
        maxRunning = Math.max(maxRunning, running);
        await sleep(5 + Math.floor(random() * 40), { clock });
        running--;
      }),
    );
    await advanceUntil(clock, () => startTimes.length === 200 && running === 0, 3);
    await Promise.all(tasks);
    expect(maxRunning).toBe(3);
    for (let i = 1; i < startTimes.length; i++) {
      expect((startTimes[i] as number) - (startTimes[i - 1] as number)).toBeGreaterThanOrEqual(10);
    }
    expect(limiter.stats()).toMatchObject({ running: 0, done: 200 });
  });

  it('acquire → release frees the slot; release is idempotent', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 100, intervalMs: 1000, maxConcurrent: 1, clock });
    const first = await limiter.acquire();
    let secondStarted = false;
    const second = limiter.acquire().then((release) => {
      secondStarted = true;
      return release;
    });
    const third = limiter.acquire();
    await clock.advance(1);
    expect(secondStarted).toBe(false);
    first();
    first();
    await clock.advance(0);
    expect(secondStarted).toBe(true);
    expect(limiter.stats()).toMatchObject({ running: 1, queued: 1 });
    (await second)();
    (await third)();
    expect(limiter.stats()).toMatchObject({ running: 0, queued: 0, done: 3 });
  });

  it('a task that throws synchronously or rejects frees its slot', async () => {
    const limiter = new RateLimiter({ limit: 10, intervalMs: 1000, maxConcurrent: 1, clock: new ManualClock() });
    await expect(
      limiter.schedule(() => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
    await expect(limiter.schedule(() => Promise.reject(new Error('async')))).rejects.toThrow('async');
    await expect(limiter.schedule(() => 42)).resolves.toBe(42);
    expect(limiter.stats()).toMatchObject({ running: 0, done: 3 });
  });
});

describe('RateLimiter abort, maxQueued, penalize, feedback, tryAcquire', () => {
  it('an aborted waiter leaves the line at once and its turn goes to the next', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 5, intervalMs: 100, clock });
    await limiter.acquire({ weight: 3 });
    const controller = new AbortController();
    const heavy = limiter.acquire({ weight: 5, signal: controller.signal }); // needs a full window
    let lightStarted = false;
    const light = limiter.acquire({ weight: 1 }).then((release) => {
      lightStarted = true;
      return release;
    });
    await clock.advance(10);
    expect(lightStarted).toBe(false); // FIFO: light waits behind heavy
    expect(limiter.stats().queued).toBe(2);
    const reason = new Error('user gave up');
    controller.abort(reason);
    await expect(heavy).rejects.toBe(reason);
    await clock.advance(0);
    expect(lightStarted).toBe(true); // 3 + 1 <= 5: starts without waiting for the window
    expect(limiter.stats()).toMatchObject({ queued: 0, aborted: 1, queuedWeight: 0 });
    (await light)();
  });

  it('rejects with the reason of an already aborted signal, without queueing', async () => {
    const limiter = new RateLimiter({ limit: 1, intervalMs: 100, clock: new ManualClock() });
    await expect(limiter.schedule(() => 1, { signal: AbortSignal.abort('gone') })).rejects.toBe('gone');
    expect(limiter.stats()).toMatchObject({ queued: 0, started: 0 });
  });

  it('maxQueued exceeded → RateLimitError with a useful retryAfterMs', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 1, intervalMs: 1000, maxQueued: 2, clock });
    const first = limiter.schedule(() => 'first');
    const queued = [limiter.schedule(() => 'a'), limiter.schedule(() => 'b')];
    await clock.advance(250);
    const error = await limiter.schedule(() => 'c').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitError);
    expect(isHotpathError(error, 'ERR_HOTPATH_RATE_LIMIT')).toBe(true);
    // The head of the line starts 1000 ms after the first start, i.e. 750 ms from now.
    expect((error as RateLimitError).retryAfterMs).toBe(750);
    expect(limiter.stats()).toMatchObject({ queued: 2, rejected: 1 });
    await clock.advance(2000);
    await expect(Promise.all([first, ...queued])).resolves.toEqual(['first', 'a', 'b']);
  });

  it('maxQueued 0 never waits', async () => {
    const limiter = new RateLimiter({ limit: 1, intervalMs: 1000, maxQueued: 0, clock: new ManualClock() });
    await expect(limiter.schedule(() => 1)).resolves.toBe(1);
    await expect(limiter.schedule(() => 2)).rejects.toBeInstanceOf(RateLimitError);
  });

  it('penalize pauses every start, including waiters, until the time is up', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 100, intervalMs: 1000, clock });
    await limiter.schedule(() => 1);
    limiter.penalize(500);
    limiter.penalize(100); // a shorter pause does not cut the longer one
    const started: number[] = [];
    const tasks = [1, 2, 3].map(() => limiter.schedule(() => void started.push(clock.now())));
    expect(limiter.tryAcquire()).toMatchObject({ ok: false, retryAfterMs: 500 });
    await clock.advance(499);
    expect(started).toEqual([]);
    expect(limiter.stats()).toMatchObject({ penalties: 2, pausedForMs: 1, queued: 3 });
    await clock.advance(1);
    await Promise.all(tasks);
    expect(started).toHaveLength(3);
    expect(new Set(started)).toEqual(new Set([clock.now()]));
  });

  it('updateRemaining caps starts until the upstream reset', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 100, intervalMs: 1000, clock });
    limiter.updateRemaining(2, 300);
    const started: number[] = [];
    const tasks = [1, 2, 3, 4].map(() => limiter.schedule(() => void started.push(clock.now())));
    await clock.advance(0);
    expect(started).toHaveLength(2);
    await clock.advance(299);
    expect(started).toHaveLength(2);
    await clock.advance(1);
    await Promise.all(tasks);
    expect(started).toHaveLength(4);
  });

  it('tryAcquire never waits, never queues, and says when to come back', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 2, intervalMs: 100, maxConcurrent: 5, clock });
    const a = limiter.tryAcquire();
    const b = limiter.tryAcquire();
    expect(a.ok && b.ok).toBe(true);
    await clock.advance(30);
    expect(limiter.tryAcquire()).toMatchObject({ ok: false, retryAfterMs: 70 });
    expect(limiter.stats()).toMatchObject({ running: 2, queued: 0 });
    a.release();
    a.release();
    expect(limiter.stats().running).toBe(1);
    await clock.advance(70);
    expect(limiter.tryAcquire(2).ok).toBe(true);
    expect(() => limiter.tryAcquire(3)).toThrow(ConfigError);
  });

  it('tryAcquire does not cut the line', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 5, intervalMs: 100, clock });
    await limiter.acquire({ weight: 4 });
    const waiting = limiter.acquire({ weight: 5 });
    const attempt = limiter.tryAcquire(1);
    expect(attempt.ok).toBe(false);
    expect(attempt.retryAfterMs).toBe(100);
    await clock.advance(100);
    (await waiting)();
  });
});

describe('RateLimiter close and validation', () => {
  it('close rejects waiters with ClosedError, clears its timer, and is idempotent', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 1, intervalMs: 1000, clock });
    await limiter.schedule(() => 1);
    const waiting = limiter.schedule(() => 2);
    await clock.advance(1);
    expect(clock.pendingTimers).toBe(1);
    await limiter.close();
    await limiter.close();
    await expect(waiting).rejects.toBeInstanceOf(ClosedError);
    expect(clock.pendingTimers).toBe(0);
    await expect(limiter.schedule(() => 3)).rejects.toBeInstanceOf(ClosedError);
    await expect(limiter.acquire()).rejects.toBeInstanceOf(ClosedError);
    expect(() => limiter.tryAcquire()).toThrow(ClosedError);
    expect(limiter.isClosed).toBe(true);
  });

  it('supports await using', async () => {
    const clock = new ManualClock();
    let waiting: Promise<unknown> | undefined;
    {
      await using limiter = new RateLimiter({ limit: 1, intervalMs: 1000, clock });
      await limiter.schedule(() => 1);
      waiting = limiter.schedule(() => 2);
      waiting.catch(() => {});
    }
    await expect(waiting).rejects.toBeInstanceOf(ClosedError);
  });

  it.each([
    [{}, 'RateLimiter.limit'],
    [{ limit: 10 }, 'RateLimiter.intervalMs'],
    [{ limit: 0, intervalMs: 100 }, 'RateLimiter.limit'],
    [{ limit: Number.NaN, intervalMs: 100 }, 'RateLimiter.limit'],
    [{ limit: 10, intervalMs: -1 }, 'RateLimiter.intervalMs'],
    [{ limit: 10, intervalMs: Number.POSITIVE_INFINITY }, 'RateLimiter.intervalMs'],
    [{ limit: 10, intervalMs: 100, maxConcurrent: 0 }, 'RateLimiter.maxConcurrent'],
    [{ limit: 10, intervalMs: 100, maxConcurrent: 1.5 }, 'RateLimiter.maxConcurrent'],
    [{ limit: 10, intervalMs: 100, minTimeMs: -5 }, 'RateLimiter.minTimeMs'],
    [{ limit: 10, intervalMs: 100, maxQueued: -1 }, 'RateLimiter.maxQueued'],
    [{ limit: 10, intervalMs: 100, store: {} }, 'RateLimiter.store'],
    [{ limit: 10, intervalMs: 100, clock: { now: () => 0 } }, 'RateLimiter.clock'],
    [{ limit: 10, intervalMs: 100, interval: 100 }, 'RateLimiter.interval'],
    [{ limit: '10', intervalMs: 100 }, 'RateLimiter.limit'],
  ])('bad options %j → ConfigError naming %s', (options, option) => {
    const error = (() => {
      try {
        new RateLimiter(options as never);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).option).toBe(option);
  });

  it('bad per-call input → ConfigError and state unchanged', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 5, intervalMs: 100, clock });
    const before = limiter.stats();
    await expect(limiter.schedule(() => 1, { weight: 6 })).rejects.toBeInstanceOf(ConfigError);
    await expect(limiter.schedule(() => 1, { weight: -1 })).rejects.toBeInstanceOf(ConfigError);
    await expect(limiter.schedule(() => 1, { priority: Number.NaN })).rejects.toBeInstanceOf(ConfigError);
    await expect(limiter.acquire({ wieght: 2 } as never)).rejects.toBeInstanceOf(ConfigError);
    await expect(limiter.schedule('nope' as never)).rejects.toBeInstanceOf(ConfigError);
    expect(() => limiter.penalize(-1)).toThrow(ConfigError);
    expect(() => limiter.penalize(Number.NaN)).toThrow(ConfigError);
    expect(() => limiter.updateRemaining(-1, 10)).toThrow(ConfigError);
    expect(limiter.stats()).toEqual(before);
    await expect(limiter.schedule(() => 'still works', { weight: 5 })).resolves.toBe('still works');
  });

  it('weight 0 counts for concurrency only', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 1, intervalMs: 1000, clock });
    await limiter.schedule(() => 1);
    await expect(limiter.schedule(() => 2, { weight: 0 })).resolves.toBe(2);
  });

  it('limit Infinity turns the window off (concurrency only)', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: Number.POSITIVE_INFINITY, intervalMs: 1, maxConcurrent: 2, clock });
    const releases = await Promise.all([limiter.acquire({ weight: 1e9 }), limiter.acquire()]);
    expect(limiter.tryAcquire().ok).toBe(false);
    for (const release of releases) release();
    expect(limiter.tryAcquire().ok).toBe(true);
  });
});

describe('RateLimiter timers and profiler', () => {
  it('uses no timer while the limit does not bind, and one timer however many wait', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 1000, intervalMs: 100, clock });
    const fast = Array.from({ length: 1000 }, (_, i) => limiter.schedule(() => i));
    expect(clock.pendingTimers).toBe(0);
    await Promise.all(fast);
    const waiting = Array.from({ length: 500 }, (_, i) =>
      limiter.schedule(() => i, { priority: i % 7, weight: 1 + (i % 3) }),
    );
    await clock.advance(1);
    expect(limiter.stats().queued).toBe(500);
    expect(clock.pendingTimers).toBe(1);
    for (let i = 0; i < 20 && limiter.stats().queued > 0; i++) {
      await clock.advance(50);
      expect(clock.pendingTimers).toBeLessThanOrEqual(1);
    }
    await Promise.all(waiting);
    expect(clock.pendingTimers).toBe(0);
  });

  it('records ratelimit.wait in the profiler: 0 at once, the time in line otherwise', async () => {
    const clock = new ManualClock();
    const samples: { name: string; ms: number }[] = [];
    const profiler = { record: (name: string, ms: number) => void samples.push({ name, ms }) };
    const limiter = new RateLimiter({ limit: 1, intervalMs: 100, clock, profiler });
    await limiter.schedule(() => 1);
    const second = limiter.schedule(() => 2);
    await clock.advance(100);
    await second;
    expect(samples).toEqual([
      { name: 'ratelimit.wait', ms: 0 },
      { name: 'ratelimit.wait', ms: 100 },
    ]);
  });

  it('logs penalties through the logger', () => {
    const lines: string[] = [];
    const logger = {
      debug: () => {},
      info: (_obj: object, msg?: string) => void lines.push(msg ?? ''),
      warn: () => {},
      error: () => {},
    };
    const limiter = new RateLimiter({ limit: 1, intervalMs: 100, clock: new ManualClock(), logger, name: 'quotes' });
    limiter.penalize(1000);
    expect(lines).toEqual(['rate limiter paused by penalize()']);
  });

  it('the upstream budget no longer applies after its reset', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 100, intervalMs: 1000, clock });
    limiter.updateRemaining(0, 50);
    expect(limiter.tryAcquire()).toMatchObject({ ok: false, retryAfterMs: 50 });
    await clock.advance(50);
    for (let i = 0; i < 10; i++) expect(limiter.tryAcquire().ok).toBe(true);
  });

  it('reads upstream feedback conservatively: in-flight tasks count, stale reports never raise the budget', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 100, intervalMs: 1000, clock });
    const running = await Promise.all([limiter.acquire(), limiter.acquire(), limiter.acquire()]);
    // One of the three reports 5 left: the other two may not be counted upstream yet → 3 more starts.
    limiter.updateRemaining(5, 2000);
    // A late response from earlier in the same quota window says 9: ignored.
    await clock.advance(100);
    limiter.updateRemaining(9, 1900);
    const extra = [limiter.tryAcquire(), limiter.tryAcquire(), limiter.tryAcquire(), limiter.tryAcquire()];
    expect(extra.map((attempt) => attempt.ok)).toEqual([true, true, true, false]);
    expect(extra[3]?.retryAfterMs).toBe(1900);
    // A report for the next window replaces the budget.
    await clock.advance(1900);
    limiter.updateRemaining(50, 60_000);
    expect(limiter.tryAcquire().ok).toBe(true);
    for (const release of running) release();
  });
});

describe('RateLimiter pauses longer than a Node timer holds', () => {
  it('penalize(3e9) arms a chained timer: no 1 ms re-arm loop, no TimeoutOverflowWarning', async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.name);
    process.on('warning', onWarning);
    let timersArmed = 0;
    const counting = {
      now: () => Date.now(),
      setTimeout(fn: () => void, ms: number, options?: { unref?: boolean }) {
        timersArmed++;
        const timer = setTimeout(fn, ms);
        if (options?.unref) timer.unref();
        return timer;
      },
      clearTimeout: (handle: unknown) => clearTimeout(handle as NodeJS.Timeout),
    };
    const limiter = new RateLimiter({ limit: 10, intervalMs: 1000, clock: counting });
    try {
      limiter.penalize(3e9);
      let started = false;
      const waiter = limiter.schedule(() => {
        started = true;
      });
      waiter.catch(() => {});
      await sleep(100);
      expect(started).toBe(false);
      expect(limiter.stats().pausedForMs).toBeGreaterThan(2.9e9);
      expect(timersArmed).toBe(1); // one link of the chain, not one timer per millisecond
      expect(warnings).not.toContain('TimeoutOverflowWarning');
    } finally {
      process.off('warning', onWarning);
      await limiter.close();
    }
  });

  it('a pause past 2^31-1 ms still ends: the waiter starts when its time has come (ManualClock)', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 10, intervalMs: 1000, clock });
    limiter.penalize(3e9);
    let started = false;
    const waiter = limiter.schedule(() => {
      started = true;
    });
    await clock.advance(2_147_483_647 + 1);
    expect(started).toBe(false);
    await clock.advance(3e9 - 2_147_483_648);
    await waiter;
    expect(started).toBe(true);
  });
});

describe('RateLimiter marginMs and reportOverLimit (AIMD)', () => {
  it('marginMs keeps each unit counted that much longer than intervalMs', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 2, intervalMs: 100, marginMs: 10, clock });
    const starts: number[] = [];
    const tasks = Array.from({ length: 4 }, () => limiter.schedule(() => starts.push(clock.now() - 1_700_000_000_000)));
    await advanceUntil(clock, () => starts.length === 4, 1);
    await Promise.all(tasks);
    expect(starts).toEqual([0, 0, 110, 110]);
  });

  it('marginMs defaults to DEFAULT_MARGIN_MS (at most 4% of intervalMs) on the system clock, 0 on an injected one', async () => {
    expect(DEFAULT_MARGIN_MS).toBeGreaterThan(0);
    const real = new RateLimiter({ limit: 1, intervalMs: 1000 });
    expect(real.tryAcquire().ok).toBe(true);
    const refused = real.tryAcquire();
    expect(refused.ok).toBe(false);
    // intervalMs + the default margin + the 1 ms clock guard, give or take the time this test took.
    expect(refused.retryAfterMs).toBeGreaterThan(1000 + DEFAULT_MARGIN_MS - 50);
    await real.close();
    // A short window gets at most 4% of it: 8 ms for 200 ms (+ the 1 ms clock guard).
    const short = new RateLimiter({ limit: 1, intervalMs: 200 });
    short.tryAcquire();
    const shortWait = short.tryAcquire().retryAfterMs;
    expect(shortWait).toBeLessThanOrEqual(209);
    expect(shortWait).toBeGreaterThan(209 - 50);
    await short.close();
    const clock = new ManualClock();
    const manual = new RateLimiter({ limit: 1, intervalMs: 1000, clock });
    manual.tryAcquire();
    expect(manual.tryAcquire().retryAfterMs).toBe(1000);
  });

  it('a late acquired task (released more than marginMs/2 after the fastest) stays counted from its release', async () => {
    const clock = new ManualClock();
    const t0 = clock.now();
    const limiter = new RateLimiter({ limit: 1, intervalMs: 1000, marginMs: 40, clock });
    const prompt = await limiter.acquire();
    await clock.advance(5);
    prompt(); // 5 ms after its start: within the margin, the plain window holds
    expect(limiter.tryAcquire().retryAfterMs).toBe(1040 - 5);
    await clock.advance(1035);
    const late = await limiter.acquire();
    expect(clock.now() - t0).toBe(1040);
    await clock.advance(100);
    late(); // 100 ms: it may have reached the upstream that late, so its unit counts from now
    expect(limiter.tryAcquire().retryAfterMs).toBe(1040);
    await clock.advance(1039);
    expect(limiter.tryAcquire().ok).toBe(false);
    await clock.advance(1);
    expect(limiter.tryAcquire().ok).toBe(true);
  });

  it('an over-limit report lowers the units per window to 80% and they recover by 2% per interval', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 10, intervalMs: 1000, clock });
    const starts: number[] = [];
    const t0 = clock.now();
    const tasks = Array.from({ length: 20 }, () => limiter.schedule(() => starts.push(clock.now() - t0)));
    await clock.advance(0);
    expect(starts).toHaveLength(10);
    limiter.reportOverLimit();
    expect(limiter.stats().rateFactor).toBe(0.8);
    limiter.reportOverLimit(); // the same burst: ignored
    expect(limiter.stats().rateFactor).toBe(0.8);
    await clock.advance(999);
    expect(starts).toHaveLength(10);
    await clock.advance(1);
    // Without the report all 10 would start at 1000; the burst itself is smaller (an upstream with a
    // smaller quota refuses the excess of every burst, whatever the pace).
    expect(starts.slice(10)).toEqual(Array(8).fill(1000));
    await advanceUntil(clock, () => starts.length === 20, 10);
    await Promise.all(tasks);
    expect(starts.slice(18)).toEqual([2000, 2000]);
    await clock.advance(3000);
    expect(limiter.stats().rateFactor).toBeCloseTo(0.8 + 0.02 * ((clock.now() - t0) / 1000), 5);
    await clock.advance(10_000);
    expect(limiter.stats().rateFactor).toBe(1);
  });

  it('ignores over-limit reports while a pause is in force, and never drops below 10%', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ limit: 10, intervalMs: 100, clock });
    limiter.penalize(50);
    limiter.reportOverLimit();
    expect(limiter.stats().rateFactor).toBe(1);
    for (let i = 0; i < 30; i++) {
      await clock.advance(100);
      limiter.reportOverLimit();
    }
    expect(limiter.stats().rateFactor).toBeGreaterThanOrEqual(0.1);
    expect(limiter.stats().rateFactor).toBeLessThan(0.13);
  });
});
