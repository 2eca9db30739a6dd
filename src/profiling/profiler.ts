/**
 * `Profiler`: named latency histograms, slow-operation detection, request scopes with N+1 detection,
 * event-loop and memory monitors, and Prometheus/JSON export.
 * @module
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { type Clock, systemClock, type TimerHandle } from '../core/clock.js';
import { ClosedError, ConfigError } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { validateOptions } from '../core/options.js';
import {
  isValidLabelName,
  type MetricFamily,
  type MetricSample,
  sanitizeMetricName,
  writeExposition,
} from '../core/prometheus-text.js';
import type { LatencyRecorder } from '../core/recorder.js';
import { EventLoopMonitor, type EventLoopMonitorOptions, type EventLoopStats } from './event-loop-monitor.js';
import { LatencyHistogram, type LatencyHistogramOptions } from './latency-histogram.js';
import {
  MAX_SHAPE_LENGTH,
  ScopeAggregate,
  type ScopeOperation,
  type ScopeSnapshot,
  ScopeState,
  type ScopeStats,
} from './request-scope.js';

/** A slow operation, passed to `onSlow` and logged (warn). */
export interface SlowOperation {
  /** Metric name of the operation. */
  name: string;
  /** Its duration in ms. */
  ms: number;
  /** Whether it failed. */
  isError: boolean;
  /** The configured `slowThresholdMs`. */
  thresholdMs: number;
  /** Name of the innermost scope it ran in, if any. */
  scope: string | undefined;
}

/** An N+1 pattern: one query shape issued `count` (= the threshold) times in one scope run. */
export interface NPlusOneEvent {
  /** Name of the scope the queries ran in. */
  scope: string;
  /** The query shape (statement without values), truncated to 1000 characters. */
  shape: string;
  /** How many times it was issued when reported (the configured `nPlusOneThreshold`). */
  count: number;
}

/** Options of {@link Profiler}. Every option is validated at construction. */
export interface ProfilerOptions {
  /**
   * An operation taking at least this many ms is reported to `onSlow` and logged (warn, at most once per
   * second per name). Default `Infinity` (off). Must be > 0.
   */
  slowThresholdMs?: number | undefined;
  /** Called for every slow operation; exceptions it throws are logged and swallowed. */
  onSlow?: ((event: SlowOperation) => void) | undefined;
  /** Where slow operations, N+1 patterns, dropped names and callback failures are logged (default: silent). */
  logger?: Logger | undefined;
  /**
   * Most distinct metric names kept (default 1000, 1 … 100,000). Each name holds one histogram of
   * ≤ 21 KiB with the default histogram options (≈ 21 MiB at the default cap); records under a new
   * name past the cap are dropped and counted in `droppedRecords`, never stored. Scope names are capped
   * the same way.
   */
  maxMetrics?: number | undefined;
  /** A query shape noted this many times in one scope run is reported as an N+1 (default 10, 2 … 1,000,000). */
  nPlusOneThreshold?: number | undefined;
  /** Called once per shape per scope run when it reaches `nPlusOneThreshold`; exceptions are logged. */
  onNPlusOne?: ((event: NPlusOneEvent) => void) | undefined;
  /** Options of every per-name {@link LatencyHistogram} (validated the same way). */
  histogram?: LatencyHistogramOptions | undefined;
  /**
   * Monotonic time source in ms used to time operations (default `performance.now`). Replace it in tests
   * to make durations deterministic.
   */
  now?: (() => number) | undefined;
  /** Clock for the memory sampling timer and timestamps (default: the system clock). */
  clock?: Clock | undefined;
  /**
   * Samples heap usage every this many ms (unref'd timer) so `memory().peakHeapUsed` catches peaks
   * between calls. Default: off (peaks are then those seen by `memory()` calls). 10 … 3,600,000.
   */
  memorySampleIntervalMs?: number | undefined;
}

