import { describe, expect, it } from 'vitest';
import { firstOccurrences, KeyIndex } from '../../src/batch/key-index.js';

describe('KeyIndex (Batcher in-flight index)', () => {
  it('agrees with a model over random adds, settles (liveFrom), explicit deletes and clears — grow, rebuild, wrap', () => {
    let seed = 7;
    const random = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
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
  });

  it('firstOccurrences (burst de-duplication) finds the first equal id, small and radix-partitioned alike', () => {
    let seed = 11;
    const random = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
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
