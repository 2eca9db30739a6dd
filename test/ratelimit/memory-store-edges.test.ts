import { ConfigError } from 'hotpath/core';
import { MemoryRateLimitStore } from 'hotpath/ratelimit';
import { describe, expect, it } from 'vitest';

/** Units of `key` counted at each of `times` (in increasing order: `used` expires as it goes). */
function usedAt(store: MemoryRateLimitStore, key: string, times: number[]): number[] {
  return times.map((t) => store.used(key, t));
}

describe('MemoryRateLimitStore ring buffer', () => {
  it('starts in the same millisecond share one entry; a later start takes a new one', () => {
    // 4 entries: the four starts at t=0 are one entry, so t=1..3 still get entries of their own.
    const store = new MemoryRateLimitStore({ maxEntriesPerKey: 4 });
    for (let i = 0; i < 4; i++) expect(store.reserve('k', 1, 100, 100, 0)).toBe(0);
    for (const t of [1, 2, 3]) expect(store.reserve('k', 1, 100, 100, t)).toBe(0);
    expect(usedAt(store, 'k', [99, 100, 101, 102, 103])).toEqual([7, 3, 2, 1, 0]);
  });

  it('a full log merges a new start into the newest entry and moves that entry to the new time', () => {
    const store = new MemoryRateLimitStore({ maxEntriesPerKey: 4 });
    for (let t = 0; t <= 5; t++) expect(store.reserve('k', 1, 100, 100, t)).toBe(0);
    // Entries 0, 1, 2 and (3, 4, 5 merged, stamped 5).
    expect(usedAt(store, 'k', [100, 101, 102, 104, 105])).toEqual([5, 4, 3, 3, 0]);
  });

  it('the merged entry holds the weights of every start merged into it', () => {
    const store = new MemoryRateLimitStore({ maxEntriesPerKey: 4 });
    for (let t = 0; t <= 5; t++) store.reserve('k', 1, 6, 100, t);
    // 4 units must free: t=0, 1, 2 (one each), then the merged entry (3 units) at t=5 + 100.
    expect(store.reserve('k', 4, 6, 100, 50)).toBe(55);
  });

  it('maxEntriesPerKey is rounded up to a power of two (5 → 8 entries)', () => {
    const store = new MemoryRateLimitStore({ maxEntriesPerKey: 5 });
    for (let t = 0; t <= 8; t++) store.reserve('k', 1, 100, 100, t);
    // Entries 0..6 and (7, 8 merged, stamped 8).
    expect(usedAt(store, 'k', [105, 106, 107, 108])).toEqual([3, 2, 2, 0]);
  });

  it('a start stamped earlier than the newest entry merges into it (the clock stepped back)', () => {
    const store = new MemoryRateLimitStore();
    store.reserve('k', 1, 10, 100, 50);
    store.reserve('k', 2, 10, 100, 40);
    expect(usedAt(store, 'k', [139, 149, 150])).toEqual([3, 3, 0]);
  });

  it('grows a wrapped-around ring keeping the order of its entries', () => {
    const store = new MemoryRateLimitStore();
    // Four entries fill the first ring; t=1000 expires t=0 and wraps into slot 0.
    store.reserve('k', 1, 1000, 1000, 0);
    store.reserve('k', 2, 1000, 1000, 500);
    store.reserve('k', 3, 1000, 1000, 600);
    store.reserve('k', 4, 1000, 1000, 700);
    expect(store.reserveDetailed('k', 5, 1000, 1000, 1000)).toEqual({ waitMs: 0, used: 14 });
    // Waiting is measured across the wrap: 10 over the limit of 14 frees when t=1000's entry expires.
    expect(store.reserve('k', 10, 14, 1000, 1050)).toBe(950);
    // Full: the ring doubles, copying from the head.
    expect(store.reserveDetailed('k', 6, 1000, 1000, 1100)).toEqual({ waitMs: 0, used: 20 });
    expect(store.reserve('k', 3, 20, 1000, 1200)).toBe(400); // 2 (t=500) + 3 (t=600) free at 1600
    expect(usedAt(store, 'k', [1499, 1500, 1600, 1700, 2000, 2100])).toEqual([20, 18, 15, 11, 6, 0]);
  });

  it('refunds a reservation held in a wrapped slot', () => {
    const store = new MemoryRateLimitStore();
    store.reserve('k', 1, 1000, 1000, 0);
    store.reserve('k', 2, 1000, 1000, 500);
    store.reserve('k', 3, 1000, 1000, 600);
    store.reserve('k', 4, 1000, 1000, 700);
    store.reserve('k', 5, 1000, 1000, 1000); // slot 0, head at slot 1
    store.release('k', 5, 1000);
    expect(store.used('k', 1000)).toBe(9);
    store.release('k', 3, 600);
    expect(usedAt(store, 'k', [1000, 1500, 1700])).toEqual([6, 4, 0]);
  });

  it('an empty log holds exactly nothing (no rounding dust from fractional weights)', () => {
    const store = new MemoryRateLimitStore();
    store.reserve('k', 0.1, 1, 100, 0);
    store.reserve('k', 0.2, 1, 100, 10);
    expect(store.used('k', 10)).toBe(0.1 + 0.2);
    expect(store.used('k', 110)).toBe(0);
  });
});

