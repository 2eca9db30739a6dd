/**
 * The same hotpath/redis code on a Redis Cluster (a private three-master cluster, never the shared server):
 * every key of a limiter key or of a cache tier carries one hash tag, so each script touches one slot, and
 * whole-tier operations (`clear`) reach the node that holds the tier's slot.
 */
import { Cache } from 'hotpath/cache';
import { RateLimiter } from 'hotpath/ratelimit';
import { RedisCacheTier, RedisInvalidationBus, RedisRateLimitStore } from 'hotpath/redis';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../helpers/async.js';
import {
  type PrivateRedisCluster,
  privateRedisUnavailable,
  startPrivateRedisCluster,
} from '../helpers/private-servers.js';

const hasRedisServer = privateRedisUnavailable() === undefined;

describe.runIf(hasRedisServer)('hotpath/redis on a Redis Cluster (three masters)', () => {
  let cluster: PrivateRedisCluster;
  const clients: Cluster[] = [];
  const client = (): Cluster => {
    const created = new Cluster(cluster.nodes);
    clients.push(created);
    return created;
  };

  beforeAll(async () => {
    cluster = await startPrivateRedisCluster();
  }, 60_000);
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.quit().catch(() => {})));
    await cluster?.destroy();
  });

  it('the rate-limit store keeps each key exact, whatever slot it hashes to (hostile keys included)', async () => {
    const redis = client();
    const store = new RedisRateLimitStore({ redis, prefix: 'rl:' });
    const keys = ['a', 'b', 'tenant:42', 'with space', 'new\nline', '*', '{braces}', 'x'.repeat(10_000)];
    for (const key of keys) {
      let granted = 0;
      for (let i = 0; i < 8; i++) if ((await store.reserve(key, 1, 5, 60_000, 1_000 + i)) === 0) granted++;
      expect(granted).toBe(5);
    }
    // The keys spread over more than one master (so the test does exercise the routing).
    const slots = new Set(
      await Promise.all(keys.map((key) => redis.call('CLUSTER', 'KEYSLOT', store.redisKeys(key).log))),
    );
    expect(slots.size).toBeGreaterThan(1);
    await store.close();
  });

  it('a limiter in a tight loop takes units reserved ahead, and a shared pause holds', async () => {
    const store = new RedisRateLimitStore({ redis: client(), prefix: 'rl2:' });
    const limiter = new RateLimiter({ key: 'loop', limit: 10_000, intervalMs: 60_000, store });
    for (let i = 0; i < 100; i++) {
      const answer = await limiter.tryAcquireAsync();
      expect(answer.ok).toBe(true);
      answer.release();
    }
    expect(store.stats().prefetched).toBeGreaterThan(0);
    await store.pause('paused', 60_000);
    expect(await store.reserve('paused', 1, 10, 60_000, 5_000)).toBeGreaterThan(50_000);
    await limiter.close();
    await store.close();
  });

  it('the cache tier stores, tags, clears, and serves an L2 hit to a second cache', async () => {
    const tierA = new RedisCacheTier<string>({ redis: client(), prefix: 'cache:t' });
    const tierB = new RedisCacheTier<string>({ redis: client(), prefix: 'cache:t' });
    const a = new Cache<string>({ name: 'c', max: 100, ttlMs: 60_000, tier: tierA });
    const b = new Cache<string>({ name: 'c', max: 100, ttlMs: 60_000, tier: tierB });
    // (Cache.set writes the tier in the background: the tier's own set is awaited here.)
    await tierA.set('k1', 'v1', { ttlMs: 60_000, tags: ['t'] });
    await tierA.set('k2', 'v2', { ttlMs: 60_000, tags: [] });
    expect(await b.getOrSet('k1', () => 'loaded-by-b')).toBe('v1');
    await tierA.deleteTags(['t']);
    expect(await tierB.get('k1')).toBeUndefined();
    expect((await tierB.get('k2'))?.value).toBe('v2');
    // clear() reaches the node that holds the tier's slot. (A keyless SCAN sent through the Cluster client
    // lands on a random master: 10 rounds would all pass by luck 1.7 % of the time.)
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < 10; i++) await tierA.set(`many:${i}`, String(i), { ttlMs: 60_000, tags: [] });
      await tierA.clear();
      expect(await tierB.get('k2')).toBeUndefined();
      for (let i = 0; i < 10; i++) expect(await tierB.get(`many:${i}`)).toBeUndefined();
    }
    await a.close();
    await b.close();
    await tierA.close();
    await tierB.close();
  });

  it("the invalidation bus evicts the other instance's L1 (pub/sub across the cluster)", async () => {
    const make = () => {
      const tier = new RedisCacheTier<string>({ redis: client(), prefix: 'cache:bus' });
      const bus = new RedisInvalidationBus({ redis: client(), channel: 'hotpath-cluster-test' });
      return { tier, bus, cache: new Cache<string>({ name: 'b', max: 100, ttlMs: 60_000, tier, bus }) };
    };
    const a = make();
    const b = make();
    await Promise.all([a.bus.ready(), b.bus.ready()]); // subscribed before the first message
    // Written to the tier directly: a Cache.set would also announce itself, and that message may reach b
    // after b has read the value, evicting it again (as it should).
    await a.tier.set('k', 'v1', { ttlMs: 60_000, tags: [] });
    expect(await b.cache.getOrSet('k', () => 'unused')).toBe('v1');
    expect(b.cache.has('k')).toBe(true);
    await a.cache.delete('k');
    await eventually(() => expect(b.cache.has('k')).toBe(false));
    for (const side of [a, b]) {
      await side.cache.close();
      await side.bus.close();
      await side.tier.close();
    }
  });
});
