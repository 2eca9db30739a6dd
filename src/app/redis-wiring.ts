/**
 * What `createHotpath({ redisUrl })` builds on Redis: ONE command connection and ONE subscriber
 * connection for the whole app, a rate-limit store every named limiter shares its limit through, an
 * invalidation bus and a cache tier per named cache; plus the probe behind `health().redis` and the
 * Redis lines of `/metrics`.
 * @module
 */
import type { CacheStats } from '../cache/index.js';
import type { Logger } from '../core/logger.js';
import type { MetricFamily } from '../core/prometheus-text.js';
import type { LatencyRecorder } from '../core/recorder.js';
import { RedisCacheTier, RedisConnection, RedisInvalidationBus, RedisRateLimitStore } from '../redis/index.js';

/** `health().redis`: a PING through the command connection. */
export interface RedisHealth {
  /** The PING was answered. */
  ok: boolean;
  /** Round trip of the PING, in ms. */
  latencyMs: number;
  /** Times the command or subscriber connection came back after an outage. */
  reconnects: number;
  /** Why the PING failed, when it did. */
  error?: string;
}

/** Profiler metric of the Redis round trip (every health/metrics probe records one sample). */
export const REDIS_ROUNDTRIP_METRIC = 'redis.roundtrip';
/** How long `createHotpath` waits for the bus subscription before going on without it. */
const SUBSCRIBE_WAIT_MS = 2_000;

/** The Redis side of an app: its two connections and the shared parts built on them. */
export class AppRedis {
  /** The command connection (limits, cache tiers, bus publishing). */
  readonly command: RedisConnection;
  /** The subscriber connection (the bus). */
  readonly subscriber: RedisConnection;
  /** The invalidation bus of every shared cache. */
  readonly bus: RedisInvalidationBus;
  /** The store every named limiter shares its window through (key = the limiter's name). */
  readonly store: RedisRateLimitStore;
  readonly #tiers = new Map<string, RedisCacheTier<unknown>>();
  readonly #recorder: LatencyRecorder;

  /** @throws ConfigError for a bad URL, or when ioredis is not installed. */
  constructor(url: string, logger: Logger, recorder: LatencyRecorder) {
    this.#recorder = recorder;
    this.command = new RedisConnection({ redis: url, scope: 'hotpath-redis' });
    this.subscriber = this.command.duplicate();
    this.bus = new RedisInvalidationBus({ redis: this.command.client, subscriber: this.subscriber.client, logger });
    this.store = new RedisRateLimitStore({ redis: this.command.client, logger });
  }

  /** Waits (bounded) for the bus subscription, so changes made right after start reach this process. */
  async ready(logger: Logger): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), SUBSCRIBE_WAIT_MS);
      timer.unref();
    });
    const outcome = await Promise.race([this.bus.ready().then(() => 'ready' as const), timedOut]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      logger.warn({ waitedMs: SUBSCRIBE_WAIT_MS }, 'redis: cache bus not subscribed yet; starting without it');
    }
  }

  /** The tier of the cache named `name` (its keys under `hotpath:cache:<name>`). */
  tierFor(name: string): RedisCacheTier<unknown> {
    // Braces would form a second hash tag: encode them, every other character is safe in a key.
    const prefix = `hotpath:cache:${name.replace(/[{}%]/g, encodeURIComponent)}`;
    const tier = new RedisCacheTier<unknown>({ redis: this.command.client, prefix });
    this.#tiers.set(name, tier);
    return tier;
  }

  /** PINGs Redis (recording the round trip) and reports reachability. Never throws. */
  async probe(): Promise<RedisHealth> {
    const start = performance.now();
    const reconnects = this.command.reconnects + this.subscriber.reconnects;
    try {
      await this.command.command('PING');
      const latencyMs = performance.now() - start;
      this.#recorder.record(REDIS_ROUNDTRIP_METRIC, latencyMs, false);
      return { ok: true, latencyMs: Math.round(latencyMs * 1000) / 1000, reconnects };
    } catch (error) {
      const latencyMs = performance.now() - start;
      this.#recorder.record(REDIS_ROUNDTRIP_METRIC, latencyMs, true);
      return {
        ok: false,
        latencyMs: Math.round(latencyMs),
        reconnects,
        error: String((error as Error)?.message ?? error),
      };
    }
  }

  /**
   * Metric families (written by the app's one exposition writer): `hotpath_redis_up`, reconnects, fallbacks
   * (limiter reservations answered locally, cache reads and writes that fell back to L1 or the loader) and bus
   * traffic.
   */
  async metricFamilies(caches: Record<string, CacheStats>): Promise<MetricFamily[]> {
    const health = await this.probe();
    const store = this.store.stats();
    const bus = this.bus.stats();
    let cacheFallbacks = 0;
    for (const name of this.#tiers.keys()) cacheFallbacks += caches[name]?.tierErrors ?? 0;
    const cacheErrors = [...this.#tiers.values()].reduce((sum, tier) => sum + tier.stats().errors, 0);
    return [
      {
        name: 'hotpath_redis_up',
        type: 'gauge',
        help: '1 when Redis answered the last probe.',
        samples: [{ value: health.ok ? 1 : 0 }],
      },
      {
        name: 'hotpath_redis_reconnects_total',
        type: 'counter',
        help: 'Times a Redis connection came back after an outage.',
        samples: [{ value: health.reconnects }],
      },
      {
        name: 'hotpath_redis_fallbacks_total',
        type: 'counter',
        help: 'Operations answered without Redis while it was unreachable.',
        samples: [
          { labels: [['part', 'ratelimit']], value: store.fallbacks },
          { labels: [['part', 'cache']], value: cacheFallbacks },
        ],
      },
      {
        name: 'hotpath_redis_errors_total',
        type: 'counter',
        help: 'Redis commands that failed or timed out.',
        samples: [
          { labels: [['part', 'ratelimit']], value: store.errors },
          { labels: [['part', 'cache']], value: cacheErrors },
        ],
      },
      {
        name: 'hotpath_redis_bus_messages_total',
        type: 'counter',
        help: 'Cache bus messages sent and received by this process.',
        samples: [
          { labels: [['direction', 'published']], value: bus.published },
          { labels: [['direction', 'received']], value: bus.received },
        ],
      },
    ];
  }

  /** Closes the bus, the store, the tiers and then both connections. Call after the caches and limiters. */
  async close(): Promise<void> {
    await this.bus.close();
    await this.store.close();
    await Promise.all([...this.#tiers.values()].map((tier) => tier.close()));
    await Promise.all([this.subscriber.close(), this.command.close()]);
  }
}
