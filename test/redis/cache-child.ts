/**
 * One process of cache-processes.test.ts: a Cache with a RedisCacheTier and a RedisInvalidationBus,
 * driven by the parent over IPC. Timestamps are `performance.timeOrigin + performance.now()` (ms,
 * comparable across processes on one machine).
 */
import { Cache } from 'hotpath/cache';
import { RedisCacheTier, RedisInvalidationBus } from 'hotpath/redis';

const env = (name: string): string => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};
const tier = new RedisCacheTier<string>({
  redis: env('REDIS_URL'),
  prefix: env('PREFIX'),
  leaseMs: Number(env('LEASE_MS')),
});
const bus = new RedisInvalidationBus({ redis: env('REDIS_URL'), channel: env('CHANNEL') });
const cache = new Cache<string>({ name: 'shared', max: 10_000, ttlMs: 60_000, tier, bus });
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
let loaderCalls = 0;

type Command =
  | { id: number; op: 'getOrSet'; key: string; value: string; concurrency?: number; loaderMs?: number }
  | { id: number; op: 'hold'; key: string }
  | { id: number; op: 'watch'; key: string }
  | { id: number; op: 'delete'; key: string }
  | { id: number; op: 'stats' };

const send = (message: object) => process.send?.(message);

process.on('message', (command: Command) => {
  void handle(command).then(
    (reply) => send({ id: command.id, ...reply }),
    (error: unknown) => send({ id: command.id, error: String(error) }),
  );
});

async function handle(command: Command): Promise<object> {
  switch (command.op) {
    case 'getOrSet': {
      const loader = async () => {
        loaderCalls++;
        if (command.loaderMs) await sleep(command.loaderMs);
        return `${command.value}@${process.pid}`;
      };
      const calls = Array.from({ length: command.concurrency ?? 1 }, () => cache.getOrSet(command.key, loader));
      const results = await Promise.all(calls);
      return { results: [...new Set(results)], loaderCalls };
    }
    case 'hold': {
      void cache.getOrSet(command.key, async () => {
        send({ event: 'loading', key: command.key });
        return new Promise<string>(() => {});
      });
      return {};
    }
    case 'watch': {
      if (!cache.has(command.key)) return { evictedAt: 0, missing: true };
      // Reply at once that the watch is armed; the eviction time follows as an event.
      void (async () => {
        while (cache.has(command.key)) await sleep(1);
        send({ event: 'evicted', key: command.key, at: now() });
      })();
      return { armed: true };
    }
    case 'delete': {
      const at = now();
      cache.delete(command.key);
      return { at };
    }
    case 'stats':
      return { cache: cache.stats(), tier: tier.stats(), loaderCalls };
  }
}

await bus.ready();
send({ event: 'ready' });
