/**
 * The dashboard's data: one JSON snapshot of queue, caches, limiters, profiler and storage, built once per refresh
 * for every connected page, plus the chart history sampled into a bounded {@link SeriesHistory}.
 * @module
 */
import { EventLoopMonitor } from '../../profiling/index.js';
import type { JobInfo, JobStatus } from '../../queue/index.js';
import type { Hotpath } from '../create-hotpath.js';
import { type HistoryJSON, SeriesHistory } from './history.js';
import type { Redactor } from './redact.js';

/** A job row as the page shows it: data and result redacted and truncated, error text masked. */
export interface JobRow {
  /** Job id. */
  id: string;
  /** Job type. */
  type: string;
  /** Current status. */
  status: JobStatus;
  /** Attempts started / allowed. */
  attempts: number;
  /** Attempts allowed, when known. */
  maxAttempts: number | undefined;
  /** Progress: done, total, stage. */
  progress: { done: number; total?: number; stage?: string } | undefined;
  /** `this process` when it runs here (the worker id), else `another process`. */
  worker: string | undefined;
  /** Data as display text. */
  data: string;
  /** Error name, message and stack as display text. */
  error: { name: string; message: string; stack: string } | undefined;
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms. */
  startedAt: number | undefined;
  /** Epoch ms. */
  finishedAt: number | undefined;
}

/** The whole page state, sent as one SSE message. */
export interface DashboardSnapshot {
  /** Epoch ms. */
  at: number;
  /** Whether actions are refused for this page. */
  readOnly: boolean;
  /** Resolved configuration (URLs masked). */
  config: Hotpath['config'];
  /** Queue panel; undefined without a queue. */
  queue:
    | {
        counts: Record<string, number>;
        byType: Record<string, Record<string, number>>;
        throughputPerSec: number;
        waitMs: { p50: number; p95: number; p99: number; max: number };
        runMs: { p50: number; p95: number; p99: number; max: number };
        running: JobRow[];
        failed: JobRow[];
        recentlyFailed: JobRow[];
        error?: string;
      }
    | undefined;
  /** One row per named cache. */
  caches: Array<{
    name: string;
    size: number;
    max: number | undefined;
    hitRate: number;
    hits: number;
    misses: number;
    staleHits: number;
    loads: number;
    evictions: number;
    enabled: boolean;
  }>;
  /** One row per named limiter. */
  limiters: Array<{
    name: string;
    limit: number;
    intervalMs: number;
    running: number;
    queued: number;
    rejected: number;
    pausedUntil: number | undefined;
    upstream: { remaining: number; resetAt: number; at: number } | undefined;
  }>;
  /** Profiler panel. */
  profiler: {
    operations: Array<{
      name: string;
      count: number;
      errors: number;
      p50: number;
      p95: number;
      p99: number;
      p999: number;
      max: number;
    }>;
    slow: Array<{ name: string; ms: number; scope: string | undefined; at: number; isError: boolean }>;
    nPlusOne: Array<{ scope: string; shape: string; count: number; at: number }>;
    eventLoop: { p50: number; p99: number; max: number; mean: number } | undefined;
    memory: { rss: number; heapUsed: number; heapTotal: number; peakRss: number; peakHeapUsed: number };
  };
  /** Storage panel. */
  storage: {
    kind: string;
    ok: boolean;
    latencyMs: number;
    error: string | undefined;
    pool: { total: number; idle: number; waiting: number };
  };
  /** Chart history (bounded ring): whole, or on the live stream only the rows since the previous message. */
  history: HistoryJSON;
  /** Bytes held by the chart history. */
  historyBytes: number;
}

/** Options of {@link DashboardData}. */
export interface DashboardDataOptions {
  /** Samples kept per chart series (default 720: one hour at the default 5 s). */
  historyPoints: number;
  /** Most chart series (default 64). */
  maxSeries: number;
  /** Rows shown per job list (default 50). */
  maxJobRows: number;
  /** Operations shown in the profiler table, most frequent first (default 100). */
  maxOperations: number;
  /** How data, results, errors and stacks are shown. */
  redactor: Redactor;
}

const STATUSES: readonly JobStatus[] = ['queued', 'running', 'failed'];

/** Builds snapshots and samples history for one app. */
export class DashboardData {
  readonly #app: Hotpath;
  readonly #options: DashboardDataOptions;
  readonly #history: SeriesHistory;
  readonly #monitor: EventLoopMonitor;
  /** Cumulative counters at the previous sample, to chart rates. */
  readonly #previous = new Map<string, number>();
  #previousAt = 0;
  /** Event-loop figures of the last full sample interval (the monitor is reset at every sample). */
  #lastLoop: { p50: number; p99: number; max: number; mean: number } | undefined;

