/**
 * The public shapes of {@link Cache}: its options, the per-call options, the loader's context and its counters.
 * @module
 */
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { LatencyRecorder } from '../core/recorder.js';
import type { Cache } from './cache.js';
import type { CacheBus } from './cache-bus.js';
import type { CacheTier } from './cache-tier.js';

/** Options of {@link Cache}. Every duration is in milliseconds. */
export interface CacheOptions<V = unknown> {
  /** Name used in errors, logs, `stats()` of a registry and the profiler metric `cache.<name>.load` (default `"default"`). */
  name?: string;
  /**
   * Most entries kept (least recently used dropped first). lru-cache preallocates typed arrays of this
   * length (about 20 bytes per slot), so size it to what you will use. At least one of `max`/`maxSize` is required.
   */
  max?: number;
  /** Most total size (in the units `sizeOf` returns) kept; needs `sizeOf`. An entry larger than this is not stored. */
  maxSize?: number;
  /** Size of one value for `maxSize`: a positive integer (e.g. bytes of its JSON). Called once per store. */
  sizeOf?: (value: V, key: string) => number;
  /** How long a stored value stays fresh, > 0 (or `Infinity`). Required. */
  ttlMs: number;
  /**
   * For this long after expiry, `getOrSet` answers at once with the stale value and starts exactly one
   * background refresh (default 0: off).
   */
  staleWhileRevalidateMs?: number;
  /**
   * For this long after expiry, a stale value is served instead of an error when the loader throws or
   * is slower than `loadTimeoutMs` (default 0: off).
   */
  graceMs?: number;
  /**
   * Fraction (0–0.9) by which each entry's TTL is randomly shortened, so entries written together do not
   * all expire together (default 0). `ttlMs` stays the upper bound of freshness.
   */
  jitter?: number;
  /**
   * How long callers wait for a load. Then they get the stale value (within `graceMs`, the load keeps
   * running until grace ends and its result is stored) or a `TimeoutError` (the load is aborted).
   * Default: no limit.
   */
  loadTimeoutMs?: number;
  /** Remember a loader error for this long, so callers fail fast instead of hammering a broken source (default 0: errors are not cached). */
  errorTtlMs?: number;
  /**
   * Period of the background purge of entries past `ttlMs + max(staleWhileRevalidateMs, graceMs)`; one
   * unref'd timer per cache. 0 turns it off (entries then leave only through LRU pressure or access).
   * Default: `ttlMs` clamped to 1 s … 60 s.
   */
  purgeIntervalMs?: number;
  /**
   * `false` makes the cache a pass-through: nothing is stored, every `getOrSet` calls its loader (no
   * dedupe), `get` always misses. The rollback switch; e.g. `enabled: process.env.HOTPATH_CACHE_ENABLED !== 'false'`.
   * Default `true`.
   */
  enabled?: boolean;
  /**
   * A second level consulted on an L1 miss before the loader, and written after each load. A tier that
   * coordinates loads (`RedisCacheTier`) makes a cold key load once across all processes: the others
   * wait for the value (woken by `bus`), and a load begun before an invalidation never stores its result.
   */
  tier?: CacheTier<V>;
  /**
   * Tells the other instances of this cache (same `name`, other processes) about `set`, `delete`,
   * `invalidateTags` and `clear`, so they drop their L1 copies; and receives theirs. Messages are sent
   * after the tier write they describe has finished. After a bus reconnect L1 is cleared (messages may
   * have been missed). Costs nothing on a hit.
   */
  bus?: CacheBus;
  /** Time source; tests pass a `ManualClock` (default: the system clock). */
  clock?: Clock;
  /** Receives the duration of every loader call as `cache.<name>.load` (errors flagged). */
  profiler?: LatencyRecorder;
  /** Receives warnings for swallowed failures: background refresh errors, grace fallbacks, tier errors (default: silent). */
  logger?: Logger;
}

/** Options of {@link Cache.set}. */
export interface CacheSetOptions {
  /** Freshness of this entry, > 0 or `Infinity` (default: the cache's `ttlMs`). */
  ttlMs?: number;
  /** Tags for {@link Cache.invalidateTags} (at most 64). */
  tags?: readonly string[];
}

/** Options of {@link Cache.getOrSet}; read only when a load has to start (never on a hit). */
export interface GetOrSetOptions extends CacheSetOptions {
  /** Aborts this caller's wait only (rejecting with `signal.reason`); the shared load goes on for the others. */
  signal?: AbortSignal;
}

/** What a loader receives. */
export interface LoaderContext<V = unknown> {
  /** Aborted when the load is abandoned (timeout without a usable stale value, or `close()`). */
  signal: AbortSignal;
  /** The expired value still held for this key, if any (e.g. for conditional requests). */
  staleValue: V | undefined;
}

/**
 * Produces the value of a missing key. Returning `undefined` means "nothing to cache": callers get
 * `undefined` and nothing is stored (return `null` to cache a negative answer).
 */
export type CacheLoader<V = unknown> = (context: LoaderContext<V>) => Promise<V> | V;

/** Options of {@link Cache.wrap}. */
export interface WrapOptions<A extends unknown[]> {
  /** Builds the cache key from the call's arguments; include a prefix when several functions share a cache. */
  key: (...args: A) => string;
  /** Freshness of results, > 0 or `Infinity` (default: the cache's `ttlMs`). */
  ttlMs?: number;
  /** Tags of every result, or a function of the arguments returning them. */
  tags?: readonly string[] | ((...args: A) => readonly string[]);
}

/**
 * What `getOrSet`/`wrap` resolve with: the loader's type `T` on an untyped `Cache<unknown>`, else the
 * cache's `V` (so `Cache<string>` with a loader returning `'x'` still gives `string`, not the literal).
 */
export type Loaded<V, T> = unknown extends V ? T : V;

/** Counters of a {@link Cache}; plain numbers. Each `get`/`getOrSet` call counts once in `hits`, `misses` or `staleHits`. */
export interface CacheStats {
  /** Calls answered with a fresh value. */
  hits: number;
  /** Calls that found no usable value (they waited for a load, or `get` returned `undefined`). */
  misses: number;
  /** Calls answered with an expired value (stale-while-revalidate or grace). */
  staleHits: number;
  /** Loader calls (background refreshes included). */
  loads: number;
  /** Loader calls that threw, rejected or timed out. */
  loadErrors: number;
  /** Entries dropped by LRU pressure (`max`/`maxSize`). */
  evictions: number;
  /** Entries dropped because they expired (on access or by the background purge). */
  expirations: number;
  /** Entries held, expired ones kept for stale serving included. */
  size: number;
  /** Loads in flight. */
  inflight: number;
  /** Distinct tags indexed. */
  tags: number;
  /** L1 misses answered by the tier. */
  tierHits: number;
  /** Tier calls that failed (or writes dropped because too many were pending). */
  tierErrors: number;
  /** Loader results the tier refused because the key was invalidated while they loaded (never stored). */
  staleLoadsRefused: number;
  /** Changes received from other instances over the bus. */
  busMessages: number;
  /** Bus sends that failed. */
  busErrors: number;
  /** `(hits + staleHits) / (hits + staleHits + misses)`, 0 before the first call. */
  hitRate: number;
}
