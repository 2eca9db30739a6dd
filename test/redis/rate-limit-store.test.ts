import { ConfigError } from 'hotpath/core';
import { RateLimiter } from 'hotpath/ratelimit';
import { RedisRateLimitStore } from 'hotpath/redis';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually } from '../helpers/async.js';
import { needsRedis, REDIS_URL, uniqueName } from '../helpers/services.js';

const hasRedis = await needsRedis();

import { rateLimitStoreConformance } from '../ratelimit/store-conformance.js';

describe.runIf(hasRedis)('RedisRateLimitStore', () => {
  const prefix = `${uniqueName('rl')}:`;
  const admin = new Redis(REDIS_URL);
  afterAll(async () => {
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length > 0) await admin.del(...keys);
    await admin.quit();
  });

  rateLimitStoreConformance('redis', async () => {
    const store = new RedisRateLimitStore({ redis: REDIS_URL, prefix });
    return { store, close: () => store.close() };
  });
});

describe.runIf(hasRedis)('RedisRateLimitStore: units reserved ahead for a hot key (prefetch)', () => {
  const prefix = `${uniqueName('rl-ahead')}:`;
  const admin = new Redis(REDIS_URL);
  afterAll(async () => {
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length > 0) await admin.del(...keys);
    await admin.quit();
  });

  it('takes most reservations of a tight loop from units reserved ahead, and every unit taken is in the log', async () => {
    const store = new RedisRateLimitStore({ redis: REDIS_URL, prefix, prefetch: 8 });
    const limiter = new RateLimiter({ key: 'loop', limit: 10_000, intervalMs: 60_000, store });
    const before = Number((await admin.info('commandstats')).match(/cmdstat_evalsha:calls=(\d+)/)?.[1] ?? 0);
    for (let i = 0; i < 200; i++) {
      const answer = await limiter.tryAcquireAsync();
      expect(answer.ok).toBe(true);
      answer.release();
    }
    const stats = store.stats();
    expect(stats.reserved).toBe(200);
    // The first two calls go to Redis (the second finds the key hot); after that, about 1 in 9 does.
    expect(stats.prefetched).toBeGreaterThanOrEqual(100);
    await limiter.close();
    await store.close(); // gives back the units not taken
    const { log } = store.redisKeys('loop');
    expect(await admin.zcard(log)).toBe(200);
    const after = Number((await admin.info('commandstats')).match(/cmdstat_evalsha:calls=(\d+)/)?.[1] ?? 0);
    expect(after - before).toBeLessThan(200);
  });

  it('requests of a busy key arriving in separate turns wait for the script reserving ahead, not send their own', async () => {
    const store = new RedisRateLimitStore({ redis: REDIS_URL, prefix, prefetch: 16 });
    const evalCalls = async () =>
      Number((await admin.info('commandstats')).match(/cmdstat_evalsha:calls=(\d+)/)?.[1] ?? 0);
    let nowMs = 10_000;
    await store.reserve('busy', 1, 100_000, 60_000, nowMs++); // the key becomes hot
    const before = await evalCalls();
    // 32 callers, each reserving 20 times with a macrotask between calls (like requests on 32 sockets).
    const lane = async (): Promise<void> => {
      for (let i = 0; i < 20; i++) {
        expect(await store.reserve('busy', 1, 100_000, 60_000, nowMs++)).toBe(0);
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    await Promise.all(Array.from({ length: 32 }, lane));
    const scripts = (await evalCalls()) - before;
    expect(scripts).toBeLessThan(640 / 4);
    await store.close();
    expect(await admin.zcard(store.redisKeys('busy').log)).toBe(641);
  });

  it('gives back the units not taken within 20 ms, so they stop counting', async () => {
    const store = new RedisRateLimitStore({ redis: REDIS_URL, prefix, prefetch: 16 });
    const { log } = store.redisKeys('burst');
    for (let i = 0; i < 3; i++) expect(await store.reserve('burst', 1, 1000, 60_000, 1_000 + i)).toBe(0);
    await eventually(async () => expect(await admin.zcard(log)).toBe(3));
    expect(store.stats().prefetched).toBeGreaterThan(0);
    await store.close();
  });

  it('a key whose units were not all taken reserves only as many ahead next time (at least 2)', async () => {
    const store = new RedisRateLimitStore({ redis: REDIS_URL, prefix, prefetch: 16 });
    const { log } = store.redisKeys('sized');
    let nowMs = 20_000;
    const reserve = () => store.reserve('sized', 1, 1000, 60_000, nowMs++);
    await reserve();
    await reserve(); // hot: 16 more reserved ahead
    expect(await admin.zcard(log)).toBe(18);
    await reserve(); // takes one of them; the other 15 are given back after 20 ms
    await eventually(async () => expect(await admin.zcard(log)).toBe(3));
    await new Promise((resolve) => setTimeout(resolve, 30)); // well past 20 ms since Redis last answered
    await reserve(); // the key went quiet: one at a time
    await reserve(); // hot again: 2 ahead this time (1 was taken last time)
    expect(await admin.zcard(log)).toBe(7);
    await store.close();
  });

  it('never reserves ahead past half of the window, so the last units stay exact', async () => {
    const store = new RedisRateLimitStore({ redis: REDIS_URL, prefix, prefetch: 16 });
    let granted = 0;
    for (let i = 0; i < 30; i++) if ((await store.reserve('exact', 1, 10, 60_000, 2_000 + i)) === 0) granted++;
    expect(granted).toBe(10);
    const { log } = store.redisKeys('exact');
    expect(await admin.zcard(log)).toBe(10);
    await store.close();
  });

  it('reserves nothing ahead for weights other than 1, short windows, or prefetch: 0', async () => {
    const off = new RedisRateLimitStore({ redis: REDIS_URL, prefix, prefetch: 0 });
    for (let i = 0; i < 20; i++) await off.reserve('off', 1, 1000, 60_000, 3_000 + i);
    expect(off.stats().prefetched).toBe(0);
    expect(await admin.zcard(off.redisKeys('off').log)).toBe(20);
    await off.close();
    const store = new RedisRateLimitStore({ redis: REDIS_URL, prefix });
    for (let i = 0; i < 20; i++) await store.reserve('heavy', 2, 1000, 60_000, 4_000 + i);
    for (let i = 0; i < 20; i++) await store.reserve('short', 1, 1000, 39, 5_000 + i);
    expect(store.stats().prefetched).toBe(0);
    await store.close();
  });

  it('a shared pause is not bypassed by units reserved ahead in the pausing process', async () => {
    const store = new RedisRateLimitStore({ redis: REDIS_URL, prefix, prefetch: 16 });
    for (let i = 0; i < 3; i++) await store.reserve('paused', 1, 1000, 60_000, 6_000 + i);
    await store.pause('paused', 10_000);
    expect(await store.reserve('paused', 1, 1000, 60_000, 6_100)).toBeGreaterThan(5_000);
    await store.close();
  });

  it('rejects a prefetch that is not a whole number from 0 to 1000', () => {
    for (const prefetch of [-1, 1.5, Number.NaN, 1001, '4']) {
      expect(() => new RedisRateLimitStore({ redis: REDIS_URL, prefix, prefetch: prefetch as number })).toThrow(
        ConfigError,
      );
    }
  });
});
