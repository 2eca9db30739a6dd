/**
 * `createHotpath({ redisUrl })`: named caches share a Redis tier and the bus (`shared: false` opts out),
 * named limiters share their limit, health and /metrics cover Redis, two connections per app, both
 * closed by `close()`; without `redisUrl` nothing connects.
 */
import { createHotpath, type Hotpath } from 'hotpath/app';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { needsRedis, REDIS_URL, uniqueName } from '../helpers/services.js';

const hasRedis = await needsRedis();

async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe.runIf(hasRedis)('createHotpath with redisUrl', () => {
  const admin = new Redis(REDIS_URL);
  const quotes = uniqueName('quotes');
  const local = uniqueName('local');
  const upstream = uniqueName('upstream');
  const appConnections = async () =>
    ((await admin.call('CLIENT', 'LIST')) as string).split('\n').filter((line) => line.includes('name=hotpath')).length;
  const build = () =>
    createHotpath({
      profile: 'test',
      redisUrl: REDIS_URL,
      queue: false,
      caches: { [quotes]: { max: 100, ttlMs: 60_000 }, [local]: { max: 100, ttlMs: 60_000, shared: false } },
      rateLimiters: { [upstream]: { limit: 3, intervalMs: 60_000 } },
    });

  afterAll(async () => {
    const keys = [...(await admin.keys(`{hotpath:cache:${quotes}}*`)), ...(await admin.keys(`*${upstream}*`))];
    if (keys.length > 0) await admin.unlink(...keys);
    await admin.quit();
  });

  it('shares caches and limits between two apps, reports Redis, and closes its two connections', async () => {
    const before = await appConnections();
    const a: Hotpath = await build();
    const b: Hotpath = await build();
    expect(await appConnections()).toBe(before + 4); // one command + one subscriber connection each

    // L2: b gets what a loaded.
    expect(await a.cache(quotes).getOrSet('ACME', () => ({ price: 42 }))).toEqual({ price: 42 });
    await eventually(async () => (await admin.exists(`{hotpath:cache:${quotes}}:v:ACME`)) === 1);
    expect(await b.cache(quotes).getOrSet('ACME', () => ({ price: 0 }))).toEqual({ price: 42 });
    // The bus: a delete on a drops b's L1 copy.
    a.cache(quotes).delete('ACME');
    await eventually(() => !b.cache(quotes).has('ACME'));
    // shared: false stays in its process.
    await a.cache(local).getOrSet('k', () => 'from-a');
    expect(await b.cache(local).getOrSet('k', () => 'from-b')).toBe('from-b');

    // One limit for both: 3 per minute in total.
    const grants = [
      await a.rateLimiter(upstream).tryAcquireAsync(),
      await a.rateLimiter(upstream).tryAcquireAsync(),
      await b.rateLimiter(upstream).tryAcquireAsync(),
      await b.rateLimiter(upstream).tryAcquireAsync(),
      await a.rateLimiter(upstream).tryAcquireAsync(),
    ].map((verdict) => verdict.ok);
    expect(grants).toEqual([true, true, true, false, false]);

    const health = await a.health();
    expect(health.redis).toMatchObject({ ok: true, reconnects: 0 });
    const metrics = await a.metrics();
    expect(metrics).toContain('hotpath_redis_up 1');
    expect(metrics).toContain('hotpath_redis_reconnects_total 0');
    expect(metrics).toContain('hotpath_redis_fallbacks_total{part="ratelimit"} 0');
    expect(metrics).toMatch(/redis[._]roundtrip/);

    await a.close();
    await b.close();
    await eventually(async () => (await appConnections()) === before);
  });

  it('without redisUrl connects nothing and reports no redis section', async () => {
    const before = await appConnections();
    const app = await createHotpath({ profile: 'test', queue: false, caches: { [quotes]: { max: 10, ttlMs: 1_000 } } });
    expect(await appConnections()).toBe(before);
    expect((await app.health()).redis).toBeUndefined();
    expect(await app.metrics()).not.toContain('hotpath_redis_up');
    await app.close();
  });
});
