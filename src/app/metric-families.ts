/**
 * The app's metric families (caches, rate limiters, storage pool, queue, process memory) as plain data, written
 * after the profiler's by the one exposition writer (`Profiler.toPrometheus({ families })`). Totals since start
 * are `counter`s named `…_total`; levels are `gauge`s. `docs/grafana-dashboard.json` reads exactly these names.
 * @module
 */
import type { CacheRegistry, CacheStats } from '../cache/index.js';
import type { MetricFamily, MetricSample } from '../profiling/index.js';
import type { QueueManagerStats } from '../queue/index.js';
import type { RateLimiter, RateLimiterStats } from '../ratelimit/index.js';
import type { StorageStats } from '../storage/index.js';
import type { RequestCounters } from './request-profiling.js';

type Kind = 'counter' | 'gauge';

/** Per-cache families: metric name, type, help, and how to read it from `CacheStats`. */
const CACHE_FAMILIES: ReadonlyArray<readonly [string, Kind, string, (stats: CacheStats) => number]> = [
  ['hotpath_cache_hits_total', 'counter', 'Calls answered with a fresh value.', (s) => s.hits],
  ['hotpath_cache_stale_hits_total', 'counter', 'Calls answered with an expired (stale) value.', (s) => s.staleHits],
  ['hotpath_cache_misses_total', 'counter', 'Calls that found no usable value.', (s) => s.misses],
  ['hotpath_cache_loads_total', 'counter', 'Loader calls, background refreshes included.', (s) => s.loads],
  ['hotpath_cache_load_errors_total', 'counter', 'Loader calls that failed or timed out.', (s) => s.loadErrors],
  ['hotpath_cache_evictions_total', 'counter', 'Entries evicted by LRU or size pressure.', (s) => s.evictions],
  ['hotpath_cache_expirations_total', 'counter', 'Entries dropped because they expired.', (s) => s.expirations],
  ['hotpath_cache_entries', 'gauge', 'Entries held now.', (s) => s.size],
  ['hotpath_cache_hit_ratio', 'gauge', 'Hits (fresh and stale) over lookups since start.', (s) => s.hitRate],
];

/** Per-limiter families read from `RateLimiterStats`. */
const LIMITER_FAMILIES: ReadonlyArray<readonly [string, Kind, string, (stats: RateLimiterStats) => number]> = [
  ['hotpath_ratelimit_running', 'gauge', 'Tasks running under the limiter.', (s) => s.running],
  ['hotpath_ratelimit_queued', 'gauge', 'Tasks waiting in the limiter.', (s) => s.queued],
  [
    'hotpath_ratelimit_paused_seconds',
    'gauge',
    'Seconds left of the current pause (penalize).',
    (s) => s.pausedForMs / 1000,
  ],
  ['hotpath_ratelimit_started_total', 'counter', 'Tasks started under the limiter.', (s) => s.started],
  ['hotpath_ratelimit_rejected_total', 'counter', 'Calls refused because the line was full.', (s) => s.rejected],
  [
    'hotpath_ratelimit_aborted_total',
    'counter',
    'Waiters that left the line because their signal aborted.',
    (s) => s.aborted,
  ],
  [
    'hotpath_ratelimit_penalties_total',
    'counter',
    'Calls to penalize (upstream asked to slow down).',
    (s) => s.penalties,
  ],
];

/** Queue counters of this process, read from `JobQueueStats`. */
const QUEUE_COUNTERS: ReadonlyArray<readonly [string, string, keyof QueueManagerStats['queue']]> = [
  ['hotpath_queue_enqueued_total', 'Jobs enqueued by this process.', 'enqueued'],
  ['hotpath_queue_succeeded_total', 'Jobs that succeeded in this process.', 'succeeded'],
  ['hotpath_queue_failed_total', 'Jobs that failed for good in this process.', 'failed'],
  ['hotpath_queue_failed_attempts_total', 'Attempts that failed (retried or not) in this process.', 'failedAttempts'],
  ['hotpath_queue_retried_total', 'Failed attempts scheduled again with backoff.', 'retried'],
  ['hotpath_queue_cancelled_total', 'Jobs cancelled.', 'cancelled'],
  ['hotpath_queue_timed_out_total', 'Attempts that hit their timeout.', 'timedOut'],
];

