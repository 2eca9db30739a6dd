/**
 * A KeyedRateLimiter over 1,000,000 tenants on Redis leaves nothing behind: every key expires one window
 * after its last reservation. Runs on a private redis-server so the shared one is not filled.
 */
import { KeyedRateLimiter } from 'hotpath/ratelimit';
import { RedisRateLimitStore } from 'hotpath/redis';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { privateRedisUnavailable, startPrivateRedis } from '../helpers/private-servers.js';

const hasRedisServer = privateRedisUnavailable() === undefined;

const TENANTS = 1_000_000;
const IN_FLIGHT = 256;
const INTERVAL_MS = 3000;

describe.runIf(hasRedisServer)('RedisRateLimitStore with 1,000,000 tenants', () => {
  it('every key expires after its window: the key count goes back to ~0', async () => {
    const server = await startPrivateRedis();
    const admin = new Redis(server.url);
    const store = new RedisRateLimitStore({ redis: server.url, commandTimeoutMs: 30_000 });
    const perTenant = new KeyedRateLimiter({ limit: 5, intervalMs: INTERVAL_MS, store });
    try {
      let next = 0;
      let granted = 0;
      const lane = async (): Promise<void> => {
        while (next < TENANTS) {
          const tenant = `tenant-${next++}`;
          const answer = await perTenant.tryAcquireAsync(tenant);
          if (answer.ok) granted++;
          answer.release();
        }
      };
      let peak = 0;
      let isRunning = true;
      const sampler = (async () => {
        while (isRunning) {
          peak = Math.max(peak, await admin.dbsize());
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      })();
      const startedAt = Date.now();
      await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
      isRunning = false;
      await sampler;
      const seconds = (Date.now() - startedAt) / 1000;
      expect(granted).toBe(TENANTS);
      // One key per tenant reserved within the last window is alive at the peak (weight 1: no meta hash).
      expect(peak).toBeGreaterThan(Math.min(TENANTS, (TENANTS / seconds) * (INTERVAL_MS / 1000)) * 0.5);
      expect(perTenant.stats().keys).toBeLessThan(TENANTS / 10); // idle per-key limiters dropped locally too
      let left = peak;
      for (let i = 0; i < 120 && left > 100; i++) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        left = await admin.dbsize();
      }
      expect(left).toBeLessThanOrEqual(100);
    } finally {
      await perTenant.close();
      await store.close();
      await admin.quit();
      await server.kill();
    }
  }, 600_000);
});
