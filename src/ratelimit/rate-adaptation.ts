/**
 * RateAdaptation: what a {@link RateLimiter} learns from its upstream — the share of `limit` in force
 * after an over-limit report (AIMD), and the fastest task seen, against which a late task is measured.
 * @module
 */
import type { RateLimiter } from './rate-limiter.js';
import type { ResolvedRateLimiterOptions } from './rate-limiter-options.js';

/** `slowDown` multiplies the rate in force by this (the multiplicative decrease of AIMD). */
const OVER_LIMIT_FACTOR = 0.8;
/** The rate in force recovers by this share of the configured rate per `intervalMs` (additive increase). */
const RECOVERY_PER_INTERVAL = 0.02;
/** The rate in force never drops below this share of the configured one. */
const MIN_RATE_FACTOR = 0.1;

/**
 * The limiter's window, as {@link RateAdaptation} needs it: the configured `limit`, `intervalMs` and
 * `marginMs`, and `windowMs`, how long the store holds a unit (`intervalMs` plus the margin and the clock guard).
 * @internal
 */
export type AdaptedWindow = Pick<ResolvedRateLimiterOptions, 'limit' | 'intervalMs' | 'marginMs'> & {
  readonly windowMs: number;
};

/**
 * Upstream-driven adjustments of one {@link RateLimiter}, created on first use so that idle per-key
 * limiters stay small. Holds no timers; every method takes the current time.
 * @internal
 */
export class RateAdaptation {
  readonly #window: AdaptedWindow;
  /** Share of the configured rate in force after the last over-limit report (AIMD), and when it was set. */
  #rateFactor = 1;
  #rateFactorAt = Number.NEGATIVE_INFINITY;
  /** Fastest acquired task seen (start → release), in ms: the baseline a late task is measured against. */
  #fastestMs = 0;

  constructor(window: AdaptedWindow) {
    this.#window = window;
  }

  /** The share of the configured rate set by the last drop (before recovery). */
  get rateFactor(): number {
    return this.#rateFactor;
  }

  /**
   * Drops the rate in force to 80% of what it is at `now` (never below 10%). One burst of refusals is one
   * event: a report within `intervalMs` of the last drop is ignored.
   * @returns true when the rate dropped.
   */
  slowDown(now: number): boolean {
    if (now - this.#rateFactorAt < this.#window.intervalMs) return false;
    this.#rateFactor = Math.max(MIN_RATE_FACTOR, this.factorAt(now) * OVER_LIMIT_FACTOR);
    this.#rateFactorAt = now;
    return true;
  }

  /** The share of the configured rate in force at `now` (1 unless an over-limit report is recovering). */
  factorAt(now: number): number {
    if (this.#rateFactor === 1) return 1;
    const factor = this.#rateFactor + (RECOVERY_PER_INTERVAL * (now - this.#rateFactorAt)) / this.#window.intervalMs;
    if (factor < 1) return factor;
    this.#rateFactor = 1;
    return 1;
  }

  /**
   * Units that may start per window at `now`: the limit, lowered while an over-limit report recovers. The
   * count drops, not only the pace: an upstream with a smaller quota refuses the excess of every burst.
   */
  limitAt(now: number, weight: number): number {
    const limit = this.#window.limit;
    if (this.#rateFactor === 1) return limit;
    const lowered = Math.floor(limit * this.factorAt(now));
    // Never below one unit (or what one call weighs), so the line keeps moving while the rate recovers.
    return Math.max(lowered, weight, Math.min(limit, 1));
  }

  /**
   * An acquired task that took more than `marginMs` longer than the fastest one (start → release) may
   * have reached the upstream that much later too, and a fixed margin would let the next window touch
   * its arrival; the limiter then moves its units to the release time, the latest it can have arrived,
   * so the margin adapts to the delays actually seen (a loaded machine: tens of ms) while prompt tasks
   * keep the plain window. Measured at load 15: with `marginMs` 40 alone, 13 refusals in 15 s; with this, 0.
   * @returns true when the task released at `now` counts as late.
   */
  isLate(startedAt: number, now: number): boolean {
    const tookMs = now - startedAt;
    // The fastest task seen, starting from 0 (the first burst often pays connection setup) and drifting up
    // 1% per task, so an upstream with a steady 200 ms round trip gets a 200 ms baseline, not a late verdict
    // on every call. Half the margin, not all of it: the task may have arrived anywhere in its duration.
    this.#fastestMs = tookMs < this.#fastestMs ? tookMs : this.#fastestMs + (tookMs - this.#fastestMs) * 0.01;
    return tookMs - this.#fastestMs > this.#window.marginMs / 2 && tookMs < this.#window.windowMs;
  }
}
