/**
 * The counting behind a {@link RateLimiter}: a sliding-window log of start times, kept behind a small
 * interface so a shared store (`RedisRateLimitStore` in `hotpath/redis`) can replace the in-process one
 * and make a limit hold across processes.
 * @module
 */

/** Answer of {@link RateLimitStore.reserveDetailed}. */
export interface ReserveResult {
  /** 0 when reserved; otherwise the milliseconds (> 0) until enough units will have expired. */
  waitMs: number;
  /** Units counted in the window after this call (including this reservation when it was made). */
  used: number;
}

/**
 * Where a rate limiter records its starts. A store holds one sliding window per `key`: `weight` units
 * reserved at `nowMs` count against `limit` until `nowMs + windowMs`.
 *
 * Methods may answer synchronously (the in-memory store does, so the limiter's fast path never waits)
 * or with a promise (a network store); the limiter handles both. A store with its own clock (Redis's
 * `TIME`) may ignore `nowMs` and stamp with its own time; it then identifies a reservation by the
 * `nowMs` it was made with when asked to release or restamp it.
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
  /**
   * Optional: {@link reserve} that also reports the units in use (for quota headers). Without it the
   * limiter reports no remaining quota.
   */
  reserveDetailed?(
    key: string,
    weight: number,
    limit: number,
    windowMs: number,
    nowMs: number,
  ): ReserveResult | Promise<ReserveResult>;
  /**
   * Optional: moves a reservation made at `reservedAtMs` to the moment its task really started
   * (`startedAtMs`, or the store's own clock), so the unit counts for a full window after the real start.
   * Without it the limiter reserves again at `startedAtMs` and releases the first reservation.
   */
  restamp?(key: string, weight: number, reservedAtMs: number, startedAtMs: number): void | Promise<void>;
  /**
   * Optional shared pause: no reservation of `key` succeeds for `durationMs` from now, in any process
   * using the store (a longer pause already in force is kept). `RateLimiter.penalize` calls it.
   */
  pause?(key: string, durationMs: number, nowMs: number): void | Promise<void>;
}
