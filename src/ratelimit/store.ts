/**
 * The counting behind a {@link RateLimiter}: a sliding-window log of start times, kept behind a small
 * interface so a shared store (Redis, in a later release) can replace the in-process one and make a
 * limit hold across processes.
 * @module
 */

/**
 * Where a rate limiter records its starts. A store holds one sliding window per `key`: `weight` units
 * reserved at `nowMs` count against `limit` until `nowMs + windowMs`.
 *
 * Methods may answer synchronously (the in-memory store does, so the limiter's fast path never waits)
 * or with a promise (a network store); the limiter handles both.
 */
export interface RateLimitStore {
  /**
   * Reserves `weight` units at `nowMs` in the window of `key`, if the units already reserved in
   * `(nowMs - windowMs, nowMs]` plus `weight` do not exceed `limit`.
   * @returns 0 when reserved; otherwise the milliseconds (> 0) until enough units will have expired.
   */
  reserve(key: string, weight: number, limit: number, windowMs: number, nowMs: number): number | Promise<number>;
  /**
   * Gives back `weight` units reserved at `reservedAtMs` whose start did not happen (e.g. the waiter was
   * aborted while an asynchronous reservation was in flight).
   */
  release(key: string, weight: number, reservedAtMs: number): void | Promise<void>;
}
