/**
 * The SQLite write lock. better-sqlite3 has one connection and runs each statement synchronously, so
 * a single call can never interleave with another; only an *async* transaction (BEGIN … await … COMMIT)
 * spans turns of the event loop. While one is open, every call from outside it must wait here —
 * otherwise it would run on the same connection inside the open transaction, see its uncommitted
 * writes, and be rolled back with it.
 * @module
 */

import { AsyncLocalStorage } from 'node:async_hooks';
import { abortReason } from '../core/abort.js';
import { StorageError } from '../core/errors.js';

// Which locks the current async context holds (inside `transaction(fn)`), to refuse self-deadlocks.
const holders = new AsyncLocalStorage<ReadonlySet<object>>();

/** A FIFO async mutex whose hand-over keeps it held while anyone is waiting. */
export class WriteLock {
  #held = false;
  // Identifies the transaction currently holding the lock through runHolding (a fresh object each time,
  // so a task that outlived an earlier transaction is not mistaken for the current holder).
  #holderToken: object | undefined;
  // Bounded by the number of concurrent callers awaiting the lock (each holds one entry).
  #waiters: Array<() => void> = [];

  /** True while a transaction holds the lock or callers are queued behind it. */
  get isHeld(): boolean {
    return this.#held;
  }

  /** Number of callers waiting. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /**
   * Resolves once the caller owns the lock; call {@link release} exactly once afterwards.
   * Rejects with StorageError when the calling async context already holds it (it would wait forever):
   * that is the adapter itself being used inside its own `transaction(fn)` instead of `tx`.
   * `signal` gives up waiting: the caller leaves the queue and the promise rejects with its reason.
   */
  acquire(signal?: AbortSignal): Promise<void> {
    if (this.#held && this.#holderToken !== undefined && holders.getStore()?.has(this.#holderToken)) {
      return Promise.reject(
        new StorageError(
          'storage: the adapter was called inside its own transaction(fn) and would wait for that transaction forever; use the `tx` argument instead',
        ),
      );
    }
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    if (!this.#held) {
      this.#held = true;
      return Promise.resolve();
    }
    if (!signal) return new Promise<void>((resolve) => this.#waiters.push(resolve));
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const index = this.#waiters.indexOf(granted);
        if (index === -1) return; // already handed the lock
        this.#waiters.splice(index, 1);
        reject(abortReason(signal));
      };
      const granted = (): void => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      this.#waiters.push(granted);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Hands the lock to the next waiter, or frees it. */
  release(): void {
    this.#holderToken = undefined;
    const next = this.#waiters.shift();
    if (next) next();
    else this.#held = false;
  }

  /** Runs `fn` marking this lock as held by its async context (call while holding the lock). */
  runHolding<T>(fn: () => T): T {
    const token = {};
    this.#holderToken = token;
    const next = new Set(holders.getStore());
    next.add(token);
    return holders.run(next, fn);
  }
}