/** Latency statistics of one metric name, in ms (percentiles within 0.4% with the default histogram). */
export interface OperationStats {
  /** Operations recorded (successes and failures). */
  count: number;
  /** How many of them failed. */
  errors: number;
  /** Shortest, ms. */
  min: number;
  /** Mean, ms. */
  mean: number;
  /** Longest, ms. */
  max: number;
  /** Median, ms. */
  p50: number;
  /** 90th percentile, ms. */
  p90: number;
  /** 95th percentile, ms. */
  p95: number;
  /** 99th percentile, ms. */
  p99: number;
  /** 99.9th percentile, ms. */
  p999: number;
  /** Sum of all durations, ms. */
  sum: number;
  /** Operations at or above `slowThresholdMs`. */
  slow: number;
}

/** Process memory in bytes: now, and the peaks seen. */
export interface MemoryStats {
  /** Resident set size now. */
  rss: number;
  /** V8 heap in use now. */
  heapUsed: number;
  /** V8 heap reserved now. */
  heapTotal: number;
  /** Memory of C++ objects bound to JS objects now. */
  external: number;
  /** Memory of ArrayBuffers and SharedArrayBuffers now. */
  arrayBuffers: number;
  /** Highest resident set size of the process so far (from the OS: `resourceUsage().maxRSS`). */
  peakRss: number;
  /** Highest heap usage seen by this profiler (its `memory()` calls and optional sampling timer). */
  peakHeapUsed: number;
}

/** Everything the profiler knows, as plain data (`JSON.stringify(profiler)`). */
export interface ProfilerJSON {
  /** Per-name latency stats. */
  metrics: Record<string, OperationStats>;
  /** Per-scope-name attribution totals. */
  scopes: Record<string, ScopeStats>;
  /** Records dropped because their name was past `maxMetrics` (or the profiler was closed). */
  droppedRecords: number;
  /** Event-loop delay of the most recently started open monitor, if any. */
  eventLoop: EventLoopStats | undefined;
  /** Process memory now and peaks. */
  memory: MemoryStats;
  /** When this was taken, epoch ms from the profiler's clock. */
  timestamp: number;
}

/** Options of {@link Profiler.toPrometheus}. */
export interface PrometheusOptions {
  /** Prefix of every metric name (default `hotpath_`); sanitised to a valid metric name. */
  prefix?: string | undefined;
  /** Constant labels added to every sample (e.g. `{ service: 'api' }`); values are escaped. */
  labels?: Record<string, string> | undefined;
  /**
   * More metric families written after the profiler's, through the same writer and with the same constant
   * labels (the app adds its cache, limiter, storage and queue families this way).
   */
  families?: Iterable<MetricFamily> | undefined;
}

/** Passed to the function of {@link Profiler.scope}: adjusts the running scope. */
export interface ScopeHandle {
  /**
   * Renames the scope — e.g. once a router knows the route template, as tracing spans are renamed after
   * routing. Its duration and totals are recorded, and later N+1 reports made, under the new name.
   * @throws ConfigError when `name` is not a non-empty string of at most 200 characters.
   */
  rename(name: string): void;
  /** Counts the scope as failed although its function succeeds (e.g. a request answered with a 5xx). */
  markFailed(): void;
}

/** Stops a timer started by {@link Profiler.start}; returns the elapsed ms. Only the first call records. */
export type StopTimer = (isError?: boolean) => number;

interface Metric {
  readonly histogram: LatencyHistogram;
  errors: number;
  slow: number;
  /** `now()` of the last slow-operation log line, to log at most once per second per name. */
  lastSlowLogAt: number;
}

