/**
 * Public types of the job queue: job states, the job a handler sees, enqueue options, the snapshot
 * `get(id)` returns, events and statistics.
 * @module
 */

import type { RetryOptions } from '../core/backoff.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { LatencyRecorder } from '../core/recorder.js';
import type { StorageAdapter } from '../storage/types.js';

/** Which backend stores a queue's jobs: the kind of its storage adapter. */
export type QueueBackendKind = StorageAdapter['kind'];

/** Life cycle of a job: `queued → running → succeeded | failed | cancelled` (and back to `queued` on retry). */
export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

/** Every {@link JobStatus}, in life-cycle order. */
export const JOB_STATUSES: readonly JobStatus[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];

/**
 * Backoff between attempts of a failing job: the core retry shape without `retries` (the number of
 * attempts is `attempts`). Exponential with full jitter by default.
 */
export type JobBackoff = Partial<Omit<RetryOptions, 'retries'>>;

/** Progress a handler reported through {@link JobContext.progress}. */
export interface JobProgress {
  /** Units done so far. */
  done: number;
  /** Units in all, when known. */
  total?: number;
  /** Free-form name of the current stage, e.g. `"simulating"`. */
  stage?: string;
}

/** How a failed job's error is kept: message and stack of the last attempt's error. */
export interface JobErrorInfo {
  /** The error's `name`, e.g. `TypeError` or `TimeoutError`. */
  name: string;
  /** The error's message. */
  message: string;
  /** The stack trace, at most 8,000 characters. */
  stack?: string;
  /** The error's `code` when it had one (hotpath errors always do). */
  code?: string;
}

/** A snapshot of one job, as `get(id)` and `list()` return it. Times are epoch milliseconds. */
export interface JobInfo<Data = unknown, Result = unknown> {
  /** Sortable id (UUIDv7). */
  id: string;
  /** The job type (which handler runs it). */
  type: string;
  /** The data it was enqueued with, as stored (JSON). */
  data: Data;
  /** Where it is in its life cycle. */
  status: JobStatus;
  /** Higher runs first. */
  priority: number;
  /** Latest reported progress, if any. */
  progress: JobProgress | undefined;
  /** The handler's return value once `succeeded`. */
  result: Result | undefined;
  /** The last attempt's error (set while retrying and once `failed`). */
  error: JobErrorInfo | undefined;
  /** Attempts started so far (a claim counts, a graceful hand-back does not). */
  attempts: number;
  /** Attempts allowed; undefined when left to the worker's defaults. */
  maxAttempts: number | undefined;
  /** Dedupe key, if enqueued with one. */
  key: string | undefined;
  /** Who submitted it, if enqueued with an `owner`. */
  owner: string | undefined;
  /** When it was enqueued. */
  createdAt: number;
  /** When the job becomes (or became) eligible to run. */
  runAt: number;
  /** Start of the latest attempt. */
  startedAt: number | undefined;
  /** When it reached a final status. */
  finishedAt: number | undefined;
  /** True when `cancel(id)` was called while it was running elsewhere. */
  cancelRequested: boolean;
}

/** What a handler receives next to the job's data. */
export interface JobContext {
  /** The job's id. */
  readonly id: string;
  /** The job's type. */
  readonly type: string;
  /** The attempt number, from 1. */
  readonly attempt: number;
  /** Attempts allowed in all. */
  readonly maxAttempts: number;
  /** The job's priority (higher runs first). */
  readonly priority: number;
  /**
   * Aborted on timeout (`TimeoutError`), cancel (`JobCancelledError`), lost lease or shutdown. A handler
   * should stop promptly; its concurrency slot stays taken until it really settles.
   */
  readonly signal: AbortSignal;
  /**
   * Reports progress. Cheap: stored at most once per `progressIntervalMs` (the last call is always
   * stored) and emitted as a `progress` event on every call.
   * @throws ConfigError when `done`/`total` are not finite numbers >= 0 or `stage` is over 200 characters.
   */
  progress(done: number, total?: number, stage?: string): void;
}

