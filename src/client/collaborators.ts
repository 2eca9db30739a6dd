/**
 * The shapes the client needs from a rate limiter and a response cache. Declared structurally so any
 * object with these methods plugs in: hotpath's `RateLimiter` and `Cache`, or your own.
 * @module
 */

/** Options the client passes to {@link ClientRateLimiter.acquire}. */
export interface LimiterAcquireOptions {
  /** Units this request consumes (default 1). */
  weight?: number;
  /** Aborts the wait; the limiter rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** Higher runs first. */
  priority?: number;
}

/**
 * What the client needs from a rate limiter (hotpath's `RateLimiter` fits). Every attempt, retries
 * included, takes one `acquire()`; 429/503 responses call `penalize()`.
 */
export interface ClientRateLimiter {
  /** Waits for a slot and resolves with its release function. */
  acquire(options?: LimiterAcquireOptions): Promise<() => void>;
  /** Pauses every start for `retryAfterMs` milliseconds (the upstream asked us to back off). */
  penalize(retryAfterMs: number): void;
  /** Optional: the server reports `remaining` units until its quota resets in `resetInMs` ms. */
  updateRemaining?(remaining: number, resetInMs: number): void;
}

/** A response as the client stores it in a {@link ResponseCache}. */
export interface CachedResponse {
  /** HTTP status (2xx: only successes are stored). */
  status: number;
  /** Response headers, lower-case names. */
  headers: Record<string, string | string[] | undefined>;
  /** The parsed body, shared by every caller that gets this entry: do not mutate it. */
  data: unknown;
}

/**
 * What the client needs from a cache (hotpath's `Cache` fits). `get` may return a promise (tiered
 * caches); `set` receives the TTL the client derived from `Cache-Control`.
 */
export interface ResponseCache {
  /** The stored value, or `undefined` on a miss. */
  get(key: string): unknown;
  /** Stores `value` for `ttlMs` milliseconds. */
  set(key: string, value: CachedResponse, options: { ttlMs: number }): unknown;
}