const MAX_NAME_LENGTH = 200;
const SLOW_LOG_INTERVAL_MS = 1000;
const QUANTILES: ReadonlyArray<readonly [string, keyof OperationStats]> = [
  ['0.5', 'p50'],
  ['0.9', 'p90'],
  ['0.95', 'p95'],
  ['0.99', 'p99'],
  ['0.999', 'p999'],
];

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/**
 * Collects latencies by name and reports p50…p99.9, errors and slow operations; implements the
 * `LatencyRecorder` interface every hotpath primitive accepts as its `profiler` option.
 *
 * Memory is bounded: at most `maxMetrics` names, each one fixed-size {@link LatencyHistogram}.
 * Recording allocates nothing outside scopes; inside `scope()` the run's attribution uses an
 * AsyncLocalStorage store, which Node only activates once the first scope runs.
 *
 * @example
 * ```ts
 * const profiler = new Profiler({ slowThresholdMs: 500, logger });
 * const rows = await profiler.time('db.query', () => db.query(sql));
 * profiler.stats('db.query'); // { count, errors, min, mean, max, p50, p90, p95, p99, p999, … }
 * ```
 */
export class Profiler implements LatencyRecorder {
  readonly #metrics = new Map<string, Metric>();
  readonly #scopes = new Map<string, ScopeAggregate>();
  readonly #monitors = new Set<EventLoopMonitor>();
  readonly #slowThresholdMs: number;
  readonly #onSlow: ((event: SlowOperation) => void) | undefined;
  readonly #logger: Logger;
  readonly #maxMetrics: number;
  readonly #nPlusOneThreshold: number;
  readonly #onNPlusOne: ((event: NPlusOneEvent) => void) | undefined;
  readonly #histogramOptions: LatencyHistogramOptions;
  readonly #now: () => number;
  readonly #clock: Clock;
  readonly #memorySampleIntervalMs: number | undefined;
  /** Created on the first `scope()`; until then record() skips the store lookup entirely. */
  #als: AsyncLocalStorage<ScopeState> | undefined;
  /** Name and metric of the last record (see #record); cleared by reset() and close(). */
  #lastName: string | undefined;
  #lastMetric: Metric | undefined;
  #droppedRecords = 0;
  #hasWarnedDrop = false;
  #peakHeapUsed = 0;
  #memoryTimer: TimerHandle | undefined;
  #isClosed = false;