  constructor(app: Hotpath, options: DashboardDataOptions) {
    this.#app = app;
    this.#options = options;
    this.#history = new SeriesHistory(options.historyPoints, options.maxSeries);
    // The dashboard's own event-loop monitor, not the profiler's: it is reset at every history sample (so the
    // chart's max shows when a block happened), which must not change what /metrics reports. p99 AND max, since
    // p99 alone hides multi-second blocks.
    this.#monitor = new EventLoopMonitor({ resolutionMs: 10 });
  }

  /** Stops the event-loop monitor (when the app closes). */
  close(): void {
    this.#monitor.close();
  }

  /** Bytes held by the chart history. */
  get historyBytes(): number {
    return this.#history.bytes;
  }

  /** Samples one row of chart history (queue rates, latencies, event loop, heap, per-cache hit rate and loads). */
  async sample(): Promise<void> {
    const app = this.#app;
    const at = Date.now();
    const values = new Map<string, number>();
    const seconds = this.#previousAt === 0 ? 0 : (at - this.#previousAt) / 1000;
    const rate = (key: string, total: number): void => {
      const before = this.#previous.get(key);
      this.#previous.set(key, total);
      if (before !== undefined && seconds > 0) values.set(key, Math.max(0, total - before) / seconds);
    };
    if (app.queue) {
      const stats = await app.queue.stats().catch(() => undefined);
      if (stats) {
        values.set('queue.throughput', stats.throughputPerSec);
        values.set('queue.wait.p50', stats.waitMs.p50);
        values.set('queue.wait.p95', stats.waitMs.p95);
        values.set('queue.wait.p99', stats.waitMs.p99);
        values.set('queue.run.p50', stats.runMs.p50);
        values.set('queue.run.p95', stats.runMs.p95);
        values.set('queue.run.p99', stats.runMs.p99);
        values.set('queue.queued', stats.counts.queued);
        values.set('queue.running', stats.counts.running);
        rate('queue.failed', stats.queue.failed);
      }
    }
    const loop = this.#monitor.stats();
    if (loop.count > 0) {
      values.set('eventLoop.p99', loop.p99);
      values.set('eventLoop.max', loop.max);
      this.#lastLoop = { p50: loop.p50, p99: loop.p99, max: loop.max, mean: loop.mean };
      // Per-interval figures: reset so a block shows at the sample it happened in, not forever after.
      this.#monitor.reset();
    }
    const memory = process.memoryUsage();
    values.set('memory.heapUsed', memory.heapUsed / 1048576);
    values.set('memory.rss', memory.rss / 1048576);
    for (const name of app.caches.names()) {
      const stats = app.caches.get(name)?.stats();
      if (!stats) continue;
      values.set(`cache.${name}.hitRate`, stats.hitRate);
      rate(`cache.${name}.loads`, stats.loads);
    }
    this.#previousAt = at;
    this.#history.push(at, values);
  }

  /** Rows of chart history pushed so far. */
  get historySeq(): number {
    return this.#history.seq;
  }

