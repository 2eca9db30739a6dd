/**
 * The two records `Cache` keeps per key: a stored value ({@link Entry}) and a loader call shared by
 * every caller of the key ({@link Load}).
 * @module
 */
import type { TimerHandle } from '../core/clock.js';
import type { LoaderContext } from './cache-types.js';

export const noop = (): void => {};

/**
 * One stored value with the time (clock ms) at which it goes stale; it stops being servable
 * `max(staleWhileRevalidateMs, graceMs)` later. Kept small (value first, no second timestamp): with
 * 10,000 keys a `get` hit's cost is mostly the cache miss on this object.
 */
export class Entry<V> {
  readonly value: V;
  readonly staleAt: number;
  readonly tags: readonly string[] | undefined;
  /**
   * `Promise.resolve(value)`, made on the first `getOrSet` hit and handed to every later one: a resolved
   * promise can be awaited any number of times, so hot hits allocate nothing at all.
   */
  promise: Promise<V> | undefined = undefined;

  constructor(value: V, staleAt: number, tags: readonly string[] | undefined) {
    this.value = value;
    this.staleAt = staleAt;
    this.tags = tags;
  }

  resolved(): Promise<V> {
    this.promise ??= Promise.resolve(this.value);
    return this.promise;
  }
}

/** A loader call shared by every caller of one key. */
export class Load<V> {
  // Created on first use: most loaders never read their signal, and an AbortController costs ~0.7 µs.
  #controller: AbortController | undefined;
  readonly context: LoaderContext<V>;
  readonly promise: Promise<V>;
  resolve: (value: V) => void = noop;
  reject: (error: unknown) => void = noop;
  /** Callers waiting on `promise` (each counted as a miss until a stale value answers them). */
  waiters = 0;
  /** Waiters have been answered (value, stale value or error). */
  isSettled = false;
  /** The result must not be stored (the key was set, deleted or invalidated meanwhile). */
  isDetached = false;
  /** Timed out: the loader was told to stop and its late result is ignored. */
  isAbandoned = false;
  isRecorded = false;
  /** `performance.now()` when the loader was called; 0 while the tier is consulted. */
  startedAt = 0;
  timer: TimerHandle | undefined;
  /** The tier's load lease (coordinated tiers): its token and invalidation stamp. */
  lease: { token: string; stamp: string } | undefined;
  /** Set while waiting for another process's load: wakes the wait early. */
  wake: (() => void) | undefined;
  /** The awaited value arrived while the tier was being asked: do not wait, look again at once. */
  isWakePending = false;

  constructor(
    readonly key: string,
    readonly stale: Entry<V> | undefined,
    readonly ttlMs: number,
    readonly tags: readonly string[] | undefined,
  ) {
    const load = this;
    this.context = {
      staleValue: stale?.value,
      get signal(): AbortSignal {
        return load.signal;
      },
    };
    this.promise = new Promise<V>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  get signal(): AbortSignal {
    this.#controller ??= new AbortController();
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    this.#controller ??= new AbortController();
    this.#controller.abort(reason);
  }

  /** Answers the waiters with an error. */
  fail(error: unknown): void {
    this.isSettled = true;
    // Nobody holds the promise (a background refresh, or every waiter aborted): the error is counted
    // and logged by the cache, so keep it from surfacing as an unhandled rejection.
    if (this.waiters === 0) this.promise.catch(noop);
    this.reject(error);
  }
}
