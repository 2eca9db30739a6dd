/**
 * Batcher: DataLoader-style coalescing of single-key loads into batched `loadMany(keys)` calls.
 * @module
 */
import { abortable } from '../core/abort.js';
import { type Clock, systemClock, type TimerHandle } from '../core/clock.js';
import { ClosedError, ConfigError } from '../core/errors.js';
import { validateOptions } from '../core/options.js';
import type { LatencyRecorder } from '../core/recorder.js';
import { firstOccurrences, KeyIndex } from './key-index.js';
import type { BatcherCache, ItemResult } from './types.js';

/**
 * Loads many keys in one call; must return one value per key, in the same order. An `Error` in the
 * array fails only the callers of that key; a throw or a wrong-length array fails every caller of the batch.
 */
export type LoadManyFn<K, V> = (keys: K[]) => ReadonlyArray<V | Error> | PromiseLike<ReadonlyArray<V | Error>>;

/** Options of {@link Batcher}. */
export interface BatcherOptions<K, V> {
  /**
   * Most distinct keys per `loadMany` call (repeats of a key in one window share its slot); a fuller
   * window is split. Integer 1–1,000,000 (default 1000).
   */
  maxBatchSize?: number | undefined;
  /**
   * How long the first `load` of a window waits for company, ms, 0–60,000. 0 (default) = the current
   * tick: every `load` made before the event loop moves on (promise continuations included) joins.
   */
  maxWaitMs?: number | undefined;
  /**
   * Read before batching, filled with loaded values (errors are not cached); hotpath's `Cache` fits.
   * An `Error` put there with {@link Batcher.prime} makes `load` reject with it.
   */
  cache?: BatcherCache<V> | undefined;
  /**
   * Identity of a key, for de-duplication and as the cache key (default: the key itself for
   * de-duplication, `String(key)` for the cache). Needed for object keys.
   */
  keyOf?: ((key: K) => string) | undefined;
  /** Time source for `maxWaitMs` windows (default: the system clock). */
  clock?: Clock | undefined;
  /** Receives the duration of every `loadMany` call as `batch.loadMany`. */
  profiler?: LatencyRecorder | undefined;
}

/** Per-call options of {@link Batcher.load}. */
export interface BatcherLoadOptions {
  /** Stops waiting (rejects with `signal.reason`); the batch itself still runs for other callers. */
  signal?: AbortSignal | undefined;
}

/** Counters of a {@link Batcher}; plain numbers. */
export interface BatcherStats {
  /** `load` calls (each key of `loadMany` counts once). */
  loads: number;
  /** Loads served from the cache. */
  cacheHits: number;
  /** Loads that shared the load of a key already waiting in the window or in flight. */
  deduplicated: number;
  /** `loadMany` calls made. */
  batches: number;
  /** Keys sent to `loadMany`, in total. */
  keys: number;
  /** `keys / batches` (0 before the first batch). */
  meanBatchSize: number;
  /** `loadMany` calls that threw or returned a malformed result. */
  batchErrors: number;
  /** Keys whose result was an `Error` (per-key failures). */
  keyErrors: number;
  /**
   * Keys waiting for their window to close (with `maxWaitMs` 0 and nothing in flight, loads: a tick's
   * repeats are counted until its window is sent and de-duplicated).
   */
  pendingKeys: number;
  /** `loadMany` calls running now. */
  inFlightBatches: number;
}

interface PendingBatch<K, V> {
  /** Distinct keys, in first-load order (a repeat shares the first load's promise instead). */
  keys: K[];
  /** `keyOf(key)` per key, when a `keyOf` is set. */
  ids: unknown[] | undefined;
  /** One per key; an error settles through `resolve(Promise.reject(error))`. */
  resolvers: Array<(value: V | PromiseLike<V>) => void>;
  /** Key `i` is indexed under reference `base + i` (uint32 arithmetic). */
  base: number;
  /** Later loads sharing a key of this batch: pairs of (key index, resolver). */
  sharers: Array<number | ((value: V | PromiseLike<V>) => void)> | undefined;
  timer: TimerHandle | undefined;
  isDispatched: boolean;
}

/**
 * The loads of one tick made while nothing was waiting or in flight (maxWaitMs 0), not yet
 * de-duplicated: one entry per load, repeats included.
 */
