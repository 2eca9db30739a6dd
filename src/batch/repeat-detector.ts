/**
 * Tells whether a batch of keys holds a repeat, as cheaply as possible for the common case (no
 * repeat): integer keys go through an open-addressing table on typed arrays, reused across batches
 * and never cleared (a generation stamp marks the live slots); other keys through a reused `Set`.
 * Measured on 100k loads in batches of 1000: the `Set` alone cost ~20% of `Batcher.load` throughput.
 * @module
 */

const MIN_BITS = 4;

/** @internal */
export class RepeatDetector {
  #bits = 0;
  #keys = new Int32Array(0);
  #stamps = new Uint32Array(0);
  #generation = 0;
  readonly #seen = new Set<unknown>();

  /** True when two entries of `ids` are the same key (SameValueZero, like `Map`). */
  hasRepeats(ids: readonly unknown[]): boolean {
    const count = ids.length;
    if (count < 2) return false;
    this.#reserve(count);
    const keys = this.#keys;
    const stamps = this.#stamps;
    const mask = keys.length - 1;
    const shift = 32 - this.#bits;
    const generation = this.#nextGeneration();
    for (let i = 0; i < count; i++) {
      const id = ids[i];
      // Only int32 numbers take the table; anything else (strings, objects, floats) the Set.
      if (typeof id !== 'number' || (id | 0) !== id) return this.#hasRepeatsSlow(ids);
      // Fibonacci hashing spreads sequential ids over the table.
      let slot = Math.imul(id, 0x9e3779b1) >>> shift;
      for (;;) {
        if (stamps[slot] !== generation) {
          stamps[slot] = generation;
          keys[slot] = id;
          break;
        }
        if (keys[slot] === id) return true;
        slot = (slot + 1) & mask;
      }
    }
    return false;
  }

  #hasRepeatsSlow(ids: readonly unknown[]): boolean {
    const seen = this.#seen;
    try {
      for (let i = 0; i < ids.length; i++) {
        const before = seen.size;
        seen.add(ids[i]);
        if (seen.size === before) return true;
      }
      return false;
    } finally {
      seen.clear();
    }
  }

  /** Grows the table to at least twice `count` slots (load factor <= 0.5 keeps probes short). */
  #reserve(count: number): void {
    let bits = Math.max(MIN_BITS, this.#bits);
    while (1 << bits < count * 2) bits++;
    if (bits === this.#bits) return;
    this.#bits = bits;
    this.#keys = new Int32Array(1 << bits);
    this.#stamps = new Uint32Array(1 << bits);
    this.#generation = 0;
  }

  #nextGeneration(): number {
    this.#generation = (this.#generation + 1) >>> 0;
    if (this.#generation === 0) {
      // Wrapped after 2^32 batches: old stamps could look live again.
      this.#stamps.fill(0);
      this.#generation = 1;
    }
    return this.#generation;
  }
}
