/**
 * RedisCacheTier and RedisInvalidationBus against the real Redis, in one process: two `Cache`
 * instances with their own bus stand for two processes (each bus has its own sender id). The
 * multi-process runs are in cache-processes.test.ts.
 */
import { Cache } from 'hotpath/cache';
import { isHotpathError } from 'hotpath/core';
import { RedisCacheTier, RedisInvalidationBus } from 'hotpath/redis';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { describeCacheTier } from '../cache/cache-tier-conformance.js';
import { deferred } from '../helpers/async.js';
import { needsRedis, REDIS_URL, uniqueName } from '../helpers/services.js';

const hasRedis = await needsRedis();

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

describe.runIf(hasRedis)('RedisCacheTier', () => {
  const root = uniqueName('hp_cache_tier');
  const admin = new Redis(REDIS_URL);
  const closers: Array<() => Promise<unknown>> = [];
  let counter = 0;
  const prefix = () => `${root}:${++counter}`;

  afterAll(async () => {
    for (const close of closers.reverse()) await close();
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', `{${root}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await admin.unlink(...keys);
    } while (cursor !== '0');
    await admin.quit();
  });

  function tier<V = string>(options: Partial<ConstructorParameters<typeof RedisCacheTier<V>>[0]> = {}) {
    const created = new RedisCacheTier<V>({ redis: REDIS_URL, prefix: prefix(), ...options });
    closers.push(() => created.close());
    return created;
  }

  /** One "process": a cache with its own bus, on the tier's prefix. */
  function instance<V = string>(
    sharedPrefix: string,
    options: { name?: string; ttlMs?: number; loadTimeoutMs?: number; leaseMs?: number } = {},
  ) {
    const ownTier = new RedisCacheTier<V>({
      redis: REDIS_URL,
      prefix: sharedPrefix,
      ...(options.leaseMs === undefined ? {} : { leaseMs: options.leaseMs }),
    });
    const bus = new RedisInvalidationBus({ redis: REDIS_URL, channel: `${root}:bus` });
    const cache = new Cache<V>({
      name: options.name ?? 'c',
      max: 1_000,
      ttlMs: options.ttlMs ?? 60_000,
      tier: ownTier,
      bus,
      ...(options.loadTimeoutMs === undefined ? {} : { loadTimeoutMs: options.loadTimeoutMs }),
    });
    closers.push(async () => {
      await cache.close();
      await bus.close();
      await ownTier.close();
    });
    return { cache, bus, tier: ownTier };
  }

  async function pair<V = string>(options: Parameters<typeof instance>[1] = {}) {
    const shared = prefix();
    const a = instance<V>(shared, options);
    const b = instance<V>(shared, options);
    await Promise.all([a.bus.ready(), b.bus.ready()]);
    return { a, b, shared };
  }

  describeCacheTier('RedisCacheTier', async () => {
    const created = new RedisCacheTier<string>({ redis: REDIS_URL, prefix: prefix() });
    return { tier: created, close: () => created.close(), advance: (ms) => sleep(ms) };
  });

  it('stores hostile keys and tags as plain data (spaces, newlines, *, braces, quotes, 10 KB)', async () => {
    const t = tier();
    const hostile = [
      'a b',
      'line\nbreak',
      '*',
      '{other}slot',
      '}{',
      "'); redis.call('FLUSHALL') --",
      '"]] .. ',
      `x${'y'.repeat(10_240)}`,
      '',
    ];
    for (const [i, key] of hostile.entries()) {
      await t.set(key, `v${i}`, { ttlMs: 60_000, tags: [key, `tag ${i}*`] });
    }
    for (const [i, key] of hostile.entries()) expect((await t.get(key))?.value).toBe(`v${i}`);
    await t.delete('*');
    expect(await t.get('*')).toBeUndefined();
    expect((await t.get('a b'))?.value).toBe('v0'); // '*' is a key, not a pattern
    await t.deleteTags(['line\nbreak']);
    expect(await t.get('line\nbreak')).toBeUndefined();
    expect((await t.get('}{'))?.value).toBe('v4');
    const found = await t.get(hostile[5] as string);
    expect(found?.tags).toEqual([hostile[5], 'tag 5*']);
    // Every key of the tier sits in one slot: its base's hash tag, whatever the user's key holds.
    const keys = await admin.keys(`${t.base.replace(/[*?[\]\\]/g, '\\$&')}*`);
    expect(keys.length).toBeGreaterThan(5);
    for (const key of keys) expect(key.startsWith(t.base)).toBe(true);
  });

  it('clear() removes only its own prefix, even when the prefix holds glob characters', async () => {
    const base = prefix();
    const star = tier({ prefix: `${base}:*` });
    const other = tier({ prefix: `${base}:x` });
    await star.set('k', 'star', { ttlMs: 60_000, tags: ['t'] });
    await other.set('k', 'other', { ttlMs: 60_000, tags: ['t'] });
    await star.clear();
    expect(await star.get('k')).toBeUndefined();
    expect((await other.get('k'))?.value).toBe('other');
    expect(await admin.exists(`{${base}:x}:t:t`)).toBe(1);
  });

  it('skips values above maxValueBytes, counts them, and drops the older value of that key', async () => {
    const t = tier({ maxValueBytes: 1_000 });
    await t.set('k', 'small', { ttlMs: 60_000, tags: [] });
    await t.set('k', 'é'.repeat(600), { ttlMs: 60_000, tags: [] }); // 1,200 UTF-8 bytes
    expect(await t.get('k')).toBeUndefined();
    expect(t.stats().skippedTooLarge).toBe(1);
  });

  it('keeps tag sets exactly as long as their longest-lived member', async () => {
    const t = tier();
    await t.set('short', 's', { ttlMs: 5_000, tags: ['t'] });
    const tagKey = `${t.base}:t:t`;
    const first = await admin.pttl(tagKey);
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThanOrEqual(5_000);
    await t.set('long', 'l', { ttlMs: 50_000, tags: ['t'] });
    expect(await admin.pttl(tagKey)).toBeGreaterThan(5_000);
    await t.set('forever', 'f', { ttlMs: Number.POSITIVE_INFINITY, tags: ['t'] });
    expect(await admin.pttl(tagKey)).toBe(-1);
    // Deleting or re-tagging a key takes it out of its old tag sets.
    await t.set('long', 'l2', { ttlMs: 50_000, tags: ['u'] });
    await t.delete('forever');
    expect((await admin.smembers(tagKey)).sort()).toEqual(['short']);
  });

  it('deleteTags removes every tagged key in one script and empties the other tags of them', async () => {
    const t = tier();
    for (let i = 0; i < 200; i++) {
      await t.set(`k${i}`, String(i), { ttlMs: 60_000, tags: i % 2 === 0 ? ['even', 'all'] : ['all'] });
    }
    await t.deleteTags(['even']);
    expect(await t.get('k0')).toBeUndefined();
    expect((await t.get('k1'))?.value).toBe('1');
    expect(await admin.scard(`${t.base}:t:all`)).toBe(100);
    expect(await admin.exists(`${t.base}:t:even`)).toBe(0);
  });

  it('hands a cold key to one loader across instances; the other is woken by the bus', async () => {
    const { a, b } = await pair();
    let calls = 0;
    const gate = deferred<void>();
    const loader = async () => {
      calls++;
      await gate.promise;
      return 'v';
    };
    const fromA = a.cache.getOrSet('cold', loader);
    await eventually(() => a.tier.stats().leases === 1);
    const fromB = b.cache.getOrSet('cold', loader);
    await eventually(() => b.tier.stats().busy >= 1);
    gate.resolve();
    expect(await Promise.all([fromA, fromB])).toEqual(['v', 'v']);
    expect(calls).toBe(1);
    expect(b.cache.stats().tierHits).toBe(1);
  });

  it('serves an L2 hit in an instance that never loaded', async () => {
    const { a, b } = await pair();
    await a.cache.getOrSet('k', () => 'loaded-by-a');
    await eventually(async () => (await a.tier.get('k')) !== undefined);
    expect(await b.cache.getOrSet('k', () => 'loaded-by-b')).toBe('loaded-by-a');
  });

  it('evicts the other instance L1 on set, delete, invalidateTags and clear — and skips its own messages', async () => {
    const { a, b } = await pair();
    await a.cache.getOrSet('k', () => 'v1', { tags: ['t'] });
    await eventually(async () => (await b.cache.getOrSet('k', () => 'unused')) === 'v1');
    expect(b.cache.has('k')).toBe(true);

    a.cache.set('k', 'v2', { tags: ['t'] });
    await eventually(() => !b.cache.has('k'));
    expect(await b.cache.getOrSet('k', () => 'unused')).toBe('v2');

    await a.cache.invalidateTags(['t']);
    await eventually(() => !b.cache.has('k'));
    expect(await b.cache.getOrSet('k', () => 'v3')).toBe('v3');

    a.cache.delete('k');
    await eventually(() => !b.cache.has('k'));

    b.cache.set('j', 'J');
    a.cache.clear();
    await eventually(() => !b.cache.has('j'));
    expect(a.cache.stats().busMessages).toBe(b.bus.stats().published);
  });

  it('scopes clear() by cache name: clearing one cache leaves another on the same bus alone', async () => {
    const shared = prefix();
    const quotes = instance(`${shared}:q`, { name: 'quotes' });
    const usersHere = instance(`${shared}:u`, { name: 'users' });
    const quotesThere = instance(`${shared}:q`, { name: 'quotes' });
    await Promise.all([quotes.bus.ready(), usersHere.bus.ready(), quotesThere.bus.ready()]);
    usersHere.cache.set('u', 'user');
    await quotesThere.cache.getOrSet('q', () => 'quote');
    quotes.cache.clear();
    await eventually(() => !quotesThere.cache.has('q'));
    await sleep(20);
    expect(usersHere.cache.has('u')).toBe(true);
  });

  for (const invalidation of ['delete', 'set', 'invalidateTags', 'clear'] as const) {
    it(`never stores a load that began before a ${invalidation} elsewhere (no stale resurrection)`, async () => {
      const { a, b, shared } = await pair();
      const gate = deferred<void>();
      const loading = a.cache.getOrSet(
        'k',
        async () => {
          await gate.promise;
          return 'old';
        },
        { tags: ['t'] },
      );
      await eventually(() => a.tier.stats().leases === 1);
      // The data changes at the source, and another instance says so while A's loader still runs.
      if (invalidation === 'delete') b.cache.delete('k');
      else if (invalidation === 'set') b.cache.set('k', 'new');
      else if (invalidation === 'invalidateTags') await b.cache.invalidateTags(['t']);
      else b.cache.clear();
      await eventually(() => a.cache.stats().busMessages >= 1);
      gate.resolve();
      expect(await loading).toBe('old'); // its callers asked before the change
      await eventually(() => a.cache.stats().inflight === 0);
      await sleep(20);
      const reader = instance(shared);
      const expected = invalidation === 'set' ? 'new' : 'fresh';
      expect(await reader.cache.getOrSet('k', () => 'fresh')).toBe(expected);
      expect(a.cache.get('k')).not.toBe('old');
    });
  }

  for (const invalidation of ['delete', 'set', 'invalidateTags', 'clear'] as const) {
    it(`refuses a load begun before a ${invalidation} by its stamp alone (the bus message came too late)`, async () => {
      const shared = prefix();
      // No bus on A: only the tier's stamp can tell that its load is stale.
      const tierA = tier({ prefix: shared });
      const cacheA = new Cache<string>({ name: 'c', max: 10, ttlMs: 60_000, tier: tierA });
      closers.push(() => cacheA.close());
      const b = instance(shared);
      const gate = deferred<void>();
      const loading = cacheA.getOrSet(
        'k',
        async () => {
          await gate.promise;
          return 'old';
        },
        { tags: ['t'] },
      );
      await eventually(() => tierA.stats().leases === 1);
      if (invalidation === 'delete') b.cache.delete('k');
      else if (invalidation === 'set') b.cache.set('k', 'new');
      else if (invalidation === 'invalidateTags') await b.cache.invalidateTags(['t']);
      else b.cache.clear();
      await eventually(() => b.bus.stats().published === 1); // the tier write is done before the message
      gate.resolve();
      expect(await loading).toBe('old');
      await eventually(() => cacheA.stats().staleLoadsRefused === 1);
      expect((await b.tier.get('k'))?.value).toBe(invalidation === 'set' ? 'new' : undefined);
      expect(cacheA.get('k')).toBeUndefined(); // L1 dropped it too
    });
  }

  it('lets waiters give up by signal and by loadTimeoutMs while another instance loads', async () => {
    const { a, b } = await pair({ loadTimeoutMs: 300 });
    const never = deferred<string>();
    const holding = a.cache.getOrSet('slow', () => never.promise).catch((error: unknown) => error);
    await eventually(() => a.tier.stats().leases === 1);
    const controller = new AbortController();
    const aborted = b.cache.getOrSet('slow', () => 'b', { signal: controller.signal });
    controller.abort(new Error('caller gone'));
    await expect(aborted).rejects.toThrow('caller gone');
    await expect(b.cache.getOrSet('slow', () => 'b')).rejects.toSatisfy((e) =>
      isHotpathError(e, 'ERR_HOTPATH_TIMEOUT'),
    );
    expect(isHotpathError(await holding, 'ERR_HOTPATH_TIMEOUT')).toBe(true);
  });

  it('renews the lease while a slow load runs, so no second process loads meanwhile', async () => {
    const { a, b } = await pair({ leaseMs: 150 });
    const gate = deferred<void>();
    let calls = 0;
    const slow = async () => {
      calls++;
      await gate.promise;
      return 'slow';
    };
    const fromA = a.cache.getOrSet('slow-load', slow);
    await eventually(() => a.tier.stats().leases === 1);
    const fromB = b.cache.getOrSet('slow-load', slow);
    await sleep(600); // four lease lengths
    expect(calls).toBe(1);
    gate.resolve();
    expect(await Promise.all([fromA, fromB])).toEqual(['slow', 'slow']);
    expect(calls).toBe(1);
  });

  it('takes over after the lease expires when the holder never fills', async () => {
    const shared = prefix();
    const ghost = tier({ prefix: shared, leaseMs: 300 });
    const taken = await ghost.lookup('k'); // a process that took the lease …
    expect(taken.kind).toBe('lease');
    await ghost.close(); // … and died: nothing renews its lease any more
    const b = instance(shared, { leaseMs: 300 });
    let calls = 0;
    expect(
      await b.cache.getOrSet('k', () => {
        calls++;
        return 'b-loaded';
      }),
    ).toBe('b-loaded');
    expect(calls).toBe(1);
    expect(b.tier.stats().busy).toBeGreaterThanOrEqual(1);
  });

  it('clears L1 when the bus subscriber reconnects (messages may have been missed)', async () => {
    const shared = prefix();
    const connectionName = uniqueName('hp_sub');
    const subscriber = new Redis(REDIS_URL, { connectionName });
    const bus = new RedisInvalidationBus({ redis: REDIS_URL, subscriber, channel: `${root}:bus` });
    const ownTier = tier({ prefix: shared });
    const cache = new Cache<string>({ name: 'c', max: 10, ttlMs: 60_000, tier: ownTier, bus });
    closers.push(async () => {
      await cache.close();
      await bus.close();
      subscriber.disconnect();
    });
    await bus.ready();
    cache.set('k', 'v');
    expect(cache.has('k')).toBe(true);
    const clients = (await admin.call('CLIENT', 'LIST')) as string;
    const line = clients.split('\n').find((l) => l.includes(`name=${connectionName}`));
    const id = /\bid=(\d+)/.exec(line ?? '')?.[1];
    expect(id).toBeDefined();
    await admin.call('CLIENT', 'KILL', 'ID', id as string);
    await eventually(() => bus.stats().reconnects === 1);
    expect(cache.has('k')).toBe(false);
  });
});
