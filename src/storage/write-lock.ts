/**
 * The SQLite write lock. better-sqlite3 has one connection and runs each statement synchronously, so
 * a single call can never interleave with another; only an *async* transaction (BEGIN … await … COMMIT)
 * spans turns of the event loop. While one is open, every call from outside it must wait here —
 * otherwise it would run on the same connection inside the open transaction, see its uncommitted
 * writes, and be rolled back with it.
 * @module
 */

/** A FIFO async mutex whose hand-over keeps it held while anyone is waiting. */
export class WriteLock {
  #held = false;
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

  /** Resolves once the caller owns the lock; call {@link release} exactly once afterwards. */
  acquire(): Promise<void> {
    if (!this.#held) {
      this.#held = true;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  /** Hands the lock to the next waiter, or frees it. */
  release(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#held = false;
  }
}
