import { describe, expect, it } from 'vitest';
import { firstOccurrences, hashOf, KeyIndex } from '../../src/batch/key-index.js';

/** A repeatable generator in [0, 1) (a 32-bit LCG): the same seed gives the same sequence of operations. */
function seededRandom(seed: number): () => number {
  let state = seed;
  return () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 2 ** 32;
  };
}

describe('KeyIndex (Batcher in-flight index)', () => {
  it('agrees with a model over random adds, settles (liveFrom), explicit deletes and clears — grow, rebuild, wrap', () => {
    const random = seededRandom(7);
    const keyOfRef = new Map<number, unknown>();
    const index = new KeyIndex((ref) => keyOfRef.get(ref));
    const model = new Map<unknown, number>(); // live key → ref
    const pool: unknown[] = [];
    for (let i = 0; i < 2000; i++) pool.push(`k${i}`, i * 7919, -i, i + 0.5, { i });
    let nextRef = 2 ** 32 - 3000; // wraps past 2^32 on the way
    let liveFrom = nextRef;
    index.liveFrom = liveFrom;
    const retireBefore = (ref: number) => {
      for (const [key, keyRef] of model) {
        if ((keyRef - liveFrom) >>> 0 < (ref - liveFrom) >>> 0) {
          model.delete(key);
          keyOfRef.delete(keyRef);
        }
      }
      liveFrom = ref;
      index.liveFrom = ref;
      index.forgetOther((r) => keyOfRef.has(r));
    };
    for (let step = 0; step < 40_000; step++) {
      const roll = random();
      const key = pool[Math.floor(random() * pool.length)];
      if (roll < 0.75) {
        const found = index.findOrAdd(key, nextRef);
        const expected = model.get(key);
        if (expected !== undefined) {
          expect(found).toBe(expected);
        } else {
          expect(found).toBe(-1);
          model.set(key, nextRef);
          keyOfRef.set(nextRef, key);
          nextRef = (nextRef + 1) >>> 0;
        }
      } else if (roll < 0.77) {
        // A batch settles: every reference older than a point in the older half of the live ones dies.
        const span = (nextRef - liveFrom) >>> 0;
        retireBefore((liveFrom + Math.floor(random() * (span / 2 + 1))) >>> 0);
      } else if (roll < 0.995) {
        const ref = model.get(key);
        index.delete(key, ref ?? 12345);
        if (ref !== undefined) {
          model.delete(key);
          keyOfRef.delete(ref);
        }
      } else {
        retireBefore(nextRef);
        index.clear();
      }
      if (step % 2999 === 0)
        for (const candidate of pool) expect(index.find(candidate)).toBe(model.get(candidate) ?? -1);
    }
  });

  it('a delete under a stale reference leaves the newer entry of the same key', () => {
    const refs = new Map<number, unknown>([
      [1, 'a'],
      [2, 'a'],
    ]);
    const index = new KeyIndex((ref) => refs.get(ref));
    expect(index.findOrAdd('a', 1)).toBe(-1);
    index.delete('a', 1);
    expect(index.findOrAdd('a', 2)).toBe(-1);
    index.delete('a', 1);
    expect(index.find('a')).toBe(2);
    // Keys outside the table (objects, floats) follow the same rule in their Map.
    const object = { id: 1 };
    expect(index.findOrAdd(object, 3)).toBe(-1);
    index.delete(object, 4);
    expect(index.find(object)).toBe(3);
    index.delete(object, 3);
    expect(index.find(object)).toBe(-1);
    expect(index.findOrAdd(0.5, 5)).toBe(-1);
    expect(index.findOrAdd(0.5, 6)).toBe(5);
    index.liveFrom = 5;
    expect(index.liveFrom).toBe(5);
  });

  it('pins the hash: exact values, which keys the table takes, and long strings hashed on their ends and length', () => {
    // The table's speed depends on this hash (FNV-1a + murmur3 fmix32, low bit set): a change must be deliberate.
    expect(['', 'a', 'ab', 'x'.repeat(64), 'x'.repeat(65)].map(hashOf)).toEqual([
      1572119809, -2138371671, -2082243991, 631658535, 1673987691,
    ]);
    expect([0, 1, -1, 2147483647, -2147483648].map(hashOf)).toEqual([
      1, 1678549375, 295094239, -1402623893, 1698081197,
    ]);
    for (const other of [0.5, 2 ** 31, -(2 ** 31) - 1, Number.NaN, true, null, undefined, 10n, {}, Symbol('s')]) {
      expect(hashOf(other)).toBe(0);
    }
    const ends = (middle: string) => `${'a'.repeat(32)}${middle}${'c'.repeat(32)}`;
    expect(hashOf(ends('b'.repeat(40)))).toBe(hashOf(ends('d'.repeat(40)))); // same ends, same length
    expect(hashOf(ends('b'.repeat(40)))).not.toBe(hashOf(ends('b'.repeat(41))));
    expect(hashOf(`z${ends('b'.repeat(40)).slice(1)}`)).not.toBe(hashOf(ends('b'.repeat(40))));
    expect(hashOf(`${ends('b'.repeat(40)).slice(0, -1)}z`)).not.toBe(hashOf(ends('b'.repeat(40))));
    // Up to 64 characters every character counts.
    const short = 'q'.repeat(64);
    expect(hashOf(`${short.slice(0, 40)}r${short.slice(41)}`)).not.toBe(hashOf(short));
    // Distinct short keys spread: no two of 2,000 collide on the full hash, and the home slots of a 1,024-slot
    // table are nearly all used.
    const keys = Array.from({ length: 2000 }, (_, i) => `user:${i}`);
    expect(new Set(keys.map(hashOf)).size).toBe(2000);
    expect(new Set(Array.from({ length: 1024 }, (_, i) => (hashOf(i) >>> 2) & 1023)).size).toBeGreaterThan(600);
  });

  it('agrees with a model where every probe run wraps past the end of the table (deletes shift entries back)', () => {
    // Int keys whose home slot in a 64-slot table is within 8 of the wrap: every run crosses slot 63 → 0,
    // so backward-shift deletion meets every case of "home cyclically between hole and next".
    const keys: number[] = [];
    for (let k = 0; keys.length < 60; k++) {
      const home = (hashOf(k) >>> 2) & 63;
      if (home >= 56 || home < 8) keys.push(k);
    }
    const random = seededRandom(3);
    const keyOfRef = new Map<number, number>();
    const index = new KeyIndex((ref) => keyOfRef.get(ref));
    const model = new Map<number, number>();
    let nextRef = 2 ** 32 - 500; // references wrap past 2^32 too
    let liveFrom = nextRef;
    index.liveFrom = liveFrom;
    for (let step = 0; step < 3_000; step++) {
      const key = keys[Math.floor(random() * keys.length)] as number;
      const roll = random();
      if (roll < 0.5 && model.size < 40) {
        const found = index.findOrAdd(key, nextRef);
        expect(found).toBe(model.get(key) ?? -1);
        if (found === -1) {
          model.set(key, nextRef);
          keyOfRef.set(nextRef, key);
          nextRef = (nextRef + 1) >>> 0;
        }
      } else if (roll < 0.95) {
        const ref = model.get(key);
        index.delete(key, ref ?? 7);
        if (ref !== undefined) {
          model.delete(key);
          keyOfRef.delete(ref);
        }
      } else {
        // The oldest live references die (their batch settled); their slots are reused by later adds.
        const span = (nextRef - liveFrom) >>> 0;
        liveFrom = (liveFrom + Math.floor(random() * (span / 2 + 1))) >>> 0;
        for (const [k, ref] of model) {
          if ((ref - liveFrom) >>> 0 >= span) {
            model.delete(k);
            keyOfRef.delete(ref);
          }
        }
        index.liveFrom = liveFrom;
      }
      for (const k of keys) expect(index.find(k)).toBe(model.get(k) ?? -1);
    }
  });

  describe('table size (a performance policy: these pin it)', () => {
    const refs = new Map<number, unknown>();
    const keyOf = (ref: number) => refs.get(ref);
    const add = (index: KeyIndex, from: number, to: number) => {
      for (let ref = from; ref < to; ref++) {
        refs.set(ref, `key-${ref}`);
        expect(index.findOrAdd(`key-${ref}`, ref)).toBe(-1);
      }
    };

    it('starts with room for one batch at half load: 64 slots at least, 65,536 at most', () => {
      expect(new KeyIndex(keyOf).capacity).toBe(64);
      expect(new KeyIndex(keyOf, 32).capacity).toBe(64);
      expect(new KeyIndex(keyOf, 33).capacity).toBe(128);
      expect(new KeyIndex(keyOf, 100).capacity).toBe(256);
      expect(new KeyIndex(keyOf, 32_768).capacity).toBe(65_536);
      expect(new KeyIndex(keyOf, 1_000_000).capacity).toBe(65_536);
    });

    it('grows 4× past 3/4 full while nothing has settled; explicit deletes make room', () => {
      const index = new KeyIndex(keyOf);
      add(index, 1, 49); // 48 keys: exactly 3/4
      expect(index.capacity).toBe(64);
      for (let ref = 1; ref <= 10; ref++) index.delete(`key-${ref}`, ref);
      add(index, 49, 59); // 48 again
      expect(index.capacity).toBe(64);
      add(index, 59, 60);
      expect(index.capacity).toBe(256);
      add(index, 60, 60 + 192 - 49); // 192 in all: 3/4 of 256
      expect(index.capacity).toBe(256);
      add(index, 203, 204);
      expect(index.capacity).toBe(1024);
      for (let ref = 11; ref < 204; ref++) expect(index.find(`key-${ref}`)).toBe(ref);
    });

    it('at 3/4 full with settled entries, rebuilds without them and grows only when over 1/4 is live', () => {
      for (const [live, expected] of [
        [4, 64],
        [15, 64],
        [16, 128],
        [30, 128],
      ] as const) {
        const index = new KeyIndex(keyOf);
        add(index, 1, 49);
        index.liveFrom = 49 - live; // references 1 … 48 - live settled
        add(index, 49, 50);
        expect(index.capacity).toBe(expected);
        for (let ref = 1; ref < 50; ref++) {
          const isLive = ref >= 49 - live;
          expect(index.find(`key-${ref}`)).toBe(isLive ? ref : -1);
        }
      }
    });

    it('reusing a settled entry’s slot does not count as a new entry', () => {
      const keyOfLive = new Map<number, string>();
      const index = new KeyIndex((ref) => keyOfLive.get(ref));
      for (let ref = 1; ref <= 40; ref++) {
        keyOfLive.set(ref, `k${ref}`);
        index.findOrAdd(`k${ref}`, ref);
      }
      index.liveFrom = 40; // 1 … 39 settled
      for (let ref = 1; ref < 40; ref++) keyOfLive.delete(ref);
      for (let ref = 41; ref <= 79; ref++) {
        keyOfLive.set(ref, `k${ref - 40}`); // the same keys again: each lands on its own dead slot
        expect(index.findOrAdd(`k${ref - 40}`, ref)).toBe(-1);
      }
      for (let ref = 80; ref <= 87; ref++) {
        keyOfLive.set(ref, `new${ref}`);
        index.findOrAdd(`new${ref}`, ref);
      }
      expect(index.capacity).toBe(64); // 48 entries
      for (let ref = 41; ref <= 79; ref++) expect(index.find(`k${ref - 40}`)).toBe(ref);
    });

    it('clear() gives back a table grown past 4× its start, even one already emptied by deletes', () => {
      const index = new KeyIndex(keyOf);
      add(index, 1, 50);
      expect(index.capacity).toBe(256);
      index.clear();
      expect(index.capacity).toBe(256); // 4×: kept
      expect(index.find('key-1')).toBe(-1);
      add(index, 1, 194);
      expect(index.capacity).toBe(1024);
      index.clear();
      expect(index.capacity).toBe(64);
      add(index, 1, 194);
      for (let ref = 1; ref < 194; ref++) index.delete(`key-${ref}`, ref);
      expect(index.capacity).toBe(1024);
      index.clear();
      expect(index.capacity).toBe(64);
      add(index, 1, 10);
      expect(index.find('key-9')).toBe(9);
    });
  });

  it('firstOccurrences (burst de-duplication) finds the first equal id, small and radix-partitioned alike', () => {
    const random = seededRandom(11);
    const objects = Array.from({ length: 50 }, (_, i) => ({ i }));
    const pool: unknown[] = [];
    for (let i = 0; i < 3000; i++) pool.push(`k${i}`, i * 7919, -i, i + 0.5);
    pool.push(...objects, Number.NaN, 'x'.repeat(200), `${'x'.repeat(199)}y`, true, 10n);
    for (const count of [0, 7, 2048, 2049, 30_000]) {
      const ids = Array.from({ length: count }, () => pool[Math.floor(random() * pool.length)]);
      const model = new Map<unknown, number>();
      const expected = ids.map((id, i) => {
        const at = model.get(id);
        if (at !== undefined) return at;
        model.set(id, i);
        return i;
      });
      expect(Array.from(firstOccurrences(ids, count))).toEqual(expected);
    }
  });
});
