/**
 * hotpath/redis: limits and caches shared by every process through Redis — a rate-limit store, a cache
 * tier and an invalidation bus. ioredis 5 is an optional peer dependency, loaded only by this module.
 * @module
 */

export {
  type CacheSerializer,
  RedisCacheTier,
  type RedisCacheTierOptions,
  type RedisCacheTierStats,
} from './cache-tier.js';
export {
  defineScript,
  type RedisClientLike,
  RedisConnection,
  type RedisConnectionEvents,
  type RedisConnectionOptions,
  type RedisInput,
  type RedisScript,
} from './connection.js';
export {
  RedisInvalidationBus,
  type RedisInvalidationBusOptions,
  type RedisInvalidationBusStats,
} from './invalidation-bus.js';
export {
  type RedisRateLimitKeys,
  RedisRateLimitStore,
  type RedisRateLimitStoreOptions,
  type RedisRateLimitStoreStats,
} from './rate-limit-store.js';
