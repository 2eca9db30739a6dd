/**
 * A consecutive-failure circuit breaker: after `failureThreshold` failures in a row it opens and
 * calls fail fast; after `halfOpenAfterMs` one probe is let through, whose outcome closes or re-opens it.
 * Shaped like cockatiel's policies: `execute(fn, signal)` runs `fn` and keeps the verdict inside.
 * @module
 */

import { abortReason } from '../core/abort.js';
import { type Clock, systemClock } from '../core/clock.js';
import { CircuitOpenError } from '../core/errors.js';
import { validateOptions } from '../core/options.js';

/** Options of {@link CircuitBreaker}. */
export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit (integer 1–10,000, default 5). */
  failureThreshold?: number;
  /** How long the circuit stays open before one probe is allowed, in ms (default 30,000). */
  halfOpenAfterMs?: number;
  /** Time source (default: the system clock). */
  clock?: Clock;
  /** Name used in error messages (default `circuit`). */
  name?: string;
  /** Called on every transition (closed → open, open → half-open, half-open → closed/open), e.g. to log. */
  onStateChange?: (state: CircuitState, previous: CircuitState) => void;
}

/** `closed` lets everything through, `open` nothing, `half-open` exactly one probe. */
export type CircuitState = 'closed' | 'open' | 'half-open';

/** Counters of a {@link CircuitBreaker}; plain numbers. */
export interface CircuitBreakerStats {
  /** 0 closed, 1 open, 2 half-open. */
  state: number;
  /** Failures in a row right now. */
  consecutiveFailures: number;
  /** Times the circuit went from closed/half-open to open. */
  opened: number;
  /** Calls refused with {@link CircuitOpenError}. */
  rejected: number;
}

const SCHEMA = {
  failureThreshold: { type: 'number', min: 1, max: 10_000, integer: true },
  halfOpenAfterMs: { type: 'number', min: 0, max: 86_400_000 },
  clock: { type: 'object' },
  name: { type: 'string', nonEmpty: true, maxLength: 200 },
  onStateChange: { type: 'function' },
} as const;

const STATE_CODE: Record<CircuitState, number> = { closed: 0, open: 1, 'half-open': 2 };

/**
 * What one outcome says about the upstream's health: `success` resets the failure count (and closes a
 * half-open circuit), `failure` counts towards opening it, `ignore` says nothing either way.
 */
export type CircuitVerdict = 'success' | 'failure' | 'ignore';

/**
 * Tells {@link CircuitBreaker.execute} what an outcome of `fn` means. Without a judge every resolved
 * value is a success and every error a failure.
 */
export interface CircuitJudge<T> {
  /** Verdict on a value `fn` resolved with (default `success`), e.g. `failure` for an HTTP 503 response. */
  result?(value: T): CircuitVerdict;
  /** Verdict on an error `fn` threw (default `failure`), e.g. `ignore` for an error raised before the upstream was reached. */
  error?(error: unknown): CircuitVerdict;
}

/**
 * Tracks the health of one upstream. Work goes through {@link CircuitBreaker.execute}, which refuses it
 * while the circuit is open and counts its outcome; the half-open probe is managed inside, so a caller
 * can never leave it dangling. Can be shared by several clients that call the same upstream.
 *
 * @example
 * ```ts
 * const breaker = new CircuitBreaker({ failureThreshold: 5, halfOpenAfterMs: 30_000 });
 * const price = await breaker.execute((signal) => fetchPrice('AAPL', { signal }), signal);
 * ```
 */
export class CircuitBreaker {
  readonly #threshold: number;
  readonly #halfOpenAfterMs: number;
  readonly #clock: Clock;
  readonly #name: string;
  readonly #onStateChange: ((state: CircuitState, previous: CircuitState) => void) | undefined;
  #state: CircuitState = 'closed';
  #failures = 0;
  #openedAt = 0;
  #isProbeInFlight = false;
  #opened = 0;
  #rejected = 0;

