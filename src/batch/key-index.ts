/**
 * KeyIndex: finds the batch slot of a key that is waiting in the window or in flight, so the
 * Batcher can share its load instead of sending the key again.
 *
 * Strings and int32 numbers (nearly every key) live in an open-addressing table — one Int32Array,
 * `[hash, ref]` per slot so a probe touches one cache line — with our own hash, linear probing and
 * backward-shift deletion (no tombstones); other keys (objects by identity, floats, booleans,
 * bigints) in a `Map`. The table holds no JS references: the key stays in its batch and is read back
 * through `keyOf(ref)` on a hash match (undefined once its batch settled).
 *
 * Settled keys are not deleted one by one (that is a second random access per key): references
 * older than `liveFrom` are dead and their slots are reused by inserts, entries of batches that
 * settled out of order fail the `keyOf` comparison, the table is cleared when nothing is in flight,
 * and a table that would grow is first rebuilt without its dead entries. Why not a `Map` for all: a
 * burst of 100,000 string loads keeps 100,000 keys in flight, and a `Map` that size (or a table of
 * JS arrays, whose old-space stores of young values each pay a write barrier) cost 2–5× this table per
 * key, measured side by side.
 * @module
 */

const MIN_BITS = 6;
/** The table starts at no more than 2^16 slots (512 KiB) however large the batches. */
const MAX_INITIAL_BITS = 16;
/** A string longer than twice this is hashed on its first and last `HASH_SPAN` characters and its length. */
const HASH_SPAN = 32;

/** @internal */
export class KeyIndex {
  /** The size a drained table returns to: room for one full batch at half load. */
  readonly #initialBits: number;
  #bits: number;
  #mask: number;
  /** Per slot `i`: `[2i]` the key's hash (0 = empty), `[2i + 1]` its reference. */
  #table: Int32Array;
  #count = 0;
  /** Keys the table does not take, to their reference. */
  readonly #other = new Map<unknown, number>();
  /** The key a reference stands for (read only on a hash match). */
  readonly #keyOf: (ref: number) => unknown;
  /** References older than {@link KeyIndex.liveFrom} are dead: their batch settled. */
  #liveFrom = 0;
  /** False while no reference can have died since the table was last rebuilt (skip the count). */
  #mayHaveDead = false;
  /** The newest reference handed to {@link KeyIndex.findOrAdd}. */
  #newest = 0;

  /**
   * @param keyOf The key a live reference stands for; undefined for a dead one.
   * @param expectedKeys Keys usually in flight at once (a full batch): the table starts with room for
   *   them, so a batch does not pay for the table's growth.
   */
  constructor(keyOf: (ref: number) => unknown, expectedKeys = 0) {
    this.#keyOf = keyOf;
    let bits = MIN_BITS;
    while (bits < MAX_INITIAL_BITS && 1 << bits < expectedKeys * 2) bits++;
    this.#initialBits = bits;
    this.#bits = bits;
    this.#mask = (1 << bits) - 1;
    this.#table = new Int32Array(2 << bits);
  }