describe('MemoryRateLimitStore reserve', () => {
  it('a weight equal to the limit waits for the window to empty; only a larger one never fits', () => {
    const store = new MemoryRateLimitStore();
    expect(store.reserve('k', 1, 3, 100, 0)).toBe(0);
    expect(store.reserve('k', 3, 3, 100, 10)).toBe(90);
    expect(store.reserve('k', 4, 3, 100, 10)).toBe(Number.POSITIVE_INFINITY);
    expect(store.reserve('k', 2, 3, 100, 10)).toBe(0); // exactly the limit
    expect(store.reserve('k', 1, 3, 100, 20)).toBe(80);
  });

  it('waits until exactly the units needed have expired', () => {
    const store = new MemoryRateLimitStore();
    for (const t of [0, 10, 20]) store.reserve('k', 1, 3, 100, t);
    expect(store.reserve('k', 1, 3, 100, 30)).toBe(70);
    expect(store.reserve('k', 2, 3, 100, 30)).toBe(80);
    expect(store.reserve('k', 3, 3, 100, 30)).toBe(90);
  });

  it('reserveDetailed reports the units counted after the call, refused or not', () => {
    const store = new MemoryRateLimitStore();
    expect(store.reserveDetailed('k', 2, 3, 100, 0)).toEqual({ waitMs: 0, used: 2 });
    expect(store.reserveDetailed('k', 2, 3, 100, 50)).toEqual({ waitMs: 50, used: 2 });
    expect(store.reserveDetailed('other', 1, 3, 100, 50)).toEqual({ waitMs: 0, used: 1 });
    expect(store.reserveDetailed('k', 1, 3, 100, 60)).toEqual({ waitMs: 0, used: 3 });
    expect(store.reserveDetailed('k', 3, 3, 100, 100)).toEqual({ waitMs: 60, used: 1 });
  });

  it('used() counts with the window the key was last reserved with; 0 for an unknown key', () => {
    const store = new MemoryRateLimitStore();
    expect(store.used('nobody', 0)).toBe(0);
    store.reserve('k', 2, 10, 250, 0);
    expect(usedAt(store, 'k', [249, 250])).toEqual([2, 0]);
  });

  it('clear() forgets the window last used too', () => {
    const store = new MemoryRateLimitStore();
    store.reserve('k', 1, 1, 100, 0);
    expect(store.reserve('k', 1, 1, 100, 0)).toBe(100);
    store.clear();
    expect(store.stats()).toEqual({ keys: 0, evictions: 0 });
    expect(store.reserve('k', 1, 1, 100, 0)).toBe(0);
    expect(store.stats()).toEqual({ keys: 1, evictions: 0 });
  });

  it('keeps separate windows for keys used alternately', () => {
    const store = new MemoryRateLimitStore();
    expect(store.reserve('a', 1, 1, 100, 0)).toBe(0);
    expect(store.reserve('b', 1, 1, 100, 10)).toBe(0);
    expect(store.reserve('a', 1, 1, 100, 20)).toBe(80);
    expect(store.reserve('b', 1, 1, 100, 20)).toBe(90);
  });
});

