/**
 * hotpath/cache: a stampede-safe LRU + TTL cache with stale-while-revalidate, grace, tags, a
 * second-level tier interface and a registry of named caches.
 * @module
 */
export { Cache } from './cache.js';
export type { CacheBus, CacheBusListener, CacheBusMessage } from './cache-bus.js';
export { MAX_TAGS_PER_ENTRY } from './cache-input.js';
export { CacheRegistry, type CacheRegistryOptions, type CacheRegistryStats } from './cache-registry.js';
export type { CacheTier, CacheTierEntry, CacheTierSetOptions } from './cache-tier.js';
export {
  type CacheTierFillOptions,
  type CacheTierLookup,
  type CacheTierStamp,
  type CoordinatedCacheTier,
  isCoordinatedTier,
} from './cache-tier.js';
export type {
  CacheLoader,
  CacheOptions,
  CacheSetOptions,
  CacheStats,
  GetOrSetOptions,
  Loaded,
  LoaderContext,
  WrapOptions,
} from './cache-types.js';
export { CappedList, type CappedListOptions } from './capped-list.js';
export { MapCacheTier, type MapCacheTierOptions, type MapCacheTierStats } from './map-cache-tier.js';
