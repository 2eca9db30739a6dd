/**
 * `StorageManager`: typed collections over any adapter, reading through an optional cache that every
 * write invalidates.
 * @module
 */
import { throwIfAborted } from '../core/abort.js';
import type { CacheLike } from '../core/collaborators.js';
import { ClosedError, ConfigError } from '../core/errors.js';
import { validateOptions } from '../core/options.js';
import type { LatencyRecorder } from '../core/recorder.js';
import { checkCollection, checkField } from './names.js';
import type {
  AggregateOptions,
  AggregateRow,
  DocumentWithMeta,
  FindOptions,
  FindResult,
  StorageAdapter,
  StorageCallOptions,
  StoredDocument,
  UpdateOptions,
  Where,
} from './types.js';

/**
 * The cache `StorageManager` reads through (the shared {@link CacheLike}): hotpath's `Cache` fits, as
 * does a `Map` or an lru-cache instance. The cache's own TTL applies.
 */
export type DocumentCache = CacheLike;

/** Options of {@link StorageManager}. */
export interface StorageManagerOptions {
  /**
   * Read-through cache for `get` (keys `<collection>:<id>`) and, when the cache has `invalidateTags`
   * (hotpath's `Cache` does), for `find` pages too (keys `<collection>?<query>`, tagged
   * `storage:<collection>:lists` and dropped by every write to the collection).
   */
  cache?: DocumentCache;
  /** Cache `find` pages as well as `get` when the cache supports tags (default true). */
  cacheFinds?: boolean;
  /** Receives `storage.<collection>.<op>` latencies (ms), cache hits included. */
  profiler?: LatencyRecorder;
}

/** Options of {@link StorageManager.collection}. */
export interface CollectionOptions {
  /** Top-level fields to index (created once, before the collection's first operation). */
  indexes?: readonly string[];
}

/** Most distinct collections one manager hands out (bounds its map). */
const MAX_COLLECTIONS = 10_000;

/**
 * A typed collection. Every method validates its input before touching storage; writes invalidate
 * the cache entry of each id they touch.
 */
export class Collection<T extends object = Record<string, unknown>> {
  /** Collection name. */
  readonly name: string;
  readonly #adapter: StorageAdapter;
  readonly #cache: DocumentCache | undefined;
  // The cache again when it can drop entries by tag: find pages and updateMany need that.
  readonly #taggedCache: (DocumentCache & { invalidateTags(tags: readonly string[]): unknown }) | undefined;
  readonly #cachesFinds: boolean;
  readonly #profiler: LatencyRecorder | undefined;
  // Bumped by updateMany on a cache without tags: the get keys change, so no entry from before is read.
  #generation = 0;
  #indexes: Set<string>;
  #ready: Promise<void> | undefined;
  #isReady = false;
  // Bumped by every write; a read that started before a write must not fill the cache (it may be stale).
  #writeEpoch = 0;

  /** @internal Use {@link StorageManager.collection}. */
  constructor(adapter: StorageAdapter, name: string, indexes: readonly string[], options: StorageManagerOptions) {
    this.#adapter = adapter;
    this.name = name;
    this.#indexes = new Set(indexes);
    this.#cache = options.cache;
    const cache = options.cache as (DocumentCache & { invalidateTags?: unknown }) | undefined;
    this.#taggedCache = typeof cache?.invalidateTags === 'function' ? (cache as never) : undefined;
    this.#cachesFinds = this.#taggedCache !== undefined && options.cacheFinds !== false;
    this.#profiler = options.profiler;
  }

  /** @internal Adds indexes requested by a later `collection()` call. */
  addIndexes(indexes: readonly string[]): void {
    let added = false;
    for (const field of indexes) {
      if (!this.#indexes.has(field)) {
        this.#indexes.add(field);
        added = true;
      }
    }
    if (added) {
      this.#isReady = false;
      this.#ready = undefined;
    }
  }