describe('MemoryRateLimitStore release', () => {
  it('refunds from the oldest entry when the reservation is there', () => {
    const store = new MemoryRateLimitStore();
    store.reserve('k', 1, 10, 100, 0);
    store.reserve('k', 1, 10, 100, 10);
    store.release('k', 1, 0);
    expect(usedAt(store, 'k', [0, 100, 110])).toEqual([1, 1, 0]);
  });

  it('never takes more than the entry holds', () => {
    const store = new MemoryRateLimitStore();
    store.reserve('k', 3, 10, 100, 0);
    store.reserve('k', 2, 10, 100, 10);
    store.release('k', 5, 10);
    expect(usedAt(store, 'k', [10, 99, 100])).toEqual([3, 3, 0]);
  });

  it('a reservation merged forward is found in the entry that holds it', () => {
    const store = new MemoryRateLimitStore();
    store.reserve('k', 1, 10, 100, 0);
    store.reserve('k', 2, 10, 100, 20);
    store.reserve('k', 4, 10, 100, 15); // clock stepped back: merged into t=20
    store.release('k', 4, 15);
    expect(usedAt(store, 'k', [20, 100, 120])).toEqual([3, 2, 0]);
  });

  it('a partial refund of the newest entry keeps it', () => {
    const store = new MemoryRateLimitStore();
    store.reserve('k', 1, 10, 100, 0);
    store.reserve('k', 2, 10, 100, 10);
    store.release('k', 1, 10);
    expect(usedAt(store, 'k', [10, 100, 110])).toEqual([2, 1, 0]);
  });

  it('a fully refunded newest entry is removed, so an earlier stamp starts a new entry', () => {
    const store = new MemoryRateLimitStore();
    store.reserve('k', 1, 10, 100, 0);
    store.reserve('k', 1, 10, 100, 10);
    store.release('k', 1, 10);
    store.reserve('k', 1, 10, 100, 5);
    expect(usedAt(store, 'k', [5, 100, 105])).toEqual([2, 1, 0]);
  });

  it('a release stamped after every entry, or of an unknown key, changes nothing', () => {
    const store = new MemoryRateLimitStore();
    store.reserve('k', 2, 10, 100, 0);
    store.release('k', 2, 1);
    store.release('nobody', 1, 0);
    expect(store.used('k', 0)).toBe(2);
    expect(store.stats().keys).toBe(1);
  });
});

