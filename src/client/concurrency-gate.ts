/**
 * A FIFO semaphore for the client's `maxConcurrent`: at most N attempts in flight, the rest wait in
 * a bounded line and leave it at once when their signal aborts.
 * @module
 */
import { abortReason } from '../core/abort.js';
import { RateLimitError } from '../core/errors.js';

interface Waiter {
  resolve: () => void;
  reject: (error: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  isDone: boolean;
}

/** Counting semaphore with an abortable, bounded FIFO waiting line. */
export class ConcurrencyGate {
  #running = 0;
  #queue: Waiter[] = [];
  #head = 0;
  #queued = 0;

  constructor(
    private readonly limit: number,
    private readonly maxQueued: number,
  ) {}

  /** Attempts holding a slot. */
  get running(): number {
    return this.#running;
  }

  /** Attempts waiting for a slot. */
  get queued(): number {
    return this.#queued;
  }

  /**
   * Takes a slot, waiting when all are busy. Call {@link ConcurrencyGate.release} exactly once after.
   * @throws RateLimitError when the waiting line is full; the signal's reason on abort.
   */
  enter(signal: AbortSignal | undefined): Promise<void> | undefined {
    if (this.#running < this.limit && this.#queued === 0) {
      this.#running++;
      return undefined; // fast path: no promise, no allocation
    }
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    if (this.#queued >= this.maxQueued) {
      return Promise.reject(
        new RateLimitError(`APIClient: ${this.#queued} requests already wait for a connection slot`, 0),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, signal, onAbort: undefined, isDone: false };
      if (signal) {
        waiter.onAbort = () => {
          if (waiter.isDone) return;
          waiter.isDone = true;
          this.#queued--;
          reject(abortReason(signal));
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.#queue.push(waiter);
      this.#queued++;
    });
  }

  /** Frees a slot and hands it to the longest waiter still waiting. */
  release(): void {
    while (this.#head < this.#queue.length) {
      const waiter = this.#queue[this.#head] as Waiter;
      this.#head++;
      if (waiter.isDone) continue;
      waiter.isDone = true;
      this.#queued--;
      if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort);
      this.#compact();
      waiter.resolve(); // the slot passes straight to the waiter: #running stays the same
      return;
    }
    this.#compact();
    this.#running--;
  }

  #compact(): void {
    if (this.#head === this.#queue.length) {
      this.#queue.length = 0;
      this.#head = 0;
      return;
    }
    // Drop consumed entries once they dominate the array, so the line's memory tracks its length.
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
  }
}
