/**
 * The second-level cache interface. L1 is always the in-process LRU inside {@link Cache}; a tier is a
 * slower, usually shared store (Redis, a StorageAdapter) consulted on an L1 miss before the loader runs.
 * @module
 */

/** What a tier returns for a key it holds. */
export interface CacheTierEntry<V> {
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
export interface CacheTier<V> {
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
