import { describe, expect, it } from 'vitest';
import { RepeatDetector } from '../../src/batch/repeat-detector.js';

describe('RepeatDetector (Batcher dedupe fast path)', () => {
  it('finds repeats among integers, including negative ones and 0 / -0', () => {
    const detector = new RepeatDetector();
    expect(detector.hasRepeats([])).toBe(false);
    expect(detector.hasRepeats([1])).toBe(false);
    expect(detector.hasRepeats([1, 2, 3])).toBe(false);
    expect(detector.hasRepeats([1, 2, 1])).toBe(true);
    expect(detector.hasRepeats([-5, 5, -5])).toBe(true);
    expect(detector.hasRepeats([0, -0])).toBe(true); // SameValueZero, as Map keys
    expect(detector.hasRepeats([2 ** 31 - 1, -(2 ** 31)])).toBe(false);
  });

  it('falls back to a Set for strings, floats, big numbers and mixed keys', () => {
    const detector = new RepeatDetector();
    expect(detector.hasRepeats(['a', 'b', 'a'])).toBe(true);
    expect(detector.hasRepeats(['a', 'b', 'c'])).toBe(false);
    expect(detector.hasRepeats([1.5, 2.5, 1.5])).toBe(true);
    expect(detector.hasRepeats([2 ** 40, 2 ** 40 + 1])).toBe(false);
    expect(detector.hasRepeats([2 ** 40, 2 ** 40])).toBe(true);
    expect(detector.hasRepeats([1, '1'])).toBe(false);
    expect(detector.hasRepeats([1, 2, 'x', 2])).toBe(true);
    expect(detector.hasRepeats([Number.NaN, Number.NaN])).toBe(true);
    const key = {};
    expect(detector.hasRepeats([key, {}, key])).toBe(true);
  });

  it('forgets earlier batches and grows with the batch, colliding keys included', () => {
    const detector = new RepeatDetector();
    for (let batch = 0; batch < 200; batch++) {
      // Multiples of 2^20 collide in the low bits; the hash and probing must still tell them apart.
      const ids = Array.from({ length: 50 + batch * 10 }, (_, i) => (batch % 2 ? i * 2 ** 20 : i + batch));
      expect(detector.hasRepeats(ids)).toBe(false);
      ids.push(ids[ids.length >> 1] as number);
      expect(detector.hasRepeats(ids)).toBe(true);
    }
  });
});
