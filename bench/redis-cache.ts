/**
 * The cache rows of `npm run bench -- redis`: hotpath's Cache with a RedisCacheTier + RedisInvalidationBus
 * against the same Cache without them and against bentocache with its Redis L2 and Redis bus, on the same
 * Redis, interleaved, in one process.
 *
 * 1. getOrSet L1 hit with tier + bus vs the same cache without (the tier must cost nothing on a hit).
 * 2. L2 hit with L1 cold: 10,000 keys stored in Redis, L1 holding 1 entry, keys rotating (every read
 *    misses L1 and is answered by Redis) — batches of 100 concurrent reads, and one read at a time.
 * 3. Invalidation latency: instance A deletes a key that instance B holds in L1; time until B's bus
 *    handler has dropped it (both libraries emit/notify in the same handler that evicts).
 */
import { BentoCache, bentostore } from 'bentocache';
import { memoryDriver } from 'bentocache/drivers/memory';
import { redisBusDriver, redisDriver } from 'bentocache/drivers/redis';
import { Cache } from 'hotpath/cache';
import { RedisCacheTier, RedisInvalidationBus } from 'hotpath/redis';
import { Redis } from 'ioredis';
import { compareOps, percentiles } from './harness.js';

interface Quote {
  symbol: string;
  price: number;
  asOf: string;
}

const REDIS_URL = process.env.HOTPATH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const TTL_MS = 600_000;
/** An invalidation message not seen within this long counts as lost (the bench never waits forever). */
const DELIVERY_LIMIT_MS = 2_000;