interface Burst<K, V> {
  keys: K[];
  /** `keyOf(key)` per load, when a `keyOf` is set. */
  ids: unknown[] | undefined;
  resolvers: Array<(value: V | PromiseLike<V>) => void>;
  isDispatched: boolean;
}

const SCHEMA = {
  maxBatchSize: { type: 'number', min: 1, max: 1_000_000, integer: true },
  maxWaitMs: { type: 'number', min: 0, max: 60_000 },
  cache: { type: 'object' },
  keyOf: { type: 'function' },
  clock: { type: 'object' },
  profiler: { type: 'object' },
} as const;

const resolved = Promise.resolve();

/**
 * Coalesces `load(key)` calls made in the same tick (or `maxWaitMs` window) into one
 * `loadMany(keys)` call of at most `maxBatchSize` distinct keys, DataLoader-style.
 *
 * @example
 * ```ts
 * const users = new Batcher((ids: string[]) => db.usersByIds(ids), { maxBatchSize: 100 });
 * const [a, b] = await Promise.all([users.load('1'), users.load('2')]); // one usersByIds call
 * ```
 */
export class Batcher<K, V> {
  readonly #loadMany: LoadManyFn<K, V>;
  readonly #maxBatchSize: number;
  readonly #maxWaitMs: number;
  readonly #cache: BatcherCache<V> | undefined;
  readonly #keyOf: ((key: K) => string) | undefined;
  readonly #clock: Clock;
  readonly #profiler: LatencyRecorder | undefined;
  readonly #inFlight = new Set<Promise<void>>();
  #pending: PendingBatch<K, V> | undefined;
  /**
   * Why two paths (issue 14, measured with `npm run bench -- batch`, string keys, 100,000 distinct
   * loads in one tick): indexing every load as it arrives (the `KeyIndex` path) ran at 0.73–0.78×
   * DataLoader `cache: false`, because the index held all 100,000 keys and each insert missed the CPU
   * cache. Now, with `maxWaitMs` 0 and nothing waiting or in flight, a tick's loads are only appended
   * here; at dispatch they are de-duplicated in one radix-partitioned pass ({@link firstOccurrences}:
   * small cache-resident tables) and cut into batches of `maxBatchSize` distinct keys, with the same
   * result as the indexed path. Those batches enter the in-flight index only if a load arrives while
   * they fly ({@link Batcher.#indexInFlight}). Figures in docs/benchmarks.md (batch section).
   */
  #burst: Burst<K, V> | undefined;
  /** Batches of a burst in flight whose keys are not in `#shared` yet (indexed on the first need). */
  readonly #unindexed: Array<PendingBatch<K, V>> = [];
  readonly #enlistBurst = (resolve: (value: V | PromiseLike<V>) => void): void => {
    (this.#burst as Burst<K, V>).resolvers.push(resolve);
  };
  /**
   * The promise of every key waiting in the window or in flight, by id, so a repeat shares it instead
   * of taking a slot or starting another batch. One index for both (not one per batch): a lookup is
   * one probe however many batches fly. Deleted per key when its batch settles.
   */
  readonly #shared: KeyIndex;
  /** Batches whose keys are indexed (the window, full ones waiting to go, those in flight), oldest first. */
  readonly #live: Array<PendingBatch<K, V>> = [];
  /** The reference the next new key gets (wraps at 2^32; live references span far less). */
  #nextRef = 0;
  /** A sharer waiting to be enlisted by `#enlistSharer` (set just before `new Promise`). */
  #sharerIndex = 0;
  #sharerBatch: PendingBatch<K, V> | undefined;
  readonly #enlistSharer = (resolve: (value: V | PromiseLike<V>) => void): void => {
    const batch = this.#sharerBatch as PendingBatch<K, V>;
    (batch.sharers ??= []).push(this.#sharerIndex, resolve);
  };
  /**
   * The executor of every load's promise, allocated once instead of a closure per load (GC was 68%
   * of the profile of 100k loads). Only called while `#pending` is set.
   */
  readonly #enlist = (resolve: (value: V | PromiseLike<V>) => void): void => {
    (this.#pending as PendingBatch<K, V>).resolvers.push(resolve);
  };
  #isClosed = false;
  #loads = 0;
  #cacheHits = 0;
  #deduplicated = 0;
  #batches = 0;
  #keys = 0;
  #batchErrors = 0;
  #keyErrors = 0;