  /** The reference of `key` when indexed; otherwise indexes it under `ref` and returns -1. */
  findOrAdd(key: unknown, ref: number): number {
    const hash = hashOf(key);
    if (hash === 0) {
      const found = this.#other.get(key);
      if (found !== undefined) return found;
      this.#other.set(key, ref);
      return -1;
    }
    if (this.#count > 0) {
      const found = this.#findHashed(hash, key);
      if (found !== -1) return found;
    }
    this.#newest = ref;
    // Grows at 3/4 full: linear probing stays short at that load with a mixed hash, and every growth
    // re-places all entries (growth was about half the index's cost in a 100,000-key burst).
    if ((this.#count + 1) * 4 > 3 << this.#bits) this.#makeRoom();
    if (this.#place(hash, ref | 0)) this.#count++;
    return -1;
  }

  /** Slots in the table now (a power of two): its sizing is a performance policy the tests pin down. @internal */
  get capacity(): number {
    return 1 << this.#bits;
  }

  /** References older than this (uint32 order, relative to the newest) are dead: their batch settled. */
  get liveFrom(): number {
    return this.#liveFrom;
  }

  set liveFrom(ref: number) {
    if (ref !== this.#liveFrom) this.#mayHaveDead = true;
    this.#liveFrom = ref;
  }

  /** Forgets everything (nothing is in flight); a table a burst grew past 4× its start is given back. */
  clear(): void {
    this.#other.clear();
    if (this.#bits > this.#initialBits + 2) {
      this.#bits = this.#initialBits;
      this.#mask = (1 << this.#bits) - 1;
      this.#table = new Int32Array(2 << this.#bits);
    } else if (this.#count > 0) {
      this.#table.fill(0);
    }
    this.#count = 0;
  }

  /** The reference of `key`, or -1. */
  find(key: unknown): number {
    const hash = hashOf(key);
    if (hash === 0) return this.#other.get(key) ?? -1;
    return this.#count === 0 ? -1 : this.#findHashed(hash, key);
  }

  /**
   * Forgets `key` if it is indexed under `ref` (a key cleared and indexed again keeps its newer entry).
   * Only `clear(key)` needs this; settled batches are forgotten through `liveFrom`.
   */
  delete(key: unknown, ref: number): void {
    const hash = hashOf(key);
    if (hash === 0) {
      if (this.#other.get(key) === ref) this.#other.delete(key);
      return;
    }
    if (this.#count === 0) return;
    const table = this.#table;
    const mask = this.#mask;
    const wanted = ref | 0;
    for (let slot = (hash >>> 2) & mask; ; slot = (slot + 1) & mask) {
      const at = slot << 1;
      const stored = table[at] as number;
      if (stored === 0) return;
      if (stored === hash && table[at + 1] === wanted) {
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
  }

  /** Forgets the `Map` entries of settled batches (the table forgets through `liveFrom`). */
  forgetOther(isLive: (ref: number) => boolean): void {
    if (this.#other.size === 0) return;
    for (const [key, ref] of this.#other) if (!isLive(ref)) this.#other.delete(key);
  }

  #isDead(ref: number): boolean {
    const liveFrom = this.#liveFrom;
    return (ref - liveFrom) >>> 0 > (this.#newest - liveFrom) >>> 0;
  }

  /** Before an insert that would pass 3/4 full: drop dead entries, and grow only if still needed. */
  #makeRoom(): void {
    // A burst with nothing settled yet (the common growth) has no dead entries to count; it grows 4×,
    // so a burst pays for about a third of a re-placement per key instead of one.
    if (!this.#mayHaveDead) {
      this.#resize(this.#bits + 2);
      return;
    }
    const table = this.#table;
    let live = 0;
    for (let at = 0; at < table.length; at += 2) {
      if (table[at] !== 0 && !this.#isDead((table[at + 1] as number) >>> 0)) live++;
    }
    const size = 1 << this.#bits;
    this.#resize((live + 1) * 4 > size ? this.#bits + 1 : this.#bits);
  }

  /**
   * Puts `[hash, ref]` in the first empty slot of its run, or over a dead entry met on the way (the
   * caller probed the whole run first, so the key is in none of them). True when it took an empty slot.
   */
  #place(hash: number, ref: number): boolean {
    const table = this.#table;
    const mask = this.#mask;
    let slot = (hash >>> 2) & mask;
    for (;;) {
      const at = slot << 1;
      if (table[at] === 0 || this.#isDead((table[at + 1] as number) >>> 0)) {
        const isEmpty = table[at] === 0;
        table[at] = hash;
        table[at + 1] = ref;
        return isEmpty;
      }
      slot = (slot + 1) & mask;
    }
  }

  /** Rebuilds the table at `2^bits` slots with its live entries only. */
  #resize(bits: number): void {
    this.#mayHaveDead = false;
    const old = this.#table;
    this.#bits = bits;
    this.#mask = (1 << bits) - 1;
    this.#table = new Int32Array(2 << bits);
    this.#count = 0;
    const table = this.#table;
    const mask = this.#mask;
    for (let at = 0; at < old.length; at += 2) {
      const hash = old[at] as number;
      if (hash === 0) continue;
      const ref = old[at + 1] as number;
      if (this.#isDead(ref >>> 0)) continue;
      let slot = (hash >>> 2) & mask;
      while (table[slot << 1] !== 0) slot = (slot + 1) & mask;
      table[slot << 1] = hash;
      table[(slot << 1) + 1] = ref;
      this.#count++;
    }
  }
}

/** Hash of a string or int32 key, low bit set (never 0); 0 for keys the table does not take. @internal */
export function hashOf(key: unknown): number {
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

/** Below this many loads a burst is de-duplicated with a plain `Map` (it stays in the CPU cache). */
const SMALL_BURST = 2048;
/** Mean loads per partition of a large burst: each partition's table stays small and cache-resident. */
const PARTITION_LOADS = 256;

/**
 * For each of `count` ids, the index of the first one equal to it (its own index for a first
 * occurrence). Equality is `===` for strings and int32 numbers, SameValueZero for the rest.
 *
 * Large inputs are radix-partitioned on the hash's high bits (sequential passes), then each
 * partition is de-duplicated in a small open-addressing table reused across partitions: no random
 * access into a table of every key, which is what made indexing a 100,000-key burst slow.
 * @internal
 */
export function firstOccurrences(ids: ReadonlyArray<unknown>, count: number): Int32Array {
  const first = new Int32Array(count);
  if (count <= SMALL_BURST) {
    const seen = new Map<unknown, number>();
    for (let i = 0; i < count; i++) {
      const id = ids[i];
      const at = seen.get(id);
      if (at === undefined) {
        seen.set(id, i);
        first[i] = i;
      } else {
        first[i] = at;
      }
    }
    return first;
  }
  let partitionBits = 1;
  while (partitionBits < 16 && count >>> partitionBits > PARTITION_LOADS) partitionBits++;
  const shift = 32 - partitionBits;
  const partitions = 1 << partitionBits;
  const hashes = new Int32Array(count);
  const starts = new Int32Array(partitions + 1);
  let other: Map<unknown, number> | undefined;
  for (let i = 0; i < count; i++) {
    const id = ids[i];
    const hash = hashOf(id);
    if (hash === 0) {
      other ??= new Map();
      const at = other.get(id);
      if (at === undefined) {
        other.set(id, i);
        first[i] = i;
      } else {
        first[i] = at;
      }
      continue;
    }
    hashes[i] = hash;
    // Written out, not `(starts[…] as number)++`: StrykerJS 9.6 prints that back without its parentheses
    // (invalid TypeScript), which stops `npm run mutate -- batch` from loading this file at all.
    const bucket = (hash >>> shift) + 1;
    starts[bucket] = (starts[bucket] as number) + 1;
  }
  let largest = 0;
  for (let p = 0; p < partitions; p++) {
    const size = starts[p + 1] as number;
    if (size > largest) largest = size;
    starts[p + 1] = (starts[p] as number) + size;
  }
  // Scatter in load order, so within a partition the first occurrence of a key comes first.
  const order = new Int32Array(starts[partitions] as number);
  const cursor = starts.slice(0, partitions);
  for (let i = 0; i < count; i++) {
    const hash = hashes[i] as number;
    if (hash === 0) continue;
    const bucket = hash >>> shift;
    const at = cursor[bucket] as number;
    order[at] = i;
    cursor[bucket] = at + 1;
  }
  let bits = 4;
  while (1 << bits < largest * 2) bits++;
  const mask = (1 << bits) - 1;
  // Index + 1 of the first load of each key seen in this partition (0 = empty).
  const table = new Int32Array(1 << bits);
  for (let p = 0; p < partitions; p++) {
    const end = starts[p + 1] as number;
    let j = starts[p] as number;
    if (j === end) continue;
    for (; j < end; j++) {
      const i = order[j] as number;
      const hash = hashes[i] as number;
      const id = ids[i];
      for (let slot = (hash >>> 1) & mask; ; slot = (slot + 1) & mask) {
        const stored = table[slot] as number;
        if (stored === 0) {
          table[slot] = i + 1;
          first[i] = i;
          break;
        }
        const k = stored - 1;
        if (hashes[k] === hash && ids[k] === id) {
          first[i] = k;
          break;
        }
      }
    }
    table.fill(0);
  }
  return first;
}