  /**
   * One snapshot of everything. Never throws: a failing part is reported inside it.
   * @param historyAfterSeq - send only the history rows after this point (the live stream), else all of it.
   */
  async snapshot(readOnly: boolean, historyAfterSeq?: number): Promise<DashboardSnapshot> {
    const app = this.#app;
    const [storage, queue] = await Promise.all([this.#storage(), this.#queue()]);
    const caches: DashboardSnapshot['caches'] = [];
    for (const name of app.caches.names()) {
      const stats = app.caches.get(name)?.stats();
      if (!stats) continue;
      const max = app.cacheLimits.get(name);
      caches.push({
        name,
        size: stats.size,
        max,
        hitRate: stats.hitRate,
        hits: stats.hits,
        misses: stats.misses,
        staleHits: stats.staleHits,
        loads: stats.loads,
        evictions: stats.evictions,
        enabled: app.config.cacheEnabled,
      });
    }
    const now = Date.now();
    const limiters: DashboardSnapshot['limiters'] = [...app.rateLimiters].map(([name, limiter]) => {
      const stats = limiter.stats();
      return {
        name,
        limit: limiter.limit,
        intervalMs: limiter.intervalMs,
        running: stats.running,
        queued: stats.queued,
        rejected: stats.rejected,
        pausedUntil: stats.pausedForMs > 0 ? now + stats.pausedForMs : undefined,
        upstream: app.recent.upstream(name),
      };
    });
    const snapshot = app.profiler.snapshot();
    const operations = Object.entries(snapshot)
      .sort((a, b) => b[1].count - a[1].count)
      .slice(0, this.#options.maxOperations)
      .map(([name, s]) => ({
        name,
        count: s.count,
        errors: s.errors,
        p50: s.p50,
        p95: s.p95,
        p99: s.p99,
        p999: s.p999,
        max: s.max,
      }));
    const current = this.#monitor.stats();
    // The worse of the interval in progress and the last full one, so a block is never hidden by a fresh reset.
    const loop =
      current.count > 0 && (this.#lastLoop === undefined || current.max >= this.#lastLoop.max)
        ? { p50: current.p50, p99: current.p99, max: current.max, mean: current.mean }
        : this.#lastLoop;
    const memory = app.profiler.memory();
    return {
      at: now,
      readOnly,
      config: app.config,
      queue,
      caches,
      limiters,
      profiler: {
        operations,
        slow: app.recent.slowOperations
          .toArray()
          .map(({ name, ms, scope, at, isError }) => ({ name, ms, scope, at, isError })),
        nPlusOne: app.recent.nPlusOne
          .toArray()
          .map(({ scope, shape, count, at }) => ({ scope, shape: this.#options.redactor.text(shape), count, at })),
        eventLoop: loop,
        memory: {
          rss: memory.rss,
          heapUsed: memory.heapUsed,
          heapTotal: memory.heapTotal,
          peakRss: memory.peakRss,
          peakHeapUsed: memory.peakHeapUsed,
        },
      },
      storage,
      history: this.#history.toJSON(historyAfterSeq),
      historyBytes: this.#history.bytes,
    };
  }

  async #storage(): Promise<DashboardSnapshot['storage']> {
    const adapter = this.#app.storage.adapter;
    const health = await adapter.health().catch((error: unknown) => ({
      ok: false,
      latencyMs: 0,
      error: error instanceof Error ? error.message : String(error),
    }));
    const pool = adapter.stats();
    return {
      kind: adapter.kind,
      ok: health.ok,
      latencyMs: health.latencyMs,
      error: health.error === undefined ? undefined : this.#options.redactor.text(health.error),
      pool: { total: pool.total, idle: pool.idle, waiting: pool.waiting },
    };
  }

  async #queue(): Promise<DashboardSnapshot['queue']> {
    const manager = this.#app.queue;
    if (!manager) return undefined;
    const limit = this.#options.maxJobRows;
    try {
      const stats = await manager.stats();
      const [queued, running, failed] = await Promise.all(
        STATUSES.map((status) => manager.queue.list({ status, limit: 200 })),
      );
      const byType: Record<string, Record<string, number>> = Object.create(null);
      for (const page of [queued, running, failed]) {
        for (const job of page?.items ?? []) {
          byType[job.type] ??= Object.create(null);
          const row = byType[job.type] as Record<string, number>;
          row[job.status] = (row[job.status] ?? 0) + 1;
        }
      }
      // Failed in this process lately, read again now: a retried job's row turns queued → running → succeeded.
      const seen = new Set<string>();
      const recentlyFailed: JobRow[] = [];
      for (const id of this.#app.recent.failedJobIds.toArray()) {
        if (seen.has(id)) continue;
        seen.add(id);
        const job = await manager.queue.get(id).catch(() => undefined);
        if (job) recentlyFailed.push(this.#row(job));
        if (recentlyFailed.length >= limit) break;
      }
      const failedRows = (failed?.items ?? [])
        .filter((job) => !seen.has(job.id))
        .slice(-limit)
        .reverse()
        .map((job) => this.#row(job));
      return {
        counts: stats.counts,
        byType,
        throughputPerSec: stats.throughputPerSec,
        waitMs: pick(stats.waitMs),
        runMs: pick(stats.runMs),
        running: (running?.items ?? []).slice(0, limit).map((job) => this.#row(job)),
        failed: failedRows,
        recentlyFailed,
      };
    } catch (error) {
      return {
        counts: {},
        byType: {},
        throughputPerSec: 0,
        waitMs: { p50: 0, p95: 0, p99: 0, max: 0 },
        runMs: { p50: 0, p95: 0, p99: 0, max: 0 },
        running: [],
        failed: [],
        recentlyFailed: [],
        error: this.#options.redactor.text(error instanceof Error ? error.message : String(error)),
      };
    }
  }

  #row(job: JobInfo): JobRow {
    const redactor = this.#options.redactor;
    const manager = this.#app.queue;
    const runsHere = job.status === 'running' && this.#app.recent.runningHere.has(job.id);
    return {
      id: job.id,
      type: job.type,
      status: job.status,
      attempts: job.attempts,
      maxAttempts: job.maxAttempts,
      progress: job.progress,
      worker:
        job.status !== 'running'
          ? undefined
          : runsHere && manager
            ? manager.queue.workerId
            : manager?.queue.isRunning
              ? undefined
              : 'another process',
      data: redactor.show(job.data),
      error: job.error
        ? {
            name: redactor.text(job.error.name),
            message: redactor.text(job.error.message),
            stack: redactor.text(job.error.stack ?? ''),
          }
        : undefined,
      createdAt: job.createdAt,
      startedAt: job.startedAt,
      finishedAt: job.finishedAt,
    };
  }
}

function pick(summary: { p50: number; p95: number; p99: number; max: number }) {
  return { p50: summary.p50, p95: summary.p95, p99: summary.p99, max: summary.max };
}