  /** @throws ConfigError when `loadMany` is not a function or an option is unknown or out of range. */
  constructor(loadMany: LoadManyFn<K, V>, options: BatcherOptions<K, V> = {}) {
    if (typeof loadMany !== 'function') {
      throw new ConfigError('Batcher.loadMany', 'Batcher: loadMany must be a function (keys) => values');
    }
    validateOptions('Batcher', options, SCHEMA);
    const cache = options.cache;
    if (
      cache !== undefined &&
      (typeof cache.get !== 'function' || typeof cache.set !== 'function' || typeof cache.delete !== 'function')
    ) {
      throw new ConfigError('Batcher.cache', 'Batcher.cache must have get, set and delete methods');
    }
    this.#loadMany = loadMany;
    this.#maxBatchSize = options.maxBatchSize ?? 1000;
    this.#shared = new KeyIndex((ref) => this.#idOfRef(ref), this.#maxBatchSize);
    this.#maxWaitMs = options.maxWaitMs ?? 0;
    this.#cache = cache;
    this.#keyOf = options.keyOf;
    this.#clock = options.clock ?? systemClock;
    this.#profiler = options.profiler;
  }

  /**
   * Loads one key through the next batch (or the cache).
   * @throws (rejects) the key's `Error` from `loadMany`, the batch's error, a TypeError for a malformed
   *   result, ConfigError for an `undefined` key, ClosedError after `close()`, `signal.reason` on abort.
   */
  load(key: K, options?: BatcherLoadOptions): Promise<V> {
    const promise = this.#load(key);
    const signal = options?.signal;
    return signal === undefined ? promise : abortable(promise, signal);
  }

  /**
   * Loads several keys (batched together with any other load of the same window).
   * @returns one result per key, in order; one failing key never loses the others.
   */
  async loadMany(keys: Iterable<K>, options?: BatcherLoadOptions): Promise<Array<ItemResult<V>>> {
    if (keys === null || typeof keys !== 'object' || typeof keys[Symbol.iterator] !== 'function') {
      throw new ConfigError('Batcher.loadMany.keys', 'Batcher.loadMany: keys must be an array or an iterable');
    }
    const list = Array.from(keys);
    return Promise.all(
      list.map((key) =>
        this.load(key, options).then(
          (value): ItemResult<V> => ({ ok: true, value }),
          (error: unknown): ItemResult<V> => ({ ok: false, error }),
        ),
      ),
    );
  }

