/**
 * hotpath/app: one configuration for a host app — `createHotpath` builds the profiler, caches, rate
 * limiters, storage and queue with environment profiles, and `healthHandler` / `metricsHandler` serve them.
 * @module
 */
export {
  defaultDatabaseUrl,
  type EnvironmentSettings,
  HOTPATH_VARIABLES,
  type Profile,
  type ReadEnvironmentOptions,
  readEnvironment,
  UNKNOWN_NODE_ENV_PROFILE,
  type UnknownVariable,
  unknownEnvironmentVariables,
} from './config.js';
export {
  type CacheNames,
  createHotpath,
  type Hotpath,
  type HotpathConfig,
  type HotpathHealth,
  type NamedCacheOptions,
  type RateLimiterNames,
  type ResolvedHotpathConfig,
  type StorageOptionsByBackend,
} from './create-hotpath.js';
export {
  type DashboardAction,
  type DashboardHandler,
  type DashboardOptions,
  dashboardHandler,
} from './dashboard/dashboard-handler.js';
export { DEFAULT_REDACTED_FIELDS } from './dashboard/redact.js';
export { healthHandler, metricsHandler, type NodeHandler, type NodeResponseLike } from './http-endpoints.js';
export {
  RecentActivity,
  type RecentNPlusOne,
  type RecentSlowOperation,
  Ring,
  type UpstreamReport,
} from './recent-activity.js';
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
export {
  type FastifyPlugin,
  type FastifyProfilerOptions,
  fastifyProfiler,
  OTHER_ROUTE,
  type ProfileRequestsOptions,
  profileRequests,
  type RequestCount,
  RequestCounters,
  type RequestProfilingOptions,
  type RequestProfilingTarget,
  requestProfiler,
  routeOfPath,
  type StatusClass,
  UNMATCHED_ROUTE,
} from './request-profiling.js';
