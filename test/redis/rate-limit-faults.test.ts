/**
 * Redis killed mid-run and restarted (a private redis-server, never the shared one): no crash, no
 * unhandled rejection, the limiter follows its failMode while Redis is down, and Redis takes back over.
 */
import { isHotpathError } from 'hotpath/core';
import { RateLimiter } from 'hotpath/ratelimit';
import { RedisRateLimitStore } from 'hotpath/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PrivateRedis, privateRedisUnavailable, startPrivateRedis } from '../helpers/private-servers.js';

const hasRedisServer = privateRedisUnavailable() === undefined;

function recordingLogger() {
  const lines: { level: string; msg: string }[] = [];
  const at = (level: string) => (_obj: object, msg?: string) => lines.push({ level, msg: msg ?? '' });
  return { lines, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
}

async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe.runIf(hasRedisServer)('RedisRateLimitStore when Redis dies', () => {
  let server: PrivateRedis;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  beforeAll(async () => {
    server = await startPrivateRedis();
    process.on('unhandledRejection', onUnhandled);
  });
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await server.kill();
  });

  it("failMode 'closed': calls reject with a typed error while Redis is down, and work again after the restart", async () => {
    const { lines, logger } = recordingLogger();
    const store = new RedisRateLimitStore({ redis: server.url, commandTimeoutMs: 300, logger });
    const limiter = new RateLimiter({ key: 'closed', limit: 1000, intervalMs: 1000, store });
    expect(await limiter.schedule(() => 'up')).toBe('up');
    await server.kill();
    const outcomes = await Promise.allSettled(Array.from({ length: 20 }, () => limiter.schedule(() => 'ran')));
    expect(outcomes.every((o) => o.status === 'rejected')).toBe(true);
    for (const outcome of outcomes) {
      const reason = (outcome as PromiseRejectedResult).reason;
      expect(isHotpathError(reason, 'ERR_HOTPATH_TIMEOUT') || isHotpathError(reason, 'ERR_HOTPATH_STORAGE')).toBe(true);
    }
    await expect(limiter.tryAcquireAsync()).rejects.toSatisfy((e) => isHotpathError(e));
    expect(store.stats().isDown).toBe(true);
    await server.start();
    await until(async () => {
      try {
        return (await limiter.schedule(() => 'back')) === 'back';
      } catch {
        return false;
      }
    });
    expect(store.stats().isDown).toBe(false);
    expect(lines.filter((l) => l.level === 'warn' && l.msg.includes('unreachable'))).toHaveLength(1);
    expect(lines.some((l) => l.level === 'info' && l.msg.includes('back'))).toBe(true);
    await limiter.close();
    await store.close();
    expect(unhandled).toEqual([]);
  }, 60_000);

  it("failMode 'open': a local limit at fallbackLimit takes over (one log line per outage), then Redis again", async () => {
    const { lines, logger } = recordingLogger();
    const store = new RedisRateLimitStore({
      redis: server.url,
      commandTimeoutMs: 300,
      failMode: 'open',
      fallbackLimit: 5,
      logger,
    });
    const limiter = new RateLimiter({ key: 'open', limit: 50, intervalMs: 2000, store });
    expect((await limiter.tryAcquireAsync()).ok).toBe(true);
    await server.kill();
    // While down: calls still run, but only fallbackLimit per window in this process.
    const answers = [];
    for (let i = 0; i < 12; i++) answers.push(await limiter.tryAcquireAsync());
    expect(answers.filter((a) => a.ok).length).toBe(5);
    expect(store.stats().fallbacks).toBeGreaterThanOrEqual(12);
    const started = await limiter.schedule(() => 'ran-while-down', { signal: AbortSignal.timeout(5000) });
    expect(started).toBe('ran-while-down');
    await server.start();
    await until(() => !store.stats().isDown);
    const reservedBefore = store.stats().reserved;
    const fallbacksBefore = store.stats().fallbacks;
    for (let i = 0; i < 10; i++) expect((await limiter.tryAcquireAsync()).ok).toBe(true); // Redis's 50, not 5
    expect(store.stats().reserved).toBe(reservedBefore + 10);
    expect(store.stats().fallbacks).toBe(fallbacksBefore);
    expect(lines.filter((l) => l.level === 'warn' && l.msg.includes('unreachable'))).toHaveLength(1);
    expect(lines.filter((l) => l.level === 'info' && l.msg.includes('back'))).toHaveLength(1);
    // A second outage logs once more.
    await server.kill();
    // The first calls may take units the store reserved ahead before the kill (prefetch: here at most 12, a quarter of the limit).
    for (let i = 0; i < 20; i++) await limiter.tryAcquireAsync();
    expect(lines.filter((l) => l.level === 'warn' && l.msg.includes('unreachable'))).toHaveLength(2);
    await server.start();
    await until(() => !store.stats().isDown);
    await limiter.close();
    await store.close();
    expect(unhandled).toEqual([]);
  }, 60_000);
});
