/**
 * RateLimiter: a true sliding window (never more than `limit` units started in any `intervalMs`),
 * plus `maxConcurrent`, `minTimeMs` spacing, priorities, weights, upstream feedback and abortable waits.
 * One timer at most per limiter, none at all while the limit does not bind.
 * @module
 */
import { abortReason } from '../core/abort.js';
import { type Clock, systemClock, type TimerHandle } from '../core/clock.js';
import { ClosedError, ConfigError, RateLimitError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { clearLongTimeout, setLongTimeout } from '../core/long-timeout.js';
import { checkNumber, describeValue } from '../core/options.js';
import type { LatencyRecorder } from '../core/recorder.js';
import { MemoryRateLimitStore } from './memory-store.js';
import { RateAdaptation } from './rate-adaptation.js';
import {
  type AcquireOptions,
  checkCallOptions,
  checkWeight,
  type RateLimiterOptions,
  type RateLimiterStats,
  type RateLimitScheduleOptions,
  type Release,
  type ResolvedRateLimiterOptions,
  resolveRateLimiterOptions,
  type TryAcquireResult,
} from './rate-limiter-options.js';
import type { RateLimitStore, ReserveResult } from './store.js';
import { type Waiter, WaitLine } from './wait-line.js';

/** `#tryStart` verdicts; a positive number is the milliseconds to wait. */
const ADMITTED = 0;
/** Blocked until a running task ends or an asynchronous reservation answers: no timer needed. */
const BLOCKED = -1;
/** The store answered with a promise, left in `#pendingReserve`. */
const PENDING = -2;

const NOOP_RELEASE: Release = () => {};

/**
 * `Date.now()` truncates to whole milliseconds: a start stamped 1000 may really have happened at
 * 1000.9, and freeing its unit at 1200 would let the next start at a true 1200.0, 199.1 ms later.
 * With the system clock a unit is therefore freed 1 ms late (0.5% of a 200 ms window), which keeps
 * the window exact on the tasks' own high-resolution start times.
 */
const SYSTEM_CLOCK_GUARD_MS = 1;

/**
 * Hand-off for {@link createRateLimiter}: per-key limiters are built from options validated once, with
 * no per-limiter options object. (A WeakSet brand on a spread copy made GC 11 of 16 s for 1,000,000 keys.)
 */
const TRUSTED: RateLimiterOptions = Object.freeze({ limit: 1, intervalMs: 1 });
let handoff: { base: ResolvedRateLimiterOptions; key: string; name: string } | undefined;

/**
 * Builds a limiter from options already validated by {@link resolveRateLimiterOptions}, under `key` in
 * the store and named `name` (for {@link KeyedRateLimiter}, which creates one per key on its hot path).
 * @internal
 */
export function createRateLimiter(base: ResolvedRateLimiterOptions, key: string, name: string): RateLimiter {
  handoff = { base, key, name };
  try {
    return new RateLimiter(TRUSTED);
  } finally {
    handoff = undefined;
  }
}

/** Units left after a reservation that left `used` counted; undefined when the store did not say. */
function remainingOf(limit: number, used: number): number | undefined {
  return Number.isNaN(used) ? undefined : Math.max(0, limit - used);
}

/**
 * Limits how often, and how many at once, tasks start. Guarantees, measured on the tasks' actual start
 * times: never more than `limit` units (see `weight`) started in any window of `intervalMs` — a sliding
 * window, not a fixed one that lets 2× through at a boundary; at most `maxConcurrent` running; at least
 * `minTimeMs` between starts; higher `priority` first and FIFO within a priority.
 *
 * A call that may start at once starts synchronously, with no timer and no extra promise; only waiters
 * share the limiter's single timer.
 *
 * @example
 * ```ts
 * const limiter = new RateLimiter({ limit: 20, intervalMs: 1000, maxConcurrent: 4 });
 * const quote = await limiter.schedule(() => fetchQuote('AAPL'), { priority: 1 });
 * const release = await limiter.acquire({ signal });
 * try { await callUpstream(); } finally { release(); }
 * ```
 */
export class RateLimiter implements AsyncDisposable {
  readonly #limit: number;
  readonly #intervalMs: number;
  /** `intervalMs` plus the margin and the clock-resolution guard; what the store is asked to hold a unit for. */
  readonly #windowMs: number;
  readonly #hasRateLimit: boolean;
  readonly #maxConcurrent: number;
  readonly #minTimeMs: number;
  readonly #marginMs: number;
  readonly #maxQueued: number;
  readonly #store: RateLimitStore;
  readonly #key: string;
  readonly #name: string;
  readonly #clock: Clock;
  readonly #profiler: LatencyRecorder | undefined;
  readonly #logger: Logger;

  #queue: WaitLine | undefined;
  #running = 0;
  #lastStartAt = Number.NEGATIVE_INFINITY;
  #pausedUntil = Number.NEGATIVE_INFINITY;
  #upstreamRemaining = Number.POSITIVE_INFINITY;
  #upstreamResetAt = Number.NEGATIVE_INFINITY;
  /** AIMD rate and late-task baseline; created on first use, so idle per-key limiters stay small. */
  #adaptation: RateAdaptation | undefined;
  #timer: TimerHandle | undefined;
  #timerDue = 0;
  #draining = false;
  #closed = false;
  /** The waiter whose asynchronous reservation is in flight; starts wait for it to keep order. */
  #reserving: Waiter | undefined;
  #pendingReserve: Promise<number> | undefined;
  /** Smoothed milliseconds between completions while waiters were in line (for `retryAfterMs`). */
  #completionGapMs = 0;
  #lastDoneAt = Number.NaN;
  /** Shared settle callback of `schedule`d tasks; created on first use, so idle per-key limiters stay small. */
  #onDoneCallback: (() => void) | undefined;
  #onTimerCallback: (() => void) | undefined;

  #started = 0;
  #done = 0;
  #rejected = 0;
  #aborted = 0;
  #penalties = 0;

  /** @throws ConfigError when an option is missing, unknown or out of range. */
  constructor(options: RateLimiterOptions) {
    const trusted = options === TRUSTED ? handoff : undefined;
    const resolved = trusted?.base ?? resolveRateLimiterOptions('RateLimiter', options);
    this.#limit = resolved.limit;
    this.#intervalMs = resolved.intervalMs;
    this.#hasRateLimit = Number.isFinite(resolved.limit);
    this.#maxConcurrent = resolved.maxConcurrent;
    this.#maxQueued = resolved.maxQueued;
    this.#store = resolved.store ?? new MemoryRateLimitStore({ maxKeys: 1 });
    this.#key = trusted?.key ?? resolved.key;
    this.#name = trusted?.name ?? resolved.name;
    this.#clock = resolved.clock;
    this.#profiler = resolved.profiler;
    this.#logger = resolved.logger;
    const guard = this.#clock === systemClock ? SYSTEM_CLOCK_GUARD_MS : 0;
    this.#windowMs = resolved.intervalMs + resolved.marginMs + guard;
    this.#marginMs = resolved.marginMs;
    this.#minTimeMs = resolved.minTimeMs > 0 ? resolved.minTimeMs + guard : 0;
  }

  /** Units that may start per window. */
  get limit(): number {
    return this.#limit;
  }

  /** Window length in milliseconds. */
  get intervalMs(): number {
    return this.#intervalMs;
  }

  /** True after {@link close}. */
  get isClosed(): boolean {
    return this.#closed;
  }

  /**
   * Runs `fn` when the limits allow and resolves with its result. A call that may start at once runs
   * `fn` synchronously, before `schedule` returns. The task holds a concurrency slot until its promise settles.
   * @throws (rejects) RateLimitError when `maxQueued` waiters are already in line; the signal's reason
   *   when aborted while waiting; ClosedError after `close()`; ConfigError for bad options (e.g. `weight > limit`).
   */
  schedule<T>(fn: () => T | PromiseLike<T>, options?: RateLimitScheduleOptions): Promise<Awaited<T>> {
    if (typeof fn !== 'function') {
      return Promise.reject(
        new ConfigError(
          'RateLimiter.schedule.fn',
          `RateLimiter.schedule: fn must be a function, got ${describeValue(fn)}`,
        ),
      );
    }
    return this.#enter(fn as () => unknown, options, 'schedule') as Promise<Awaited<T>>;
  }

  /**
   * Waits for a start and resolves with a {@link Release} to call when the work ends (it frees the
   * concurrency slot; the window units stay used, as the start happened). Calling release twice is harmless.
   * @throws (rejects) RateLimitError when the line is full; the signal's reason when aborted; ClosedError after `close()`.
   */
  acquire(options?: AcquireOptions): Promise<Release> {
    return this.#enter(undefined, options, 'acquire') as Promise<Release>;
  }

  /**
   * Starts now if every limit allows it and nobody is waiting, without ever waiting or queueing.
   * When `ok`, call `result.release()` when the work ends.
   * @param weight - units to consume (default 1).
   * @throws ConfigError for a bad weight (state unchanged); ClosedError after `close()`.
   */
  tryAcquire(weight = 1): TryAcquireResult {
    if (this.#closed) throw new ClosedError(this.#name);
    checkWeight(this.#limit, 'tryAcquire', weight);
    const now = this.#clock.now();
    if ((this.#queue !== undefined && this.#queue.size > 0) || this.#reserving !== undefined) {
      return { ok: false, retryAfterMs: this.#estimateHeadWait(now), release: NOOP_RELEASE };
    }
    const verdict = this.#tryStart(weight, now);
    if (verdict === ADMITTED) {
      const startedAt = this.#restamp(weight, now);
      this.#profiler?.record('ratelimit.wait', 0);
      return { ok: true, retryAfterMs: 0, release: this.#makeRelease(weight, startedAt) };
    }
    if (verdict === PENDING) {
      this.#refundPendingReserve(weight, now);
      throw new ConfigError(
        'RateLimiter.store',
        `${this.#name}.tryAcquire answers synchronously and this store answers with a promise; use tryAcquireAsync()`,
      );
    }
    const retryAfterMs = verdict > 0 ? Math.max(1, Math.ceil(verdict)) : this.#estimateHeadWait(now);
    return { ok: false, retryAfterMs, release: NOOP_RELEASE };
  }

  /**
   * {@link tryAcquire} for any store, network stores included: starts now if every limit allows it and
   * nobody is waiting, never waiting in line — only for the store's answer. Concurrent calls reserve
   * concurrently (the store decides atomically), so a burst of requests is not refused merely because
   * another reservation is in flight; `maxConcurrent` counts the calls in flight.
   * @param weight - units to consume (default 1).
   * @returns the verdict, with `remaining` when the store reports usage.
   * @throws (rejects) ConfigError for a bad weight (state unchanged); ClosedError after `close()`; the
   *   store's error when it fails (e.g. Redis unreachable with `failMode: 'closed'`).
   */
  async tryAcquireAsync(weight = 1): Promise<TryAcquireResult> {
    if (this.#closed) throw new ClosedError(this.#name);
    checkWeight(this.#limit, 'tryAcquireAsync', weight);
    const now = this.#clock.now();
    if ((this.#queue !== undefined && this.#queue.size > 0) || this.#reserving !== undefined) {
      return { ok: false, retryAfterMs: this.#estimateHeadWait(now), release: NOOP_RELEASE };
    }
    if (this.#running >= this.#maxConcurrent) {
      return { ok: false, retryAfterMs: this.#estimateHeadWait(now), release: NOOP_RELEASE };
    }
    const localWaitMs = this.#localWaitMs(weight, now);
    if (localWaitMs > 0) return { ok: false, retryAfterMs: Math.max(1, Math.ceil(localWaitMs)), release: NOOP_RELEASE };
    let result: ReserveResult = { waitMs: 0, used: Number.NaN };
    if (this.#hasRateLimit && weight > 0) {
      const previousStartAt = this.#lastStartAt;
      // Held while the reservation is in flight, so that concurrent calls respect maxConcurrent and spacing.
      this.#running++;
      if (this.#minTimeMs > 0) this.#lastStartAt = now;
      try {
        const store = this.#store;
        const answer =
          store.reserveDetailed !== undefined
            ? store.reserveDetailed(this.#key, weight, this.#limit, this.#windowMs, now)
            : store.reserve(this.#key, weight, this.#limit, this.#windowMs, now);
        const settled = answer instanceof Promise ? await answer : answer;
        result = typeof settled === 'number' ? { waitMs: settled, used: Number.NaN } : settled;
      } catch (error) {
        this.#running--;
        if (this.#lastStartAt === now) this.#lastStartAt = previousStartAt;
        this.#logger.warn({ limiter: this.#name, err: error }, 'rate limit store failed');
        this.#drain();
        throw error;
      }
      this.#running--;
      if (result.waitMs !== 0 || this.#closed) {
        if (this.#lastStartAt === now) this.#lastStartAt = previousStartAt;
        if (result.waitMs === 0) this.#refund(weight, now);
        this.#drain();
        if (this.#closed) throw new ClosedError(this.#name);
        return {
          ok: false,
          retryAfterMs: Math.max(1, Math.ceil(result.waitMs)),
          release: NOOP_RELEASE,
          remaining: remainingOf(this.#limit, result.used),
        };
      }
    }
    this.#commit(weight, this.#clock.now());
    const startedAt = this.#restamp(weight, now);
    this.#profiler?.record('ratelimit.wait', 0);
    return {
      ok: true,
      retryAfterMs: 0,
      release: this.#makeRelease(weight, startedAt),
      remaining: remainingOf(this.#limit, result.used),
    };
  }

  /**
   * Pauses every start for `retryAfterMs` from now (e.g. after an upstream 429 or `Retry-After`); a
   * longer pause already in force is kept. Running tasks are not affected.
   * @throws ConfigError when `retryAfterMs` is not a finite number ≥ 0.
   */
  penalize(retryAfterMs: number): void {
    checkNumber('RateLimiter.penalize.retryAfterMs', retryAfterMs, { min: 0 });
    if (this.#closed) return;
    const until = this.#clock.now() + retryAfterMs;
    this.#penalties++;
    if (until > this.#pausedUntil) this.#pausedUntil = until;
    this.#sharePause(retryAfterMs, until - retryAfterMs);
    this.#logger.info({ limiter: this.#name, retryAfterMs }, 'rate limiter paused by penalize()');
    this.#drain();
  }

  /**
   * Feedback from an upstream's rate-limit headers: only `remaining` units may start before
   * `resetInMs` from now; after that the upstream's budget no longer constrains this limiter.
   *
   * Read conservatively, as a 429 costs more than a short wait: tasks still running other than the one
   * reporting may not be counted in `remaining` yet, so they are subtracted; and a report for the same
   * quota window (reset within 1 s of the known one — headers carry whole seconds) never raises the
   * budget, since responses can arrive out of order.
   * @throws ConfigError when an argument is not a finite number ≥ 0.
   */
  updateRemaining(remaining: number, resetInMs: number): void {
    checkNumber('RateLimiter.updateRemaining.remaining', remaining, { min: 0 });
    checkNumber('RateLimiter.updateRemaining.resetInMs', resetInMs, { min: 0 });
    if (this.#closed) return;
    const now = this.#clock.now();
    const resetAt = now + resetInMs;
    let budget = Math.max(0, remaining - Math.max(0, this.#running - 1));
    const isSameWindow = this.#upstreamResetAt > now && Math.abs(resetAt - this.#upstreamResetAt) < 1000;
    if (isSameWindow) budget = Math.min(budget, this.#upstreamRemaining);
    this.#upstreamRemaining = budget;
    this.#upstreamResetAt = isSameWindow ? Math.max(resetAt, this.#upstreamResetAt) : resetAt;
    this.#drain();
  }

  /**
   * The upstream refused a call this limiter admitted (a 429 it did not expect): the units allowed per
   * window drop to 80% of what they were (never below 10% of `limit`, nor below one unit) and recover by
   * 2% of `limit` per `intervalMs` — additive increase, multiplicative decrease, as TCP does with
   * congestion. One burst of refusals is one event: reports while a pause is in force (call this before
   * `penalize`) or within `intervalMs` of the last drop are ignored. The lower count holds for every
   * caller of this limiter (the store is asked with it).
   */
  reportOverLimit(): void {
    if (this.#closed || !this.#hasRateLimit) return;
    const now = this.#clock.now();
    if (this.#pausedUntil > now) return;
    const adaptation = this.#adapt();
    if (!adaptation.slowDown(now)) return;
    this.#logger.info(
      { limiter: this.#name, rateFactor: adaptation.rateFactor },
      'rate limiter slowed down by reportOverLimit()',
    );
  }

  /** Counters; plain numbers. */
  stats(): RateLimiterStats {
    const now = this.#clock.now();
    return {
      running: this.#running,
      queued: this.#queue?.size ?? 0,
      queuedWeight: this.#queue?.weight ?? 0,
      started: this.#started,
      done: this.#done,
      rejected: this.#rejected,
      aborted: this.#aborted,
      penalties: this.#penalties,
      pausedForMs: Math.max(0, this.#pausedUntil - now),
      rateFactor: this.#adaptation?.factorAt(now) ?? 1,
    };
  }

  /**
   * True when nothing runs or waits and no pause, spacing or upstream budget is in force, so that a
   * fresh limiter on the same store and key would behave the same (the window itself lives in the store).
   */
  isIdle(): boolean {
    if (this.#running > 0 || (this.#queue?.size ?? 0) > 0 || this.#reserving !== undefined) return false;
    const now = this.#clock.now();
    return (
      this.#pausedUntil <= now &&
      this.#lastStartAt + this.#minTimeMs <= now &&
      this.#upstreamResetAt <= now &&
      (this.#adaptation === undefined || this.#adaptation.factorAt(now) === 1)
    );
  }

  /**
   * Stops the limiter: waiters in line reject with {@link ClosedError}, the timer is cleared, later calls
   * reject with ClosedError. Running tasks are left to finish. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#clearTimer();
    const queue = this.#queue;
    if (queue !== undefined && queue.size > 0) {
      const error = new ClosedError(this.#name);
      for (const waiter of queue.clear()) waiter.reject(error);
    }
    return Promise.resolve();
  }

  /** Same as {@link close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #enter(
    fn: (() => unknown) | undefined,
    options: RateLimitScheduleOptions | undefined,
    method: string,
  ): Promise<unknown> {
    if (this.#closed) return Promise.reject(new ClosedError(this.#name));
    let weight = 1;
    let priority = 0;
    let signal: AbortSignal | undefined;
    if (options !== undefined) {
      try {
        checkCallOptions(this.#limit, method, options);
      } catch (error) {
        return Promise.reject(error);
      }
      weight = options.weight ?? 1;
      priority = options.priority ?? 0;
      signal = options.signal;
      if (signal?.aborted) return Promise.reject(abortReason(signal));
    }
    if (this.#queue === undefined || this.#queue.size === 0) {
      const now = this.#clock.now();
      let verdict: number;
      try {
        verdict = this.#tryStart(weight, now);
      } catch (error) {
        return Promise.reject(error);
      }
      if (verdict === ADMITTED) {
        this.#profiler?.record('ratelimit.wait', 0);
        if (fn !== undefined) return this.#run(fn, weight, now);
        return Promise.resolve(this.#makeRelease(weight, this.#restamp(weight, now)));
      }
      if (verdict === PENDING) {
        // The store answers asynchronously: this call becomes the head of the line with its reservation in flight.
        const waiter = this.#enqueue(fn, weight, priority, signal, now);
        if (waiter instanceof Promise) {
          // The line is full (maxQueued 0): give back whatever the store reserves for this refused call.
          this.#refundPendingReserve(weight, now);
          return waiter;
        }
        this.#awaitReservation(waiter.waiter, now);
        return waiter.promise;
      }
    }
    const queued = this.#enqueue(fn, weight, priority, signal, this.#clock.now());
    if (queued instanceof Promise) return queued;
    this.#drain();
    return queued.promise;
  }

  #enqueue(
    fn: (() => unknown) | undefined,
    weight: number,
    priority: number,
    signal: AbortSignal | undefined,
    now: number,
  ): { waiter: Waiter; promise: Promise<unknown> } | Promise<never> {
    this.#queue ??= new WaitLine((waiter) => this.#abort(waiter));
    const queue = this.#queue;
    if (queue.size >= this.#maxQueued) {
      this.#rejected++;
      const retryAfterMs = this.#estimateHeadWait(now);
      return Promise.reject(
        new RateLimitError(
          `${this.#name}: ${queue.size} waiters already in line (maxQueued ${this.#maxQueued}); retry in ~${retryAfterMs} ms`,
          retryAfterMs,
        ),
      );
    }
    return queue.push(fn, weight, priority, signal, now);
  }

  /**
   * Decides whether `weight` units may start at `now` and, if so, commits the start. Checks the cheap
   * local limits first so that the store is asked only when everything else allows the start.
   */
  #tryStart(weight: number, now: number): number {
    if (this.#running >= this.#maxConcurrent || this.#reserving !== undefined) return BLOCKED;
    const waitMs = this.#localWaitMs(weight, now);
    if (waitMs > 0) return waitMs;
    if (this.#hasRateLimit && weight > 0) {
      const answer = this.#store.reserve(
        this.#key,
        weight,
        this.#adaptation === undefined ? this.#limit : this.#adaptation.limitAt(now, weight),
        this.#windowMs,
        now,
      );
      if (typeof answer !== 'number') {
        this.#pendingReserve = answer;
        return PENDING;
      }
      if (answer > 0) return answer;
    }
    this.#commit(weight, now);
    return ADMITTED;
  }

  /** Milliseconds the limiter's own state (pause, spacing, upstream budget) holds a start of `weight` back. */
  #localWaitMs(weight: number, now: number): number {
    let waitMs = 0;
    if (this.#pausedUntil > now) waitMs = this.#pausedUntil - now;
    const spacingMs = this.#lastStartAt + this.#minTimeMs - now;
    if (spacingMs > waitMs) waitMs = spacingMs;
    if (this.#upstreamResetAt > now && this.#upstreamRemaining < weight) {
      const resetMs = this.#upstreamResetAt - now;
      if (resetMs > waitMs) waitMs = resetMs;
    }
    return waitMs;
  }

  #commit(weight: number, now: number): void {
    this.#running++;
    this.#started++;
    this.#lastStartAt = now;
    if (this.#upstreamResetAt > now) this.#upstreamRemaining -= weight;
  }

  /**
   * Moves a start's stamp from the decision to the moment the task has really started: for `schedule`,
   * after `fn`'s synchronous part has run; for `acquire`, when the promise resolves. Between the decision
   * and a task's own first clock read there is usually well under a microsecond, but on a loaded machine
   * the process is descheduled for a whole 4 ms scheduler tick often enough (measured: 1 run in 2 of 200
   * tasks at load 10 on 2 cores) that a stamp taken before the call let a 21st task into 200 ms, as seen
   * on the tasks' own start times. Stamping after the call makes the window hold on those. One clock read.
   */
  #restamp(weight: number, decidedAt: number): number {
    const now = this.#clock.now();
    // Within the same millisecond the start is covered by the clock guard (a unit is held 1 ms longer
    // than intervalMs): a store with its own finer clock (Redis's TIME) stamped the reservation less than
    // 1 ms before this start too.
    if (!(now > decidedAt)) return decidedAt;
    this.#lastStartAt = now;
    this.#moveUnits(weight, decidedAt, now);
    return now;
  }

  /** Moves `weight` units stamped at `from` to `to` (later) in the store. */
  #moveUnits(weight: number, from: number, to: number): void {
    if (!this.#hasRateLimit || weight === 0) return;
    const store = this.#store;
    try {
      if (store.restamp !== undefined) {
        // A store that moves a reservation itself (Redis: batched, on its own clock) — also the later move
        // of a task released long after its start.
        const moved = store.restamp(this.#key, weight, from, to);
        if (moved instanceof Promise) {
          moved.catch((error: unknown) =>
            this.#logger.warn({ limiter: this.#name, err: error }, 'rate limit store restamp failed'),
          );
        }
        return;
      }
      // Record the later start first, then give back the earlier one: in between the units are counted
      // twice (safe), never zero times.
      const moved = store.reserve(this.#key, weight, Number.POSITIVE_INFINITY, this.#windowMs, to);
      if (moved instanceof Promise) {
        moved.then(
          () => this.#refund(weight, from),
          () => {},
        );
      } else {
        this.#refund(weight, from);
      }
    } catch (error) {
      this.#logger.warn({ limiter: this.#name, err: error }, 'rate limit store failed');
    }
  }

  #run(fn: () => unknown, weight: number, decidedAt: number): Promise<unknown> {
    let result: unknown;
    try {
      result = fn();
    } catch (error) {
      this.#restamp(weight, decidedAt);
      this.#onDone();
      return Promise.reject(error);
    }
    this.#restamp(weight, decidedAt);
    const promise = result instanceof Promise ? result : Promise.resolve(result);
    // One shared callback, no per-task closure: the slot is freed before the caller's own reactions run.
    const onDone = (this.#onDoneCallback ??= () => this.#onDone());
    promise.then(onDone, onDone);
    return promise;
  }

  #makeRelease(weight: number, startedAt: number): Release {
    let isReleased = false;
    return () => {
      if (isReleased) return;
      isReleased = true;
      if (this.#marginMs > 0) this.#holdIfLate(weight, startedAt);
      this.#onDone();
    };
  }

  /** Moves the units of an acquired task released late (see {@link RateAdaptation.isLate}) to `now`. */
  #holdIfLate(weight: number, startedAt: number): void {
    if (!this.#hasRateLimit || weight === 0) return;
    const now = this.#clock.now();
    if (this.#adapt().isLate(startedAt, now)) this.#moveUnits(weight, startedAt, now);
  }

  #adapt(): RateAdaptation {
    this.#adaptation ??= new RateAdaptation({
      limit: this.#limit,
      intervalMs: this.#intervalMs,
      marginMs: this.#marginMs,
      windowMs: this.#windowMs,
    });
    return this.#adaptation;
  }

  #onDone(): void {
    this.#running--;
    this.#done++;
    if (this.#queue !== undefined && this.#queue.size > 0) {
      // Only under contention is the clock read here, to estimate how soon a slot frees (retryAfterMs).
      const now = this.#clock.now();
      if (!Number.isNaN(this.#lastDoneAt)) {
        const gap = now - this.#lastDoneAt;
        this.#completionGapMs = this.#completionGapMs === 0 ? gap : this.#completionGapMs * 0.8 + gap * 0.2;
      }
      this.#lastDoneAt = now;
      this.#drain();
    } else {
      this.#lastDoneAt = Number.NaN;
    }
  }

  #drain(): void {
    if (this.#draining) return;
    const queue = this.#queue;
    if (queue === undefined) return;
    this.#draining = true;
    try {
      while (!this.#closed) {
        const head = queue.peek();
        if (head === undefined) break;
        const now = this.#clock.now();
        let verdict: number;
        try {
          verdict = this.#tryStart(head.weight, now);
        } catch (error) {
          // The store failed: this waiter gets the error, the next one tries again.
          this.#logger.warn({ limiter: this.#name, err: error }, 'rate limit store failed');
          queue.take(head);
          head.reject(error);
          continue;
        }
        if (verdict === ADMITTED) {
          queue.take(head);
          this.#startWaiter(head, now);
          continue;
        }
        if (verdict === PENDING) this.#awaitReservation(head, now);
        else if (verdict > 0) this.#armTimer(verdict, now);
        break;
      }
      if (queue.size === 0) this.#clearTimer();
    } finally {
      this.#draining = false;
    }
  }

  /** Starts a waiter that was admitted at `now` (the time its units were stamped). */
  #startWaiter(waiter: Waiter, now: number): void {
    this.#profiler?.record('ratelimit.wait', now - waiter.enqueuedAt);
    if (waiter.fn !== undefined) {
      waiter.resolve(this.#run(waiter.fn, waiter.weight, now));
      return;
    }
    waiter.resolve(this.#makeRelease(waiter.weight, this.#restamp(waiter.weight, now)));
  }

  #abort(waiter: Waiter): void {
    const queue = this.#queue;
    if (queue === undefined || !queue.has(waiter)) return;
    queue.take(waiter);
    this.#aborted++;
    waiter.reject(abortReason(waiter.signal as AbortSignal));
    // The head may have been the one blocking: the next waiter gets its chance now.
    this.#drain();
  }

  #awaitReservation(waiter: Waiter, reservedAt: number): void {
    const pending = this.#pendingReserve as Promise<number>;
    this.#pendingReserve = undefined;
    this.#reserving = waiter;
    pending.then(
      (answer) => this.#onReserved(waiter, answer, reservedAt),
      (error: unknown) => {
        this.#reserving = undefined;
        this.#logger.warn({ limiter: this.#name, err: error }, 'rate limit store failed');
        const queue = this.#queue;
        if (queue?.has(waiter)) {
          queue.take(waiter);
          waiter.reject(error);
        }
        this.#drain();
      },
    );
  }

  #onReserved(waiter: Waiter, answer: number, reservedAt: number): void {
    this.#reserving = undefined;
    const queue = this.#queue;
    const isWaiting = queue?.has(waiter) === true;
    if (answer === 0) {
      if (isWaiting && !this.#closed) {
        queue?.take(waiter);
        this.#commit(waiter.weight, this.#clock.now());
        // The store stamped the start at `reservedAt`, one round trip ago: restamping moves it to now.
        this.#startWaiter(waiter, reservedAt);
      } else {
        this.#refund(waiter.weight, reservedAt);
      }
    } else if (isWaiting && !this.#closed) {
      this.#armTimer(answer, this.#clock.now());
      return;
    }
    this.#drain();
  }

  /** Passes a pause on to a store that shares it with every process (see {@link RateLimitStore.pause}). */
  #sharePause(retryAfterMs: number, now: number): void {
    if (this.#store.pause === undefined) return;
    try {
      const shared = this.#store.pause(this.#key, retryAfterMs, now);
      if (shared instanceof Promise) {
        shared.catch((error: unknown) =>
          this.#logger.warn({ limiter: this.#name, err: error }, 'rate limit store could not share the pause'),
        );
      }
    } catch (error) {
      this.#logger.warn({ limiter: this.#name, err: error }, 'rate limit store could not share the pause');
    }
  }

  /** Gives back what an in-flight async store reservation takes, for a call that was refused meanwhile. */
  #refundPendingReserve(weight: number, now: number): void {
    const pending = this.#pendingReserve as Promise<number>;
    this.#pendingReserve = undefined;
    pending.then(
      (answer) => {
        if (answer === 0) this.#refund(weight, now);
      },
      () => {},
    );
  }

  #refund(weight: number, reservedAt: number): void {
    try {
      const done = this.#store.release(this.#key, weight, reservedAt);
      if (done instanceof Promise) {
        done.catch((error: unknown) =>
          this.#logger.warn({ limiter: this.#name, err: error }, 'rate limit store release failed'),
        );
      }
    } catch (error) {
      this.#logger.warn({ limiter: this.#name, err: error }, 'rate limit store release failed');
    }
  }

  #armTimer(waitMs: number, now: number): void {
    const due = now + waitMs;
    if (this.#timer !== undefined) {
      if (this.#timerDue <= due) return;
      clearLongTimeout(this.#clock, this.#timer);
    }
    this.#timerDue = due;
    // Rounded up: a timer that fires before the unit is free only costs one more round.
    this.#onTimerCallback ??= () => {
      this.#timer = undefined;
      this.#drain();
    };
    // Any length: `penalize(3e9)` on a plain timer fired after 1 ms and re-armed in a loop.
    this.#timer = setLongTimeout(this.#clock, this.#onTimerCallback, Math.ceil(waitMs));
  }

  #clearTimer(): void {
    if (this.#timer === undefined) return;
    clearLongTimeout(this.#clock, this.#timer);
    this.#timer = undefined;
  }

  /** Estimated milliseconds until the head of the line starts, i.e. until the line has room again. */
  #estimateHeadWait(now: number): number {
    if (this.#timer !== undefined) return Math.max(1, Math.ceil(this.#timerDue - now));
    let waitMs = Math.max(this.#pausedUntil - now, this.#lastStartAt + this.#minTimeMs - now);
    if (this.#running >= this.#maxConcurrent) waitMs = Math.max(waitMs, this.#completionGapMs);
    return Math.max(1, Math.ceil(waitMs));
  }
}
