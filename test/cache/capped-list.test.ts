import { CappedList } from 'hotpath/cache';
import { ConfigError } from 'hotpath/core';
import { describe, expect, it } from 'vitest';

describe('CappedList (a bounded "last N" history)', () => {
  it('keeps the newest max items in push order and counts what it dropped', () => {
    const history = new CappedList<number>({ max: 3 });
    expect(history.latest()).toBeUndefined();
    for (const n of [1, 2, 3, 4, 5]) history.push(n);
    expect(history.toArray()).toEqual([3, 4, 5]);
    expect([...history]).toEqual([3, 4, 5]);
    expect(history.latest()).toBe(5);
    expect(history.size).toBe(3);
    expect(history.dropped).toBe(2);
    history.clear();
    expect(history.toArray()).toEqual([]);
    history.push(9);
    expect(history.toArray()).toEqual([9]);
  });

  it('holds memory at max slots over a million pushes', () => {
    const history = new CappedList<{ i: number }>({ max: 500 });
    for (let i = 0; i < 1_000_000; i++) history.push({ i });
    expect(history.size).toBe(500);
    expect(history.toArray()[0]).toEqual({ i: 999_500 });
    expect(history.latest()).toEqual({ i: 999_999 });
  });

  it('refuses a bad max with ConfigError', () => {
    for (const max of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 1e9, '3']) {
      expect(() => new CappedList({ max: max as number })).toThrow(ConfigError);
    }
  });
});