  /** @throws ConfigError when an option is unknown, of the wrong type or out of range. */
  constructor(options: ProfilerOptions = {}) {
    validateOptions('Profiler', options, {
      slowThresholdMs: { type: 'number', min: 0, exclusiveMin: true, allowInfinity: true },
      onSlow: { type: 'function' },
      logger: { type: 'object' },
      maxMetrics: { type: 'number', integer: true, min: 1, max: 100_000 },
      nPlusOneThreshold: { type: 'number', integer: true, min: 2, max: 1_000_000 },
      onNPlusOne: { type: 'function' },
      histogram: { type: 'object' },
      now: { type: 'function' },
      clock: { type: 'object' },
      memorySampleIntervalMs: { type: 'number', integer: true, min: 10, max: 3_600_000 },
    });
    if (options.logger !== undefined) checkLogger(options.logger);
    if (options.clock !== undefined) checkClock(options.clock);
    this.#histogramOptions = { ...options.histogram };
    // Validates the histogram options now (with the Profiler's name in the error), not at the first record.
    try {
      new LatencyHistogram(this.#histogramOptions);
    } catch (error) {
      if (error instanceof ConfigError) {
        const option = error.option.replace(/^LatencyHistogram/, 'Profiler.histogram');
        throw new ConfigError(option, error.message.replace(/LatencyHistogram/g, 'Profiler.histogram'));
      }
      throw error;
    }
    this.#slowThresholdMs = options.slowThresholdMs ?? Number.POSITIVE_INFINITY;
    this.#onSlow = options.onSlow;
    this.#logger = options.logger ?? silentLogger;
    this.#maxMetrics = options.maxMetrics ?? 1000;
    this.#nPlusOneThreshold = options.nPlusOneThreshold ?? 10;
    this.#onNPlusOne = options.onNPlusOne;
    this.#now = options.now ?? (() => performance.now());
    this.#clock = options.clock ?? systemClock;
    this.#memorySampleIntervalMs = options.memorySampleIntervalMs;
    if (this.#memorySampleIntervalMs !== undefined) this.#scheduleMemorySample();
  }

  /** True once `close()` was called. */
  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** Records dropped because their name was past `maxMetrics`, or because the profiler was closed. */
  get droppedRecords(): number {
    return this.#droppedRecords;
  }

  /** Number of distinct metric names held (≤ `maxMetrics`). */
  get size(): number {
    return this.#metrics.size;
  }

  /**
   * Records one sample of `ms` milliseconds under `name`. Allocates nothing for a known name outside
   * scopes. After `close()` records are ignored (counted in `droppedRecords`), so shutdown order between
   * a profiler and the primitives reporting into it does not matter.
   * @param isError - true when the operation failed; counted in `errors`.
   * @throws ConfigError when `ms` is negative, NaN or infinite, or `name` is not a non-empty string of
   *   at most 200 characters (nothing is recorded).
   */
  record(name: string, ms: number, isError = false): void {
    this.#record(name, ms, isError, this.#als?.getStore());
  }

  /**
   * Runs `fn` and records its duration under `name`; sync or async (a returned promise is timed until it
   * settles). Throws and rejections are recorded as errors and passed through unchanged.
   * @throws ConfigError when `name` is invalid (before `fn` runs); otherwise whatever `fn` throws.
   */
  time<T>(name: string, fn: () => T): T {
    if (name !== this.#lastName && !this.#metrics.has(name)) checkName(name);
    const scope = this.#als?.getStore();
    const now = this.#now;
    const startedAt = now();
    let result: T;
    try {
      result = fn();
    } catch (error) {
      this.#record(name, elapsedSince(now, startedAt), true, scope);
      throw error;
    }
    if (isPromiseLike(result)) {
      return Promise.resolve(result).then(
        (value) => {
          this.#record(name, elapsedSince(now, startedAt), false, scope);
          return value;
        },
        (error: unknown) => {
          this.#record(name, elapsedSince(now, startedAt), true, scope);
          throw error;
        },
      ) as T;
    }
    this.#record(name, elapsedSince(now, startedAt), false, scope);
    return result;
  }

  /**
   * Starts timing `name`; call the returned function to stop and record (pass `true` for a failure).
   * The scope is captured at start, so stopping from a callback outside it still attributes correctly.
   * @throws ConfigError when `name` is invalid.
   */
  start(name: string): StopTimer {
    if (name !== this.#lastName && !this.#metrics.has(name)) checkName(name);
    const scope = this.#als?.getStore();
    const startedAt = this.#now();
    let elapsed: number | undefined;
    return (isError = false) => {
      if (elapsed !== undefined) return elapsed;
      elapsed = Math.max(0, this.#now() - startedAt);
      this.#record(name, elapsed, isError === true, scope);
      return elapsed;
    };
  }

  /** Latency stats of one name, or `undefined` when nothing was recorded under it. */
  stats(name: string): OperationStats | undefined {
    const metric = this.#metrics.get(name);
    return metric === undefined ? undefined : toStats(metric);
  }

  /** Stats of every name, as a plain object keyed by name. */
  snapshot(): Record<string, OperationStats> {
    const out: Record<string, OperationStats> = {};
    for (const [name, metric] of this.#metrics) out[name] = toStats(metric);
    return out;
  }

  /** A copy of the histogram behind `name` (to merge across processes, or for custom percentiles). */
  histogram(name: string): LatencyHistogram | undefined {
    const metric = this.#metrics.get(name);
    if (metric === undefined) return undefined;
    return new LatencyHistogram(this.#histogramOptions).merge(metric.histogram);
  }

  /**
   * Runs `fn` as a request scope named `name` (AsyncLocalStorage): every `record`/`time`/`start` inside it,
   * across `await`s and in nested scopes, is attributed to it (see {@link scopeStats}, {@link currentScope}),
   * and a query shape passed to {@link noteQuery} `nPlusOneThreshold` times in one run is reported once via
   * `onNPlusOne`. The scope's own duration is recorded under `name` (or the name given to `handle.rename`),
   * like {@link time}. `fn` receives a {@link ScopeHandle}.
   * @throws ConfigError when `name` is invalid (before `fn` runs); otherwise whatever `fn` throws.
   */
  scope<T>(name: string, fn: (handle: ScopeHandle) => T): T {
    checkName(name);
    this.#als ??= new AsyncLocalStorage<ScopeState>();
    const als = this.#als;
    const parent = als.getStore();
    const now = this.#now;
    const state = new ScopeState(name, parent, now());
    const handle: ScopeHandle = {
      rename: (newName) => {
        checkName(newName);
        state.name = newName;
      },
      markFailed: () => {
        state.isFailed = true;
      },
    };
    const finish = (threw: boolean): void => {
      state.ended = true;
      const isError = threw || state.isFailed;
      const finalName = state.name;
      this.#record(finalName, elapsedSince(now, state.startedAt), isError, parent);
      if (this.#isClosed) return;
      let aggregate = this.#scopes.get(finalName);
      if (aggregate === undefined) {
        if (this.#scopes.size >= this.#maxMetrics) return;
        aggregate = new ScopeAggregate();
        this.#scopes.set(finalName, aggregate);
      }
      aggregate.add(state, isError, this.#maxMetrics);
    };
    let result: T;
    try {
      result = als.run(state, fn, handle);
    } catch (error) {
      finish(true);
      throw error;
    }
    if (isPromiseLike(result)) {
      return Promise.resolve(result).then(
        (value) => {
          finish(false);
          return value;
        },
        (error: unknown) => {
          finish(true);
          throw error;
        },
      ) as T;
    }
    finish(false);
    return result;
  }

  /** What the innermost running scope has done so far, or `undefined` outside any scope. */
  currentScope(): ScopeSnapshot | undefined {
    const state = this.#als?.getStore();
    if (state === undefined || state.ended) return undefined;
    const operations: Record<string, ScopeOperation> = {};
    for (const [name, op] of state.operations) operations[name] = { ...op };
    return {
      name: state.name,
      elapsedMs: this.#now() - state.startedAt,
      parents: state.parentNames(),
      operations,
      queries: Object.fromEntries(state.shapes),
    };
  }

  /** Totals over every finished run of scope `name`, or `undefined` when none finished. */
  scopeStats(name: string): ScopeStats | undefined {
    return this.#scopes.get(name)?.toStats();
  }

  /**
   * Notes one query of `shape` (a statement without its values) in the current scope and every enclosing
   * one. Outside any scope it does nothing. Shapes longer than 1000 characters are truncated.
   * @throws ConfigError when `shape` is not a string.
   */
  noteQuery(shape: string): void {
    if (typeof shape !== 'string') {
      throw new ConfigError('Profiler.noteQuery(shape)', `shape must be a string, got ${typeof shape}`);
    }
    let state = this.#als?.getStore();
    if (state === undefined || this.#isClosed) return;
    const key = shape.length > MAX_SHAPE_LENGTH ? shape.slice(0, MAX_SHAPE_LENGTH) : shape;
    for (; state !== undefined; state = state.parent) {
      if (state.ended || !state.noteQuery(key, this.#nPlusOneThreshold)) continue;
      state.nPlusOne++;
      const event: NPlusOneEvent = { scope: state.name, shape: key, count: this.#nPlusOneThreshold };
      this.#logger.warn(event, 'N+1 query pattern');
      if (this.#onNPlusOne) this.#callSafely('onNPlusOne', this.#onNPlusOne, event);
    }
  }

  /** Forgets every metric, scope total and dropped count (monitors keep running). */
  reset(): void {
    this.#metrics.clear();
    this.#scopes.clear();
    this.#lastName = undefined;
    this.#lastMetric = undefined;
    this.#droppedRecords = 0;
    this.#hasWarnedDrop = false;
  }

  /**
   * The metrics in Prometheus text exposition format (0.0.4): one summary family
   * `<prefix>operation_duration_seconds{name="…",quantile="…"}` with `_sum`/`_count`, error and slow
   * counters, dropped records, and event-loop delay (summary plus `event_loop_delay_max_seconds`) when a
   * monitor is open, then `options.families`. Names become escaped label values, so any name is safe.
   * @throws ConfigError when a constant label name is invalid or reserved (`name`, `quantile`).
   */
  toPrometheus(options: PrometheusOptions = {}): string {
    validateOptions('Profiler.toPrometheus', options, {
      prefix: { type: 'string' },
      labels: { type: 'object' },
      families: { type: 'object' },
    });
    const prefix = sanitizeMetricName(options.prefix ?? 'hotpath_');
    const constant: Array<[string, string]> = [];
    for (const [key, value] of Object.entries(options.labels ?? {})) {
      if (!isValidLabelName(key) || key === 'name' || key === 'quantile') {
        throw new ConfigError(
          'Profiler.toPrometheus.labels',
          `label name ${JSON.stringify(key)} is not a valid, unreserved Prometheus label name`,
        );
      }
      if (typeof value !== 'string') {
        throw new ConfigError('Profiler.toPrometheus.labels', `label ${key} must be a string, got ${typeof value}`);
      }
      constant.push([key, value]);
    }
    const entries = Object.entries(this.snapshot());
    const byName = (pick: (stats: OperationStats) => number): MetricSample[] =>
      entries.map(([name, stats]) => ({ labels: [['name', name]], value: pick(stats) }));
    const durationSamples: MetricSample[] = [];
    for (const [name, stats] of entries) {
      for (const [quantile, key] of QUANTILES) {
        durationSamples.push({
          labels: [
            ['name', name],
            ['quantile', quantile],
          ],
          value: stats[key] / 1000,
        });
      }
      durationSamples.push({ suffix: '_sum', labels: [['name', name]], value: stats.sum / 1000 });
      durationSamples.push({ suffix: '_count', labels: [['name', name]], value: stats.count });
    }
    const families: MetricFamily[] = [
      {
        name: `${prefix}operation_duration_seconds`,
        type: 'summary',
        help: 'Duration of operations recorded by the hotpath profiler, by name.',
        samples: durationSamples,
      },
      {
        name: `${prefix}operation_errors_total`,
        type: 'counter',
        help: 'Operations that failed, by name.',
        samples: byName((stats) => stats.errors),
      },
      {
        name: `${prefix}operation_slow_total`,
        type: 'counter',
        help: 'Operations at or above the slow threshold, by name.',
        samples: byName((stats) => stats.slow),
      },
      {
        name: `${prefix}profiler_dropped_records_total`,
        type: 'counter',
        help: 'Records dropped because the metric-name cap was reached or the profiler was closed.',
        samples: [{ value: this.#droppedRecords }],
      },
    ];
    const loop = this.#latestMonitor()?.stats();
    if (loop !== undefined) {
      const loopQuantiles = [
        ['0.5', 'p50'],
        ['0.9', 'p90'],
        ['0.99', 'p99'],
        ['0.999', 'p999'],
      ] as const;
      families.push(
        {
          name: `${prefix}event_loop_delay_seconds`,
          type: 'summary',
          help: 'Event-loop delay sampled by monitorEventLoopDelay.',
          samples: [
            ...loopQuantiles.map(
              ([quantile, key]): MetricSample => ({
                labels: [['quantile', quantile]],
                value: loop[key] / 1000,
              }),
            ),
            { suffix: '_sum', value: (loop.mean * loop.count) / 1000 },
            { suffix: '_count', value: loop.count },
          ],
        },
        {
          // p99 alone hides multi-second blocks (a trial run: p99 12.6 ms, max 3.9 s), so the max is exported too.
          name: `${prefix}event_loop_delay_max_seconds`,
          type: 'gauge',
          help: 'Longest event-loop delay seen by the monitor.',
          samples: [{ value: loop.max / 1000 }],
        },
      );
    }
    if (options.families !== undefined) families.push(...options.families);
    return writeExposition(families, constant);
  }

  /** Everything as plain data (metrics, scopes, dropped records, event loop, memory). */
  toJSON(): ProfilerJSON {
    const scopes: Record<string, ScopeStats> = {};
    for (const [name, aggregate] of this.#scopes) scopes[name] = aggregate.toStats();
    return {
      metrics: this.snapshot(),
      scopes,
      droppedRecords: this.#droppedRecords,
      eventLoop: this.#latestMonitor()?.stats(),
      memory: this.memory(),
      timestamp: this.#clock.now(),
    };
  }

  /**
   * Starts an event-loop delay monitor (`monitorEventLoopDelay`); read it with `stats()` (ms), stop it
   * with `close()`. The profiler closes its monitors on `close()` and includes the latest in exports.
   * @throws ConfigError for bad options; ClosedError after `close()`.
   */
  monitorEventLoop(options: EventLoopMonitorOptions = {}): EventLoopMonitor {
    if (this.#isClosed) throw new ClosedError('Profiler');
    const monitor = new EventLoopMonitor(options, (closed) => this.#monitors.delete(closed));
    this.#monitors.add(monitor);
    return monitor;
  }

  /** Process memory in bytes now, with the peak RSS (from the OS) and the peak heap seen. */
  memory(): MemoryStats {
    const usage = process.memoryUsage();
    if (usage.heapUsed > this.#peakHeapUsed) this.#peakHeapUsed = usage.heapUsed;
    const maxRssBytes = process.resourceUsage().maxRSS * 1024;
    return {
      rss: usage.rss,
      heapUsed: usage.heapUsed,
      heapTotal: usage.heapTotal,
      external: usage.external,
      arrayBuffers: usage.arrayBuffers,
      peakRss: Math.max(maxRssBytes, usage.rss),
      peakHeapUsed: this.#peakHeapUsed,
    };
  }

  /** Stops monitors and the memory timer (idempotent); later records are ignored, stats stay readable. */
  close(): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.#lastName = undefined;
    this.#lastMetric = undefined;
    for (const monitor of [...this.#monitors]) monitor.close();
    if (this.#memoryTimer !== undefined) this.#clock.clearTimeout(this.#memoryTimer);
    this.#memoryTimer = undefined;
  }

  /** Same as `close()`, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  #record(name: string, ms: number, isError: boolean, scope: ScopeState | undefined): void {
    if (typeof ms !== 'number' || !(ms >= 0 && ms < Number.POSITIVE_INFINITY)) {
      throw new ConfigError('Profiler.record(ms)', `ms must be a finite number >= 0, got ${String(ms)}`);
    }
    let metric: Metric | undefined;
    // Most call sites record one name in a loop (a pool, a queue type): a one-entry cache in front of the
    // Map took Profiler.record from 23M to 43M records/s on the benchmark.
    if (name === this.#lastName) metric = this.#lastMetric as Metric;
    else {
      metric = this.#metrics.get(name);
      if (metric === undefined || this.#isClosed) {
        metric = this.#addMetric(name);
        if (metric === undefined) return;
      }
      this.#lastName = name;
      this.#lastMetric = metric;
    }
    metric.histogram.record(ms);
    if (isError) metric.errors++;
    if (ms >= this.#slowThresholdMs) this.#reportSlow(metric, name, ms, isError, scope);
    for (; scope !== undefined; scope = scope.parent) {
      if (!scope.ended) scope.addOperation(name, ms, isError, this.#maxMetrics);
    }
  }

  #addMetric(name: string): Metric | undefined {
    checkName(name);
    if (this.#isClosed) {
      this.#droppedRecords++;
      return undefined;
    }
    if (this.#metrics.size >= this.#maxMetrics) {
      this.#droppedRecords++;
      if (!this.#hasWarnedDrop) {
        this.#hasWarnedDrop = true;
        this.#logger.warn(
          { name, maxMetrics: this.#maxMetrics },
          'profiler metric-name cap reached; records under new names are dropped',
        );
      }
      return undefined;
    }
    const metric: Metric = {
      histogram: new LatencyHistogram(this.#histogramOptions),
      errors: 0,
      slow: 0,
      lastSlowLogAt: Number.NEGATIVE_INFINITY,
    };
    this.#metrics.set(name, metric);
    return metric;
  }

  #reportSlow(metric: Metric, name: string, ms: number, isError: boolean, scope: ScopeState | undefined): void {
    metric.slow++;
    const event: SlowOperation = { name, ms, isError, thresholdMs: this.#slowThresholdMs, scope: scope?.name };
    const at = this.#now();
    if (at - metric.lastSlowLogAt >= SLOW_LOG_INTERVAL_MS) {
      metric.lastSlowLogAt = at;
      this.#logger.warn(event, 'slow operation');
    }
    if (this.#onSlow) this.#callSafely('onSlow', this.#onSlow, event);
  }

  #callSafely<E>(which: string, callback: (event: E) => void, event: E): void {
    try {
      callback(event);
    } catch (error) {
      this.#logger.error({ err: error, callback: which }, `Profiler ${which} callback threw`);
    }
  }

  #latestMonitor(): EventLoopMonitor | undefined {
    let latest: EventLoopMonitor | undefined;
    for (const monitor of this.#monitors) latest = monitor;
    return latest;
  }

  #scheduleMemorySample(): void {
    const interval = this.#memorySampleIntervalMs;
    if (interval === undefined || this.#isClosed) return;
    this.#memoryTimer = this.#clock.setTimeout(
      () => {
        const { heapUsed } = process.memoryUsage();
        if (heapUsed > this.#peakHeapUsed) this.#peakHeapUsed = heapUsed;
        this.#scheduleMemorySample();
      },
      interval,
      { unref: true },
    );
  }
}

/** ms since `startedAt`, never negative (a custom `now` that steps back must not make time() throw). */
function elapsedSince(now: () => number, startedAt: number): number {
  const elapsed = now() - startedAt;
  return elapsed > 0 ? elapsed : 0;
}

function toStats(metric: Metric): OperationStats {
  const s = metric.histogram.summary();
  return {
    count: s.count,
    errors: metric.errors,
    min: s.min,
    mean: s.mean,
    max: s.max,
    p50: s.p50,
    p90: s.p90,
    p95: s.p95,
    p99: s.p99,
    p999: s.p999,
    sum: s.sum,
    slow: metric.slow,
  };
}

function checkName(name: unknown): void {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_LENGTH) {
    throw new ConfigError(
      'Profiler name',
      `metric name must be a non-empty string of at most ${MAX_NAME_LENGTH} characters, got ${
        typeof name === 'string' ? `${name.length} characters` : typeof name
      }`,
    );
  }
}

function checkLogger(logger: object): void {
  for (const method of ['debug', 'info', 'warn', 'error'] as const) {
    if (typeof (logger as Record<string, unknown>)[method] !== 'function') {
      throw new ConfigError('Profiler.logger', `Profiler.logger must have a ${method}() method`);
    }
  }
}

function checkClock(clock: object): void {
  for (const method of ['now', 'setTimeout', 'clearTimeout'] as const) {
    if (typeof (clock as Record<string, unknown>)[method] !== 'function') {
      throw new ConfigError('Profiler.clock', `Profiler.clock must have a ${method}() method`);
    }
  }
}
