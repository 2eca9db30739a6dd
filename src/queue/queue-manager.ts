/**
 * `QueueManager`: the facade a host app wires in — a JobQueue on the app's storage and profiler, the
 * status payload polling clients need, health and stats for dashboards, and HTTP handlers for
 * submit → 202 Accepted → poll → cancel.
 * @module
 */
import { type Clock, systemClock } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import { validateOptions } from '../core/options.js';
import { LatencyHistogram } from '../profiling/index.js';
import type { StorageAdapter } from '../storage/types.js';
import {
  createJobHttpHandlers,
  type HttpHandlerOptions,
  type JobHttpHandlers,
  type JobStatusPayload,
} from './http-handlers.js';
import { JobQueue } from './job-queue.js';
import type { SandboxedHandlerSpec } from './sandboxed-handler.js';
import type {
  EnqueueOptions,
  JobEventInfo,
  JobHandler,
  JobQueueHealth,
  JobQueueOptions,
  JobQueueStats,
  JobStatus,
  JobTypeOptions,
  StopOptions,
  WaitForJobOptions,
} from './types.js';

/** Anything that carries a storage adapter, such as a `StorageManager`. */
export interface StorageAdapterHolder {
  /** The adapter the queue's tables live next to. */
  readonly adapter: StorageAdapter;
}

/** Options of {@link QueueManager}: the JobQueue's, plus where it lives and how it is served. */
export interface QueueManagerOptions extends Omit<JobQueueOptions, 'storage'> {
  /** A storage adapter, or a `StorageManager` (anything with `adapter`); none → in memory. */
  storage?: StorageAdapter | StorageAdapterHolder;
  /**
   * Options of the HTTP handlers: `basePath`, `maxBodyBytes`, `clientOptions` (job options clients may
   * set, with bounds; default none), `owner(req)` and `authorize(req, action, job)`.
   */
  http?: HttpHandlerOptions;
  /** Job types clients may submit over HTTP (default: every type registered here). */
  submitTypes?: readonly string[];
}

/** Summary of recent latencies, in ms (0 when there are no samples). */
export interface QueueLatencySummary {
  /** Samples in the window (attempts that ended in the last one to two minutes). */
  count: number;
  /** Median. */
  p50: number;
  /** 95th percentile. */
  p95: number;
  /** 99th percentile. */
  p99: number;
  /** Largest sample. */
  max: number;
}

/** Result of {@link QueueManager.stats}. */
export interface QueueManagerStats {
  /** Stored jobs per status (all processes). */
  counts: Record<JobStatus, number>;
  /** Jobs this process finished (succeeded or failed for good) per second, over the last minute. */
  throughputPerSec: number;
  /** Jobs this process finished in the last minute. */
  finishedLastMinute: number;
  /** Time from `runAt` to start, over this process's recent jobs. */
  waitMs: QueueLatencySummary;
  /** Handler run time, over this process's recent jobs. */
  runMs: QueueLatencySummary;
  /** This process's counters. */
  queue: JobQueueStats;
}

/** Throughput is counted in 60 one-second buckets. */
const BUCKETS = 60;
/** Latency windows rotate every minute: a summary covers the current and the previous minute. */
const WINDOW_MS = 60_000;

/**
 * Recent latencies in fixed memory: the profiling module's histogram, two of them rotating each
 * minute, so percentiles follow what happens now instead of everything since start.
 */
class LatencyWindow {
  #current = new LatencyHistogram();
  #previous = new LatencyHistogram();
  #startedAt: number;

  constructor(now: number) {
    this.#startedAt = now;
  }

  add(ms: number, now: number): void {
    this.#rotate(now);
    this.#current.record(ms);
  }

