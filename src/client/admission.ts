/**
 * Admission of one attempt: a `maxConcurrent` slot, then a rate-limiter start, both before the call's
 * deadline. The wait ends as soon as the attempt is aborted (its timer, the caller), and a slot granted
 * after that is handed straight back, so an abandoned wait never holds a gate or limiter slot.
 * @module
 */
import { setMaxListeners } from 'node:events';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { LimiterAcquireOptions } from '../core/collaborators.js';
import { TimeoutError } from '../core/errors.js';
import { clearLongTimeout, setLongTimeout } from '../core/long-timeout.js';
import type { ClientRateLimiter } from './collaborators.js';
import type { ConcurrencyGate } from './concurrency-gate.js';
import type { Exchange } from './exchange.js';

/** Deadline buckets for limiter/gate waits share one AbortSignal per 50 ms (see `#deadlineSignal`). */
const DEADLINE_BUCKET_MS = 50;

/** What admission needs to know about a call. */
export interface AdmissionRequest {
  /** Epoch ms after which the call's budget is spent. */
  readonly deadline: number;
  /** The caller's signal; without one, a shared deadline signal cleans the waiting lines up. */
  readonly signal: AbortSignal | undefined;
  /** Priority and weight passed on to the limiter. */
  readonly limiterOptions: LimiterAcquireOptions | undefined;
}

/** Gives back what an admission took (the limiter's start stays counted; the slots are freed). */
export type AdmissionTicket = () => void;

const NOTHING_TAKEN: AdmissionTicket = () => {};

/** The gate and the limiter of one client, taken in that order by every attempt. */
export class Admission {
  readonly #gate: ConcurrencyGate | undefined;
  readonly #limiter: ClientRateLimiter | undefined;
  readonly #clock: Clock;
  readonly #deadlineBuckets = new Map<number, { controller: AbortController; timer: TimerHandle }>();

  constructor(gate: ConcurrencyGate | undefined, limiter: ClientRateLimiter | undefined, clock: Clock) {
    this.#gate = gate;
    this.#limiter = limiter;
    this.#clock = clock;
  }

  /** Attempts waiting for a `maxConcurrent` slot. */
  get queued(): number {
    return this.#gate?.queued ?? 0;
  }

  /**
   * Waits for a gate slot and a limiter start. Rejects with the exchange's abort reason when it is
   * aborted meanwhile, or with the gate's or limiter's own error (line full, closed).
   */
  admit(exchange: Exchange, request: AdmissionRequest): Promise<AdmissionTicket> {
    const waitSignal = request.signal ?? this.#deadlineSignal(request.deadline);
    // Not async without a gate: the common limiter-only attempt pays no extra promise layer.
    if (this.#gate === undefined) return this.#acquire(exchange, request, waitSignal);
    return this.#admitThroughGate(this.#gate, exchange, request, waitSignal);
  }

  async #admitThroughGate(
    gate: ConcurrencyGate,
    exchange: Exchange,
    request: AdmissionRequest,
    waitSignal: AbortSignal | undefined,
  ): Promise<AdmissionTicket> {
    const wait = gate.enter(waitSignal);
    if (wait !== undefined) await raceAbort(exchange, wait, () => gate.release());
    if (this.#limiter === undefined) return () => gate.release();
    let release: AdmissionTicket;
    try {
      release = await this.#acquire(exchange, request, waitSignal);
    } catch (error) {
      gate.release();
      throw error;
    }
    return () => {
      release();
      gate.release();
    };
  }

  #acquire(
    exchange: Exchange,
    request: AdmissionRequest,
    waitSignal: AbortSignal | undefined,
  ): Promise<AdmissionTicket> {
    const limiter = this.#limiter;
    if (limiter === undefined) return Promise.resolve(NOTHING_TAKEN);
    const options = request.limiterOptions;
    const acquiring = limiter.acquire(
      waitSignal === undefined
        ? options
        : options === undefined
          ? { signal: waitSignal }
          : { ...options, signal: waitSignal },
    ) as Promise<AdmissionTicket>;
    return raceAbort(exchange, acquiring, (lateRelease) => lateRelease());
  }

  /** Clears the shared deadline timers (the client is closing). */
  close(): void {
    for (const { timer } of this.#deadlineBuckets.values()) clearLongTimeout(this.#clock, timer);
    this.#deadlineBuckets.clear();
  }

  /**
   * A signal shared by every call whose deadline falls in the same 50 ms bucket, so limiter and gate
   * waits are cancelled near their deadline without an AbortController per request (the exact
   * deadline is enforced by the attempt's own timer; this only cleans the waiting line up, ≤ 50 ms late).
   */
  #deadlineSignal(deadline: number): AbortSignal | undefined {
    if (deadline === Number.POSITIVE_INFINITY) return undefined;
    const now = this.#clock.now();
    const bucket = Math.ceil(deadline / DEADLINE_BUCKET_MS) * DEADLINE_BUCKET_MS;
    let entry = this.#deadlineBuckets.get(bucket);
    if (entry === undefined) {
      const controller = new AbortController();
      setMaxListeners(0, controller.signal); // thousands of waiters may share one bucket
      const timer = setLongTimeout(
        this.#clock,
        () => {
          this.#deadlineBuckets.delete(bucket);
          controller.abort(new TimeoutError('APIClient: timeoutMs ran out while waiting for a slot', 0));
        },
        bucket - now,
        { unref: true },
      );
      entry = { controller, timer };
      this.#deadlineBuckets.set(bucket, entry);
    }
    return entry.controller.signal;
  }
}

/**
 * Waits for `promise` unless the exchange is aborted first. A slot granted after the abort is handed
 * straight back through `giveBack`.
 */
function raceAbort<T>(exchange: Exchange, promise: Promise<T>, giveBack: (value: T) => void): Promise<T> {
  if (exchange.isAborted) {
    promise.then(giveBack, () => {});
    return Promise.reject(exchange.abortReason);
  }
  return new Promise<T>((resolve, reject) => {
    exchange.waitReject = reject;
    promise.then(
      (value) => {
        exchange.waitReject = undefined;
        if (exchange.isAborted) giveBack(value);
        else resolve(value);
      },
      (error: unknown) => {
        exchange.waitReject = undefined;
        reject(exchange.abortReason ?? error);
      },
    );
  });
}