describe('MemoryRateLimitStore sweep and maxKeys', () => {
  it('drops a window whose newest start has just expired, and keeps the others', () => {
    const store = new MemoryRateLimitStore({ maxKeys: 2 });
    store.reserve('a', 1, 1, 100, 0);
    store.reserve('b', 1, 1, 100, 50);
    store.reserve('c', 1, 1, 100, 100);
    expect(store.stats()).toEqual({ keys: 2, evictions: 0 });
    expect(store.used('b', 149)).toBe(1);
    expect(store.reserve('a', 1, 1, 100, 100)).toBe(0); // a fresh window
  });

  it('drops a window emptied by release', () => {
    const store = new MemoryRateLimitStore({ maxKeys: 2 });
    store.reserve('a', 1, 1, 100, 0);
    store.release('a', 1, 0);
    store.reserve('b', 1, 1, 100, 10);
    store.reserve('c', 1, 1, 100, 20);
    expect(store.stats()).toEqual({ keys: 2, evictions: 0 });
    expect(store.used('b', 20)).toBe(1);
  });

  it('at maxKeys of live windows forgets the oldest-created down to 90% of the cap', () => {
    const store = new MemoryRateLimitStore({ maxKeys: 100 });
    for (let i = 0; i < 100; i++) store.reserve(`k${i}`, 1, 1, 1_000_000, 0);
    expect(store.stats()).toEqual({ keys: 100, evictions: 0 });
    store.reserve('new', 1, 1, 1_000_000, 1);
    expect(store.stats()).toEqual({ keys: 91, evictions: 10 });
    expect(store.used('k9', 1)).toBe(0);
    expect(store.used('k10', 1)).toBe(1);
    expect(store.reserve('k0', 1, 1, 1_000_000, 1)).toBe(0); // forgotten: starts early
    expect(store.reserve('k10', 1, 1, 1_000_000, 1)).toBe(999_999);
  });

  it('forgets at least one window at a small cap', () => {
    const store = new MemoryRateLimitStore({ maxKeys: 1 });
    store.reserve('a', 1, 1, 1000, 0);
    store.reserve('b', 1, 1, 1000, 0);
    expect(store.stats()).toEqual({ keys: 1, evictions: 1 });
    expect(store.reserve('b', 1, 1, 1000, 0)).toBe(1000);
  });

  it('sweeps expired windows once 1,024 are held, then not before the map doubles', () => {
    const store = new MemoryRateLimitStore({ maxKeys: Number.POSITIVE_INFINITY });
    for (let i = 0; i < 1024; i++) store.reserve(`old${i}`, 1, 1, 10, 0);
    expect(store.stats().keys).toBe(1024);
    store.reserve('x', 1, 1, 10, 100); // the 1,025th key: all 1,024 had expired
    expect(store.stats()).toEqual({ keys: 1, evictions: 0 });
    for (let i = 0; i < 5; i++) store.reserve(`short${i}`, 1, 1, 10, 100);
    store.reserve('y', 1, 1, 10, 200); // 6 held < 1,024: no sweep yet
    expect(store.stats().keys).toBe(7);
  });

  it('after a sweep that frees nothing, waits for twice the live windows before sweeping again', () => {
    const store = new MemoryRateLimitStore();
    for (let i = 0; i < 1024; i++) store.reserve(`live${i}`, 1, 1, 1_000_000, 0);
    store.reserve('first', 1, 1, 1_000_000, 0); // sweep: nothing expired, next at 2,048
    for (let i = 0; i < 10; i++) store.reserve(`short${i}`, 1, 1, 10, 0);
    store.reserve('later', 1, 1, 10, 100);
    expect(store.stats()).toEqual({ keys: 1036, evictions: 0 });
  });
});

describe('MemoryRateLimitStore options', () => {
  it.each([
    [
      { maxKeys: 0 },
      'MemoryRateLimitStore.maxKeys',
      'MemoryRateLimitStore.maxKeys must be an integer >= 1 or Infinity, got 0',
    ],
    [
      { maxKeys: 2.5 },
      'MemoryRateLimitStore.maxKeys',
      'MemoryRateLimitStore.maxKeys must be an integer >= 1 or Infinity, got 2.5',
    ],
    [
      { maxEntriesPerKey: 0 },
      'MemoryRateLimitStore.maxEntriesPerKey',
      'MemoryRateLimitStore.maxEntriesPerKey must be an integer >= 1 <= 1048576, got 0',
    ],
    [
      { maxEntriesPerKey: 1_048_577 },
      'MemoryRateLimitStore.maxEntriesPerKey',
      'MemoryRateLimitStore.maxEntriesPerKey must be an integer >= 1 <= 1048576, got 1048577',
    ],
  ])('%j → ConfigError naming %s', (options, option, message) => {
    let error: unknown;
    try {
      new MemoryRateLimitStore(options);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ option, message });
  });

  it('accepts the bounds', () => {
    expect(() => new MemoryRateLimitStore({ maxKeys: 1, maxEntriesPerKey: 1_048_576 })).not.toThrow();
    expect(() => new MemoryRateLimitStore({ maxKeys: Number.POSITIVE_INFINITY, maxEntriesPerKey: 1 })).not.toThrow();
  });
});