  /** @throws ConfigError for unknown or out-of-range options. */
  constructor(options: CircuitBreakerOptions = {}) {
    validateOptions('CircuitBreaker', options, SCHEMA);
    this.#threshold = options.failureThreshold ?? 5;
    this.#halfOpenAfterMs = options.halfOpenAfterMs ?? 30_000;
    this.#clock = options.clock ?? systemClock;
    this.#name = options.name ?? 'circuit';
    this.#onStateChange = options.onStateChange;
  }

  /** Current state; an open circuit whose wait is over reports `half-open`. */
  get state(): CircuitState {
    if (this.#state === 'open' && this.#clock.now() - this.#openedAt >= this.#halfOpenAfterMs) return 'half-open';
    return this.#state;
  }

  /**
   * Runs `fn` when the circuit lets it through and counts its outcome: a value is a success and an
   * error a failure, unless `judge` says otherwise; an error caused by `signal` aborting (the caller gave
   * up) counts as nothing. Resolves or rejects as `fn` does.
   * @param fn - the work; receives `signal` to pass on.
   * @param signal - the caller's signal; an aborted signal rejects at once with its reason, `fn` unrun.
   * @param judge - turns outcomes into verdicts (see {@link CircuitJudge}).
   * @throws (rejects) CircuitOpenError (with `retryAfterMs`) when the circuit is open or its one
   *   half-open probe is still running; `fn`'s error otherwise.
   */
  async execute<T>(
    fn: (signal: AbortSignal | undefined) => PromiseLike<T> | T,
    signal?: AbortSignal,
    judge?: CircuitJudge<T>,
  ): Promise<T> {
    if (signal?.aborted) throw abortReason(signal);
    const isProbe = this.#enter();
    let value: T;
    try {
      value = await fn(signal);
    } catch (error) {
      const isCallerAbort = signal?.aborted === true && error === abortReason(signal);
      this.#settle(isProbe, isCallerAbort ? 'ignore' : (judge?.error?.(error) ?? 'failure'));
      throw error;
    }
    this.#settle(isProbe, judge?.result?.(value) ?? 'success');
    return value;
  }

  /** Counters; plain numbers. */
  stats(): CircuitBreakerStats {
    return {
      state: STATE_CODE[this.state],
      consecutiveFailures: this.#failures,
      opened: this.#opened,
      rejected: this.#rejected,
    };
  }

  /** Admits one run; true when it is the half-open probe. Throws CircuitOpenError when refused. */
  #enter(): boolean {
    if (this.#state === 'closed') return false;
    if (this.#state === 'open') {
      const waitedMs = this.#clock.now() - this.#openedAt;
      if (waitedMs < this.#halfOpenAfterMs) {
        this.#rejected++;
        const retryAfterMs = this.#halfOpenAfterMs - waitedMs;
        throw new CircuitOpenError(`${this.#name} is open; next probe in ${Math.ceil(retryAfterMs)} ms`, retryAfterMs);
      }
      this.#setState('half-open');
    }
    if (this.#isProbeInFlight) {
      this.#rejected++;
      throw new CircuitOpenError(`${this.#name} is half-open and its probe is still running`, 0);
    }
    this.#isProbeInFlight = true;
    return true;
  }

  /**
   * Counts one outcome. A success resets the failure count and closes a half-open circuit; a failed
   * probe re-opens it, and the threshold-th failure in a row opens it; `ignore` only frees the probe slot.
   */
  #settle(isProbe: boolean, verdict: CircuitVerdict): void {
    if (isProbe) this.#isProbeInFlight = false;
    if (verdict === 'success') {
      this.#failures = 0;
      if (this.#state !== 'closed' && (isProbe || this.#state === 'half-open')) this.#setState('closed');
    } else if (verdict === 'failure') {
      this.#failures++;
      if (isProbe || (this.#state === 'closed' && this.#failures >= this.#threshold)) this.#open();
    }
  }

  #open(): void {
    this.#openedAt = this.#clock.now();
    this.#opened++;
    this.#setState('open');
  }

  #setState(state: CircuitState): void {
    const previous = this.#state;
    this.#state = state;
    if (previous !== state) this.#onStateChange?.(state, previous);
  }
}
