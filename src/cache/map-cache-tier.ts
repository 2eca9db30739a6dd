/**
 * An in-memory {@link CacheTier}: a bounded Map with per-entry expiry and tags. Useful to share one
 * second level between several `Cache` instances in a process, and as the reference implementation
 * the tier contract is tested against.
 * @module
 */
import { type Clock, systemClock } from '../core/clock.js';
import { checkNumber, validateOptions } from '../core/options.js';
import { checkKey, checkTags } from './cache-input.js';
import type { CacheTier, CacheTierEntry, CacheTierSetOptions } from './cache-tier.js';
import { TagIndex } from './tag-index.js';

/** Options of {@link MapCacheTier}. */
export interface MapCacheTierOptions {
  /** Most entries kept; the least recently used is dropped beyond it (default 10,000). */
  max?: number;
  /** Time source for expiry (default: the system clock). */
  clock?: Clock;
}

/** Counters of a {@link MapCacheTier}. */
export interface MapCacheTierStats {
  /** Entries stored (expired ones not yet touched included). */
  size: number;
  /** Calls to `get`. */
  gets: number;
  /** Calls to `get` that found a fresh value. */
  hits: number;
  /** Calls to `set`. */
  sets: number;
}

interface StoredEntry<V> {
  value: V;
  expiresAt: number;
  tags: readonly string[];
}

/** A bounded in-memory second-level cache with expiry and tags. */
export class MapCacheTier<V> implements CacheTier<V> {
  readonly #max: number;
  readonly #clock: Clock;
  // Map iteration order is insertion order; re-inserting on read makes the first key the least recent.
  readonly #entries = new Map<string, StoredEntry<V>>();
  readonly #tags = new TagIndex();
  #gets = 0;
  #hits = 0;
  #sets = 0;

  /** @throws ConfigError for an unknown option or a `max` that is not a positive integer. */
  constructor(options: MapCacheTierOptions = {}) {
    validateOptions('MapCacheTier', options, { max: { type: 'number' }, clock: { type: 'object' } });
    this.#max =
      options.max === undefined ? 10_000 : checkNumber('MapCacheTier.max', options.max, { min: 1, integer: true });
    this.#clock = options.clock ?? systemClock;
  }

  /** The fresh entry under `key` with its remaining time to live, or `undefined`. */
  async get(key: string): Promise<CacheTierEntry<V> | undefined> {
    checkKey('MapCacheTier.get', key);
    this.#gets++;
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    const remainingMs = entry.expiresAt - this.#clock.now();
    if (remainingMs <= 0) {
      this.#remove(key, entry);
      return undefined;
    }
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    this.#hits++;
    return { value: entry.value, ttlMs: remainingMs, tags: entry.tags };
  }

  /** Stores `value` for `ttlMs` milliseconds, dropping the least recently used entry when full. */
  async set(key: string, value: V, options: CacheTierSetOptions): Promise<void> {
    checkKey('MapCacheTier.set', key);
    checkNumber('MapCacheTier.set ttlMs', options.ttlMs, { min: 0, exclusiveMin: true, allowInfinity: true });
    checkTags('MapCacheTier.set', options.tags);
    this.#sets++;
    const existing = this.#entries.get(key);
    if (existing !== undefined) this.#remove(key, existing);
    while (this.#entries.size >= this.#max) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.#remove(oldest.value, this.#entries.get(oldest.value) as StoredEntry<V>);
    }
    const tags = [...options.tags];
    this.#entries.set(key, { value, expiresAt: this.#clock.now() + options.ttlMs, tags });
    this.#tags.add(key, tags);
  }

  /** Removes `key`. */
  async delete(key: string): Promise<void> {
    checkKey('MapCacheTier.delete', key);
    const entry = this.#entries.get(key);
    if (entry !== undefined) this.#remove(key, entry);
  }

  /** Removes every key carrying any of `tags`, in time proportional to the keys removed. */
  async deleteTags(tags: readonly string[]): Promise<void> {
    checkTags('MapCacheTier.deleteTags', tags);
    for (const tag of tags) {
      const keys = this.#tags.take(tag);
      if (keys === undefined) continue;
      for (const key of keys) {
        const entry = this.#entries.get(key);
        if (entry !== undefined) this.#remove(key, entry);
      }
    }
  }

  /** Removes everything. */
  async clear(): Promise<void> {
    this.#entries.clear();
    this.#tags.clear();
  }

  /** Plain-number counters. */
  stats(): MapCacheTierStats {
    return { size: this.#entries.size, gets: this.#gets, hits: this.#hits, sets: this.#sets };
  }

  #remove(key: string, entry: StoredEntry<V>): void {
    this.#entries.delete(key);
    this.#tags.remove(key, entry.tags);
  }
}