/** What {@link appMetricFamilies} reads. */
export interface AppMetricSources {
  /** The named caches. */
  caches: CacheRegistry;
  /** `max` of each named cache, from the configuration (for "size against max"). */
  cacheMax: ReadonlyMap<string, number>;
  /** The named rate limiters. */
  rateLimiters: ReadonlyMap<string, RateLimiter>;
  /** The storage pool. */
  pool: StorageStats;
  /** Queue stats, when there is a reachable queue. */
  queue: QueueManagerStats | undefined;
  /** Responses counted by the request middleware. */
  requests: RequestCounters;
  /** Process memory (bytes) now and peaks. */
  memory: { rss: number; heapUsed: number; heapTotal: number; peakRss: number; peakHeapUsed: number };
}

function family(name: string, type: Kind, help: string, samples: MetricSample[]): MetricFamily {
  return { name, type, help, samples };
}

/** The app's families, in a stable order. Names are label values, so any cache or limiter name is safe. */
export function appMetricFamilies(sources: AppMetricSources): MetricFamily[] {
  const families: MetricFamily[] = [];
  // Read through names() and get(): a cache named `__proto__` must not vanish from the metrics.
  const caches: Array<[string, CacheStats]> = [];
  for (const name of sources.caches.names()) {
    const cache = sources.caches.get(name);
    if (cache !== undefined) caches.push([name, cache.stats()]);
  }
  if (caches.length > 0) {
    for (const [name, type, help, read] of CACHE_FAMILIES) {
      families.push(
        family(
          name,
          type,
          help,
          caches.map(([cache, stats]) => ({ labels: [['cache', cache]], value: read(stats) })),
        ),
      );
    }
    const bounded = caches.filter(([cache]) => sources.cacheMax.has(cache));
    if (bounded.length > 0) {
      families.push(
        family(
          'hotpath_cache_max_entries',
          'gauge',
          'Configured maximum number of entries.',
          bounded.map(([cache]) => ({ labels: [['cache', cache]], value: sources.cacheMax.get(cache) as number })),
        ),
      );
    }
  }
  const limiters = [...sources.rateLimiters].map(([name, limiter]) => [name, limiter.stats()] as const);
  if (limiters.length > 0) {
    for (const [name, type, help, read] of LIMITER_FAMILIES) {
      families.push(
        family(
          name,
          type,
          help,
          limiters.map(([limiter, stats]) => ({ labels: [['limiter', limiter]], value: read(stats) })),
        ),
      );
    }
  }
  const responses = sources.requests.entries();
  if (responses.length > 0) {
    families.push(
      family(
        'hotpath_http_responses_total',
        'counter',
        'Responses by method, route template and status class (request middleware).',
        responses.map(({ method, route, statusClass, count }) => ({
          labels: [
            ['method', method],
            ['route', route],
            ['status_class', statusClass],
          ],
          value: count,
        })),
      ),
    );
  }
  const { pool } = sources;
  families.push(
    family('hotpath_storage_pool_connections', 'gauge', 'Storage connections by state.', [
      { labels: [['state', 'total']], value: pool.total },
      { labels: [['state', 'idle']], value: pool.idle },
      { labels: [['state', 'waiting']], value: pool.waiting },
    ]),
  );
  const { queue } = sources;
  if (queue !== undefined) {
    families.push(
      family(
        'hotpath_queue_jobs',
        'gauge',
        'Stored jobs by status (all processes).',
        Object.entries(queue.counts).map(([status, count]) => ({ labels: [['status', status]], value: count })),
      ),
      family('hotpath_queue_running', 'gauge', 'Handlers running in this process.', [{ value: queue.queue.running }]),
      family(
        'hotpath_queue_throughput_per_second',
        'gauge',
        'Jobs finished per second over the last minute (this process).',
        [{ value: queue.throughputPerSec }],
      ),
    );
    for (const [name, help, field] of QUEUE_COUNTERS) {
      families.push(family(name, 'counter', help, [{ value: queue.queue[field] }]));
    }
  }
  const { memory } = sources;
  families.push(
    family('hotpath_process_memory_bytes', 'gauge', 'Process memory now, by kind.', [
      { labels: [['kind', 'rss']], value: memory.rss },
      { labels: [['kind', 'heap_used']], value: memory.heapUsed },
      { labels: [['kind', 'heap_total']], value: memory.heapTotal },
    ]),
    family('hotpath_process_memory_peak_bytes', 'gauge', 'Highest process memory seen, by kind.', [
      { labels: [['kind', 'rss']], value: memory.peakRss },
      { labels: [['kind', 'heap_used']], value: memory.peakHeapUsed },
    ]),
  );
  return families;
}
