/**
 * The default, in-process {@link RateLimitStore}: one sliding-window log per key in typed-array ring
 * buffers, answering synchronously so a limiter that does not bind never waits on a timer or a promise.
 * @module
 */
import { validateOptions } from '../core/options.js';
import type { RateLimitStore, ReserveResult } from './store.js';

/** Options of {@link MemoryRateLimitStore}. */
export interface MemoryRateLimitStoreOptions {
  /**
   * Most keys (windows) kept at once (default 100,000). Windows whose starts have all expired are
   * dropped first; beyond that the oldest windows are forgotten (counted in `stats().evictions`), which
   * lets those keys start early, so size it above the number of keys active within one interval.
   */
  maxKeys?: number;
  /**
   * Most log entries per window (default 4,096). Starts in the same millisecond share one entry; when a
   * window is full, a new start is merged into the newest entry, which then expires later than it
   * strictly has to — never earlier — so the limit still holds at a coarser resolution.
   */
  maxEntriesPerKey?: number;
}

/** Counters of a {@link MemoryRateLimitStore}. */
export interface MemoryRateLimitStoreStats {
  /** Windows held now. */
  keys: number;
  /** Windows forgotten while still holding unexpired starts because `maxKeys` was reached. */
  evictions: number;
}

const INITIAL_ENTRIES = 4;
const MIN_SWEEP_AT = 1024;

/**
 * One key's log: start times and weights in a ring buffer, oldest at `head`, with `used` the sum of
 * the weights still in the log. Expired entries are dropped lazily from the head, so a reservation is
 * amortised O(1) and allocates nothing once the arrays have grown to the working size.
 */
class SlidingWindow {
  // Plain double arrays, not Float64Array: a million small typed arrays (each with its own ArrayBuffer)
  // made GC 3.6 of 5.3 s in the 1,000,000-key test; double-element arrays are ordinary heap objects.
  times: number[] = newDoubles(INITIAL_ENTRIES);
  weights: number[] = newDoubles(INITIAL_ENTRIES);
  head = 0;
  size = 0;
  used = 0;
  /** Window length the key was last used with; lets the sweep decide that the key is idle. */
  windowMs = 0;

  expire(windowMs: number, nowMs: number): void {
    const times = this.times;
    const mask = times.length - 1;
    while (this.size > 0 && (times[this.head] as number) + windowMs <= nowMs) {
      this.used -= this.weights[this.head] as number;
      this.head = (this.head + 1) & mask;
      this.size--;
    }
    // Fractional weights can leave rounding dust; an empty log holds exactly nothing.
    if (this.size === 0) this.used = 0;
  }

  /** Milliseconds until `needed` units have expired (the log holds at least that many). */
  waitFor(needed: number, windowMs: number, nowMs: number): number {
    const mask = this.times.length - 1;
    let freed = 0;
    for (let i = 0; i < this.size; i++) {
      const at = (this.head + i) & mask;
      freed += this.weights[at] as number;
      if (freed >= needed) return (this.times[at] as number) + windowMs - nowMs;
    }
    return windowMs;
  }

  add(weight: number, nowMs: number, maxEntries: number): void {
    this.used += weight;
    const mask = this.times.length - 1;
    if (this.size > 0) {
      const tail = (this.head + this.size - 1) & mask;
      // Same millisecond (the common case under load), or the clock stepped back: merge into the newest
      // entry. Keeping the later of the two times only ever delays expiry, so the limit still holds.
      if ((this.times[tail] as number) >= nowMs) {
        this.weights[tail] = (this.weights[tail] as number) + weight;
        return;
      }
      if (this.size === this.times.length) {
        if (this.size >= maxEntries) {
          this.times[tail] = nowMs;
          this.weights[tail] = (this.weights[tail] as number) + weight;
          return;
        }
        this.#grow();
      }
    }
    const at = (this.head + this.size) & (this.times.length - 1);
    this.times[at] = nowMs;
    this.weights[at] = weight;
    this.size++;
  }

  /** Removes `weight` units from the entry that holds a reservation made at `reservedAtMs`. */
  refund(weight: number, reservedAtMs: number): void {
    const mask = this.times.length - 1;
    // Merges only move an entry's time forward, so the reservation sits in the oldest entry whose time is
    // not earlier than the reservation's. Refunds are of recent reservations: search from the newest end.
    let found = -1;
    for (let i = this.size - 1; i >= 0; i--) {
      const at = (this.head + i) & mask;
      if ((this.times[at] as number) < reservedAtMs) break;
      found = i;
    }
    if (found < 0) return;
    const at = (this.head + found) & mask;
    const taken = Math.min(weight, this.weights[at] as number);
    this.weights[at] = (this.weights[at] as number) - taken;
    this.used = Math.max(0, this.used - taken);
    if (found === this.size - 1 && this.weights[at] === 0) this.size--;
    if (this.size === 0) this.used = 0;
  }

  newestMs(): number {
    return this.size === 0
      ? Number.NEGATIVE_INFINITY
      : (this.times[(this.head + this.size - 1) & (this.times.length - 1)] as number);
  }

  #grow(): void {
    const capacity = this.times.length;
    const times = newDoubles(capacity * 2);
    const weights = newDoubles(capacity * 2);
    for (let i = 0; i < this.size; i++) {
      const at = (this.head + i) & (capacity - 1);
      times[i] = this.times[at] as number;
      weights[i] = this.weights[at] as number;
    }
    this.times = times;
    this.weights = weights;
    this.head = 0;
  }
}

