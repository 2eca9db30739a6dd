/**
 * RateLimiter: a true sliding window (never more than `limit` units started in any `intervalMs`),
 * plus `maxConcurrent`, `minTimeMs` spacing, priorities, weights, upstream feedback and abortable waits.
 * One timer at most per limiter, none at all while the limit does not bind.
 * @module
 */
import { abortReason } from '../core/abort.js';
import { type Clock, systemClock, type TimerHandle } from '../core/clock.js';
import { ClosedError, ConfigError, RateLimitError } from '../core/errors.js';
import { Heap, type HeapEntry } from '../core/heap.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { clearLongTimeout, setLongTimeout } from '../core/long-timeout.js';
import { checkNumber, describeValue, validateOptions } from '../core/options.js';
import type { LatencyRecorder } from '../core/recorder.js';
import { MemoryRateLimitStore } from './memory-store.js';
import type { RateLimitStore, ReserveResult } from './store.js';

/** Options of {@link RateLimiter}. */
export interface RateLimiterOptions {
  /** Units (see `weight`) that may start in any window of `intervalMs`; `Infinity` for no rate limit. */
  limit: number;
  /** Length of the sliding window in milliseconds (> 0). */
  intervalMs: number;
  /** Most tasks running at once (default `Infinity`). A task runs from its start until it settles or is released. */
  maxConcurrent?: number;
  /** Least milliseconds between two starts (default 0). */
  minTimeMs?: number;
  /**
   * Most waiters in line (default 100,000). One more is rejected at once with {@link RateLimitError};
   * 0 means "never wait". Each waiter costs about 200 bytes.
   */
  maxQueued?: number;
  /**
   * Extra milliseconds each unit stays counted after `intervalMs` (default with the system clock:
   * {@link DEFAULT_MARGIN_MS} = 40 ms, or 4% of `intervalMs` when that is less; 0 with an injected `clock`),
   * so that requests reaching an upstream that counts by *arrival* time stay inside its quota: arrivals
   * jitter by a few ms, and without a margin two windows touch (a limiter exactly at 20 per 1,000 ms let
   * an upstream see up to 30). Costs `marginMs / intervalMs` of throughput; 0 for an exact window.
   */
  marginMs?: number;
  /** Where starts are counted (default: a private {@link MemoryRateLimitStore}); a shared store shares the limit. */
  store?: RateLimitStore;
  /** Key of this limiter's window in `store` (default `"default"`); limiters sharing a store and key share a limit. */
  key?: string;
  /** Name used in error messages and logs (default `"RateLimiter"`). */
  name?: string;
  /** Time source (default: the system clock). */
  clock?: Clock;
  /** Receives `ratelimit.wait`: milliseconds from the call to the start (0 when it started at once). */
  profiler?: LatencyRecorder;
  /** Receives penalties and store errors. */
  logger?: Logger;
}

