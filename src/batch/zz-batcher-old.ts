/**
 * Batcher: DataLoader-style coalescing of single-key loads into batched `loadMany(keys)` calls.
 * @module
 */
import { abortable } from '../core/abort.js';
import { type Clock, systemClock, type TimerHandle } from '../core/clock.js';
import { ClosedError, ConfigError } from '../core/errors.js';
import { validateOptions } from '../core/options.js';
import type { LatencyRecorder } from '../core/recorder.js';
import { RepeatDetector } from './repeat-detector.js';
import type { BatcherCache, ItemResult } from './types.js';

/**
 * Loads many keys in one call; must return one value per key, in the same order. An `Error` in the
 * array fails only the callers of that key; a throw or a wrong-length array fails every caller of the batch.
 */
export type LoadManyFn<K, V> = (keys: K[]) => ReadonlyArray<V | Error> | PromiseLike<ReadonlyArray<V | Error>>;

/** Options of {@link Batcher}. */
export interface BatcherOptions<K, V> {
  /** Most keys per `loadMany` call; a fuller window is split. Integer 1–1,000,000 (default 1000). */
  maxBatchSize?: number | undefined;
  /**
   * How long the first `load` of a window waits for company, ms, 0–60,000. 0 (default) = the current
   * tick: every `load` made before the event loop moves on (promise continuations included) joins.
   */
  maxWaitMs?: number | undefined;
  /** Read before batching, filled with loaded values (errors are not cached); hotpath's `Cache` fits. */
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
  /** Loads that shared a `loadMany` key with another load of the same batch. */
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
  /** Keys waiting for their window to close. */
  pendingKeys: number;
  /** `loadMany` calls running now. */
  inFlightBatches: number;
}

interface PendingBatch<K, V> {
  /** One entry per load (repeats included) until dispatch. */
  keys: K[];
  /** `keyOf(key)` per load, when a `keyOf` is set. */
  ids: unknown[] | undefined;
  /** Per load, the index of its key in the array sent; set only when keys repeat. */
  slots?: Uint32Array;
  /** One per distinct key; an error settles through `resolve(Promise.reject(error))`. */
  resolvers: Array<(value: V | PromiseLike<V>) => void>;
  timer: TimerHandle | undefined;
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
  /** Spots repeated keys at dispatch (one cheap probe per key when none repeats). */
  readonly #repeats = new RepeatDetector();
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
   * Forgets a key's cached value, so the next `load(key)` calls `loadMany` again. Loads already waiting
   * in the current window keep sharing their batch. No-op without a cache.
   */
  clear(key: K): this {
    this.#cache?.delete(this.#cacheKeyOf(key));
    return this;
  }

  /**
   * Puts a known value in the cache, so the next `load(key)` needs no call.
   * @throws ConfigError when the Batcher has no cache, or for an `undefined` key.
   */
  prime(key: K, value: V): this {
    if (this.#cache === undefined) {
      throw new ConfigError('Batcher.cache', 'Batcher.prime() needs a cache: pass the `cache` option');
    }
    if (key === undefined) throw new ConfigError('Batcher.prime.key', 'Batcher.prime: key must not be undefined');
    this.#cache.set(this.#cacheKeyOf(key), value);
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
      pendingKeys: this.#pending?.keys.length ?? 0,
      inFlightBatches: this.#inFlight.size,
    };
  }

  /** Sends the pending window now, waits for the batches in flight, then refuses new loads. Idempotent. */
  async close(): Promise<void> {
    this.#isClosed = true;
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
    if (this.#isClosed) return Promise.reject(new ClosedError('Batcher is closed'));
    if (key === undefined) {
      return Promise.reject(new ConfigError('Batcher.load.key', 'Batcher.load: key must not be undefined'));
    }
    this.#loads++;
    const keyOf = this.#keyOf;
    const cache = this.#cache;
    if (keyOf === undefined && cache === undefined) return this.#enqueue(key, key);
    let id: unknown;
    let cached: V | undefined | Promise<V | undefined>;
    try {
      id = keyOf === undefined ? key : keyOf(key);
      if (cache === undefined) return this.#enqueue(key, id);
      cached = cache.get(keyOf === undefined ? this.#cacheKeyOf(key) : (id as string));
    } catch (error) {
      // A throwing keyOf or cache read fails this load only.
      return Promise.reject(error);
    }
    if (cached instanceof Promise) {
      return cached.then((value) => {
        if (value !== undefined) {
          this.#cacheHits++;
          return value;
        }
        return this.#enqueue(key, id);
      });
    }
    if (cached !== undefined) {
      this.#cacheHits++;
      return Promise.resolve(cached);
    }
    return this.#enqueue(key, id);
  }

  #enqueue(key: K, id: unknown): Promise<V> {
    if (this.#isClosed) return Promise.reject(new ClosedError('Batcher is closed'));
    let batch = this.#pending;
    if (batch === undefined) {
      batch = {
        keys: [],
        ids: this.#keyOf === undefined ? undefined : [],
        resolvers: [],
        timer: undefined,
        isDispatched: false,
      };
      this.#pending = batch;
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
    const sent = this.#dedupe(batch);
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

  /**
   * The keys to send: the batch's own array when no key repeats (the common case), else the distinct keys in first-seen order, with `batch.slots` mapping each load to its key.
   */
  #dedupe(batch: PendingBatch<K, V>): K[] {
    const { keys, ids } = batch;
    const count = keys.length;
    if (count < 2) return keys;
    const hasRepeats = this.#repeats.hasRepeats(ids ?? keys);
    if (!hasRepeats) return keys;
    const indexOf = new Map<unknown, number>();
    const distinct: K[] = [];
    const slots = new Uint32Array(count);
    for (let i = 0; i < count; i++) {
      const id = ids === undefined ? keys[i] : ids[i];
      let slot = indexOf.get(id);
      if (slot === undefined) {
        slot = distinct.length;
        indexOf.set(id, slot);
        distinct.push(keys[i] as K);
      }
      slots[i] = slot;
    }
    this.#deduplicated += count - distinct.length;
    batch.slots = slots;
    return distinct;
  }

  #settleBatch(batch: PendingBatch<K, V>, sent: K[], values: ReadonlyArray<V | Error>): void {
    const { resolvers, slots } = batch;
    const cache = this.#cache;
    for (let i = 0; i < sent.length; i++) {
      const value = values[i];
      if (value instanceof Error) {
        this.#keyErrors++;
      } else if (cache !== undefined) {
        try {
          cache.set(this.#cacheKeyOf(sent[i] as K), value as V);
        } catch {
          // The callers still get the value; a cache that refuses a write only costs a later miss.
        }
      }
    }
    for (let i = 0; i < resolvers.length; i++) {
      const value = values[slots === undefined ? i : (slots[i] as number)] as V | Error;
      if (value instanceof Error) {
        (resolvers[i] as (value: Promise<V>) => void)(Promise.reject(value));
      } else {
        (resolvers[i] as (value: V) => void)(value);
      }
    }
  }

  #failBatch(batch: PendingBatch<K, V>, error: unknown, start: number): void {
    this.#batchErrors++;
    this.#profiler?.record('batch.loadMany', performance.now() - start, true);
    const { resolvers } = batch;
    for (let i = 0; i < resolvers.length; i++) {
      (resolvers[i] as (value: Promise<V>) => void)(Promise.reject(error));
    }
  }
}