  #ensureReady(): Promise<void> | undefined {
    if (this.#isReady) return undefined;
    this.#ready ??= (async () => {
      for (const field of this.#indexes) await this.#adapter.ensureIndex(this.name, field);
      this.#isReady = true;
    })().catch((error: unknown) => {
      this.#ready = undefined; // try again on the next call
      throw error;
    });
    return this.#ready;
  }

  async #timed<R>(op: string, fn: () => Promise<R>): Promise<R> {
    // A closed adapter's cached documents are not served either: every call fails the same way.
    if (this.#adapter.isClosed === true) throw new ClosedError('StorageManager (its adapter)');
    const ready = this.#ensureReady();
    if (ready) await ready;
    if (!this.#profiler) return fn();
    const start = performance.now();
    try {
      const result = await fn();
      this.#profiler.record(`storage.${this.name}.${op}`, performance.now() - start, false);
      return result;
    } catch (error) {
      this.#profiler.record(`storage.${this.name}.${op}`, performance.now() - start, true);
      throw error;
    }
  }

  #key(id: string): string {
    return this.#generation === 0 ? `${this.name}:${id}` : `${this.name}@${this.#generation}:${id}`;
  }

  get #getTag(): string {
    return `storage:${this.name}`;
  }

  get #listTag(): string {
    return `storage:${this.name}:lists`;
  }

  #dropTag(tag: string): void {
    const cache = this.#taggedCache;
    if (!cache) return;
    // hotpath's Cache drops the entries synchronously and only its remote tier is awaited; a failure
    // there leaves stale remote entries that their TTL ends.
    try {
      const done = cache.invalidateTags([tag]);
      if (done instanceof Promise) done.catch(() => undefined);
    } catch {
      // A closed cache: nothing left to serve stale entries from.
    }
  }

  #invalidate(ids: readonly string[]): void {
    this.#writeEpoch++;
    if (!this.#cache) return;
    for (const id of ids) this.#cache.delete(this.#key(id));
    if (this.#cachesFinds) this.#dropTag(this.#listTag);
  }

  /** Forgets every cached document and page of the collection (a write whose ids are not known). */
  #invalidateAll(): void {
    this.#writeEpoch++;
    if (!this.#cache) return;
    if (this.#taggedCache) {
      this.#dropTag(this.#getTag);
      this.#dropTag(this.#listTag);
    } else {
      this.#generation++;
    }
  }

  /** The cache key of a find page, or undefined when its options do not serialise (the adapter will say why). */
  #findKey(options: FindOptions | undefined): string | undefined {
    try {
      const { where, orderBy, limit, cursor } = options ?? {};
      return `${this.name}?${JSON.stringify([where ?? null, orderBy ?? null, limit ?? null, cursor ?? null])}`;
    } catch {
      return undefined;
    }
  }

  /** Inserts or replaces a document; returns its id (given or generated). */
  save(doc: T & { id?: string }, options?: StorageCallOptions): Promise<string> {
    return this.#timed('save', async () => {
      const id = (doc as { id?: unknown }).id;
      if (typeof id === 'string') this.#invalidate([id]);
      try {
        const saved = await this.#adapter.put(this.name, doc, options);
        this.#invalidate([saved]);
        return saved;
      } catch (error) {
        if (typeof id === 'string') this.#invalidate([id]);
        throw error;
      }
    });
  }

  /** Inserts or replaces many documents in one transaction; returns their ids in input order. */
  saveMany(docs: ReadonlyArray<T & { id?: string }>, options?: StorageCallOptions): Promise<string[]> {
    return this.#timed('saveMany', async () => {
      this.#writeEpoch++;
      try {
        const ids = await this.#adapter.putMany(this.name, docs, options);
        this.#invalidate(ids);
        return ids;
      } catch (error) {
        const ids = Array.isArray(docs)
          ? docs.map((d) => (d as { id?: unknown }).id).filter((id): id is string => typeof id === 'string')
          : [];
        this.#invalidate(ids);
        throw error;
      }
    });
  }

  /** The document, from the cache when present; a fresh copy every call. */
  get(id: string, options?: StorageCallOptions): Promise<StoredDocument<T> | undefined> {
    return this.#timed('get', async () => {
      const cache = this.#cache;
      if (!cache) return this.#adapter.get<T>(this.name, id, options);
      if (typeof id !== 'string') return this.#adapter.get<T>(this.name, id, options); // lets the adapter reject it
      throwIfAborted(options?.signal);
      const key = this.#key(id);
      const hit = (await cache.get(key)) as StoredDocument<T> | undefined;
      // Copies in and out, so a caller mutating its result cannot change what others read.
      if (hit !== undefined) return structuredClone(hit);
      const epoch = this.#writeEpoch;
      const doc = await this.#adapter.get<T>(this.name, id, options);
      if (doc !== undefined && epoch === this.#writeEpoch) {
        cache.set(key, structuredClone(doc), { tags: [this.#getTag] });
      }
      return doc;
    });
  }

  /** The document with its version and timestamps (never cached). */
  getWithMeta(id: string, options?: StorageCallOptions): Promise<DocumentWithMeta<T> | undefined> {
    return this.#timed('getWithMeta', () => this.#adapter.getWithMeta<T>(this.name, id, options));
  }

  /**
   * Queries the collection. With a cache that supports tags, a page is cached by its query (where,
   * orderBy, limit, cursor) until the next write to the collection through this manager; a fresh copy every call.
   */
  find(options?: FindOptions): Promise<FindResult<T>> {
    return this.#timed('find', async () => {
      const cache = this.#cachesFinds ? this.#cache : undefined;
      const key = cache ? this.#findKey(options) : undefined;
      if (!cache || key === undefined) return this.#adapter.find<T>(this.name, options);
      throwIfAborted(options?.signal);
      const hit = (await cache.get(key)) as FindResult<T> | undefined;
      if (hit !== undefined) return structuredClone(hit);
      const epoch = this.#writeEpoch;
      const page = await this.#adapter.find<T>(this.name, options);
      if (epoch === this.#writeEpoch) cache.set(key, structuredClone(page), { tags: [this.#listTag] });
      return page;
    });
  }

  /** Counts matching documents. */
  count(where?: Where, options?: StorageCallOptions): Promise<number> {
    return this.#timed('count', () => this.#adapter.count(this.name, where, options));
  }

  /**
   * Groups and summarises the collection's documents (see {@link StorageAdapter.aggregate}); not cached.
   * @throws ConfigError on invalid options.
   */
  aggregate(options: AggregateOptions): Promise<AggregateRow[]> {
    return this.#timed('aggregate', () => this.#adapter.aggregate(this.name, options));
  }

  /**
   * Shallow-merges `patch` and bumps the version.
   * @throws ConflictError when `expectedVersion` is given and does not match.
   */
  update(id: string, patch: Partial<T>, options?: UpdateOptions): Promise<StoredDocument<T> | undefined> {
    return this.#timed('update', async () => {
      this.#invalidate([id]);
      try {
        return await this.#adapter.update<T>(this.name, id, patch, options);
      } finally {
        this.#invalidate([id]);
      }
    });
  }

  /**
   * Shallow-merges `patch` into every document matching `where` (one statement on SQL); returns how
   * many. Drops the collection's cached documents and pages.
   * @throws ConfigError on a bad `where` or patch.
   */
  updateMany(where: Where, patch: Partial<T>, options?: StorageCallOptions): Promise<number> {
    return this.#timed('updateMany', async () => {
      this.#invalidateAll();
      try {
        return await this.#adapter.updateMany(this.name, where, patch as Record<string, unknown>, options);
      } finally {
        this.#invalidateAll();
      }
    });
  }

  /** Deletes a document; returns whether it existed. */
  delete(id: string, options?: StorageCallOptions): Promise<boolean> {
    return this.#timed('delete', async () => {
      this.#invalidate([id]);
      try {
        return await this.#adapter.delete(this.name, id, options);
      } finally {
        this.#invalidate([id]);
      }
    });
  }
}

