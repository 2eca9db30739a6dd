/**
 * WaitLine: the line of calls a {@link RateLimiter} cannot start yet — higher priority first, FIFO
 * within a priority — with the sum of their weights and their abort listeners.
 * @module
 */
import { Heap, type HeapEntry } from '../core/heap.js';
import type { RateLimiter } from './rate-limiter.js';

/** A call waiting in line. @internal */
export interface Waiter {
  readonly priority: number;
  readonly seq: number;
  readonly weight: number;
  /** The task of a `schedule` call; undefined for `acquire`. */
  readonly fn: (() => unknown) | undefined;
  readonly enqueuedAt: number;
  readonly signal: AbortSignal | undefined;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  onAbort: (() => void) | undefined;
  entry: HeapEntry<Waiter> | undefined;
}

function compareWaiters(a: Waiter, b: Waiter): boolean {
  return a.priority > b.priority || (a.priority === b.priority && a.seq < b.seq);
}

/**
 * Priority line of the {@link Waiter}s of one {@link RateLimiter}. Bounds are the limiter's business (`maxQueued`); so is what an abort
 * does, passed as `onAbort`, called once when a waiter's signal aborts while it is listened to.
 * @internal
 */
export class WaitLine {
  readonly #heap = new Heap<Waiter>(compareWaiters);
  readonly #onAbort: (waiter: Waiter) => void;
  #seq = 0;
  #weight = 0;

  constructor(onAbort: (waiter: Waiter) => void) {
    this.#onAbort = onAbort;
  }

  /** Waiters in line. */
  get size(): number {
    return this.#heap.size;
  }

  /** Sum of the weights of the waiters in line. */
  get weight(): number {
    return this.#weight;
  }

  /** The waiter to start next, if any. */
  peek(): Waiter | undefined {
    return this.#heap.peek();
  }

  /** True while `waiter` is in line (not taken, aborted or cleared). */
  has(waiter: Waiter): boolean {
    return waiter.entry !== undefined && waiter.entry.index >= 0;
  }

  /** Puts a call in line and listens to its signal; the promise settles when the limiter resolves/rejects the waiter. */
  push(
    fn: (() => unknown) | undefined,
    weight: number,
    priority: number,
    signal: AbortSignal | undefined,
    now: number,
  ): { waiter: Waiter; promise: Promise<unknown> } {
    let resolve!: (value: unknown) => void;
    let reject!: (error: unknown) => void;
    const promise = new Promise<unknown>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const waiter: Waiter = {
      priority,
      seq: this.#seq++,
      weight,
      fn,
      enqueuedAt: now,
      signal,
      resolve,
      reject,
      onAbort: undefined,
      entry: undefined,
    };
    waiter.entry = this.#heap.push(waiter);
    this.#weight += weight;
    if (signal !== undefined) {
      waiter.onAbort = () => this.#onAbort(waiter);
      signal.addEventListener('abort', waiter.onAbort, { once: true });
    }
    return { waiter, promise };
  }

  /** Takes `waiter` out of the line and stops listening to its signal. */
  take(waiter: Waiter): void {
    if (waiter.entry !== undefined) this.#heap.remove(waiter.entry);
    this.#weight -= waiter.weight;
    detach(waiter);
  }

  /** Empties the line; returns the waiters that were in it, their signals no longer listened to. */
  clear(): Waiter[] {
    const waiters = [...this.#heap.values()];
    this.#heap.clear();
    this.#weight = 0;
    for (const waiter of waiters) detach(waiter);
    return waiters;
  }
}

function detach(waiter: Waiter): void {
  if (waiter.onAbort !== undefined) {
    waiter.signal?.removeEventListener('abort', waiter.onAbort);
    waiter.onAbort = undefined;
  }
}
