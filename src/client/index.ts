/**
 * hotpath/client: `APIClient` — JSON over a bounded keep-alive undici pool with timeouts that abort the
 * socket, retries on the core backoff policy, `Retry-After`/`RateLimit` feedback to a shared rate
 * limiter, a circuit breaker, in-flight GET dedupe and response caching.
 * @module
 */

export type { LimiterAcquireOptions } from '../core/collaborators.js';
export {
  APIClient,
  type APIClientOptions,
  type APIClientStats,
  type ClientRetryOptions,
  type RequestOptions,
} from './api-client.js';
export { responseTtlMs } from './cache-policy.js';
export {
  CircuitBreaker,
  type CircuitBreakerOptions,
  type CircuitBreakerStats,
  type CircuitState,
} from './circuit-breaker.js';
export type { CachedResponse, ClientRateLimiter, ResponseCache } from './collaborators.js';
export { appendQuery, type Query, type QueryValue, routeTemplate } from './request-url.js';
export { ResponseParseError } from './response-parse-error.js';
export type { ClientResponse, ResponseHeaders } from './response-types.js';
export {
  type HeaderSource,
  hasServerFeedback,
  parseResetValue,
  parseRetryAfter,
  parseServerFeedback,
  type ServerFeedback,
} from './server-feedback.js';
