import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Cache } from 'hotpath/cache';
import { ManualClock } from 'hotpath/core';
import { describe, expect, it } from 'vitest';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function heapMb(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 1_048_576;
}

/**
 * Keys pushed through. Under mutation testing (`npm run mutate` sets HOTPATH_MUTATION=1) every mutant of the
 * set/getOrSet path re-runs this test on instrumented code, ~50× slower: 100,000 keys there (the bound does not
 * depend on the count; 90,000 keys retained would still show as megabytes).
 */
const KEYS = process.env.HOTPATH_MUTATION === '1' ? 100_000 : 1_000_000;

describe('bounded memory', () => {
  it('stays bounded after 1,000,000 distinct keys through set and getOrSet, with tags', async () => {
    const clock = new ManualClock();
    const cache = new Cache<{ id: number; payload: string }>({
      max: 1_000,
      ttlMs: 60_000,
      staleWhileRevalidateMs: 10_000,
      errorTtlMs: 1_000,
      clock,
    });
    const fill = async (from: number, to: number) => {
      const pending: Promise<unknown>[] = [];
      for (let i = from; i < to; i++) {
        const key = `key:${i}`;
        if (i % 10 !== 0) {
          // Every 10th entry gets its own tag (the worst case for the tag index: one Set per tag).
          cache.set(key, { id: i, payload: `p${i}` }, i % 10 === 1 ? { tags: [`tag:${i}`, 'all'] } : undefined);
        } else {
          // Loads settle and leave the in-flight map; awaited in batches to keep the test fast.
          pending.push(cache.getOrSet(key, () => ({ id: i, payload: `p${i}` }), { tags: [`tag:${i}`] }));
          if (pending.length === 1_000) await Promise.all(pending.splice(0));
        }
      }
      await Promise.all(pending);
    };
    await fill(0, KEYS / 10);
    const baseline = heapMb();
    await fill(KEYS / 10, KEYS);
    const after = heapMb();
    const stats = cache.stats();
    expect(stats.size).toBeLessThanOrEqual(1_000);
    expect(stats.inflight).toBe(0);
    // At most one unique tag per entry plus "all".
    expect(stats.tags).toBeLessThanOrEqual(1_001);
    expect(stats.evictions).toBe(KEYS - 1_000);
    // 90 % of the keys went through after the baseline; anything retained per key would show as megabytes.
    expect(after - baseline).toBeLessThan(8);
    await cache.close();
  });
});
