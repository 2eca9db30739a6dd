/**
 * The behaviour every `RateLimitStore` must show, as one suite a backend joins with one call:
 * `rateLimitStoreConformance('memory', async () => ({ store: new MemoryRateLimitStore(), close }))`.
 *
 * Runs on the real clock (a network store stamps with its server's clock, so `nowMs` cannot be faked)
 * with short windows; sleeps only to let a window pass, asserts no durations.
 */
import { sleep } from 'hotpath/core';
import { RateLimiter, type RateLimitStore } from 'hotpath/ratelimit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** A store under test and how to dispose of it. */
export interface ConformanceTarget {
  store: RateLimitStore;
  /** Frees the store (connections, keys). */
  close(): Promise<void>;
}

const WINDOW_MS = 120;

/** The real clock the suite passes as `nowMs` (Date.now has whole milliseconds, like the limiter's clock). */
const now = (): number => Date.now();

async function reserve(store: RateLimitStore, key: string, weight: number, limit: number): Promise<number> {
  return store.reserve(key, weight, limit, WINDOW_MS, now());
}

/** Registers the conformance suite for one backend. Each call of `open` should give a store with fresh keys. */
export function rateLimitStoreConformance(name: string, open: () => Promise<ConformanceTarget>): void {
  describe(`RateLimitStore conformance: ${name}`, () => {
    let target: ConformanceTarget;
    let keySeq = 0;
    const freshKey = (label = 'k'): string => `${label}-${process.pid}-${Date.now()}-${keySeq++}`;

    beforeAll(async () => {
      target = await open();
    });
    afterAll(async () => {
      await target.close();
    });

    it('reserves up to the limit, then says how long until a unit frees (never longer than the window)', async () => {
      const key = freshKey();
      for (let i = 0; i < 3; i++) expect(await reserve(target.store, key, 1, 3)).toBe(0);
      const waitMs = await reserve(target.store, key, 1, 3);
      expect(waitMs).toBeGreaterThan(0);
      expect(waitMs).toBeLessThanOrEqual(WINDOW_MS);
    });

    it('frees the units once the window has passed', async () => {
      const key = freshKey();
      expect(await reserve(target.store, key, 2, 2)).toBe(0);
      const waitMs = await reserve(target.store, key, 1, 2);
      expect(waitMs).toBeGreaterThan(0);
      await sleep(waitMs + 5);
      expect(await reserve(target.store, key, 2, 2)).toBe(0);
    });

    it('counts weights, fractional ones included, and refuses a weight above the limit', async () => {
      const key = freshKey();
      expect(await reserve(target.store, key, 2, 3)).toBe(0);
      expect(await reserve(target.store, key, 0.5, 3)).toBe(0);
      expect(await reserve(target.store, key, 0.5, 3)).toBe(0);
      expect(await reserve(target.store, key, 0.25, 3)).toBeGreaterThan(0);
      expect(await reserve(target.store, freshKey(), 4, 3)).toBeGreaterThan(0);
    });

    it('a refused reservation takes nothing', async () => {
      const key = freshKey();
      expect(await reserve(target.store, key, 2, 3)).toBe(0);
      for (let i = 0; i < 5; i++) expect(await reserve(target.store, key, 2, 3)).toBeGreaterThan(0);
      expect(await reserve(target.store, key, 1, 3)).toBe(0);
    });

    it('keeps keys apart', async () => {
      const a = freshKey('a');
      const b = freshKey('b');
      expect(await reserve(target.store, a, 1, 1)).toBe(0);
      expect(await reserve(target.store, a, 1, 1)).toBeGreaterThan(0);
      expect(await reserve(target.store, b, 1, 1)).toBe(0);
    });

    it('release gives back a reservation identified by its nowMs', async () => {
      const key = freshKey();
      const at = now();
      expect(await target.store.reserve(key, 1, 2, WINDOW_MS, at)).toBe(0);
      const second = at + 1;
      expect(await target.store.reserve(key, 1, 2, WINDOW_MS, second)).toBe(0);
      expect(await target.store.reserve(key, 1, 2, WINDOW_MS, at + 2)).toBeGreaterThan(0);
      await target.store.release(key, 1, second);
      expect(await target.store.reserve(key, 1, 2, WINDOW_MS, at + 3)).toBe(0);
      await target.store.release(freshKey('unknown'), 1, at); // ignored
    });

    it('grants exactly the limit to concurrent reservations', async () => {
      const key = freshKey();
      const answers = await Promise.all(Array.from({ length: 60 }, () => reserve(target.store, key, 1, 10)));
      expect(answers.filter((answer) => answer === 0)).toHaveLength(10);
    });

    it('stores hostile keys safely: spaces, newlines, *, braces, quotes, 10 KB', async () => {
      const hostile = [
        'a b',
        'line\nbreak',
        '*',
        '?[a-z]*',
        '{tag}',
        '}{',
        "'); redis.call('FLUSHALL') --",
        'é ✓ \u0000 nul',
        'x'.repeat(10_240),
      ];
      const base = freshKey('hostile');
      for (const suffix of hostile) expect(await reserve(target.store, base + suffix, 1, 1)).toBe(0);
      // Each is its own window: a second reservation on each is refused, and a plain key is untouched.
      for (const suffix of hostile) expect(await reserve(target.store, base + suffix, 1, 1)).toBeGreaterThan(0);
      expect(await reserve(target.store, base, 1, 1)).toBe(0);
    });

    it('reports the units in use when it implements reserveDetailed', async () => {
      const store = target.store;
      if (store.reserveDetailed === undefined) return;
      const key = freshKey();
      expect(await store.reserveDetailed(key, 2, 5, WINDOW_MS, now())).toEqual({ waitMs: 0, used: 2 });
      expect(await store.reserveDetailed(key, 1, 5, WINDOW_MS, now())).toEqual({ waitMs: 0, used: 3 });
      const refused = await store.reserveDetailed(key, 3, 5, WINDOW_MS, now());
      expect(refused.waitMs).toBeGreaterThan(0);
      expect(refused.used).toBe(3);
    });

    it('a shared pause refuses every reservation of the key until it ends, when it implements pause', async () => {
      const store = target.store;
      if (store.pause === undefined) return;
      const key = freshKey();
      await store.pause(key, 80, now());
      const waitMs = await reserve(store, key, 1, 10);
      expect(waitMs).toBeGreaterThan(0);
      expect(waitMs).toBeLessThanOrEqual(80);
      await store.pause(key, 10, now()); // shorter: the longer pause is kept
      expect(await reserve(store, key, 1, 10)).toBeGreaterThan(10);
      expect(await reserve(store, freshKey(), 1, 10)).toBe(0);
      await sleep(waitMs + 5);
      expect(await reserve(store, key, 1, 10)).toBe(0);
    });

    it('a RateLimiter on the store never starts more than the limit in any window of its starts', async () => {
      const limiter = new RateLimiter({ limit: 4, intervalMs: WINDOW_MS, store: target.store, key: freshKey() });
      const starts: number[] = [];
      await Promise.all(
        Array.from({ length: 12 }, (_, index) =>
          limiter.schedule(
            () => {
              starts.push(performance.timeOrigin + performance.now());
            },
            { priority: index % 3 },
          ),
        ),
      );
      starts.sort((a, b) => a - b);
      for (let i = 4; i < starts.length; i++) {
        expect((starts[i] as number) - (starts[i - 4] as number)).toBeGreaterThanOrEqual(WINDOW_MS);
      }
      await limiter.close();
    });
  });
}
