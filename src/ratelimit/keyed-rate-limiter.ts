/**
 * KeyedRateLimiter: one {@link RateLimiter} per user, tenant or host, created on first use and dropped
 * when idle, so memory follows the keys that are busy now, not every key ever seen.
 * @module
 */
import { ClosedError, ConfigError } from '../core/errors.js';
import { checkNumber, checkString } from '../core/options.js';
import { MemoryRateLimitStore } from './memory-store.js';
import { createRateLimiter, type RateLimiter } from './rate-limiter.js';
import type {
  AcquireOptions,
  RateLimiterOptions,
  RateLimitScheduleOptions,
  Release,
  ResolvedRateLimiterOptions,
  TryAcquireResult,
} from './rate-limiter-options.js';
import { resolveRateLimiterOptions } from './rate-limiter-options.js';
import type { RateLimitStore } from './store.js';

/** Options of {@link KeyedRateLimiter}: every per-key limiter gets these {@link RateLimiterOptions}. */
export interface KeyedRateLimiterOptions extends Omit<RateLimiterOptions, 'key'> {
  /**
   * Most sliding windows kept by the default store (default 100,000): size it above the number of keys
   * active within one `intervalMs`. Ignored when `store` is given.
   */
  maxKeys?: number;
  /** Prefix of every key in `store` (default `""`), so that several keyed limiters can share one store. */
  keyPrefix?: string;
}

/** Counters of a {@link KeyedRateLimiter}; plain numbers. */
export interface KeyedRateLimiterStats {
  /** Per-key limiters held now. */
  keys: number;
  /** Per-key limiters created since construction. */
  created: number;
  /** Idle per-key limiters dropped since construction. */
  dropped: number;
  /** Sum over held limiters of tasks running. */
  running: number;
  /** Sum over held limiters of waiters in line. */
  queued: number;
}

const MIN_SWEEP_AT = 64;
const MAX_KEY_LENGTH = 1024;

/**
 * A rate limit per key: `for(key)` returns that key's {@link RateLimiter} (created on first use), and
 * the shorthands `schedule(key, fn)`, `acquire(key)`, `tryAcquire(key)` call it. Each key has its own
 * `limit` per `intervalMs`, `maxConcurrent`, `minTimeMs` and line.
 *
 * Memory stays bounded under any number of distinct keys: the windows live in one store (bounded by
 * `maxKeys`, expired windows swept), and a per-key limiter is dropped once idle — nothing running or
 * waiting, no pause or spacing in force — which loses nothing, as a new one reads the same window.
 * Call `for(key)` at each use rather than holding on to the limiter for long.
 *
 * @example
 * ```ts
 * const perTenant = new KeyedRateLimiter({ limit: 100, intervalMs: 60_000, maxConcurrent: 5 });
 * const report = await perTenant.schedule(tenantId, () => buildReport(tenantId));
 * ```
 */
export class KeyedRateLimiter implements AsyncDisposable {
  readonly #base: ResolvedRateLimiterOptions;
  readonly #store: RateLimitStore;
  readonly #ownStore: MemoryRateLimitStore | undefined;
  readonly #keyPrefix: string;
  readonly #limiters = new Map<string, RateLimiter>();
  #sweepAt = MIN_SWEEP_AT;
  #created = 0;
  #dropped = 0;
  #closed = false;

  /** @throws ConfigError when an option is missing, unknown or out of range. */
  constructor(options: KeyedRateLimiterOptions) {
    if (options === null || typeof options !== 'object') {
      throw new ConfigError('KeyedRateLimiter', 'KeyedRateLimiter options must be an object');
    }
    if ('key' in options) {
      throw new ConfigError('KeyedRateLimiter.key', 'KeyedRateLimiter: use keyPrefix; the key comes from for(key)');
    }
    const { maxKeys, keyPrefix, ...limiterOptions } = options;
    const base = resolveRateLimiterOptions('KeyedRateLimiter', limiterOptions as RateLimiterOptions);
    if (maxKeys !== undefined) checkNumber('KeyedRateLimiter.maxKeys', maxKeys, { integer: true, min: 1 });
    this.#keyPrefix = keyPrefix === undefined ? '' : checkString('KeyedRateLimiter.keyPrefix', keyPrefix);
    this.#ownStore = base.store === undefined ? new MemoryRateLimitStore({ maxKeys: maxKeys ?? 100_000 }) : undefined;
    this.#store = base.store ?? (this.#ownStore as MemoryRateLimitStore);
    this.#base = { ...base, store: this.#store };
  }

