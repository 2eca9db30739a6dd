/**
 * `QueueManager`: the facade a host app wires in — a JobQueue on the app's storage and profiler, the
 * status payload polling clients need, health and stats for dashboards, and HTTP handlers for
 * submit → 202 Accepted → poll → cancel.
 * @module
 */
import { type Clock, systemClock } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import { validateOptions } from '../core/options.js';
import type { LatencyRecorder } from '../core/recorder.js';
import type { StorageAdapter } from '../storage/types.js';
import {
  createJobHttpHandlers,
  type HttpHandlerOptions,
  type JobHttpHandlers,
  type JobStatusPayload,
} from './http-handlers.js';
import { JobQueue } from './job-queue.js';
import type {
  EnqueueOptions,
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
  /** Options of the HTTP handlers (`basePath`, `maxBodyBytes`). */
  http?: HttpHandlerOptions;
  /** Job types clients may submit over HTTP (default: every type registered here). */
  submitTypes?: readonly string[];
}

/** Summary of recent latencies, in ms (0 when there are no samples). */
export interface QueueLatencySummary {
  /** Samples in the window (the last 1,024 jobs at most). */
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

/** Samples kept per latency window: enough for a stable p99, small enough to sort on demand. */
const WINDOW_SAMPLES = 1_024;
/** Throughput is counted in 60 one-second buckets. */
const BUCKETS = 60;

/** A fixed ring of recent samples. */
class SampleWindow {
  readonly #samples = new Float64Array(WINDOW_SAMPLES);
  #count = 0;
  #next = 0;

  add(ms: number): void {
    this.#samples[this.#next] = ms;
    this.#next = (this.#next + 1) % WINDOW_SAMPLES;
    if (this.#count < WINDOW_SAMPLES) this.#count++;
  }

  summary(): QueueLatencySummary {
    if (this.#count === 0) return { count: 0, p50: 0, p95: 0, p99: 0, max: 0 };
    const sorted = this.#samples.slice(0, this.#count).sort();
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
    return { count: this.#count, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: sorted[sorted.length - 1] as number };
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
  readonly #wait = new SampleWindow();
  readonly #run = new SampleWindow();
  readonly #buckets = new Uint32Array(BUCKETS);
  #bucketSecond = 0;

  /** @throws ConfigError for bad options (including every JobQueue option). */
  constructor(options: QueueManagerOptions = {}) {
    const { storage, http, submitTypes, profiler, ...queueOptions } = options;
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
    // Wait and run times go to the caller's profiler and to this manager's windows for `stats()`.
    const recorder: LatencyRecorder = {
      record: (name, ms, isError) => {
        if (name === 'queue.wait') this.#wait.add(ms);
        else if (name.startsWith('queue.job.')) this.#run.add(ms);
        profiler?.record(name, ms, isError);
      },
    };
    if (profiler?.noteQuery) recorder.noteQuery = (shape) => profiler.noteQuery?.(shape);
    const jobQueueOptions: JobQueueOptions = { ...queueOptions, profiler: recorder };
    if (adapter !== undefined) jobQueueOptions.storage = adapter;
    this.queue = new JobQueue<Jobs>(jobQueueOptions);
    this.queue.on('completed', () => this.#countFinished());
    this.queue.on('failed', (_job, _error, willRetry) => {
      if (!willRetry) this.#countFinished();
    });
  }

  /**
   * Registers a job type's handler (see {@link JobQueue.register}).
   * @throws ConfigError for a bad or duplicate type; ClosedError after `close()`.
   */
  register<Type extends keyof Jobs & string>(
    type: Type,
    handler: JobHandler<Jobs[Type]>,
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
      waitMs: this.#wait.summary(),
      runMs: this.#run.summary(),
      queue: this.queue.stats(),
    };
  }

  /**
   * HTTP handlers for submit (202 + status URL), status and cancel, over this manager. Clients may
   * submit only `submitTypes` (default: the types registered here).
   * @throws ConfigError for bad `http` options.
   */
  get http(): JobHttpHandlers {
    this.#http ??= createJobHttpHandlers(
      {
        enqueue: (type, data, options) => this.queue.enqueue(type as keyof Jobs & string, data as never, options),
        status: (id) => this.status(id),
        cancel: (id) => this.cancel(id),
        accepts: (type) => (this.#submitTypes ? this.#submitTypes.has(type) : this.#registered.has(type)),
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
