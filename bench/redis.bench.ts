/**
 * `npm run bench -- redis` (needs Redis at HOTPATH_REDIS_URL, default redis://127.0.0.1:6379): the shared
 * rate-limit store here, then the shared cache (bench/redis-cache.ts), each against its anchor on the same Redis.
 *
 * Limiter rows: reservations/s through hotpath's `RedisRateLimitStore` against rate-limiter-flexible's
 * `RateLimiterRedis.consume` on ioredis, same Redis, interleaved, limit never binding (every call is one
 * granted reservation): sequential (one caller) and 64 concurrent callers. Target: ours ≥ 1×.
 * Ours does more per call: a sliding-window log (rate-limiter-flexible counts a fixed window) and the
 * reservation moved to the task's real start (a second, batched script). A key reserved in a tight loop
 * reserves up to 32 units ahead per script (`prefetch`, see RedisRateLimitStore): the `prefetch: 0` rows
 * show the cost of one script per reservation.
 */
import { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { RateLimiter } from '../src/ratelimit/index.js';
import { RedisRateLimitStore } from '../src/redis/index.js';
import { compareRuns } from './harness.js';
import { benchRedisCache } from './redis-cache.js';

const REDIS_URL = process.env.HOTPATH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const PREFIX = `bench:rl:${process.pid}:`;
const SEQUENTIAL = 4000;
const CONCURRENT_TOTAL = 20_000;
const CALLERS = 64;

const redis = new Redis(REDIS_URL);
const store = new RedisRateLimitStore({ redis, prefix: PREFIX });
const hotpath = new RateLimiter({ key: 'bench', limit: 1e9, intervalMs: 1000, store });
const storeNoPrefetch = new RedisRateLimitStore({ redis, prefix: PREFIX, prefetch: 0 });
const noPrefetch = new RateLimiter({ key: 'bench-0', limit: 1e9, intervalMs: 1000, store: storeNoPrefetch });
const flexible = new RateLimiterRedis({
  storeClient: redis,
  keyPrefix: `${PREFIX}flex`,
  points: 1e9,
  duration: 1,
});

async function lanes(total: number, callers: number, call: () => Promise<unknown>): Promise<number> {
  let left = total;
  const lane = async (): Promise<void> => {
    while (left-- > 0) await call();
  };
  await Promise.all(Array.from({ length: callers }, lane));
  return total;
}

const tryAcquireOn = (limiter: RateLimiter) => async (): Promise<void> => {
  const answer = await limiter.tryAcquireAsync();
  if (!answer.ok) throw new Error('refused');
  answer.release();
};
const tryAcquire = tryAcquireOn(hotpath);
const acquire = async (): Promise<void> => {
  const release = await hotpath.acquire();
  release();
};
const consume = (): Promise<unknown> => flexible.consume('bench');

for (const [title, total, callers] of [
  ['Redis reservations/s, sequential (one caller)', SEQUENTIAL, 1],
  [`Redis reservations/s, ${CALLERS} concurrent callers`, CONCURRENT_TOTAL, CALLERS],
] as const) {
  await compareRuns(
    title,
    {
      'hotpath RedisRateLimitStore (tryAcquireAsync)': () => lanes(total, callers, tryAcquire),
      'hotpath RedisRateLimitStore (acquire)': () => lanes(total, callers, acquire),
      'hotpath RedisRateLimitStore, prefetch: 0 (tryAcquireAsync)': () =>
        lanes(total, callers, tryAcquireOn(noPrefetch)),
      'rate-limiter-flexible RateLimiterRedis.consume': () => lanes(total, callers, consume),
    },
    { rounds: 5 },
  );
}

await hotpath.close();
await noPrefetch.close();
await store.close();
await storeNoPrefetch.close();
const keys = await redis.keys(`${PREFIX}*`);
if (keys.length > 0) await redis.del(...keys);
await redis.quit();

await benchRedisCache();