  /**
   * The limiter of `key`, created on first use.
   * @throws ConfigError for a key that is not a non-empty string of at most 1,024 characters; ClosedError after `close()`.
   */
  for(key: string): RateLimiter {
    if (this.#closed) throw new ClosedError('KeyedRateLimiter');
    const existing = this.#limiters.get(key);
    if (existing !== undefined) return existing;
    checkString('KeyedRateLimiter.key', key, { nonEmpty: true, maxLength: MAX_KEY_LENGTH });
    if (this.#limiters.size >= this.#sweepAt) this.#sweep();
    const limiter = createRateLimiter(this.#base, this.#keyPrefix + key, `${this.#base.name}[${key}]`);
    this.#limiters.set(key, limiter);
    this.#created++;
    return limiter;
  }

  /**
   * `for(key).schedule(fn, options)`.
   * @throws (rejects) as {@link RateLimiter.schedule}; RateLimitError when that key's line is full.
   */
  schedule<T>(key: string, fn: () => T | PromiseLike<T>, options?: RateLimitScheduleOptions): Promise<Awaited<T>> {
    let limiter: RateLimiter;
    try {
      limiter = this.for(key);
    } catch (error) {
      return Promise.reject(error);
    }
    return limiter.schedule(fn, options);
  }

  /** `for(key).acquire(options)`; rejects as {@link RateLimiter.acquire}. */
  acquire(key: string, options?: AcquireOptions): Promise<Release> {
    let limiter: RateLimiter;
    try {
      limiter = this.for(key);
    } catch (error) {
      return Promise.reject(error);
    }
    return limiter.acquire(options);
  }

  /** `for(key).tryAcquire(weight)`; throws as {@link RateLimiter.tryAcquire}. */
  tryAcquire(key: string, weight?: number): TryAcquireResult {
    return this.for(key).tryAcquire(weight);
  }

  /**
   * `for(key).tryAcquireAsync(weight)`: works on every store, network stores included.
   * @throws (rejects) as {@link RateLimiter.tryAcquireAsync}, and ConfigError for a bad key.
   */
  tryAcquireAsync(key: string, weight?: number): Promise<TryAcquireResult> {
    let limiter: RateLimiter;
    try {
      limiter = this.for(key);
    } catch (error) {
      return Promise.reject(error);
    }
    return limiter.tryAcquireAsync(weight);
  }

  /** `for(key).penalize(retryAfterMs)`: pauses that key only. */
  penalize(key: string, retryAfterMs: number): void {
    this.for(key).penalize(retryAfterMs);
  }

  /** Counts of held, created and dropped per-key limiters, and the work they hold. O(keys held). */
  stats(): KeyedRateLimiterStats {
    let running = 0;
    let queued = 0;
    for (const limiter of this.#limiters.values()) {
      const stats = limiter.stats();
      running += stats.running;
      queued += stats.queued;
    }
    return { keys: this.#limiters.size, created: this.#created, dropped: this.#dropped, running, queued };
  }

  /** Windows held by the default in-memory store (0 with a custom store). */
  get storeKeys(): number {
    return this.#ownStore?.stats().keys ?? 0;
  }

  /** Closes every per-key limiter (their waiters reject with ClosedError); later calls throw ClosedError. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const limiters = [...this.#limiters.values()];
    this.#limiters.clear();
    await Promise.all(limiters.map((limiter) => limiter.close()));
    this.#ownStore?.clear();
  }

  /** Same as {@link close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Drops idle limiters. The next sweep runs when the map has doubled, so the cost is amortised O(1)
   * per new key, and the map holds at most about twice the limiters that had work at the last sweep.
   */
  #sweep(): void {
    for (const [key, limiter] of this.#limiters) {
      if (limiter.isIdle()) {
        this.#limiters.delete(key);
        this.#dropped++;
      }
    }
    this.#sweepAt = Math.max(MIN_SWEEP_AT, this.#limiters.size * 2);
  }
}