/**
 * Typed collections over one adapter, optionally reading through a cache.
 *
 * @example
 * ```ts
 * interface Forecast { city: string; tempC: number }
 * const manager = new StorageManager(new SqliteStorage({ filename: 'app.db' }), { cache: new Cache({ max: 10_000, ttlMs: 60_000 }) });
 * const forecasts = manager.collection<Forecast>('forecasts', { indexes: ['city'] });
 * const id = await forecasts.save({ city: 'Oslo', tempC: 4 });
 * const again = await forecasts.get(id); // from the cache
 * ```
 */
export class StorageManager {
  /** The adapter underneath. */
  readonly adapter: StorageAdapter;
  readonly #options: StorageManagerOptions;
  readonly #collections = new Map<string, Collection<object>>();

  /** @throws ConfigError on invalid options. */
  constructor(adapter: StorageAdapter, options: StorageManagerOptions = {}) {
    if (adapter === null || typeof adapter !== 'object' || typeof adapter.get !== 'function') {
      throw new ConfigError('StorageManager.adapter', 'StorageManager needs a StorageAdapter');
    }
    validateOptions('StorageManager', options, {
      cache: { type: 'object' },
      cacheFinds: { type: 'boolean' },
      profiler: { type: 'object' },
    });
    const cache = options.cache;
    if (
      cache &&
      (typeof cache.get !== 'function' || typeof cache.set !== 'function' || typeof cache.delete !== 'function')
    ) {
      throw new ConfigError('StorageManager.cache', 'StorageManager.cache must have get, set and delete methods');
    }
    this.adapter = adapter;
    this.#options = options;
  }

  /**
   * The collection of this name (the same object for the same name).
   * @throws ConfigError on an invalid collection or index field name.
   */
  collection<T extends object = Record<string, unknown>>(name: string, options: CollectionOptions = {}): Collection<T> {
    checkCollection(name);
    validateOptions('StorageManager.collection', options, { indexes: { type: 'object' } });
    const indexes = options.indexes ?? [];
    if (!Array.isArray(indexes)) throw new ConfigError('indexes', 'indexes must be an array of field names');
    for (const field of indexes) checkField(field, 'indexes[]');
    let collection = this.#collections.get(name);
    if (collection) {
      collection.addIndexes(indexes);
    } else {
      if (this.#collections.size >= MAX_COLLECTIONS) {
        throw new ConfigError('collection', `StorageManager holds at most ${MAX_COLLECTIONS} collections`);
      }
      collection = new Collection<object>(this.adapter, name, indexes, this.#options);
      this.#collections.set(name, collection);
    }
    return collection as unknown as Collection<T>;
  }

  /** True once the adapter is closed (through {@link close} or its own `close()`). */
  get isClosed(): boolean {
    return this.adapter.isClosed === true;
  }

  /**
   * Closes the adapter; afterwards every collection call fails with `ClosedError`, cached documents
   * included. Idempotent. The cache is the caller's and stays open.
   */
  close(): Promise<void> {
    return this.adapter.close();
  }

  /** Same as {@link close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