/** Resolves true when `promise` settles within `ms`, false otherwise. */
async function withinMs(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

const quoteOf = (key: string): Quote => ({ symbol: key, price: key.length, asOf: '2026-01-01T00:00:00.000Z' });

export async function benchRedisCache(): Promise<void> {
  const runId = `${process.pid}_${Date.now()}`;
  const prefix = `hp_bench_${runId}`;
  const redis = new Redis(REDIS_URL);
  const bentoRedis = new Redis(REDIS_URL);
  const closers: Array<() => Promise<unknown>> = [];

  // ---- 1. L1 hit with and without tier + bus -------------------------------------------------------
  const KEYS = Array.from({ length: 100 }, (_, i) => `SYM${i}`);
  const plain = new Cache<Quote>({ name: 'plain', max: 1_000, ttlMs: TTL_MS });
  const bus = new RedisInvalidationBus({ redis, channel: `${prefix}:bus` });
  const tier = new RedisCacheTier<Quote>({ redis, prefix: `${prefix}:hit` });
  const shared = new Cache<Quote>({ name: 'shared', max: 1_000, ttlMs: TTL_MS, tier, bus });
  closers.push(
    () => plain.close(),
    () => shared.close(),
  );
  await bus.ready();
  for (const key of KEYS) {
    await plain.getOrSet(key, () => quoteOf(key));
    await shared.getOrSet(key, () => quoteOf(key));
  }
  let i = 0;
  const nextKey = (): string => KEYS[i++ % 100] as string;
  const loader = () => quoteOf('x');
  const BATCH = 100;
  const batchOf = (call: (key: string) => Promise<unknown>) => async () => {
    const pending: Promise<unknown>[] = new Array(BATCH);
    for (let n = 0; n < BATCH; n++) pending[n] = call(nextKey());
    await Promise.all(pending);
  };
  await compareOps(`redis cache: getOrSet L1 hit — with tier + bus vs without (ops = batches of ${BATCH})`, {
    'hotpath Cache + RedisCacheTier + bus': batchOf((key) => shared.getOrSet(key, loader)),
    'hotpath Cache (no tier, no bus)': batchOf((key) => plain.getOrSet(key, loader)),
  });

  // ---- 2. L2 hit, L1 cold -------------------------------------------------------------------------
  const COLD = 10_000;
  const coldKeys = Array.from({ length: COLD }, (_, n) => `cold:${n}`);
  const l2Tier = new RedisCacheTier<Quote>({ redis, prefix: `${prefix}:l2` });
  const l2 = new Cache<Quote>({ name: 'l2', max: 1, ttlMs: TTL_MS, tier: l2Tier });
  const bento = new BentoCache({
    default: 'l2',
    prefix: `${prefix}:bento`,
    stores: {
      l2: bentostore()
        .useL1Layer(memoryDriver({ maxItems: 1, serialize: false }))
        .useL2Layer(redisDriver({ connection: bentoRedis })),
    },
  });
  closers.push(
    () => l2.close(),
    () => bento.disconnectAll(),
  );
  for (let n = 0; n < COLD; n += 500) {
    await Promise.all(
      coldKeys.slice(n, n + 500).map(async (key) => {
        await l2Tier.set(key, quoteOf(key), { ttlMs: TTL_MS, tags: [] });
        await bento.set({ key, value: quoteOf(key), ttl: TTL_MS });
      }),
    );
  }
  let c = 0;
  const nextCold = (): string => coldKeys[c++ % COLD] as string;
  const neverCalled = (): Quote => {
    throw new Error('L2 miss: the bench expects every key in Redis');
  };
  const coldBatch = (call: (key: string) => Promise<unknown>) => async () => {
    const pending: Promise<unknown>[] = new Array(BATCH);
    for (let n = 0; n < BATCH; n++) pending[n] = call(nextCold());
    await Promise.all(pending);
  };
  await compareOps(`redis cache: L2 hit, L1 cold — ${BATCH} concurrent reads (ops = batches)`, {
    'hotpath Cache + RedisCacheTier': coldBatch((key) => l2.getOrSet(key, neverCalled)),
    'bentocache (memory L1 + redis L2)': coldBatch((key) => bento.getOrSet({ key, factory: neverCalled, ttl: TTL_MS })),
  });
  // The floor: one round trip. A bare ioredis GET of the same stored value, parsed, on the tier's connection.
  // (The stored envelope is `expiresAt|tags\nvalue`; the floor parses the value part.)
  const rawGet = async (): Promise<unknown> => {
    const envelope = (await redis.get(`${l2Tier.base}:v:${nextCold()}`)) ?? '|\nnull';
    return JSON.parse(envelope.slice(envelope.indexOf('\n') + 1));
  };
  await compareOps('redis cache: L2 hit, L1 cold — one read at a time', {
    'hotpath Cache + RedisCacheTier': () => l2.getOrSet(nextCold(), neverCalled),
    'bentocache (memory L1 + redis L2)': () => bento.getOrSet({ key: nextCold(), factory: neverCalled, ttl: TTL_MS }),
    'floor: ioredis GET + JSON.parse (no cache)': rawGet,
  });
  if (l2.stats().loads > 0) throw new Error('hotpath loaded: the L2 bench missed Redis');

  // ---- 3. Invalidation latency ----------------------------------------------------------------------
  const ROUNDS = 300;
  const lost = { ours: 0, bentocache: 0 };
  const bentoConnections: Redis[] = [];
  const oursLatency = await (async () => {
    const busA = new RedisInvalidationBus({ redis: REDIS_URL, channel: `${prefix}:inv` });
    const busB = new RedisInvalidationBus({ redis: REDIS_URL, channel: `${prefix}:inv` });
    const tierA = new RedisCacheTier<Quote>({ redis, prefix: `${prefix}:inv` });
    const tierB = new RedisCacheTier<Quote>({ redis, prefix: `${prefix}:inv` });
    const a = new Cache<Quote>({ name: 'inv', max: 1_000, ttlMs: TTL_MS, tier: tierA, bus: busA });
    const b = new Cache<Quote>({ name: 'inv', max: 1_000, ttlMs: TTL_MS, tier: tierB, bus: busB });
    await Promise.all([busA.ready(), busB.ready()]);
    let onDelivered: (() => void) | undefined;
    // Subscribed after the cache: called right after b has evicted, in the same message handler.
    busB.subscribe('inv', {
      onMessage: (message) => {
        if (message.type === 'delete') onDelivered?.();
      },
      onReset: () => {},
    });
    const samples: number[] = [];
    for (let n = 0; n < ROUNDS; n++) {
      const key = `inv:${n}`;
      await a.getOrSet(key, () => quoteOf(key));
      await b.getOrSet(key, () => quoteOf(key));
      if (!b.has(key)) throw new Error('bench setup: b should hold the key');
      const delivered = new Promise<void>((resolve) => {
        onDelivered = resolve;
      });
      const start = performance.now();
      a.delete(key);
      if (!(await withinMs(delivered, DELIVERY_LIMIT_MS))) {
        lost.ours++;
        continue;
      }
      samples.push(performance.now() - start);
      if (b.has(key)) throw new Error('bench: b still holds the key after the message');
    }
    await a.close();
    await b.close();
    await busA.close();
    await busB.close();
    return samples;
  })();
  const bentoLatency = await (async () => {
    const make = () => {
      const l2 = new Redis(REDIS_URL);
      const busConnection = new Redis(REDIS_URL);
      bentoConnections.push(l2, busConnection);
      return new BentoCache({
        default: 'c',
        prefix: `${prefix}:bentoinv`,
        stores: {
          c: bentostore()
            .useL1Layer(memoryDriver({ maxItems: 1_000, serialize: false }))
            .useL2Layer(redisDriver({ connection: l2 }))
            .useBus(redisBusDriver({ connection: busConnection })),
        },
      });
    };
    const a = make();
    const b = make();
    await new Promise((resolve) => setTimeout(resolve, 200)); // let both buses subscribe
    let onDelivered: (() => void) | undefined;
    b.on('bus:message:received', () => onDelivered?.());
    const samples: number[] = [];
    for (let n = 0; n < ROUNDS; n++) {
      const key = `inv:${n}`;
      await a.getOrSet({ key, factory: () => quoteOf(key), ttl: TTL_MS });
      await b.getOrSet({ key, factory: () => quoteOf(key), ttl: TTL_MS });
      const delivered = new Promise<void>((resolve) => {
        onDelivered = resolve;
      });
      const start = performance.now();
      await a.delete({ key });
      if (!(await withinMs(delivered, DELIVERY_LIMIT_MS))) {
        lost.bentocache++;
        continue;
      }
      samples.push(performance.now() - start);
    }
    await a.disconnectAll();
    await b.disconnectAll();
    return samples;
  })();
  console.log(`\n## redis cache: invalidation latency — delete on A until B's L1 dropped the key (${ROUNDS} rounds)`);
  console.log('| name | p50 ms | p95 ms | p99 ms |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const [name, samples] of [
    ['hotpath RedisInvalidationBus (ours)', oursLatency],
    ['bentocache redis bus', bentoLatency],
  ] as const) {
    const p = percentiles(samples);
    console.log(`| ${name} | ${p.p50.toFixed(3)} | ${p.p95.toFixed(3)} | ${p.p99.toFixed(3)} |`);
  }
  if (lost.ours + lost.bentocache > 0) {
    console.log(`messages not seen within ${DELIVERY_LIMIT_MS} ms: ours ${lost.ours}, bentocache ${lost.bentocache}`);
  }
  for (const connection of bentoConnections) connection.disconnect();

  for (const close of closers) await close();
  await bus.close();
  await tier.close();
  await l2Tier.close();
  for (const pattern of [`{${prefix}*`, `${prefix}*`]) {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
  }
  await redis.quit();
  bentoRedis.disconnect();
}
