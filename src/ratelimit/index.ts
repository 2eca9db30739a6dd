/**
 * hotpath/ratelimit: a sliding-window rate limiter with concurrency, spacing, priorities, weights and
 * upstream feedback, a per-key variant, and the store interface that lets the limit be shared.
 * @module
 */

export {
  KeyedRateLimiter,
  type KeyedRateLimiterOptions,
  type KeyedRateLimiterStats,
} from './keyed-rate-limiter.js';
export {
  MemoryRateLimitStore,
  type MemoryRateLimitStoreOptions,
  type MemoryRateLimitStoreStats,
} from './memory-store.js';
export { RateLimiter } from './rate-limiter.js';
export {
  type AcquireOptions,
  DEFAULT_MARGIN_MS,
  type RateLimiterOptions,
  type RateLimiterStats,
  type RateLimitScheduleOptions,
  type Release,
  type TryAcquireResult,
} from './rate-limiter-options.js';
export type { RateLimitStore, ReserveResult } from './store.js';
