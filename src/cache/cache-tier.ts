/**
 * The second-level cache interface. L1 is always the in-process LRU inside {@link Cache}; a tier is a
 * slower, usually shared store (Redis, a StorageAdapter) consulted on an L1 miss before the loader runs.
 * @module
 */

/** What a tier returns for a key it holds. */
export interface CacheTierEntry<V = unknown> {
  /** The stored value (never `undefined`). */
  value: V;
  /** Milliseconds this value stays fresh from now; `Infinity` for no expiry. L1 never keeps it longer. */
  ttlMs: number;
  /** Tags the value was stored with, so L1 tag invalidation covers it too. */
  tags?: readonly string[] | undefined;
}

/** Options of {@link CacheTier.set}. */
export interface CacheTierSetOptions {
  /** Freshness in milliseconds; `Infinity` for no expiry. */
  ttlMs: number;
  /** Tags to store with the value (empty when none). */
  tags: readonly string[];
}

/**
 * A second-level cache. Every method is async; a rejection is counted in `stats().tierErrors` and
 * logged, and never fails a read (the cache falls back to the loader). Keys are strings.
 */
export interface CacheTier<V = unknown> {
  /** The fresh value stored under `key`, or `undefined`. */
  get(key: string): Promise<CacheTierEntry<V> | undefined>;
  /** Stores `value` under `key` for `ttlMs` milliseconds with the given tags. */
  set(key: string, value: V, options: CacheTierSetOptions): Promise<void>;
  /** Removes `key`. */
  delete(key: string): Promise<void>;
  /** Removes every key carrying any of `tags`. */
  deleteTags(tags: readonly string[]): Promise<void>;
  /** Removes everything (optional; `Cache.clear()` calls it when present). */
  clear?(): Promise<void>;
}

/**
 * A snapshot a tier takes when a load starts: the invalidation sequence at that moment. A store
 * carrying it is refused when the key, one of its tags or the whole tier was invalidated since, so a
 * loader that began before an invalidation can never write its (now stale) result after it.
 */
export type CacheTierStamp = string;

/** What {@link CoordinatedCacheTier.lookup} found. */
export type CacheTierLookup<V = unknown> =
  | {
      /** The tier holds a fresh value. */
      readonly kind: 'hit';
      /** The value with its remaining time to live and tags. */
      readonly entry: CacheTierEntry<V>;
    }
  | {
      /** Missing, and this caller now holds the key's load lease: load, then {@link CoordinatedCacheTier.fill}. */
      readonly kind: 'lease';
      /** The invalidation stamp to pass to `fill`. */
      readonly stamp: CacheTierStamp;
      /** The lease's token, for `fill` or `release`. */
      readonly token: string;
    }
  | {
      /** Missing, and another process holds the lease; look again after a wake-up or `retryInMs`. */
      readonly kind: 'busy';
      /** Milliseconds left on the other process's lease. */
      readonly retryInMs: number;
    };

/** Options of {@link CoordinatedCacheTier.fill}. */
export interface CacheTierFillOptions extends CacheTierSetOptions {
  /** The stamp the lease came with. */
  stamp: CacheTierStamp;
  /** The lease token, released by the fill. */
  token: string;
}

/**
 * A tier that coordinates loads across processes: one lease per cold key (the other processes wait
 * for the value to arrive), and stores that refuse results begun before an invalidation. `Cache`
 * uses these methods when the tier has them; plain {@link CacheTier}s keep working without them.
 */
export interface CoordinatedCacheTier<V = unknown> extends CacheTier<V> {
  /** Reads `key`; on a miss tries to take its load lease. */
  lookup(key: string): Promise<CacheTierLookup<V>>;
  /**
   * Stores a loaded value unless the key, one of `tags` or the tier was invalidated after `stamp`,
   * and releases the lease. Resolves `true` when stored.
   */
  fill(key: string, value: V, options: CacheTierFillOptions): Promise<boolean>;
  /** Gives the lease back without storing (the load failed or was abandoned). */
  release(key: string, token: string): Promise<void>;
}

/** True when `tier` implements the cross-process load coordination. */
export function isCoordinatedTier<V>(tier: CacheTier<V>): tier is CoordinatedCacheTier<V> {
  const candidate = tier as Partial<CoordinatedCacheTier<V>>;
  return (
    typeof candidate.lookup === 'function' &&
    typeof candidate.fill === 'function' &&
    typeof candidate.release === 'function'
  );
}
