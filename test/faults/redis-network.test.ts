/**
 * Redis behind a stalling network (a TCP proxy that swallows every byte, sockets left open): the limiter's
 * `commandTimeoutMs` fires with a typed error instead of a hang (`failMode: 'closed'`), the open mode falls back
 * to its local limit, a cache with a Redis tier answers from its loader, and everything works again once the
 * network passes traffic.
 */
import { Cache } from 'hotpath/cache';
import { isHotpathError } from 'hotpath/core';
import { RateLimiter } from 'hotpath/ratelimit';
import { RedisCacheTier, RedisRateLimitStore } from 'hotpath/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { needsRedis, REDIS_URL, uniqueName } from '../helpers/services.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

const hasRedis = await needsRedis();

/** Resolves with how long `call` took and what it threw; fails the test if it is still pending after `limitMs`. */
async function timed(
  call: () => Promise<unknown>,
  limitMs: number,
): Promise<{ ms: number; error: unknown; value: unknown }> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`call still pending after ${limitMs} ms`)), limitMs);
  });
  try {
    const value = await Promise.race([call(), hung]);
    return { ms: performance.now() - started, error: undefined, value };
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('call still pending')) throw error;
    return { ms: performance.now() - started, error, value: undefined };
  } finally {
    clearTimeout(timer);
  }
}

describe.runIf(hasRedis)('Redis behind a stalling network', () => {
  let proxy: TcpProxy;
  let proxiedUrl: string;
  const prefix = uniqueName('hp_redis_net');

  beforeAll(async () => {
    const target = new URL(REDIS_URL);
    proxy = await TcpProxy.start(target.hostname, Number(target.port || 6379));
    target.hostname = '127.0.0.1';
    target.port = String(proxy.port);
    proxiedUrl = target.toString();
  });
  afterAll(async () => {
    await proxy.close();
  });

  it("failMode 'closed': commandTimeoutMs ends every call with a typed error, and the limit works again after", async () => {
    const store = new RedisRateLimitStore({ redis: proxiedUrl, prefix: `${prefix}:closed:`, commandTimeoutMs: 300 });
    const limiter = new RateLimiter({ key: 'api', limit: 100, intervalMs: 1_000, store });
    try {
      expect((await limiter.tryAcquireAsync()).ok).toBe(true);
      proxy.setMode('blackhole');
      const outcomes = await Promise.all([1, 2, 3].map(() => timed(() => limiter.tryAcquireAsync(), 5_000)));
      for (const outcome of outcomes) {
        expect(isHotpathError(outcome.error), String(outcome.error)).toBe(true);
        expect(outcome.ms).toBeLessThan(2_000);
      }
      proxy.setMode('pass');
      proxy.cut(); // the stalled sockets are dead weight; the client reconnects
      const after = await timed(async () => {
        for (;;) {
          try {
            return await limiter.tryAcquireAsync();
          } catch {
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        }
      }, 10_000);
      expect((after.value as { ok: boolean }).ok).toBe(true);
    } finally {
      proxy.setMode('pass');
      await limiter.close();
      await store.close();
    }
  });

  it("failMode 'open': a stalled Redis hands over to the local limit after commandTimeoutMs", async () => {
    const store = new RedisRateLimitStore({
      redis: proxiedUrl,
      prefix: `${prefix}:open:`,
      commandTimeoutMs: 300,
      failMode: 'open',
      fallbackLimit: 2,
    });
    const limiter = new RateLimiter({ key: 'api', limit: 100, intervalMs: 60_000, store });
    try {
      expect((await limiter.tryAcquireAsync()).ok).toBe(true);
      proxy.setMode('blackhole');
      const results = [];
      for (let i = 0; i < 4; i++) results.push(await timed(() => limiter.tryAcquireAsync(), 5_000));
      for (const result of results) expect(result.error).toBeUndefined();
      // The local limit (2 per window) holds while Redis is unreachable.
      expect(results.filter((result) => (result.value as { ok: boolean }).ok).length).toBe(2);
    } finally {
      proxy.setMode('pass');
      proxy.cut();
      await limiter.close();
      await store.close();
    }
  });

  it('a cache with a Redis tier answers from its loader within the command timeout', async () => {
    const tier = new RedisCacheTier<string>({ redis: proxiedUrl, prefix: `${prefix}:cache`, commandTimeoutMs: 300 });
    const cache = new Cache<string>({ max: 100, ttlMs: 60_000, tier });
    try {
      expect(await cache.getOrSet('warm', async () => 'loaded')).toBe('loaded');
      proxy.setMode('blackhole');
      let loads = 0;
      const outcome = await timed(
        () =>
          cache.getOrSet('cold', async () => {
            loads++;
            return 'from the source';
          }),
        5_000,
      );
      expect(outcome.error).toBeUndefined();
      expect(outcome.value).toBe('from the source');
      expect(loads).toBe(1);
      expect(outcome.ms).toBeLessThan(3_000);
      expect(cache.get('warm')).toBe('loaded'); // L1 keeps answering
    } finally {
      proxy.setMode('pass');
      proxy.cut();
      await cache.close();
      await tier.close();
    }
  });
});