/** A job handler: returns the job's result (JSON-serialisable), or throws to fail the attempt. */
export type JobHandler<Data = unknown, Result = unknown> = (data: Data, job: JobContext) => Promise<Result> | Result;

/** Per-type options given to `register`. Each falls back to the queue's `defaults`. */
export interface JobTypeOptions {
  /** Attempts in all, 1–1,000. */
  attempts?: number;
  /** Backoff between attempts. */
  backoff?: JobBackoff;
  /** Per-attempt time limit in ms: the signal aborts with `TimeoutError` and the attempt fails. */
  timeoutMs?: number;
}

/** Options of `enqueue`. */
export interface EnqueueOptions {
  /** Higher runs first; an integer in [-1,000, 1,000], default 0. */
  priority?: number;
  /** Run no earlier than this many ms from now (>= 0). */
  delayMs?: number;
  /** Run no earlier than this time (epoch ms or Date). Not together with `delayMs`. */
  runAt?: number | Date;
  /** Attempts in all (1–1,000); default: the worker's type or queue default. */
  attempts?: number;
  /** Backoff between attempts; default: the worker's type or queue default. */
  backoff?: JobBackoff;
  /** Per-attempt time limit in ms; default: the worker's type or queue default. */
  timeoutMs?: number;
  /**
   * Dedupe key (1–256 characters): while a job with this key is queued or running (or finished less
   * than `keyRetentionMs` ago), enqueueing it again returns the existing id and writes nothing.
   */
  key?: string;
  /** How long a finished job keeps its key reserved, in ms (default: the queue's `defaults.keyRetentionMs`, 0). */
  keyRetentionMs?: number;
  /**
   * Who submitted the job (1–200 characters), kept with it: the HTTP handlers set it from their
   * `owner(req)` and answer only its owner by default.
   */
  owner?: string;
  /**
   * A storage transaction (the `tx` of `storage.transaction(tx => …)`): the job exists if and only if
   * that transaction commits. Memory backend: enqueued at once.
   */
  tx?: StorageAdapter;
}

/** One entry of `enqueueMany`. */
export interface EnqueueManyEntry<Type extends string = string, Data = unknown> extends Omit<EnqueueOptions, 'tx'> {
  /** The job type. */
  type: Type;
  /** The job's data (JSON-serialisable). */
  data: Data;
}

/** Options of `purge`: which finished jobs to delete. */
export interface PurgeOptions {
  /** Delete jobs in this final status; `queued` and `running` are refused with `ConfigError`. */
  status: 'succeeded' | 'failed' | 'cancelled';
  /** Only jobs that finished at least this many ms ago (default: any finish time). */
  olderThanMs?: number;
  /** Only jobs of this type. */
  type?: string;
  /** Delete at most this many jobs (default: every match). Deletes run in chunks of 1,000. */
  limit?: number;
  /** Count the matching jobs without deleting them (default false). */
  dryRun?: boolean;
}

/** Filter and page of `list`. */
export interface ListOptions {
  /** Only jobs in this status. */
  status?: JobStatus;
  /** Only jobs of this type. */
  type?: string;
  /** Page size, 1–1,000 (default 100). */
  limit?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
}

/** A page of jobs in creation order; `nextCursor` is undefined on the last page. */
export interface JobPage {
  /** The jobs of this page. */
  items: JobInfo[];
  /** Pass as `cursor` for the next page; undefined on the last page. */
  nextCursor: string | undefined;
}

/** Options of `wait`. */
export interface WaitForJobOptions {
  /** Give up after this many ms with `TimeoutError` (the job keeps running). */
  timeoutMs?: number;
  /** Stops waiting (not the job) with the signal's reason. */
  signal?: AbortSignal;
}