  /**
   * Forgets a key's cached value and its load in flight, so the next `load(key)` calls `loadMany`
   * again (a load sent before a write may answer with the old value). Loads still waiting in the
   * current window keep sharing it: their batch has not been sent yet.
   * @throws ConfigError for an object key without `keyOf` when a cache is set.
   */
  clear(key: K): this {
    if (this.#cache !== undefined) this.#cache.delete(this.#cacheKeyOf(key));
    const id = this.#keyOf === undefined ? key : this.#keyOf(key);
    if (this.#unindexed.length > 0) this.#indexInFlight();
    const ref = this.#shared.find(id);
    if (ref < 0) return this;
    const pending = this.#pending;
    const isWaiting = pending !== undefined && (ref - pending.base) >>> 0 < pending.keys.length;
    if (!isWaiting) this.#shared.delete(id, ref);
    return this;
  }

  /**
   * Puts a known value in the cache, so the next `load(key)` needs no call; an `Error` makes the next
   * `load(key)` reject with it (as an `Error` in a `loadMany` result does). Only the cache holds it:
   * nothing is primed without one.
   * @throws ConfigError when the Batcher has no cache, or for an `undefined` key.
   */
  prime(key: K, value: V | Error): this {
    if (this.#cache === undefined) {
      throw new ConfigError('Batcher.cache', 'Batcher.prime() needs a cache: pass the `cache` option');
    }
    if (key === undefined) throw new ConfigError('Batcher.prime.key', 'Batcher.prime: key must not be undefined');
    this.#cache.set(this.#cacheKeyOf(key), value as V);
    return this;
  }

  /** Counters so far. */
  stats(): BatcherStats {
    return {
      loads: this.#loads,
      cacheHits: this.#cacheHits,
      deduplicated: this.#deduplicated,
      batches: this.#batches,
      keys: this.#keys,
      meanBatchSize: this.#batches === 0 ? 0 : this.#keys / this.#batches,
      batchErrors: this.#batchErrors,
      keyErrors: this.#keyErrors,
      pendingKeys: this.#pending?.keys.length ?? this.#burst?.keys.length ?? 0,
      inFlightBatches: this.#inFlight.size,
    };
  }

  /** Sends the pending window now, waits for the batches in flight, then refuses new loads. Idempotent. */
  async close(): Promise<void> {
    this.#isClosed = true;
    const burst = this.#burst;
    if (burst !== undefined) this.#dispatchBurst(burst);
    const pending = this.#pending;
    if (pending !== undefined) this.#dispatch(pending);
    while (this.#inFlight.size > 0) await Promise.all(this.#inFlight);
  }

  /** Same as {@link Batcher.close}, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #cacheKeyOf(key: K): string {
    if (this.#keyOf !== undefined) return this.#keyOf(key);
    if (key !== null && (typeof key === 'object' || typeof key === 'function')) {
      throw new ConfigError('Batcher.keyOf', 'Batcher: object keys need the keyOf option to be cached');
    }
    return String(key);
  }

  #load(key: K): Promise<V> {
    if (this.#isClosed) return Promise.reject(new ClosedError('Batcher'));
    if (key === undefined) {
      return Promise.reject(new ConfigError('Batcher.load.key', 'Batcher.load: key must not be undefined'));
    }
    this.#loads++;
    const keyOf = this.#keyOf;
    const cache = this.#cache;
    if (keyOf === undefined && cache === undefined) return this.#enqueue(key, key);
    let id: unknown;
    let cached: V | Error | undefined | Promise<V | Error | undefined>;
    try {
      id = keyOf === undefined ? key : keyOf(key);
      if (cache === undefined) return this.#enqueue(key, id);
      cached = cache.get(keyOf === undefined ? this.#cacheKeyOf(key) : (id as string)) as V | Error | undefined;
    } catch (error) {
      // A throwing keyOf or cache read fails this load only.
      return Promise.reject(error);
    }
    if (cached instanceof Promise) {
      return cached.then((value) => (value === undefined ? this.#enqueue(key, id) : this.#hit(value)));
    }
    return cached === undefined ? this.#enqueue(key, id) : this.#hit(cached);
  }

  /** A cache hit: the value, or a rejection for a primed `Error`. */
  #hit(value: V | Error): Promise<V> {
    this.#cacheHits++;
    return value instanceof Error ? Promise.reject(value) : Promise.resolve(value);
  }

  #enqueue(key: K, id: unknown): Promise<V> {
    if (this.#isClosed) return Promise.reject(new ClosedError('Batcher'));
    const burst = this.#burst;
    if (burst !== undefined) return this.#addToBurst(burst, key, id);
    if (this.#maxWaitMs === 0 && this.#live.length === 0) {
      const started: Burst<K, V> = {
        keys: [],
        ids: this.#keyOf === undefined ? undefined : [],
        resolvers: [],
        isDispatched: false,
      };
      this.#burst = started;
      resolved.then(() => process.nextTick(() => this.#dispatchBurst(started)));
      return this.#addToBurst(started, key, id);
    }
    if (this.#unindexed.length > 0) this.#indexInFlight();
    const ref = this.#nextRef;
    const existing = this.#shared.findOrAdd(id, ref);
    if (existing >= 0) return this.#share(existing);
    this.#nextRef = (ref + 1) >>> 0;
    let batch = this.#pending;
    if (batch === undefined) {
      batch = {
        keys: [],
        ids: this.#keyOf === undefined ? undefined : [],
        resolvers: [],
        base: ref,
        sharers: undefined,
        timer: undefined,
        isDispatched: false,
      };
      this.#pending = batch;
      this.#live.push(batch);
      this.#schedule(batch);
    }
    const promise = new Promise<V>(this.#enlist);
    batch.keys.push(key);
    batch.ids?.push(id);
    if (batch.keys.length >= this.#maxBatchSize) {
      // Full: later keys start a new batch; this one goes as soon as the current synchronous code ends.
      this.#pending = undefined;
      if (batch.timer !== undefined) {
        this.#clock.clearTimeout(batch.timer);
        batch.timer = undefined;
        const full = batch;
        queueMicrotask(() => this.#dispatch(full));
      }
    }
    return promise;
  }

  #addToBurst(burst: Burst<K, V>, key: K, id: unknown): Promise<V> {
    const promise = new Promise<V>(this.#enlistBurst);
    burst.keys.push(key);
    burst.ids?.push(id);
    return promise;
  }

  /**
   * Sends a burst: repeats share the slot of their key's first load, and new keys fill batches of
   * `maxBatchSize` in load order — the batches the indexed path would have built.
   */
  #dispatchBurst(burst: Burst<K, V>): void {
    if (burst.isDispatched) return;
    burst.isDispatched = true;
    if (this.#burst === burst) this.#burst = undefined;
    const { keys, resolvers } = burst;
    const ids = burst.ids ?? keys;
    const count = keys.length;
    const first = firstOccurrences(ids, count);
    const slotOf = new Int32Array(count);
    const batchOf = new Int32Array(count);
    const batches: Array<PendingBatch<K, V>> = [];
    const maxBatchSize = this.#maxBatchSize;
    const hasIds = burst.ids !== undefined;
    let batch: PendingBatch<K, V> | undefined;
    for (let i = 0; i < count; i++) {
      const at = first[i] as number;
      if (at !== i) {
        this.#deduplicated++;
        const owner = batches[batchOf[at] as number] as PendingBatch<K, V>;
        (owner.sharers ??= []).push(slotOf[at] as number, resolvers[i] as (value: V | PromiseLike<V>) => void);
        continue;
      }
      if (batch === undefined || batch.keys.length >= maxBatchSize) {
        batch = {
          keys: [],
          ids: hasIds ? [] : undefined,
          resolvers: [],
          base: this.#nextRef,
          sharers: undefined,
          timer: undefined,
          isDispatched: false,
        };
        batches.push(batch);
        this.#live.push(batch);
        this.#unindexed.push(batch);
      }
      slotOf[i] = batch.keys.length;
      batchOf[i] = batches.length - 1;
      batch.keys.push(keys[i] as K);
      batch.ids?.push(ids[i]);
      batch.resolvers.push(resolvers[i] as (value: V | PromiseLike<V>) => void);
      this.#nextRef = (this.#nextRef + 1) >>> 0;
    }
    for (const each of batches) this.#dispatch(each);
  }

  /** A load arrived while batches of a burst fly: put their keys in the index, so it can share them. */
  #indexInFlight(): void {
    const shared = this.#shared;
    for (const batch of this.#unindexed) {
      const ids = batch.ids ?? batch.keys;
      for (let i = 0; i < ids.length; i++) shared.findOrAdd(ids[i], (batch.base + i) >>> 0);
    }
    this.#unindexed.length = 0;
  }

  /** A load of a key already waiting or in flight: one more caller of that key's result. */
  #share(ref: number): Promise<V> {
    const batch = this.#batchOfRef(ref) as PendingBatch<K, V>;
    this.#deduplicated++;
    this.#sharerBatch = batch;
    this.#sharerIndex = (ref - batch.base) >>> 0;
    return new Promise<V>(this.#enlistSharer);
  }

  #batchOfRef(ref: number): PendingBatch<K, V> | undefined {
    const live = this.#live;
    // Newest first: a repeat is most often of a key loaded moments ago.
    for (let i = live.length - 1; i >= 0; i--) {
      const batch = live[i] as PendingBatch<K, V>;
      if ((ref - batch.base) >>> 0 < batch.keys.length) return batch;
    }
    return undefined;
  }

  #idOfRef(ref: number): unknown {
    const batch = this.#batchOfRef(ref);
    if (batch === undefined) return undefined;
    const index = (ref - batch.base) >>> 0;
    return batch.ids === undefined ? batch.keys[index] : batch.ids[index];
  }

  /** Drops a settled batch from the live list (usually the oldest) and its keys from the index. */
  #retire(batch: PendingBatch<K, V>): void {
    const live = this.#live;
    const at = live.indexOf(batch);
    if (at >= 0) live.splice(at, 1);
    const unindexed = this.#unindexed;
    if (unindexed.length > 0) {
      const waiting = unindexed.indexOf(batch);
      if (waiting >= 0) unindexed.splice(waiting, 1);
    }
    const shared = this.#shared;
    const oldest = live[0];
    if (oldest === undefined) {
      shared.clear();
      shared.liveFrom = this.#nextRef;
      return;
    }
    shared.liveFrom = oldest.base;
    shared.forgetOther((ref) => this.#batchOfRef(ref) !== undefined);
  }

  #schedule(batch: PendingBatch<K, V>): void {
    if (this.#maxWaitMs > 0) {
      batch.timer = this.#clock.setTimeout(() => {
        batch.timer = undefined;
        this.#dispatch(batch);
      }, this.#maxWaitMs);
      return;
    }
    // Same as DataLoader: after the current promise jobs, then the next tick, so loads made in
    // `.then` continuations of this tick still join.
    resolved.then(() => process.nextTick(() => this.#dispatch(batch)));
  }

  #dispatch(batch: PendingBatch<K, V>): void {
    if (batch.isDispatched) return;
    batch.isDispatched = true;
    if (this.#pending === batch) this.#pending = undefined;
    if (batch.timer !== undefined) {
      this.#clock.clearTimeout(batch.timer);
      batch.timer = undefined;
    }
    const sent = batch.keys;
    const size = sent.length;
    this.#batches++;
    this.#keys += size;
    const start = this.#profiler === undefined ? 0 : performance.now();
    let output: ReadonlyArray<V | Error> | PromiseLike<ReadonlyArray<V | Error>>;
    try {
      output = this.#loadMany(sent);
    } catch (error) {
      this.#failBatch(batch, error, start);
      return;
    }
    const settled = Promise.resolve(output).then(
      (values) => {
        if (!Array.isArray(values) || values.length !== size) {
          const got = Array.isArray(values) ? `${values.length} values` : values === null ? 'null' : typeof values;
          this.#failBatch(
            batch,
            new TypeError(
              `Batcher: loadMany must return one value per key (an array of ${size}, in key order), got ${got}`,
            ),
            start,
          );
          return;
        }
        this.#profiler?.record('batch.loadMany', performance.now() - start);
        this.#settleBatch(batch, sent, values);
      },
      (error: unknown) => this.#failBatch(batch, error, start),
    );
    this.#inFlight.add(settled);
    settled.then(() => this.#inFlight.delete(settled));
  }

  #settleBatch(batch: PendingBatch<K, V>, sent: K[], values: ReadonlyArray<V | Error>): void {
    const { resolvers } = batch;
    const cache = this.#cache;
    // Leave the index first: a load made by a continuation of these results starts a new batch.
    this.#retire(batch);
    for (let i = 0; i < sent.length; i++) {
      const value = values[i] as V | Error;
      if (value instanceof Error) {
        this.#keyErrors++;
      } else if (cache !== undefined) {
        try {
          cache.set(this.#cacheKeyOf(sent[i] as K), value);
        } catch {
          // The callers still get the value; a cache that refuses a write only costs a later miss.
        }
      }
      if (value instanceof Error) {
        (resolvers[i] as (value: Promise<V>) => void)(Promise.reject(value));
      } else {
        (resolvers[i] as (value: V) => void)(value);
      }
    }
    const sharers = batch.sharers;
    if (sharers === undefined) return;
    for (let i = 0; i < sharers.length; i += 2) {
      const value = values[sharers[i] as number] as V | Error;
      const resolve = sharers[i + 1] as (value: V | PromiseLike<V>) => void;
      resolve(value instanceof Error ? Promise.reject(value) : value);
    }
  }

  #failBatch(batch: PendingBatch<K, V>, error: unknown, start: number): void {
    this.#batchErrors++;
    this.#profiler?.record('batch.loadMany', performance.now() - start, true);
    const { resolvers } = batch;
    this.#retire(batch);
    for (let i = 0; i < resolvers.length; i++) {
      (resolvers[i] as (value: Promise<V>) => void)(Promise.reject(error));
    }
    const sharers = batch.sharers;
    if (sharers === undefined) return;
    for (let i = 1; i < sharers.length; i += 2) {
      (sharers[i] as (value: Promise<V>) => void)(Promise.reject(error));
    }
  }
}
