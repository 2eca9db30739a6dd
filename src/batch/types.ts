/**
 * Shapes shared by the batch primitives: per-item results, progress reports, and the structural
 * interfaces through which `batch` consumes a rate limiter and a cache without importing them.
 * @module
 */
import type { CacheLike, LimiterLike } from '../core/collaborators.js';

/** A successful item. */
export interface ItemSuccess<T> {
  /** Always `true`: the item succeeded. */
  ok: true;
  /** What the handler returned for the item. */
  value: T;
}

/** A failed item. */
export interface ItemFailure {
  /** Always `false`: the item failed. */
  ok: false;
  /** Why: the handler's error (after retries), the abort reason, or a TypeError for a malformed batch result. */
  error: unknown;
}

/** The outcome of one item: its value, or the error it failed with. One entry per input item. */
export type ItemResult<T> = ItemSuccess<T> | ItemFailure;

/** What a handler receives next to its input. */
export interface HandlerContext {
  /**
   * Fires when the run is aborted (caller's signal, `stopOnError`, `close()`); stop work and reject.
   * One signal is shared by all handlers of a run (a controller per item would cost more than the
   * work of a no-op item), so remove the listeners you add once your item is done.
   */
  readonly signal: AbortSignal;
}

/** A progress report: items finished so far (`failed` included in `done`). */
export interface BatchProgress {
  /** Items finished, successfully or not. */
  done: number;
  /** Items in the run; `undefined` for `stream()`, whose source length is unknown. */
  total: number | undefined;
  /** Items that failed (after their retries). */
  failed: number;
}

/** Anything that can gate calls (hotpath's `RateLimiter` fits): the shared {@link LimiterLike}. */
export type BatchRateLimiter = LimiterLike;

/** A cache the {@link Batcher} reads before batching and fills after (hotpath's `Cache` or a `Map` fits). */
export type BatcherCache<V> = CacheLike<V>;
