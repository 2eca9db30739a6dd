/**
 * hotpath/client: `APIClient` — JSON over a bounded keep-alive undici pool with timeouts that abort the
 * socket, retries on the core backoff policy, `Retry-After`/`RateLimit` feedback to a shared rate
 * limiter, a circuit breaker, in-flight GET dedupe and response caching.
 * @module
 */

export type { LimiterAcquireOptions } from '../core/collaborators.js';
export { APIClient } from './api-client.js';
export {
  CircuitBreaker,
  type CircuitBreakerOptions,
  type CircuitBreakerStats,
  type CircuitJudge,
  type CircuitState,
  type CircuitVerdict,
} from './circuit-breaker.js';
export type { APIClientOptions, APIClientStats, ClientRetryOptions, RequestOptions } from './client-options.js';
export type { CachedResponse, ClientRateLimiter, ResponseCache } from './collaborators.js';
export type { Query, QueryValue } from './request-url.js';
export { ResponseParseError } from './response-parse-error.js';
export type { ClientResponse, ResponseHeaders } from './response-types.js';
// The header parser is public on purpose: it is useful on its own (e.g. in a proxy or a worker that
// does not use APIClient). Its helpers stay internal.
export { type HeaderSource, parseRateLimitHeaders, type ServerFeedback } from './server-feedback.js';
