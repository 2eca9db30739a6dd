/**
 * The contract every CacheTier must keep, as one suite to run against each backend (memory now; Redis
 * and StorageAdapter tiers later call it with their own factory).
 */
import type { CacheTier } from 'hotpath/cache';
import { ManualClock } from 'hotpath/core';
import { describe, expect, it } from 'vitest';

/**
 * Builds a fresh, empty tier whose expiry follows `clock`, and a function that releases it. A tier on a
 * server's clock (Redis) returns `advance`, which lets that much real time pass instead.
 */
export type TierFactory = (clock: ManualClock) => Promise<{
  tier: CacheTier<string>;
  close: () => Promise<void>;
  advance?: (ms: number) => Promise<void>;
}>;

export function describeCacheTier(name: string, factory: TierFactory): void {
  describe(`CacheTier conformance: ${name}`, () => {
    it('returns what was set, with its remaining ttl and tags, and nothing for unknown keys', async () => {
      const clock = new ManualClock();
      const { tier, close } = await factory(clock);
      expect(await tier.get('missing')).toBeUndefined();
      await tier.set('k', 'v', { ttlMs: 10_000, tags: ['a', 'b'] });
      const found = await tier.get('k');
      expect(found?.value).toBe('v');
      expect(found?.ttlMs).toBeGreaterThan(0);
      expect(found?.ttlMs).toBeLessThanOrEqual(10_000);
      expect([...(found?.tags ?? [])].sort()).toEqual(['a', 'b']);
      await close();
    });

    it('expires values after ttlMs and overwrites on set', async () => {
      const clock = new ManualClock();
      const { tier, close, advance = (ms) => clock.advance(ms) } = await factory(clock);
      await tier.set('k', 'v1', { ttlMs: 200, tags: [] });
      await tier.set('k', 'v2', { ttlMs: 200, tags: [] });
      expect((await tier.get('k'))?.value).toBe('v2');
      await advance(201);
      expect(await tier.get('k')).toBeUndefined();
      await close();
    });

    it('deletes by key and by tag', async () => {
      const clock = new ManualClock();
      const { tier, close } = await factory(clock);
      await tier.set('a', 'A', { ttlMs: 10_000, tags: ['x'] });
      await tier.set('b', 'B', { ttlMs: 10_000, tags: ['x', 'y'] });
      await tier.set('c', 'C', { ttlMs: 10_000, tags: ['y'] });
      await tier.set('d', 'D', { ttlMs: 10_000, tags: [] });
      await tier.delete('d');
      expect(await tier.get('d')).toBeUndefined();
      await tier.deleteTags(['x']);
      expect(await tier.get('a')).toBeUndefined();
      expect(await tier.get('b')).toBeUndefined();
      expect((await tier.get('c'))?.value).toBe('C');
      await tier.deleteTags(['nothing-here']);
      expect((await tier.get('c'))?.value).toBe('C');
      await close();
    });
  });
}
