/**
 * `CappedList<T>`: the last `max` items of an unbounded stream, newest kept — a signal history, recent
 * errors, the last N prices. A ring buffer: `push` is O(1) and allocates nothing once full, so memory is
 * fixed at `max` slots whatever the stream's length.
 * @module
 */
import { ConfigError } from '../core/errors.js';
import { checkNumber } from '../core/options.js';

/** Options of {@link CappedList}. */
export interface CappedListOptions {
  /** Most items kept (1 … 10,000,000); pushing more drops the oldest. */
  max: number;
}

/**
 * The newest `max` items pushed, in push order.
 *
 * @example
 * ```ts
 * import { CappedList } from 'hotpath/cache';
 *
 * const history = new CappedList<{ pair: string; score: number }>({ max: 3 });
 * for (const score of [1, 2, 3, 4]) history.push({ pair: 'EURUSD', score });
 * history.toArray().map((s) => s.score); // [2, 3, 4]
 * history.latest(); // { pair: 'EURUSD', score: 4 }
 * ```
 */
export class CappedList<T> {
  readonly #slots: (T | undefined)[];
  readonly #max: number;
  /** Index of the oldest item. */
  #head = 0;
  #size = 0;
  /** Items dropped to stay within `max`. */
  #dropped = 0;

  /** @throws ConfigError when `max` is not an integer in 1 … 10,000,000. */
  constructor(options: CappedListOptions) {
    if (options === null || typeof options !== 'object') {
      throw new ConfigError('CappedList.options', 'CappedList needs an options object with max');
    }
    checkNumber('CappedList.max', options.max, { min: 1, max: 10_000_000, integer: true });
    this.#max = options.max;
    this.#slots = [];
  }

  /** Items held (≤ `max`). */
  get size(): number {
    return this.#size;
  }

  /** The capacity given at construction. */
  get max(): number {
    return this.#max;
  }

  /** Items dropped since construction because the list was full. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Appends `item`; when full, the oldest item is dropped. */
  push(item: T): void {
    if (this.#size < this.#max) {
      this.#slots[(this.#head + this.#size) % this.#max] = item;
      this.#size++;
      return;
    }
    this.#slots[this.#head] = item;
    this.#head = (this.#head + 1) % this.#max;
    this.#dropped++;
  }

  /** The newest item, or undefined when empty. */
  latest(): T | undefined {
    return this.#size === 0 ? undefined : this.#slots[(this.#head + this.#size - 1) % this.#max];
  }

  /** The items, oldest first (a copy). */
  toArray(): T[] {
    const out: T[] = new Array(this.#size);
    for (let i = 0; i < this.#size; i++) out[i] = this.#slots[(this.#head + i) % this.#max] as T;
    return out;
  }

  /** Iterates oldest first. */
  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = 0; i < this.#size; i++) yield this.#slots[(this.#head + i) % this.#max] as T;
  }

  /** Removes every item (the capacity stays). */
  clear(): void {
    this.#slots.length = 0;
    this.#head = 0;
    this.#size = 0;
  }
}
