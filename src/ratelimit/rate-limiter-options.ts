/**
 * Options, call options, results and counters of {@link RateLimiter}, and the validation of each.
 * @module
 */
import { type Clock, systemClock } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { describeValue, validateOptions } from '../core/options.js';
import type { LatencyRecorder } from '../core/recorder.js';
import type { RateLimiter } from './rate-limiter.js';
import type { RateLimitStore } from './store.js';

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
const DEFAULT_MAX_QUEUED = 100_000;

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
 * Checks a call's `weight` against `limit`.
 * @throws ConfigError naming the method, the value and the allowed range.
 * @internal
 */
export function checkWeight(limit: number, method: string, weight: unknown): void {
  const name = `RateLimiter.${method}.weight`;
  if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0) {
    throw new ConfigError(name, `${name} must be a finite number >= 0, got ${describeValue(weight)}`);
  }
  if (weight > limit) {
    throw new ConfigError(
      name,
      `${name} must be <= limit (${limit}); a weight of ${weight} could never start, got ${weight}`,
    );
  }
}

/**
 * Checks the options of a `schedule` or `acquire` call.
 * @throws ConfigError naming the option, the value and what is allowed.
 * @internal
 */
export function checkCallOptions(limit: number, method: string, options: RateLimitScheduleOptions): void {
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
  if (options.weight !== undefined) checkWeight(limit, method, options.weight);
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
