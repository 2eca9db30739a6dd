/**
 * `CacheRegistry`: named caches created with shared defaults (clock, profiler, logger, the `enabled`
 * rollback switch) and one `stats()` over all of them, for a metrics endpoint.
 * @module
 */
import type { Clock } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { checkString, validateOptions } from '../core/options.js';
import type { LatencyRecorder } from '../core/recorder.js';
import { Cache } from './cache.js';
import type { CacheOptions, CacheStats } from './cache-types.js';

/** Defaults applied to every cache the registry creates (a cache's own options win). */
export interface CacheRegistryOptions {
  /** Time source for every cache (default: the system clock). */
  clock?: Clock;
  /** Profiler every cache reports `cache.<name>.load` to. */
  profiler?: LatencyRecorder;
  /** Logger for every cache. */
  logger?: Logger;
  /** `false` makes every cache a pass-through (the global rollback switch; default `true`). */
  enabled?: boolean;
}

/** Stats of every cache by name, plus their sum. */
export interface CacheRegistryStats {
  /** Each cache's {@link CacheStats}, by name (a null-prototype object, so any name is a plain key). */
  caches: Record<string, CacheStats>;
  /** Counters summed over all caches; `hitRate` recomputed from the sums. */
  total: CacheStats;
}

/** Anything the registry can report and close; every `Cache<V>` qualifies. */
interface RegisteredCache {
  readonly name: string;
  stats(): CacheStats;
  clear(): void;
  close(): Promise<void>;
}

/** Most caches one registry holds; a registry is for a handful of named caches, not one per request. */
const MAX_CACHES = 1_000;

/**
 * Holds named caches.
 *
 * @example
 * ```ts
 * const caches = new CacheRegistry({ profiler, enabled: process.env.HOTPATH_CACHE_ENABLED !== 'false' });
 * const stocks = caches.create<Stock>('stocks', { max: 500, ttlMs: 60_000 });
 * app.get('/metrics/cache', () => caches.stats());
 * ```
 */
export class CacheRegistry {
  readonly #defaults: CacheRegistryOptions;
  readonly #caches = new Map<string, RegisteredCache>();
  #closing: Promise<void> | undefined;

  /** @throws ConfigError for an unknown or mistyped option. */
  constructor(options: CacheRegistryOptions = {}) {
    validateOptions('CacheRegistry', options, {
      clock: { type: 'object' },
      profiler: { type: 'object' },
      logger: { type: 'object' },
      enabled: { type: 'boolean' },
    });
    this.#defaults = { ...options };
  }

  /**
   * Creates and registers a cache named `name` with the registry's defaults under `options`.
   * @throws ConfigError when the name is taken or the options are invalid; ClosedError-like ConfigError after `close()`.
   */
  create<V = unknown>(name: string, options: Omit<CacheOptions<V>, 'name'>): Cache<V> {
    this.#checkName(name);
    const defaults = this.#defaults;
    const merged: CacheOptions<V> = { ...options, name };
    if (merged.clock === undefined && defaults.clock !== undefined) merged.clock = defaults.clock;
    if (merged.profiler === undefined && defaults.profiler !== undefined) merged.profiler = defaults.profiler;
    if (merged.logger === undefined && defaults.logger !== undefined) merged.logger = defaults.logger;
    // The registry-wide switch can only turn caching off, never force a cache on.
    if (defaults.enabled === false) merged.enabled = false;
    const cache = new Cache<V>(merged);
    this.#caches.set(name, cache);
    return cache;
  }

  /**
   * Registers a cache created elsewhere under its `name`.
   * @throws ConfigError when the name is taken.
   */
  add<V>(cache: Cache<V>): Cache<V> {
    this.#checkName(cache.name);
    this.#caches.set(cache.name, cache);
    return cache;
  }

  /** The cache registered as `name`; `V` is the caller's assertion of its value type. */
  get<V = unknown>(name: string): Cache<V> | undefined {
    return this.#caches.get(name) as Cache<V> | undefined;
  }

  /** Names of the registered caches, in registration order. */
  names(): string[] {
    return [...this.#caches.keys()];
  }

  /** Stats of every cache and their sum. */
  stats(): CacheRegistryStats {
    // Null prototype: a cache named "__proto__" (any user name) is an ordinary own key, not the prototype.
    const caches: Record<string, CacheStats> = Object.create(null) as Record<string, CacheStats>;
    const total: CacheStats = {
      hits: 0,
      misses: 0,
      staleHits: 0,
      loads: 0,
      loadErrors: 0,
      evictions: 0,
      expirations: 0,
      size: 0,
      inflight: 0,
      tags: 0,
      tierHits: 0,
      tierErrors: 0,
      staleLoadsRefused: 0,
      busMessages: 0,
      busErrors: 0,
      hitRate: 0,
    };
    for (const [name, cache] of this.#caches) {
      const stats = cache.stats();
      caches[name] = stats;
      for (const field of Object.keys(total) as (keyof CacheStats)[]) total[field] += stats[field];
    }
    const answered = total.hits + total.staleHits + total.misses;
    total.hitRate = answered === 0 ? 0 : (total.hits + total.staleHits) / answered;
    return { caches, total };
  }

  /** Clears every cache (the "invalidate everything" endpoint). */
  clear(): void {
    for (const cache of this.#caches.values()) cache.clear();
  }

  /** Closes every cache. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= Promise.all([...this.#caches.values()].map((cache) => cache.close())).then(() => undefined);
    return this.#closing;
  }

  /** Same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #checkName(name: string): void {
    checkString('CacheRegistry name', name, { nonEmpty: true, maxLength: 100 });
    if (this.#closing !== undefined) throw new ConfigError('CacheRegistry', 'CacheRegistry is closed');
    if (this.#caches.has(name))
      throw new ConfigError('CacheRegistry name', `a cache named "${name}" is already registered`);
    if (this.#caches.size >= MAX_CACHES) {
      throw new ConfigError('CacheRegistry', `CacheRegistry holds at most ${MAX_CACHES} caches`);
    }
  }
}