/** Options of `stop`. */
export interface StopOptions {
  /** Let running jobs finish (default true); false aborts them at once. */
  graceful?: boolean;
  /** The whole shutdown's deadline in ms (default 30,000). */
  timeoutMs?: number;
}

/** A recurring job firing every N ms, on multiples of N since the epoch (so all processes agree). */
export interface EverySpec {
  /** Interval in ms (an integer >= 10). */
  every: number;
}

/** A recurring job firing on a cron pattern. */
export interface CronSpec {
  /** Cron pattern in croner syntax (5 fields, or 6 with seconds), e.g. `"0 3 * * *"`. */
  cron: string;
  /** IANA time zone of the pattern, e.g. `"Europe/Oslo"` (default: the process's). */
  timezone?: string;
}

/** When a recurring job fires: every N ms, or on a cron pattern. */
export type ScheduleSpec = EverySpec | CronSpec;

/** Options of `schedule`. */
export interface ScheduleOptions {
  /** Priority of the jobs it creates. */
  priority?: number;
  /** Attempts of the jobs it creates. */
  attempts?: number;
  /** Time limit of the jobs it creates, in ms. */
  timeoutMs?: number;
}

/** Queue-wide defaults for jobs that do not set their own. */
export interface JobDefaults {
  /** Attempts in all (default 3). */
  attempts?: number;
  /** Backoff between attempts (default base 1 s, cap 5 min, factor 2, full jitter). */
  backoff?: JobBackoff;
  /** Per-attempt time limit in ms (default: none). */
  timeoutMs?: number;
  /** How long a finished job keeps its dedupe key reserved, in ms (default 0). */
  keyRetentionMs?: number;
}

/** Options of `new JobQueue`. */
export interface JobQueueOptions {
  /**
   * Where jobs live: none or a memory adapter → in this process only; a SQLite or PostgreSQL adapter →
   * durable, in tables `hotpath_jobs` / `hotpath_schedules` that the queue creates on its connection.
   */
  storage?: StorageAdapter;
  /** Jobs this process runs at once (default 1, at most 10,000). */
  concurrency?: number;
  /**
   * How often an idle worker looks for work, in ms (default 1,000). PostgreSQL wakes at once through
   * LISTEN/NOTIFY; this is the fallback and the delay bound for delayed jobs and retries on SQL backends.
   */
  pollIntervalMs?: number;
  /** Lease of a claimed job in ms (default 30,000); a dead worker's jobs are taken again after it. */
  leaseMs?: number;
  /** Period of the one lease-renewal timer per worker, in ms (default `leaseMs / 3`). */
  heartbeatMs?: number;
  /** How long finished jobs and results are kept, in ms (default 1 day). */
  resultTtlMs?: number;
  /** Period of the background sweep of expired results, in ms (default 60,000). */
  sweepIntervalMs?: number;
  /**
   * Anti-starvation: a waiting job gains one priority level per this many ms of waiting. Default: off.
   * On SQL backends ordering by aged priority cannot use the ready-rows index: claims scan the ready rows.
   */
  priorityAgingMs?: number;
  /** Jobs claimed per round trip, at most (default `min(concurrency, 500)`). */
  claimBatchSize?: number;
  /** Minimum gap between two stored progress writes of one job, in ms (default 250). */
  progressIntervalMs?: number;
  /** A handler still running this long after its signal was aborted is reported `stalled`, in ms (default 5,000). */
  stallGraceMs?: number;
  /** Defaults of jobs that do not set their own. */
  defaults?: JobDefaults;
  /**
   * The job types that may be enqueued (default: any). With it, enqueuing or scheduling a type not in
   * the list (a typo) throws `ConfigError` instead of writing a job no worker will ever claim. A typed
   * job map (`new JobQueue<{ email: EmailData }>()`) makes the same mistake a compile error.
   */
  knownTypes?: readonly string[];
  /** A name for this worker in logs and `health()` (default: host pid and a random suffix). */
  workerId?: string;
  /** Time source (default: the system clock); tests pass a `ManualClock`. */
  clock?: Clock;
  /** Receives warnings (stalled handlers, lost leases, background errors) and job failures. */
  logger?: Logger;
  /** Receives `queue.job.<type>` run times and `queue.wait` queue times. */
  profiler?: LatencyRecorder;
}