/** Per-call options of {@link RateLimiter.schedule} and {@link RateLimiter.acquire}. */
export interface RateLimitScheduleOptions {
  /** Higher starts first (default 0); equal priorities start in call order. Any finite number. */
  priority?: number;
  /** Units this call consumes from `limit` (default 1); 0 counts only for concurrency and spacing. */
  weight?: number;
  /** Aborting leaves the line at once; the promise rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/** Options of {@link RateLimiter.acquire}; the same as for `schedule`. */
export type AcquireOptions = RateLimitScheduleOptions;

/** Ends a task's hold on its concurrency slot. Calling it more than once is harmless. */
export type Release = () => void;

/** Answer of {@link RateLimiter.tryAcquire}. */
export interface TryAcquireResult {
  /** True when the call may start now. */
  ok: boolean;
  /** When `ok` is false: milliseconds after which trying again makes sense (an estimate, ≥ 1). 0 when `ok`. */
  retryAfterMs: number;
  /** Call when the work ends (frees the concurrency slot); a no-op when `ok` is false. */
  release: Release;
  /**
   * Units left in the window after this call, when the store reports them (`tryAcquireAsync` on a store
   * with `reserveDetailed`, e.g. the memory and Redis stores); undefined otherwise.
   */
  remaining?: number;
}

/** Counters of a {@link RateLimiter}; plain numbers. */
export interface RateLimiterStats {
  /** Tasks started and not yet settled or released. */
  running: number;
  /** Waiters in line. */
  queued: number;
  /** Sum of the weights of the waiters in line. */
  queuedWeight: number;
  /** Tasks started since construction. */
  started: number;
  /** Tasks finished (settled or released). */
  done: number;
  /** Calls refused with {@link RateLimitError} because the line was full. */
  rejected: number;
  /** Waiters that left the line because their signal aborted. */
  aborted: number;
  /** Calls to `penalize`. */
  penalties: number;
  /** Milliseconds left of the current pause (0 when not paused). */
  pausedForMs: number;
  /**
   * Share of `limit` in force per window (1 = all of it): below 1 after {@link RateLimiter.reportOverLimit},
   * recovering by 0.02 per `intervalMs`.
   */
  rateFactor: number;
}

interface Waiter {
  readonly priority: number;
  readonly seq: number;
  readonly weight: number;
  /** The task of a `schedule` call; undefined for `acquire`. */
  readonly fn: (() => unknown) | undefined;
  readonly enqueuedAt: number;
  readonly signal: AbortSignal | undefined;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  onAbort: (() => void) | undefined;
  entry: HeapEntry<Waiter> | undefined;
}

/** `#tryStart` verdicts; a positive number is the milliseconds to wait. */
const ADMITTED = 0;
/** Blocked until a running task ends or an asynchronous reservation answers: no timer needed. */
const BLOCKED = -1;
/** The store answered with a promise, left in `#pendingReserve`. */
const PENDING = -2;

const NOOP_RELEASE: Release = () => {};

/**
 * Default of `marginMs`, measured against a loopback upstream enforcing 20 per 1,000 ms by arrival time
 * (test/client/quota.test.ts, bench/client.bench.ts) on a shared 2-core machine at load 8–16: the
 * spread of request delivery delays was 15–90 ms (the first burst also pays connection setup), and
 * 20 s runs refused 20–33 calls with margins of 0–25 ms and none with 40 ms. 40 ms costs 4% of a 1 s
 * window's throughput (still ≥ 95% of the quota used) and 0.07% of a 1-minute one. On an idle machine
 * a few ms would do; a 429 that still happens is handled by {@link RateLimiter.reportOverLimit}.
 */
export const DEFAULT_MARGIN_MS = 40;
/** The default margin never costs more than this share of `intervalMs` (4%: 8 ms for a 200 ms window). */
const MAX_DEFAULT_MARGIN_SHARE = 0.04;
/** `reportOverLimit` multiplies the rate in force by this (the multiplicative decrease of AIMD). */
const OVER_LIMIT_FACTOR = 0.8;
/** The rate in force recovers by this share of the configured rate per `intervalMs` (additive increase). */
const RECOVERY_PER_INTERVAL = 0.02;
/** The rate in force never drops below this share of the configured one. */
const MIN_RATE_FACTOR = 0.1;
const DEFAULT_MAX_QUEUED = 100_000;

/**
 * `Date.now()` truncates to whole milliseconds: a start stamped 1000 may really have happened at
 * 1000.9, and freeing its unit at 1200 would let the next start at a true 1200.0, 199.1 ms later.
 * With the system clock a unit is therefore freed 1 ms late (0.5% of a 200 ms window), which keeps
 * the window exact on the tasks' own high-resolution start times.
 */
const SYSTEM_CLOCK_GUARD_MS = 1;

/** Validated, defaulted options; also what {@link KeyedRateLimiter} hands to each per-key limiter. */
export interface ResolvedRateLimiterOptions {
  readonly limit: number;
  readonly intervalMs: number;
  readonly maxConcurrent: number;
  readonly minTimeMs: number;
  readonly maxQueued: number;
  readonly marginMs: number;
  readonly store: RateLimitStore | undefined;
  readonly key: string;
  readonly name: string;
  readonly clock: Clock;
  readonly profiler: LatencyRecorder | undefined;
  readonly logger: Logger;
}

/**
 * Hand-off for {@link createRateLimiter}: per-key limiters are built from options validated once, with
 * no per-limiter options object. (A WeakSet brand on a spread copy made GC 11 of 16 s for 1,000,000 keys.)
 */
const TRUSTED: RateLimiterOptions = Object.freeze({ limit: 1, intervalMs: 1 });
let handoff: { base: ResolvedRateLimiterOptions; key: string; name: string } | undefined;

/** Option rules of {@link RateLimiter} (also used for {@link KeyedRateLimiter}). */
const RATE_LIMITER_SCHEMA = {
  limit: { type: 'number', required: true, exclusiveMin: true, min: 0, allowInfinity: true },
  intervalMs: { type: 'number', required: true, exclusiveMin: true, min: 0 },
  maxConcurrent: { type: 'number', integer: true, min: 1, allowInfinity: true },
  minTimeMs: { type: 'number', min: 0 },
  maxQueued: { type: 'number', integer: true, min: 0, allowInfinity: true },
  marginMs: { type: 'number', min: 0, max: 3_600_000 },
  store: { type: 'object' },
  key: { type: 'string', nonEmpty: true, maxLength: 1024 },
  name: { type: 'string', nonEmpty: true, maxLength: 200 },
  clock: { type: 'object' },
  profiler: { type: 'object' },
  logger: { type: 'object' },
} as const;

/**
 * Validates and defaults limiter options.
 * @throws ConfigError naming the option, the value and the allowed range.
 * @internal
 */
export function resolveRateLimiterOptions(scope: string, options: RateLimiterOptions): ResolvedRateLimiterOptions {
  validateOptions(scope, options, RATE_LIMITER_SCHEMA);
  const { store, clock, profiler, logger } = options;
  if (store !== undefined && (typeof store.reserve !== 'function' || typeof store.release !== 'function')) {
    throw new ConfigError(`${scope}.store`, `${scope}.store must have reserve() and release() methods`);
  }
  if (
    clock !== undefined &&
    (typeof clock.now !== 'function' ||
      typeof clock.setTimeout !== 'function' ||
      typeof clock.clearTimeout !== 'function')
  ) {
    throw new ConfigError(`${scope}.clock`, `${scope}.clock must have now(), setTimeout() and clearTimeout()`);
  }
  if (profiler !== undefined && typeof profiler.record !== 'function') {
    throw new ConfigError(`${scope}.profiler`, `${scope}.profiler must have a record() method`);
  }
  if (logger !== undefined && typeof logger.warn !== 'function') {
    throw new ConfigError(`${scope}.logger`, `${scope}.logger must have debug/info/warn/error methods`);
  }
  const resolved: ResolvedRateLimiterOptions = {
    limit: options.limit,
    intervalMs: options.intervalMs,
    maxConcurrent: options.maxConcurrent ?? Number.POSITIVE_INFINITY,
    minTimeMs: options.minTimeMs ?? 0,
    maxQueued: options.maxQueued ?? DEFAULT_MAX_QUEUED,
    // Jitter is a property of real time: with an injected clock (tests) the window is exact by default.
    marginMs:
      options.marginMs ??
      (clock === undefined || clock === systemClock
        ? Math.min(DEFAULT_MARGIN_MS, options.intervalMs * MAX_DEFAULT_MARGIN_SHARE)
        : 0),
    store,
    key: options.key ?? 'default',
    name: options.name ?? 'RateLimiter',
    clock: clock ?? systemClock,
    profiler,
    logger: logger ?? silentLogger,
  };
  return resolved;
}

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

function compareWaiters(a: Waiter, b: Waiter): boolean {
  return a.priority > b.priority || (a.priority === b.priority && a.seq < b.seq);
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

  #queue: Heap<Waiter> | undefined;
  #seq = 0;
  #running = 0;
  #queuedWeight = 0;
  #lastStartAt = Number.NEGATIVE_INFINITY;
  #pausedUntil = Number.NEGATIVE_INFINITY;
  #upstreamRemaining = Number.POSITIVE_INFINITY;
  #upstreamResetAt = Number.NEGATIVE_INFINITY;
  /** Share of the configured rate in force after the last over-limit report (AIMD), and when it was set. */
  #rateFactor = 1;
  #rateFactorAt = Number.NEGATIVE_INFINITY;
  /** Fastest acquired task seen (start → release), in ms: the baseline a late task is measured against. */
  #fastestMs = 0;
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
    this.#checkWeight('tryAcquire', weight);
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
    this.#checkWeight('tryAcquireAsync', weight);
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
    if (this.#pausedUntil > now || now - this.#rateFactorAt < this.#intervalMs) return;
    this.#rateFactor = Math.max(MIN_RATE_FACTOR, this.#factorAt(now) * OVER_LIMIT_FACTOR);
    this.#rateFactorAt = now;
    this.#logger.info(
      { limiter: this.#name, rateFactor: this.#rateFactor },
      'rate limiter slowed down by reportOverLimit()',
    );
  }

  /** Counters; plain numbers. */
  stats(): RateLimiterStats {
    const now = this.#clock.now();
    return {
      running: this.#running,
      queued: this.#queue?.size ?? 0,
      queuedWeight: this.#queuedWeight,
      started: this.#started,
      done: this.#done,
      rejected: this.#rejected,
      aborted: this.#aborted,
      penalties: this.#penalties,
      pausedForMs: Math.max(0, this.#pausedUntil - now),
      rateFactor: this.#factorAt(now),
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
      this.#factorAt(now) === 1
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
      const waiters = [...queue.values()];
      queue.clear();
      this.#queuedWeight = 0;
      for (const waiter of waiters) {
        this.#detach(waiter);
        waiter.reject(error);
      }
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
        this.#checkCallOptions(method, options);
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
    this.#queue ??= new Heap<Waiter>(compareWaiters);
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
    let resolve!: (value: unknown) => void;
    let reject!: (error: unknown) => void;
    const promise = new Promise<unknown>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const waiter: Waiter = {
      priority,
      seq: this.#seq++,
      weight,
      fn,
      enqueuedAt: now,
      signal,
      resolve,
      reject,
      onAbort: undefined,
      entry: undefined,
    };
    waiter.entry = queue.push(waiter);
    this.#queuedWeight += weight;
    if (signal !== undefined) {
      waiter.onAbort = () => this.#abort(waiter);
      signal.addEventListener('abort', waiter.onAbort, { once: true });
    }
    return { waiter, promise };
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
      const answer = this.#store.reserve(this.#key, weight, this.#limitAt(now, weight), this.#windowMs, now);
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

  #makeRelease(weight: number, startedAt: number): Release {
    let isReleased = false;
    return () => {
      if (isReleased) return;
      isReleased = true;
      if (this.#marginMs > 0) this.#holdIfLate(weight, startedAt);
      this.#onDone();
    };
  }

  /**
   * An acquired task that took more than `marginMs` longer than the fastest one (start → release) may
   * have reached the upstream that much later too, and a fixed margin would let the next window touch
   * its arrival. Its units are moved to the release time, the latest it can have arrived, so the
   * margin adapts to the delays actually seen (a loaded machine: tens of ms) while prompt tasks keep
   * the plain window. Measured at load 15: with `marginMs` 40 alone, 13 refusals in 15 s; with this, 0.
   */
  #holdIfLate(weight: number, startedAt: number): void {
    if (!this.#hasRateLimit || weight === 0) return;
    const now = this.#clock.now();
    const tookMs = now - startedAt;
    // The fastest task seen, starting from 0 (the first burst often pays connection setup) and drifting up
    // 1% per task, so an upstream with a steady 200 ms round trip gets a 200 ms baseline, not a late verdict
    // on every call. Half the margin, not all of it: the task may have arrived anywhere in its duration.
    this.#fastestMs = tookMs < this.#fastestMs ? tookMs : this.#fastestMs + (tookMs - this.#fastestMs) * 0.01;
    if (tookMs - this.#fastestMs > this.#marginMs / 2 && tookMs < this.#windowMs) {
      this.#moveUnits(weight, startedAt, now);
    }
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
          this.#take(head);
          head.reject(error);
          continue;
        }
        if (verdict === ADMITTED) {
          this.#take(head);
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

  #take(waiter: Waiter): void {
    if (waiter.entry !== undefined) this.#queue?.remove(waiter.entry);
    this.#queuedWeight -= waiter.weight;
    this.#detach(waiter);
  }

  #detach(waiter: Waiter): void {
    if (waiter.onAbort !== undefined) {
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.onAbort = undefined;
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
    const entry = waiter.entry;
    if (entry === undefined || entry.index < 0) return;
    this.#take(waiter);
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
        if (waiter.entry !== undefined && waiter.entry.index >= 0) {
          this.#take(waiter);
          waiter.reject(error);
        }
        this.#drain();
      },
    );
  }

  #onReserved(waiter: Waiter, answer: number, reservedAt: number): void {
    this.#reserving = undefined;
    const isWaiting = waiter.entry !== undefined && waiter.entry.index >= 0;
    if (answer === 0) {
      if (isWaiting && !this.#closed) {
        this.#take(waiter);
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

  /** The share of the configured rate in force at `now` (1 unless an over-limit report is recovering). */
  #factorAt(now: number): number {
    if (this.#rateFactor === 1) return 1;
    const factor = this.#rateFactor + (RECOVERY_PER_INTERVAL * (now - this.#rateFactorAt)) / this.#intervalMs;
    if (factor < 1) return factor;
    this.#rateFactor = 1;
    return 1;
  }

  /**
   * Units that may start per window at `now`: the limit, lowered while an over-limit report recovers. The
   * count drops, not only the pace: an upstream with a smaller quota refuses the excess of every burst.
   */
  #limitAt(now: number, weight: number): number {
    if (this.#rateFactor === 1) return this.#limit;
    const lowered = Math.floor(this.#limit * this.#factorAt(now));
    // Never below one unit (or what one call weighs), so the line keeps moving while the rate recovers.
    return Math.max(lowered, weight, Math.min(this.#limit, 1));
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

  #checkWeight(method: string, weight: unknown): void {
    const name = `RateLimiter.${method}.weight`;
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0) {
      throw new ConfigError(name, `${name} must be a finite number >= 0, got ${describeValue(weight)}`);
    }
    if (weight > this.#limit) {
      throw new ConfigError(
        name,
        `${name} must be <= limit (${this.#limit}); a weight of ${weight} could never start, got ${weight}`,
      );
    }
  }

  #checkCallOptions(method: string, options: RateLimitScheduleOptions): void {
    if (options === null || typeof options !== 'object') {
      throw new ConfigError(
        `RateLimiter.${method}`,
        `RateLimiter.${method} options must be an object, got ${describeValue(options)}`,
      );
    }
    for (const key in options) {
      if (key !== 'priority' && key !== 'weight' && key !== 'signal') {
        throw new ConfigError(
          `RateLimiter.${method}.${key}`,
          `RateLimiter.${method}: unknown option "${key}" (known options: priority, weight, signal)`,
        );
      }
    }
    if (options.weight !== undefined) this.#checkWeight(method, options.weight);
    const priority = options.priority;
    if (priority !== undefined && (typeof priority !== 'number' || !Number.isFinite(priority))) {
      const name = `RateLimiter.${method}.priority`;
      throw new ConfigError(name, `${name} must be a finite number, got ${describeValue(priority)}`);
    }
    const signal = options.signal;
    if (
      signal !== undefined &&
      (signal === null || typeof signal !== 'object' || typeof signal.addEventListener !== 'function')
    ) {
      const name = `RateLimiter.${method}.signal`;
      throw new ConfigError(name, `${name} must be an AbortSignal, got ${describeValue(signal)}`);
    }
  }
}
