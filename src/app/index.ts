/**
 * hotpath/app: one configuration for a host app — `createHotpath` builds the profiler, caches, rate
 * limiters, storage and queue with environment profiles, and `healthHandler` / `metricsHandler` serve them.
 * @module
 */
export { defaultDatabaseUrl, type EnvironmentSettings, type Profile, readEnvironment } from './config.js';
export {
  createHotpath,
  type Hotpath,
  type HotpathConfig,
  type HotpathHealth,
  type NamedCacheOptions,
  type ResolvedHotpathConfig,
} from './create-hotpath.js';
export { healthHandler, metricsHandler, type NodeHandler, type NodeResponseLike } from './http-endpoints.js';
export type { RedisHealth } from './redis-wiring.js';
export {
  type FastifyLike,
  fastifyLimiter,
  InboundLimiter,
  type LimitedHandler,
  limitRequests,
  type RequestHandler,
  type RequestLimitDecision,
  type RequestLimiterMiddleware,
  type RequestLimiterOptions,
  type RequestLimiterStats,
  requestLimiter,
} from './request-limiter.js';
export type { ClientRequestLike, PeerLike, TrustedProxies } from './request-limiter-client.js';
