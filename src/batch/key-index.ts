/**
 * KeyIndex: finds the batch slot of a key that is waiting in the window or in flight, so the
 * Batcher can share its load instead of sending the key again.
 *
 * Strings and int32 numbers (nearly every key) live in an open-addressing table — one Int32Array,
 * `[hash, ref]` per slot so a probe touches one cache line — with our own hash, linear probing and
 * backward-shift deletion (no tombstones); other keys (objects by identity, floats, booleans,
 * bigints) in a `Map`. The table holds no JS references: the key stays in its batch and is read back
 * through `keyOf(ref)` on a hash match, and the caller keeps each key's home (`lastHome`) so a delete
 * needs no second hash. Why not a `Map` for all: a burst of 100,000 string loads keeps 100,000 keys
 * in flight, and a `Map` that size (or a table of JS arrays, whose old-space stores of young values
 * each pay a write barrier) cost 2–5× this table per key, measured side by side.
 * @module
 */

const MIN_BITS = 6;
/** A string longer than twice this is hashed on its first and last `HASH_SPAN` characters and its length. */
const HASH_SPAN = 32;

/** @internal */
export class KeyIndex {
  #bits = MIN_BITS;
  #mask = (1 << MIN_BITS) - 1;
  /** Per slot `i`: `[2i]` the key's hash (0 = empty), `[2i + 1]` its reference. */
  #table = new Int32Array(2 << MIN_BITS);
  #count = 0;
  /** Keys the table does not take, to their reference. */
  readonly #other = new Map<unknown, number>();
  /** The key a reference stands for (read only on a hash match). */
  readonly #keyOf: (ref: number) => unknown;
  /**
   * Set by {@link KeyIndex.findOrAdd}: the added key's home, a small non-negative integer to hand back
   * to {@link KeyIndex.deleteAt}; -1 for a key kept in the `Map`.
   */
  lastHome = -1;

  constructor(keyOf: (ref: number) => unknown) {
    this.#keyOf = keyOf;
  }

  /** The reference of `key` when indexed; otherwise indexes it under `ref` and returns -1. */
  findOrAdd(key: unknown, ref: number): number {
    const hash = hashOf(key);
    if (hash === 0) {
      this.lastHome = -1;
      const found = this.#other.get(key);
      if (found !== undefined) return found;
      this.#other.set(key, ref);
      return -1;
    }
    if (this.#count > 0) {
      const found = this.#findHashed(hash, key);
      if (found !== -1) return found;
    }
    if ((this.#count + 1) * 2 > 1 << this.#bits) this.#resize(this.#bits + 1);
    this.#place(hash, ref | 0);
    this.#count++;
    this.lastHome = hash >>> 2;
    return -1;
  }

  /** The reference of `key`, or -1. */
  find(key: unknown): number {
    const hash = hashOf(key);
    if (hash === 0) return this.#other.get(key) ?? -1;
    return this.#count === 0 ? -1 : this.#findHashed(hash, key);
  }

  /** Forgets `key` if it is indexed under `ref` (a key cleared and indexed again keeps its newer entry). */
  delete(key: unknown, ref: number): void {
    const hash = hashOf(key);
    this.deleteAt(hash === 0 ? -1 : hash >>> 2, key, ref);
  }

  /** {@link KeyIndex.delete} with the home `lastHome` gave when the key was added (no second hash). */
  deleteAt(home: number, key: unknown, ref: number): void {
    if (home < 0) {
      if (this.#other.get(key) === ref) this.#other.delete(key);
      return;
    }
    if (this.#count === 0) return;
    const table = this.#table;
    const mask = this.#mask;
    const wanted = ref | 0;
    for (let slot = home & mask; ; slot = (slot + 1) & mask) {
      const at = slot << 1;
      if (table[at] === 0) return;
      if (table[at + 1] === wanted) {
        this.#remove(slot);
        return;
      }
    }
  }

  #findHashed(hash: number, key: unknown): number {
    const table = this.#table;
    const mask = this.#mask;
    for (let slot = (hash >>> 2) & mask; ; slot = (slot + 1) & mask) {
      const at = slot << 1;
      const stored = table[at] as number;
      if (stored === 0) return -1;
      if (stored === hash) {
        const found = (table[at + 1] as number) >>> 0;
        if (this.#keyOf(found) === key) return found;
      }
    }
  }

  #remove(slot: number): void {
    const table = this.#table;
    const mask = this.#mask;
    // Backward-shift deletion: pull later entries of the probe run into the hole, so lookups never
    // meet tombstones and the table does not degrade under steady add/delete.
    let hole = slot;
    for (let next = (hole + 1) & mask; ; next = (next + 1) & mask) {
      const stored = table[next << 1] as number;
      if (stored === 0) break;
      const home = (stored >>> 2) & mask;
      // The entry at `next` may move into the hole unless its home lies cyclically in (hole, next].
      const isBetween = hole <= next ? hole < home && home <= next : hole < home || home <= next;
      if (isBetween) continue;
      table[hole << 1] = stored;
      table[(hole << 1) + 1] = table[(next << 1) + 1] as number;
      hole = next;
    }
    table[hole << 1] = 0;
    this.#count--;
    // A burst grew the table; give the memory back once it has drained.
    if (this.#count === 0 && this.#bits > MIN_BITS + 4) this.#resize(MIN_BITS);
  }

  #place(hash: number, ref: number): void {
    const table = this.#table;
    const mask = this.#mask;
    let slot = (hash >>> 2) & mask;
    while (table[slot << 1] !== 0) slot = (slot + 1) & mask;
    table[slot << 1] = hash;
    table[(slot << 1) + 1] = ref;
  }

  #resize(bits: number): void {
    const old = this.#table;
    this.#bits = bits;
    this.#mask = (1 << bits) - 1;
    this.#table = new Int32Array(2 << bits);
    for (let at = 0; at < old.length; at += 2) {
      const hash = old[at] as number;
      if (hash !== 0) this.#place(hash, old[at + 1] as number);
    }
  }
}

/** Hash of a string or int32 key, low bit set (never 0); 0 for keys the table does not take. */
function hashOf(key: unknown): number {
  let hash: number;
  if (typeof key === 'string') {
    const length = key.length;
    hash = 0x811c9dc5 ^ length;
    if (length <= 2 * HASH_SPAN) {
      for (let i = 0; i < length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
    } else {
      for (let i = 0; i < HASH_SPAN; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
      for (let i = length - HASH_SPAN; i < length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
    }
  } else if (typeof key === 'number' && (key | 0) === key) {
    hash = Math.imul(key, 0x9e3779b1);
  } else {
    return 0;
  }
  // Final avalanche (murmur3 fmix32): linear probing wants every bit mixed.
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  return hash | 1;
}