/** Events of a {@link JobQueue}; payloads are snapshots of the job in this process. */
export type JobQueueEvents = {
  /** A job succeeded; `result` is its return value. */
  completed: [job: JobEventInfo, result: unknown];
  /** An attempt failed; `willRetry` tells whether another attempt is scheduled. */
  failed: [job: JobEventInfo, error: unknown, willRetry: boolean];
  /** A handler reported progress. */
  progress: [job: JobEventInfo, progress: JobProgress];
  /** A handler did not settle within `stallGraceMs` after its signal was aborted; its slot stays taken. */
  stalled: [job: JobEventInfo, reason: unknown];
  /** A running job was cancelled once its handler settled. */
  cancelled: [job: JobEventInfo];
  /** A background operation (claim, heartbeat, sweep) failed; the queue keeps going and retries. */
  error: [error: unknown];
};

/** The job fields carried by events. */
export interface JobEventInfo {
  /** The job's id. */
  id: string;
  /** The job's type. */
  type: string;
  /** The attempt that ended or reported, from 1. */
  attempt: number;
  /** Attempts allowed in all. */
  maxAttempts: number;
  /** The job's priority. */
  priority: number;
  /** Time from when the job was due (`runAt`) to when this attempt started, in ms. */
  waitMs: number;
  /** How long the handler ran, in ms; set on `completed`, `failed` and `cancelled`. */
  runMs?: number;
}

/** Plain-number counters of this process since construction (see `health()` for stored counts). */
export interface JobQueueStats {
  /** Jobs enqueued through this instance (deduped ones excluded). */
  enqueued: number;
  /** Jobs claimed by this worker. */
  claimed: number;
  /** Handlers running now (including ones that ignore their aborted signal). */
  running: number;
  /** Free concurrency slots. */
  idleSlots: number;
  /** Jobs that succeeded here. */
  succeeded: number;
  /** Attempts that failed (retried or not). */
  failedAttempts: number;
  /** Jobs that reached `failed`. */
  failed: number;
  /** Failed attempts scheduled again with backoff. */
  retried: number;
  /** Jobs cancelled (queued ones by this instance, running ones here once settled). */
  cancelled: number;
  /** Attempts that hit their `timeoutMs`. */
  timedOut: number;
  /** Handlers reported stuck (still running `stallGraceMs` after their signal was aborted). */
  stalled: number;
  /** Running jobs whose lease was found taken over (their outcome was discarded). */
  leasesLost: number;
  /** Leases handed back on stop without spending an attempt. */
  released: number;
  /** Expired leases this worker put back in line (or failed after the last attempt). */
  reaped: number;
  /** Finished jobs deleted by the retention sweep. */
  swept: number;
  /** Recurring-job ticks fired by this process. */
  scheduledFired: number;
  /** Background operations that failed (claims, heartbeats, sweeps), logged and retried. */
  backgroundErrors: number;
}

/** Result of `health()`. */
export interface JobQueueHealth {
  /** Backend reachable and, if started, the worker loop alive. */
  ok: boolean;
  /** Which backend stores the jobs. */
  backend: QueueBackendKind;
  /** The backend answered the count query. */
  backendReachable: boolean;
  /** This process is claiming jobs. */
  workerRunning: boolean;
  /** This worker's id. */
  workerId: string;
  /** Handlers running in this process. */
  running: number;
  /** Stored jobs per status (all processes). */
  counts: Record<JobStatus, number>;
  /** Age of the oldest job ready to run but not started, in ms (0 when none). */
  oldestQueuedAgeMs: number;
  /** Last background error message, if the most recent background operation failed. */
  error?: string;
}
