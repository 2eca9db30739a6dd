/**
 * A consecutive-failure circuit breaker: after `failureThreshold` failures in a row it opens and
 * calls fail fast; after `halfOpenAfterMs` one probe is let through, whose outcome closes or re-opens it.
 * @module
 */

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
 * Tracks the health of one upstream. Callers ask {@link CircuitBreaker.enter} before each attempt and
 * report the outcome with {@link CircuitBreaker.success}, {@link CircuitBreaker.failure} or
 * {@link CircuitBreaker.cancel} (an attempt abandoned by its caller proves nothing either way).
 * Can be shared by several clients that call the same upstream.
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
   * Admits one attempt. Returns `true` when the attempt is the half-open probe (report its outcome!).
   * @throws CircuitOpenError (with `retryAfterMs`) when the circuit is open or a probe is already out.
   */
  enter(): boolean {
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

  /** Reports a successful attempt: resets the failure count and closes a half-open circuit. */
  success(isProbe: boolean): void {
    if (isProbe) this.#isProbeInFlight = false;
    this.#failures = 0;
    if (this.#state !== 'closed' && (isProbe || this.#state === 'half-open')) this.#setState('closed');
  }

  /** Reports a failed attempt: a failed probe re-opens; the threshold-th failure in a row opens. */
  failure(isProbe: boolean): void {
    if (isProbe) this.#isProbeInFlight = false;
    this.#failures++;
    if (isProbe || (this.#state === 'closed' && this.#failures >= this.#threshold)) this.#open();
  }

  /** Reports an attempt that ended without a verdict (caller abort): frees the probe slot. */
  cancel(isProbe: boolean): void {
    if (isProbe) this.#isProbeInFlight = false;
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