/** An array of `length` doubles (kept in V8's unboxed PACKED_DOUBLE representation). */
function newDoubles(length: number): number[] {
  const values = [0.5];
  for (let i = 1; i < length; i++) values.push(0.5);
  return values;
}

function nextPowerOfTwo(value: number): number {
  let power = INITIAL_ENTRIES;
  while (power < value) power *= 2;
  return power;
}

/**
 * In-process sliding-window store (the default of every {@link RateLimiter}). Exact: a start counts
 * against the limit for exactly `windowMs` after the time it was reserved. Memory is bounded by
 * `maxKeys × maxEntriesPerKey`; idle keys are swept as new ones arrive.
 *
 * @example
 * ```ts
 * const store = new MemoryRateLimitStore({ maxKeys: 10_000 });
 * const perHost = new KeyedRateLimiter({ limit: 20, intervalMs: 1000, store });
 * ```
 */
export class MemoryRateLimitStore implements RateLimitStore {
  readonly #windows = new Map<string, SlidingWindow>();
  readonly #maxKeys: number;
  readonly #maxEntries: number;
  #sweepAt = MIN_SWEEP_AT;
  #evictions = 0;
  // A limiter reserves under one key over and over; caching the last lookup skips the Map on that path.
  #lastKey: string | undefined;
  #lastWindow: SlidingWindow | undefined;

  /** @throws ConfigError when an option is out of range or unknown. */
  constructor(options: MemoryRateLimitStoreOptions = {}) {
    validateOptions('MemoryRateLimitStore', options, {
      maxKeys: { type: 'number', integer: true, min: 1, allowInfinity: true },
      maxEntriesPerKey: { type: 'number', integer: true, min: 1, max: 1_048_576 },
    });
    this.#maxKeys = options.maxKeys ?? 100_000;
    this.#maxEntries = nextPowerOfTwo(options.maxEntriesPerKey ?? 4096);
  }

  /** See {@link RateLimitStore.reserve}; always answers synchronously. */
  reserve(key: string, weight: number, limit: number, windowMs: number, nowMs: number): number {
    let window = this.#lastKey === key ? this.#lastWindow : this.#windows.get(key);
    if (window === undefined) window = this.#create(key, nowMs);
    this.#lastKey = key;
    this.#lastWindow = window;
    window.windowMs = windowMs;
    window.expire(windowMs, nowMs);
    const over = window.used + weight - limit;
    if (over > 0) {
      // Even an empty window cannot hold more than `limit`; the limiter rejects such weights up front.
      if (weight > limit) return Number.POSITIVE_INFINITY;
      return window.waitFor(over, windowMs, nowMs);
    }
    window.add(weight, nowMs, this.#maxEntries);
    return 0;
  }

  /** See {@link RateLimitStore.reserveDetailed}; always answers synchronously. */
  reserveDetailed(key: string, weight: number, limit: number, windowMs: number, nowMs: number): ReserveResult {
    const waitMs = this.reserve(key, weight, limit, windowMs, nowMs);
    return { waitMs, used: (this.#lastWindow as SlidingWindow).used };
  }

  /** See {@link RateLimitStore.release}. */
  release(key: string, weight: number, reservedAtMs: number): void {
    this.#windows.get(key)?.refund(weight, reservedAtMs);
  }

  /**
   * Units of `key` still counted at `nowMs` (expired starts excluded), for inspection and tests.
   * @returns 0 for an unknown key.
   */
  used(key: string, nowMs: number): number {
    const window = this.#windows.get(key);
    if (window === undefined) return 0;
    window.expire(window.windowMs, nowMs);
    return window.used;
  }

  /** Keys held and evictions; plain numbers. */
  stats(): MemoryRateLimitStoreStats {
    return { keys: this.#windows.size, evictions: this.#evictions };
  }

  /** Forgets every window. */
  clear(): void {
    this.#windows.clear();
    this.#lastKey = undefined;
    this.#lastWindow = undefined;
  }

  #create(key: string, nowMs: number): SlidingWindow {
    if (this.#windows.size >= this.#sweepAt || this.#windows.size >= this.#maxKeys) this.#sweep(nowMs);
    const window = new SlidingWindow();
    this.#windows.set(key, window);
    return window;
  }

  /**
   * Drops windows whose newest start has expired (they hold nothing). The next sweep runs when the map
   * has doubled again, so sweeping costs amortised O(1) per new key even when nothing is idle.
   */
  #sweep(nowMs: number): void {
    for (const [key, window] of this.#windows) {
      if (window.newestMs() + window.windowMs <= nowMs) this.#windows.delete(key);
    }
    if (this.#windows.size >= this.#maxKeys) {
      // Still full of live windows: forget the oldest-created ones (Map iteration is insertion order),
      // down to 90% of the cap so that the next few thousand new keys do not each pay for a full sweep.
      const excess = Math.max(1, this.#windows.size - Math.floor(this.#maxKeys * 0.9));
      let removed = 0;
      for (const key of this.#windows.keys()) {
        if (removed >= excess) break;
        this.#windows.delete(key);
        removed++;
      }
      this.#evictions += removed;
    }
    this.#lastKey = undefined;
    this.#lastWindow = undefined;
    this.#sweepAt = Math.max(MIN_SWEEP_AT, this.#windows.size * 2);
  }
}
