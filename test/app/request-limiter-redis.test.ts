/**
 * Inbound limits shared through Redis: two servers (as two processes would) with their own connections
 * share one client's quota, and the store's outage follows the limiter's failMode.
 */
import type { IncomingMessage } from 'node:http';
import { limitRequests } from 'hotpath/app';
import { RedisRateLimitStore } from 'hotpath/redis';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { needsRedis, REDIS_URL, uniqueName } from '../helpers/services.js';

const hasRedis = await needsRedis();
const request = (address: string): IncomingMessage =>
  ({ headers: {}, socket: { remoteAddress: address }, url: '/' }) as unknown as IncomingMessage;

describe.runIf(hasRedis)('inbound limiter on Redis', () => {
  const prefix = `${uniqueName('reqrl')}:`;
  const admin = new Redis(REDIS_URL);
  afterAll(async () => {
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length > 0) await admin.del(...keys);
    await admin.quit();
  });

  it('two instances share one quota per client, with remaining counted across both', async () => {
    const stores = [0, 1].map(() => new RedisRateLimitStore({ redis: REDIS_URL, prefix }));
    const handlers = stores.map((store) => limitRequests(() => {}, { limit: 4, intervalMs: 60_000, store }));
    const decisions = [];
    for (let i = 0; i < 6; i++)
      decisions.push(await (handlers[i % 2] as (typeof handlers)[0]).engine.check(request('198.51.100.20')));
    expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, true, false, false]);
    expect(decisions.map((d) => d.headers.find(([name]) => name === 'RateLimit')?.[1])).toEqual([
      '"4-in-60s";r=3;t=60',
      '"4-in-60s";r=2;t=60',
      '"4-in-60s";r=1;t=60',
      '"4-in-60s";r=0;t=60',
      expect.stringMatching(/^"4-in-60s";r=0;t=\d+$/),
      expect.stringMatching(/^"4-in-60s";r=0;t=\d+$/),
    ]);
    expect((await (handlers[1] as (typeof handlers)[0]).engine.check(request('198.51.100.21'))).allowed).toBe(true);
    for (const handler of handlers) await handler.close();
    for (const store of stores) await store.close();
  });

  it('a store that fails closed makes the limiter answer by its own failMode', async () => {
    const store = new RedisRateLimitStore({ redis: 'redis://127.0.0.1:1', commandTimeoutMs: 200 });
    const closed = limitRequests(() => {}, { limit: 4, intervalMs: 1000, store });
    expect((await closed.engine.check(request('198.51.100.30'))).status).toBe(503);
    const open = limitRequests(() => {}, { limit: 4, intervalMs: 1000, store, failMode: 'open' });
    expect((await open.engine.check(request('198.51.100.30'))).allowed).toBe(true);
    expect(open.engine.stats().storeFailures).toBe(1);
    await closed.close();
    await open.close();
    await store.close();
  });
});