  summary(now: number): QueueLatencySummary {
    this.#rotate(now);
    const { count, p50, p95, p99, max } = new LatencyHistogram().merge(this.#previous).merge(this.#current).summary();
    return { count, p50, p95, p99, max };
  }

  #rotate(now: number): void {
    const windows = Math.floor((now - this.#startedAt) / WINDOW_MS);
    if (windows <= 0) return;
    const previous = this.#previous;
    this.#previous = this.#current;
    this.#current = previous;
    this.#current.reset();
    if (windows > 1) this.#previous.reset();
    this.#startedAt += windows * WINDOW_MS;
  }
}

/**
 * The host app's facade over one {@link JobQueue}: register handlers, enqueue, poll `status(id)`,
 * cancel, and serve the same over HTTP with {@link QueueManager.http}.
 *
 * @example
 * ```ts
 * const jobs = new QueueManager({ storage: new SqliteStorage({ filename: 'app.db' }), concurrency: 4 });
 * jobs.register('forecast', async (data, job) => runForecast(data, job));
 * await jobs.start();
 * http.createServer(async (req, res) => {
 *   if (!(await jobs.http.handle(req, res))) { res.statusCode = 404; res.end(); }
 * }).listen(3000);
 * ```
 */
export class QueueManager<Jobs extends Record<string, unknown> = Record<string, unknown>> {
  /** The queue underneath, for everything the facade does not cover (schedules, list, retry, events). */
  readonly queue: JobQueue<Jobs>;
  readonly #clock: Clock;
  readonly #submitTypes: ReadonlySet<string> | undefined;
  readonly #registered = new Set<string>();
  readonly #httpOptions: HttpHandlerOptions;
  #http: JobHttpHandlers | undefined;
  readonly #wait: LatencyWindow;
  readonly #run: LatencyWindow;
  readonly #buckets = new Uint32Array(BUCKETS);
  #bucketSecond = 0;

  /** @throws ConfigError for bad options (including every JobQueue option). */
  constructor(options: QueueManagerOptions = {}) {
    const { storage, http, submitTypes, ...queueOptions } = options;
    validateOptions(
      'QueueManager',
      { http, submitTypes },
      { http: { type: 'object' }, submitTypes: { type: 'object' } },
    );
    if (submitTypes !== undefined && !Array.isArray(submitTypes)) {
      throw new ConfigError('QueueManager.submitTypes', 'QueueManager.submitTypes must be an array of job types');
    }
    this.#clock = queueOptions.clock ?? systemClock;
    this.#submitTypes = submitTypes === undefined ? undefined : new Set(submitTypes);
    this.#httpOptions = http ?? {};
    const adapter = storage !== undefined && 'adapter' in storage ? storage.adapter : storage;
    const jobQueueOptions: JobQueueOptions = { ...queueOptions };
    if (adapter !== undefined) jobQueueOptions.storage = adapter;
    this.queue = new JobQueue<Jobs>(jobQueueOptions);
    this.#wait = new LatencyWindow(this.#clock.now());
    this.#run = new LatencyWindow(this.#clock.now());
    // Wait and run times of each attempt come with the queue's events (the profiler gets them from the queue).
    const recordTimes = (job: JobEventInfo) => {
      const now = this.#clock.now();
      this.#wait.add(job.waitMs, now);
      if (job.runMs !== undefined) this.#run.add(job.runMs, now);
    };
    this.queue.on('completed', recordTimes);
    this.queue.on('failed', recordTimes);
    this.queue.on('cancelled', recordTimes);
    this.queue.on('completed', () => this.#countFinished());
    this.queue.on('failed', (_job, _error, willRetry) => {
      if (!willRetry) this.#countFinished();
    });
  }

  /**
   * Registers a job type's handler (see {@link JobQueue.register}): a function, or a sandboxed
   * `{ file, exportName?, timeoutMs? }` run in a worker thread that a timeout or cancel terminates.
   * @throws ConfigError for a bad or duplicate type, options or sandboxed spec; ClosedError after `close()`.
   */
  register<Type extends keyof Jobs & string>(
    type: Type,
    handler: JobHandler<Jobs[Type]> | SandboxedHandlerSpec,
    options?: JobTypeOptions,
  ): this {
    this.queue.register(type, handler, options);
    this.#registered.add(type);
    return this;
  }

  /**
   * Enqueues a job; returns its id (see {@link JobQueue.enqueue}).
   * @throws ConfigError for bad input; ClosedError after `close()`.
   */
  enqueue<Type extends keyof Jobs & string>(type: Type, data: Jobs[Type], options?: EnqueueOptions): Promise<string> {
    return this.queue.enqueue(type, data, options);
  }

  /**
   * The polling payload of a job: state, progress, total, stage, result or error; undefined when unknown.
   * @throws ClosedError after `close()`.
   */
  async status(id: string): Promise<JobStatusPayload | undefined> {
    const job = await this.queue.get(id);
    if (job === undefined) return undefined;
    const error =
      job.error === undefined
        ? undefined
        : {
            name: job.error.name,
            message: job.error.message,
            ...(job.error.code === undefined ? {} : { code: job.error.code }),
          };
    return {
      id: job.id,
      type: job.type,
      state: job.status,
      progress: job.progress?.done,
      total: job.progress?.total,
      stage: job.progress?.stage,
      result: job.result,
      error: job.status === 'succeeded' ? undefined : error,
      attempts: job.attempts,
      createdAt: job.createdAt,
      startedAt: job.startedAt,
      finishedAt: job.finishedAt,
      ...(job.owner === undefined ? {} : { owner: job.owner }),
    };
  }

  /**
   * Cancels a job (see {@link JobQueue.cancel}); false when it already finished or is unknown.
   * @throws ClosedError after `close()`.
   */
  cancel(id: string): Promise<boolean> {
    return this.queue.cancel(id);
  }

  /**
   * Waits for a job's result (see {@link JobQueue.wait}).
   * @throws JobFailedError, JobCancelledError, TimeoutError or the signal's reason.
   */
  wait<Result = unknown>(id: string, options?: WaitForJobOptions): Promise<Result> {
    return this.queue.wait<Result>(id, options);
  }

  /** Starts the workers (see {@link JobQueue.start}). @throws ClosedError after `close()`. */
  start(): Promise<void> {
    return this.queue.start();
  }

  /** Staged shutdown of the workers (see {@link JobQueue.stop}). */
  stop(options?: StopOptions): Promise<void> {
    return this.queue.stop(options);
  }

  /** Closes the queue (the storage stays the caller's). Idempotent. */
  close(): Promise<void> {
    return this.queue.close();
  }

  /** Same as `close()`, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Backend reachable, workers alive, oldest queued age and counts. Never throws. */
  health(): Promise<JobQueueHealth> {
    return this.queue.health();
  }

  /**
   * Counts per status, this process's throughput, and wait / run time percentiles of recent jobs.
   * @throws ClosedError after `close()`.
   */
  async stats(): Promise<QueueManagerStats> {
    const health = await this.queue.health();
    this.#rollBuckets();
    let finished = 0;
    for (const count of this.#buckets) finished += count;
    return {
      counts: health.counts,
      throughputPerSec: finished / BUCKETS,
      finishedLastMinute: finished,
      waitMs: this.#wait.summary(this.#clock.now()),
      runMs: this.#run.summary(this.#clock.now()),
      queue: this.queue.stats(),
    };
  }

  /**
   * HTTP handlers for submit (202 + status URL; resolves to the job id), status and cancel, over this
   * manager, and `accepted(id)` for the 202 body of a job you enqueued yourself. Clients may submit only
   * `submitTypes` (default: the types registered here).
   * @throws ConfigError for bad `http` options.
   */
  get http(): JobHttpHandlers {
    this.#http ??= createJobHttpHandlers(
      {
        enqueue: (type, data, options) => this.queue.enqueue(type as keyof Jobs & string, data as never, options),
        status: (id) => this.status(id),
        cancel: (id) => this.cancel(id),
        accepts: (type) => (this.#submitTypes ? this.#submitTypes.has(type) : this.#registered.has(type)),
        now: () => this.#clock.now(),
      },
      this.#httpOptions,
    );
    return this.#http;
  }

  #rollBuckets(): void {
    const second = Math.floor(this.#clock.now() / 1000);
    const gap = second - this.#bucketSecond;
    if (gap <= 0) return;
    for (let i = 1; i <= Math.min(gap, BUCKETS); i++) this.#buckets[(this.#bucketSecond + i) % BUCKETS] = 0;
    this.#bucketSecond = second;
  }

  #countFinished(): void {
    this.#rollBuckets();
    const at = this.#bucketSecond % BUCKETS;
    this.#buckets[at] = (this.#buckets[at] as number) + 1;
  }
}
