/**
 * Three processes (node:cluster) share one "20 per 200 ms" limit through Redis, as a service with several
 * workers shares a provider's quota. Each worker runs 20 tasks; the primary merges their start times and
 * checks that no 200 ms window holds more than 20 of them.
 *
 * Run: HOTPATH_REDIS_URL=redis://127.0.0.1:6379 node --import tsx examples/ratelimit/shared-redis.ts
 */
import cluster from 'node:cluster';
import { RateLimiter } from 'hotpath/ratelimit';
import { RedisRateLimitStore } from 'hotpath/redis';

const REDIS_URL = process.env.HOTPATH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const WORKERS = 3;

if (cluster.isPrimary) {
  const key = `example-${process.pid}`;
  const starts: number[] = [];
  await Promise.all(
    Array.from({ length: WORKERS }, () => {
      const worker = cluster.fork({ LIMITER_KEY: key });
      return new Promise<void>((resolve) => {
        worker.on('message', (message: { starts: number[] }) => starts.push(...message.starts));
        worker.on('exit', () => resolve());
      });
    }),
  );
  starts.sort((a, b) => a - b);
  let most = 0;
  for (let head = 0, tail = 0; head < starts.length; head++) {
    while ((starts[tail] as number) <= (starts[head] as number) - 200) tail++;
    most = Math.max(most, head - tail + 1);
  }
  console.log(`${WORKERS} processes started ${starts.length} tasks`);
  console.log(`most starts in any 200 ms window, all processes together: ${most} (limit 20)`);
} else {
  const store = new RedisRateLimitStore({ redis: REDIS_URL, prefix: 'hotpath-example:' });
  const limiter = new RateLimiter({ key: process.env.LIMITER_KEY as string, limit: 20, intervalMs: 200, store });
  const starts: number[] = [];
  await Promise.all(Array.from({ length: 20 }, () => limiter.schedule(() => starts.push(Date.now()))));
  process.send?.({ starts });
  await limiter.close();
  await store.close();
  process.exit(0);
}
