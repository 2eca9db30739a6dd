/**
 * A binary heap with a caller-supplied order. Used for waiting lines (rate limiter), ready jobs
 * (memory queue) and timers: O(log n) push/pop, O(1) peek, and removal of an arbitrary entry in
 * O(log n) through its handle (an aborted waiter leaves the line at once, not when it reaches the top).
 * @module
 */

/** Handle of an entry in a {@link Heap}; pass it to {@link Heap.remove}. */
export interface HeapEntry<T> {
  /** The stored value. */
  readonly value: T;
  /** Position in the heap array, -1 once removed. */
  index: number;
}

/** Min-heap by `before(a, b)`: the entry for which `before` holds against all others is on top. */
export class Heap<T> {
  readonly #items: HeapEntry<T>[] = [];
  readonly #before: (a: T, b: T) => boolean;

  /** @param before - true when `a` must come out before `b`. Must be a strict order. */
  constructor(before: (a: T, b: T) => boolean) {
    this.#before = before;
  }

  /** Number of entries. */
  get size(): number {
    return this.#items.length;
  }

  /** Adds a value; returns its handle. */
  push(value: T): HeapEntry<T> {
    const entry: HeapEntry<T> = { value, index: this.#items.length };
    this.#items.push(entry);
    this.#up(entry.index);
    return entry;
  }

  /** The top value without removing it. */
  peek(): T | undefined {
    return this.#items[0]?.value;
  }

  /** Removes and returns the top value. */
  pop(): T | undefined {
    const top = this.#items[0];
    if (top === undefined) return undefined;
    this.#removeAt(0);
    return top.value;
  }

  /** Removes an entry by handle; returns false when it was already gone. */
  remove(entry: HeapEntry<T>): boolean {
    const at = entry.index;
    if (at < 0 || this.#items[at] !== entry) return false;
    this.#removeAt(at);
    return true;
  }

  /** Removes every entry. */
  clear(): void {
    for (const entry of this.#items) entry.index = -1;
    this.#items.length = 0;
  }

  /** Iterates values in heap (not sorted) order. */
  *values(): IterableIterator<T> {
    for (const entry of this.#items) yield entry.value;
  }

  #removeAt(at: number): void {
    const items = this.#items;
    const removed = items[at] as HeapEntry<T>;
    const last = items.pop() as HeapEntry<T>;
    removed.index = -1;
    if (at < items.length) {
      items[at] = last;
      last.index = at;
      this.#down(at);
      this.#up(last.index);
    }
  }

  #up(at: number): void {
    const items = this.#items;
    const entry = items[at] as HeapEntry<T>;
    while (at > 0) {
      const parentAt = (at - 1) >> 1;
      const parent = items[parentAt] as HeapEntry<T>;
      if (!this.#before(entry.value, parent.value)) break;
      items[at] = parent;
      parent.index = at;
      at = parentAt;
    }
    items[at] = entry;
    entry.index = at;
  }

  #down(at: number): void {
    const items = this.#items;
    const length = items.length;
    const entry = items[at] as HeapEntry<T>;
    for (;;) {
      const left = 2 * at + 1;
      if (left >= length) break;
      const right = left + 1;
      let child = left;
      if (right < length && this.#before((items[right] as HeapEntry<T>).value, (items[left] as HeapEntry<T>).value)) {
        child = right;
      }
      const childEntry = items[child] as HeapEntry<T>;
      if (!this.#before(childEntry.value, entry.value)) break;
      items[at] = childEntry;
      childEntry.index = at;
      at = child;
    }
    items[at] = entry;
    entry.index = at;
  }
}
