import { describe, expect, it } from 'vitest';
import { KeyIndex } from '../../src/batch/key-index.js';

describe('KeyIndex (Batcher in-flight index)', () => {
  it('agrees with a Map over random adds and deletes of strings, ints and other keys (grow, shrink, wrap)', () => {
    let seed = 7;
    const random = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const keyOfRef = new Map<number, unknown>();
    const index = new KeyIndex((ref) => keyOfRef.get(ref));
    const model = new Map<unknown, { ref: number; home: number }>();
    const pool: unknown[] = [];
    for (let i = 0; i < 400; i++) pool.push(`k${i}`, i * 7919, -i, i + 0.5, { i });
    let nextRef = 2 ** 32 - 500; // wraps past 2^32 on the way
    for (let step = 0; step < 60_000; step++) {
      const key = pool[Math.floor(random() * pool.length)];
      const phase = Math.floor(step / 10_000) % 2; // alternate filling and draining phases
      if (random() < (phase === 0 ? 0.7 : 0.3)) {
        const ref = nextRef;
        const found = index.findOrAdd(key, ref);
        const expected = model.get(key);
        if (expected !== undefined) {
          expect(found).toBe(expected.ref);
        } else {
          expect(found).toBe(-1);
          model.set(key, { ref, home: index.lastHome });
          keyOfRef.set(ref, key);
          nextRef = (nextRef + 1) >>> 0;
        }
      } else {
        const entry = model.get(key);
        if (entry === undefined) {
          index.delete(key, 12345); // absent: no-op
          continue;
        }
        if (random() < 0.5) index.deleteAt(entry.home, key, entry.ref);
        else index.delete(key, entry.ref);
        model.delete(key);
        keyOfRef.delete(entry.ref);
      }
      if (step % 997 === 0) for (const candidate of pool) expect(index.find(candidate)).toBe(model.get(candidate)?.ref ?? -1);
    }
    // Drain: the table shrinks back and still answers.
    for (const [key, entry] of model) index.delete(key, entry.ref);
    for (const candidate of pool) expect(index.find(candidate)).toBe(-1);
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
});
