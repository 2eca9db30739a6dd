/**
 * The shapes the client needs from a rate limiter and a response cache. Declared structurally so any
 * object with these methods plugs in: hotpath's `RateLimiter` and `Cache`, or your own.
 * @module
 */
import type { CacheLike, LimiterLike } from '../core/collaborators.js';

/**
 * What the client needs from a rate limiter (hotpath's `RateLimiter` fits): the shared
 * {@link LimiterLike} with `penalize()` required. Every attempt, retries included, takes one
 * `acquire()`; 429/503 responses call `penalize()`.
 */
export type ClientRateLimiter = LimiterLike &
  Required<Pick<LimiterLike, 'penalize'>> & {
    /**
     * Optional: called on a 429, before `penalize`, so the limiter can lower the rate it lets through
     * (hotpath's `RateLimiter` does, AIMD-style, and recovers slowly).
     */
    reportOverLimit?(): void;
  };

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
 * What the client needs from a cache (hotpath's `Cache` fits): the shared {@link CacheLike}'s `get`
 * and `set`; `set` receives the TTL the client derived from `Cache-Control`.
 */
export type ResponseCache = Pick<CacheLike, 'get' | 'set'>;
