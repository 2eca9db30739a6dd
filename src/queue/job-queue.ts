/**
 * The backend-agnostic job queue engine: the public API, and claim → run → settle. Its parts live
 * beside it: options (`queue-options.ts`), the run (`running-job.ts`), batched outcome writes
 * (`completion-writer.ts`), progress throttling (`progress-writer.ts`), heartbeat/reaper/sweep
 * (`maintenance.ts`), recurring jobs (`schedules.ts`) and waiters (`job-waiters.ts`). Backends only
 * store; every decision is made here.
 * @module
 */
import { abortReason } from '../core/abort.js';
import { backoffDelay, type ResolvedRetryOptions } from '../core/backoff.js';
import { ClosedError, ConfigError, JobCancelledError, TimeoutError } from '../core/errors.js';
import { TypedEmitter } from '../core/events.js';
import { sortableId } from '../core/ids.js';
import { checkString, validateOptions } from '../core/options.js';
import type { SqlAccess, StorageAdapter } from '../storage/types.js';
import type { ClaimedJob, Completion, NewJob, QueueBackend } from './backend.js';
import { createQueueBackend, initOnce, transactionSql } from './backends/create-backend.js';
import { ClaimLoop } from './claim-loop.js';
import { CompletionWriter, type PendingCompletion } from './completion-writer.js';
import { listJobs, readHealth, toJobInfo } from './job-info.js';
import { buildJob, buildJobs, checkJobType, errorJson, fastJson, MAX_TIMER_MS, toJson } from './job-validation.js';
import { DrainWaiters, JobWaiters, waitForJob } from './job-waiters.js';
import { KeepAlive } from './keep-alive.js';
import { Maintenance } from './maintenance.js';
import { type OutcomeEvents, reportOutcome, warnLeaseLost } from './outcome-events.js';
import { ProgressWriter } from './progress-writer.js';
import {
  checkKnownType,
  emptyQueueStats,
  type QueueContext,
  type QueueSettings,
  resolveBackoff,
  resolveQueueSettings,
  resolveTypeConfig,
  SCHEDULE_OPTIONS_SCHEMA,
  type TypeConfig,
} from './queue-options.js';
import { parseRecurrence } from './recurrence.js';
import { RunWatchdog } from './run-watchdog.js';
import { RunningJob } from './running-job.js';
import { isSandboxedHandlerSpec, SandboxedHandler, type SandboxedHandlerSpec } from './sandboxed-handler.js';
import { Schedules } from './schedules.js';
import type {
  EnqueueManyEntry,
  EnqueueOptions,
  JobBackoff,
  JobHandler,
  JobInfo,
  JobPage,
  JobProgress,
  JobQueueEvents,
  JobQueueHealth,
  JobQueueOptions,
  JobQueueStats,
  JobTypeOptions,
  ListOptions,
  PurgeOptions,
  QueueBackendKind,
  ScheduleOptions,
  ScheduleSpec,
  StopOptions,
  WaitForJobOptions,
} from './types.js';

/** The worker's life cycle. */
type WorkerState = 'idle' | 'started' | 'stopping' | 'closed';

/**
 * A priority job queue over memory, SQLite or PostgreSQL with at-least-once delivery.
 *
 * Producers call `enqueue`; workers `register` handlers and `start()`. Higher `priority` runs first,
 * FIFO by `runAt` then id within a priority. A claimed job is leased for `leaseMs`, renewed by one
 * heartbeat timer per worker; if the worker dies the job is claimed again after the lease expires,
 * so a handler may run more than once and should be idempotent.
 *
 * @example
 * ```ts
 * const queue = new JobQueue({ storage: new SqliteStorage({ filename: 'app.db' }), concurrency: 8 });
 * queue.register('forecast', async (data, job) => {
 *   job.progress(0, 100, 'loading');
 *   return runForecast(data, { signal: job.signal });
 * });
 * await queue.start();
 * const id = await queue.enqueue('forecast', { region: 'eu' }, { priority: 5 });
 * const result = await queue.wait(id, { timeoutMs: 60_000 });
 * ```
 */
export class JobQueue<
  Jobs extends Record<string, unknown> = Record<string, unknown>,
> extends TypedEmitter<JobQueueEvents> {
  readonly #backend: QueueBackend;
  readonly #settings: QueueSettings;
  /** What the engine's parts share (backend, settings, counters, state, error sink). */
  readonly #context: QueueContext;
  readonly #events: OutcomeEvents = {
    listens: (event) => this.listenerCount(event) > 0,
    emit: (event, ...args) => this.emit(event, ...args),
  };
  readonly #types = new Map<string, TypeConfig>();
  /** Thread pools of the types registered with `{ file }`, closed by `close()`. */
  readonly #sandboxes: SandboxedHandler[] = [];
  #typeList: string[] = [];
  /** Runs whose outcome is still open, by job id. */
  readonly #running = new Map<string, RunningJob>();
  /** Runs whose handler has not settled yet, finalized or not (for stall reports and slot accounting). */
  #unsettled = 0;
  /** Concurrency slots taken: a slot is freed once its run settled and its outcome was written. */
  #busy = 0;
  /** Runs finalized whose completion waits for their last progress write (not yet queued for writing). */
  #finalizing = 0;
  #state: WorkerState = 'idle';
  /** Creates the backend's tables once. */
  readonly #init: (inTx?: SqlAccess) => Promise<void>;
  #stopPromise: Promise<void> | undefined;
  #closePromise: Promise<void> | undefined;
  #unsubscribe: (() => Promise<void>) | undefined;
  #lastError: string | undefined;

  readonly #claims: ClaimLoop;
  readonly #watchdog: RunWatchdog;
  readonly #completions: CompletionWriter;
  readonly #progress: ProgressWriter;
  readonly #maintenance: Maintenance;
  readonly #schedules: Schedules;
  readonly #waiters: JobWaiters;
  readonly #drain: DrainWaiters;

  readonly #stats = emptyQueueStats();
  /** Holds the process open while started and while a `wait()` is pending. */
  readonly #keepAlive = new KeepAlive();
  #releaseWorkerHold: (() => void) | undefined;

  /** @throws ConfigError for unknown or out-of-range options, or a storage adapter of an unknown kind. */
  constructor(options: JobQueueOptions = {}) {
    super();
    const settings = resolveQueueSettings(options);
    this.#settings = settings;
    const backend = createQueueBackend(options.storage, settings.agingMs);
    this.#backend = backend;
    this.#init = initOnce(backend);
    // The parts share one small context; each adds the few engine calls it needs.
    const context: QueueContext = (this.#context = {
      backend,
      settings,
      stats: this.#stats,
      isStarted: () => this.#state === 'started',
      onError: (what, error) => this.#backgroundError(what, error),
    });
    this.#claims = new ClaimLoop({
      ...context,
      types: () => this.#typeList,
      freeSlots: () => settings.concurrency - this.#busy,
      run: (job) => this.#run(job),
      handBack: (jobs) => this.#handBack(jobs),
    });
    this.#watchdog = new RunWatchdog({
      ...context,
      onTimeout: (job, timeoutMs) => this.#onTimeout(job, timeoutMs),
      onStalled: (job, reason) => this.emit('stalled', job.info, reason),
    });
    this.#completions = new CompletionWriter({
      ...context,
      onWritten: (entry, applied) => this.#onWritten(entry, applied),
      isClosed: () => this.#state === 'closed',
    });
    this.#progress = new ProgressWriter({ ...context, onLeaseLost: (job) => this.#onLeaseLost(job) });
    this.#maintenance = new Maintenance({
      ...context,
      openRuns: () => [...this.#running.values()].filter((job) => !job.isFinalized),
      onLeaseLost: (id) => {
        const job = this.#running.get(id);
        if (job !== undefined) this.#onLeaseLost(job);
      },
      onCancelRequested: (id) => this.#requestCancelOf(id),
      onReaped: () => this.#wake(),
      needsHeartbeat: () => this.#state === 'started' || (this.#state === 'stopping' && this.#running.size > 0),
    });
    this.#schedules = new Schedules({
      ...context,
      onFired: (type) => {
        if (this.#types.has(type)) this.#wake();
      },
    });
    const clock = settings.clock;
    this.#waiters = new JobWaiters(clock);
    this.#drain = new DrainWaiters(clock, () => this.#isDrained());
  }

  /** Which backend stores the jobs. */
  get backend(): QueueBackendKind {
    return this.#backend.kind;
  }

  /** This worker's id (logs, `health()`). */
  get workerId(): string {
    return this.#settings.workerId;
  }

  /** True between `start()` and `stop()`. */
  get isRunning(): boolean {
    return this.#state === 'started';
  }

  /**
   * Registers the handler of a job type; this process will claim jobs of that type once started.
   * Producers need not register anything.
   * @throws ConfigError for a bad type name or options, or a type registered twice.
   * @throws ClosedError after `close()`.
   */
  register<Type extends keyof Jobs & string>(
    type: Type,
    handler: JobHandler<Jobs[Type]> | SandboxedHandlerSpec,
    options: JobTypeOptions = {},
  ): this {
    this.#assertOpen();
    // { file } runs the handler in a worker thread that a timeout or cancel terminates (sandboxed-handler.ts);
    // building the spec starts no thread.
    const sandbox = isSandboxedHandlerSpec(handler)
      ? new SandboxedHandler(handler, 'JobQueue.register.handler')
      : undefined;
    const config = resolveTypeConfig(
      this.#settings,
      type,
      (sandbox?.handler ?? handler) as JobHandler<never, unknown>,
      options,
      sandbox?.timeoutMs,
    );
    if (this.#types.has(type)) {
      throw new ConfigError('JobQueue.register.type', `job type "${type}" already has a handler`);
    }
    if (sandbox !== undefined) this.#sandboxes.push(sandbox);
    this.#types.set(type, config);
    this.#typeList = [...this.#types.keys()];
    this.#wake();
    return this;
  }

  /**
   * Adds a job; returns its id (or, for a `key` already held, the id of the job holding it).
   * Any process may enqueue any type, started or not.
   * @throws ConfigError for bad input or a type outside `knownTypes` (nothing is written); StorageError
   * when the backend fails; ClosedError after `close()`.
   */
  async enqueue<Type extends keyof Jobs & string>(
    type: Type,
    data: Jobs[Type],
    options?: EnqueueOptions,
  ): Promise<string> {
    this.#assertOpen();
    const now = this.#settings.clock.now();
    const id = sortableId(now);
    const job = buildJob(type, data, options, now, id, this.#settings.defaultKeyRetentionMs, 'JobQueue.enqueue');
    checkKnownType(this.#settings, job.type, 'JobQueue.enqueue.type');
    const [stored] = await this.#insert([job], now, options?.tx);
    return stored as string;
  }

  /**
   * Adds many jobs in one transaction; returns their ids in input order. All entries are validated
   * before anything is written.
   * @throws ConfigError for any bad entry (nothing is written); ClosedError after `close()`.
   */
  async enqueueMany(
    entries: ReadonlyArray<EnqueueManyEntry<keyof Jobs & string>>,
    options: { tx?: StorageAdapter } = {},
  ): Promise<string[]> {
    this.#assertOpen();
    validateOptions('JobQueue.enqueueMany', options, { tx: { type: 'object' } });
    const { clock, defaultKeyRetentionMs } = this.#settings;
    const now = clock.now();
    const check = (type: string, what: string) => checkKnownType(this.#settings, type, what);
    const jobs = buildJobs(entries, now, defaultKeyRetentionMs, check);
    return jobs.length === 0 ? [] : this.#insert(jobs, now, options.tx);
  }

  /** Writes validated jobs (inside `tx` when given), counts the new ones and wakes the claim loop for them. */
  async #insert(jobs: NewJob[], now: number, tx: StorageAdapter | undefined): Promise<string[]> {
    const sql = transactionSql(this.#backend, tx);
    await this.#init(sql);
    const ids = await this.#backend.insert(jobs, now, sql);
    let wakes = false;
    for (let i = 0; i < ids.length; i++) {
      const job = jobs[i] as NewJob;
      if (ids[i] !== job.id) continue; // deduped: the key's holder
      this.#stats.enqueued++;
      if (!wakes) wakes = this.#types.has(job.type);
    }
    // Inside a transaction the job may not exist yet: PostgreSQL wakes workers at commit, polling does elsewhere.
    if (wakes && sql === undefined) this.#wake();
    return ids;
  }

  /**
   * The job with this id, or undefined (never enqueued, or deleted by the retention sweep).
   * @throws ClosedError after `close()`.
   */
  async get(id: string): Promise<JobInfo | undefined> {
    this.#assertOpen();
    checkString('JobQueue.get.id', id, { nonEmpty: true, maxLength: 200 });
    await this.#init();
    const row = await this.#backend.get(id);
    return row === undefined ? undefined : toJobInfo(row);
  }

  /**
   * Jobs in creation order, filtered by status and type; page with `cursor`. Dead letters are
   * `list({ status: 'failed' })`.
   * @throws ConfigError for bad options; ClosedError after `close()`.
   */
  async list(options: ListOptions = {}): Promise<JobPage> {
    this.#assertOpen();
    validateOptions('JobQueue.list', options, {
      status: { type: 'string', oneOf: ['queued', 'running', 'succeeded', 'failed', 'cancelled'] },
      type: { type: 'string', nonEmpty: true, maxLength: 128 },
      limit: { type: 'number', integer: true, min: 1, max: 1000 },
      cursor: { type: 'string', nonEmpty: true, maxLength: 200 },
    });
    await this.#init();
    return listJobs(this.#backend, options);
  }

  /**
   * Waits until the job finishes and returns its result.
   * @throws JobFailedError when it failed; JobCancelledError when cancelled; TimeoutError after
   * `timeoutMs` (the job keeps going); the signal's reason when aborted; ConfigError for an unknown id.
   */
  async wait<Result = unknown>(id: string, options: WaitForJobOptions = {}): Promise<Result> {
    this.#assertOpen();
    checkString('JobQueue.wait.id', id, { nonEmpty: true, maxLength: 200 });
    validateOptions('JobQueue.wait', options, {
      timeoutMs: { type: 'number', min: 0, max: MAX_TIMER_MS },
      signal: { type: 'object' },
    });
    const { signal, timeoutMs } = options;
    if (signal?.aborted) throw abortReason(signal);
    await this.#init();
    const release = this.#keepAlive.hold();
    const context = {
      backend: this.#backend,
      waiters: this.#waiters,
      settings: this.#settings,
      assertOpen: () => this.#assertOpen(),
    };
    try {
      return await waitForJob<Result>(context, id, timeoutMs, signal);
    } finally {
      release();
    }
  }

  /**
   * Cancels a job: a queued job becomes `cancelled` at once; a running one has its signal aborted
   * (here, or in the process running it, at its next heartbeat) and becomes `cancelled` once its
   * handler settles. Returns false when the job already finished or does not exist.
   * @throws ClosedError after `close()`.
   */
  async cancel(id: string): Promise<boolean> {
    this.#assertOpen();
    checkString('JobQueue.cancel.id', id, { nonEmpty: true, maxLength: 200 });
    await this.#init();
    const local = this.#running.get(id);
    const outcome = await this.#backend.cancel(id, this.#settings.clock.now(), errorJson(new JobCancelledError(id)));
    if (outcome === 'cancelled') {
      this.#stats.cancelled++;
      this.#waiters.notify(id);
      return true;
    }
    if (outcome === 'requested') {
      const running = this.#running.get(id) ?? local;
      if (running !== undefined) this.#requestCancel(running);
      return true;
    }
    return false;
  }

  /**
   * Deletes finished jobs of one status, optionally only those that finished at least `olderThanMs`
   * ago and of one `type`, at most `limit` of them (deletes run in chunks of 1,000). A job whose dedupe
   * `key` is still within its `keyRetentionMs` is kept, so purging never lets a duplicate in. Returns how
   * many were deleted (with `dryRun`, how many would be).
   * @throws ConfigError for a status other than succeeded, failed or cancelled (queued and running jobs are
   * never purged) or bad options; StorageError when the backend fails; ClosedError after `close()`.
   */
  async purge(options: PurgeOptions): Promise<number> {
    this.#assertOpen();
    const status = (options as { status?: unknown } | undefined)?.status;
    if (status === 'queued' || status === 'running') {
      throw new ConfigError(
        'JobQueue.purge.status',
        `JobQueue.purge refuses ${status} jobs: only succeeded, failed or cancelled jobs can be purged (cancel first)`,
      );
    }
    validateOptions('JobQueue.purge', options, {
      status: { type: 'string', oneOf: ['succeeded', 'failed', 'cancelled'], required: true },
      olderThanMs: { type: 'number', min: 0 },
      type: { type: 'string', nonEmpty: true, maxLength: 128 },
      limit: { type: 'number', integer: true, min: 1 },
      dryRun: { type: 'boolean' },
    });
    await this.#init();
    const now = this.#settings.clock.now();
    return this.#backend.purge({
      status: options.status,
      finishedBefore: options.olderThanMs === undefined ? undefined : now - options.olderThanMs,
      type: options.type,
      limit: options.limit ?? Number.MAX_SAFE_INTEGER,
      now,
      dryRun: options.dryRun === true,
    });
  }

  /**
   * Re-runs a `failed` or `cancelled` job (redrive from the dead letters) with its attempts reset.
   * Returns false when the job is in another state or does not exist.
   * @throws ClosedError after `close()`.
   */
  async retry(id: string): Promise<boolean> {
    this.#assertOpen();
    checkString('JobQueue.retry.id', id, { nonEmpty: true, maxLength: 200 });
    await this.#init();
    const done = await this.#backend.retry(id, this.#settings.clock.now());
    if (done) this.#wake();
    return done;
  }

  /**
   * Declares a recurring job: every process that declares it takes part, and each tick fires once
   * across all of them (ticks are stored; none fires twice after a restart, a tick missed while no
   * process ran fires once on start). Ticks fire while this queue is started. Re-declaring with the
   * same spec keeps the stored next tick; a changed spec starts over.
   * @throws ConfigError for a bad name, spec, type (or one outside `knownTypes`), data or options;
   * ClosedError after `close()`.
   */
  async schedule<Type extends keyof Jobs & string>(
    name: string,
    spec: ScheduleSpec,
    type: Type,
    data: Jobs[Type],
    options: ScheduleOptions = {},
  ): Promise<void> {
    this.#assertOpen();
    checkString('JobQueue.schedule.name', name, { nonEmpty: true, maxLength: 200 });
    const recurrence = parseRecurrence(spec, 'JobQueue.schedule.spec');
    checkJobType(type, 'JobQueue.schedule.type');
    checkKnownType(this.#settings, type, 'JobQueue.schedule.type');
    const json = toJson(data, 'JobQueue.schedule.data');
    validateOptions('JobQueue.schedule.options', options, SCHEDULE_OPTIONS_SCHEMA);
    await this.#init();
    await this.#backend.upsertSchedule({
      name,
      spec: recurrence.json,
      type,
      data: json,
      options: JSON.stringify(options),
      nextRunAt: recurrence.nextAfter(this.#settings.clock.now()),
    });
    this.#schedules.add({ name, recurrence, type, data: json, options: { ...options } });
  }

  /**
   * Removes a recurring job everywhere (jobs it already created stay). Returns whether it existed.
   * @throws ClosedError after `close()`.
   */
  async unschedule(name: string): Promise<boolean> {
    this.#assertOpen();
    checkString('JobQueue.unschedule.name', name, { nonEmpty: true, maxLength: 200 });
    await this.#init();
    this.#schedules.delete(name);
    return this.#backend.deleteSchedule(name);
  }

  /**
   * Starts claiming jobs of the registered types, the heartbeat, the lease reaper, the retention
   * sweep and the schedules. Idempotent.
   * @throws ClosedError after `close()`; StorageError when the tables cannot be created.
   */
  async start(): Promise<void> {
    this.#assertOpen();
    if (this.#stopPromise) await this.#stopPromise;
    if (this.#state === 'started') return;
    await this.#init();
    if (this.#state !== 'idle') return;
    this.#state = 'started';
    this.#releaseWorkerHold = this.#keepAlive.hold();
    if (this.#backend.subscribe) {
      try {
        this.#unsubscribe = await this.#backend.subscribe(
          () => this.#wake(),
          (id) => this.#requestCancelOf(id),
        );
      } catch (error) {
        // Polling still finds the work; the hint only makes it faster.
        this.#backgroundError('subscribe', error);
      }
    }
    this.#maintenance.start();
    this.#schedules.start();
    this.#wake();
  }

  /**
   * Stops this worker in stages under one deadline: stop claiming → let running jobs finish →
   * abort the rest → hand their leases back without spending an attempt. Calling it twice is
   * harmless; `enqueue` still works afterwards, and `start()` resumes.
   * @throws ConfigError for bad options.
   */
  async stop(options: StopOptions = {}): Promise<void> {
    validateOptions('JobQueue.stop', options, {
      graceful: { type: 'boolean' },
      timeoutMs: { type: 'number', min: 0, max: MAX_TIMER_MS },
    });
    if (this.#stopPromise) return this.#stopPromise;
    if (this.#state !== 'started') return;
    this.#stopPromise = this.#shutdown(options.graceful ?? true, options.timeoutMs ?? 30_000).finally(() => {
      this.#stopPromise = undefined;
    });
    return this.#stopPromise;
  }

  /**
   * Stops without grace (running jobs are aborted and their leases handed back) and releases timers and
   * listeners. Idempotent; the storage adapter is the caller's and stays open.
   */
  async close(): Promise<void> {
    if (this.#closePromise) return this.#closePromise;
    this.#closePromise = (async () => {
      await this.stop({ graceful: false, timeoutMs: Math.min(this.#settings.stallGraceMs, 5_000) });
      await Promise.all(this.#sandboxes.map((sandbox) => sandbox.close()));
      this.#state = 'closed';
      this.#claims.stop();
      this.#schedules.stop();
      this.#waiters.wakeAll();
      await this.#backend.close();
      this.removeAllListeners();
    })();
    return this.#closePromise;
  }

  /** Same as `close()`, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Counters of this process (plain numbers, cheap). */
  stats(): JobQueueStats {
    const idleSlots = Math.max(0, this.#settings.concurrency - this.#busy);
    return { ...this.#stats, running: this.#unsettled, idleSlots };
  }

  /**
   * Backend reachability, this worker's state, stored counts per status and the age of the oldest
   * ready job. Never throws (except after `close()`).
   * @throws ClosedError after `close()`.
   */
  async health(): Promise<JobQueueHealth> {
    this.#assertOpen();
    const worker = {
      backend: this.#backend.kind,
      workerRunning: this.#state === 'started',
      workerId: this.#settings.workerId,
      running: this.#unsettled,
    };
    return readHealth(this.#backend, worker, this.#settings.clock.now(), () => this.#init(), this.#lastError);
  }

  // -- claim: the claim loop fills free slots, a batch per round trip, and hands each job to #run

  #wake(): void {
    this.#claims.wake();
  }

  #handBack(jobs: readonly ClaimedJob[]): void {
    for (const job of jobs) {
      this.#stats.released++;
      this.#completions.push(
        { kind: 'released', id: job.id, token: job.token, at: this.#settings.clock.now() },
        undefined,
        undefined,
      );
    }
  }

  // -- run

  #run(claimed: ClaimedJob): void {
    const config = this.#types.get(claimed.type);
    if (config === undefined) {
      // Unregistered between claim and run: give it back untouched.
      this.#handBack([claimed]);
      return;
    }
    const { clock, profiler } = this.#settings;
    const now = clock.now();
    const job = new RunningJob(claimed, claimed.maxAttempts ?? config.attempts, now, this.#progressHandler);
    this.#stats.claimed++;
    this.#busy++;
    // The database handed out a job this process still runs: that earlier claim is gone (its lease
    // expired, or the claim was lost in a database crash), so its run is aborted like any lost lease.
    const earlier = this.#running.get(job.id);
    if (earlier !== undefined) this.#onLeaseLost(earlier);
    this.#running.set(job.id, job);
    this.#unsettled++;
    profiler?.record('queue.wait', Math.max(0, now - claimed.runAt));
    this.#watchdog.arm(job, claimed.timeoutMs ?? config.timeoutMs);
    let outcome: Promise<unknown>;
    try {
      const data = JSON.parse(claimed.data) as never;
      const value = config.handler(data, job);
      outcome = value instanceof Promise ? value : Promise.resolve(value);
    } catch (error) {
      outcome = Promise.reject(error);
    }
    outcome.then(
      (result) => this.#onSettled(job, true, result),
      (error: unknown) => this.#onSettled(job, false, error),
    );
  }

  readonly #progressHandler = (job: RunningJob, progress: JobProgress): void => {
    if (job.isFinalized) return;
    this.emit('progress', job.info, progress);
    this.#progress.report(job, progress);
  };

  #onTimeout(job: RunningJob, timeoutMs: number): void {
    this.#stats.timedOut++;
    const error = new TimeoutError(`job ${job.id} (${job.type}) timed out after ${timeoutMs} ms`, timeoutMs);
    this.#watchdog.abort(job, error);
    // The attempt is over: its failure is written now, so a retry does not wait for a handler that
    // ignores its signal. The slot stays taken until the handler settles.
    this.#fail(job, error);
  }

  #requestCancelOf(id: string): void {
    const job = this.#running.get(id);
    if (job !== undefined) this.#requestCancel(job);
  }

  #requestCancel(job: RunningJob): void {
    if (job.isFinalized || job.intent === 'cancel') return;
    job.intent = 'cancel';
    this.#watchdog.abort(job, new JobCancelledError(job.id));
  }

  // -- settle: decide the outcome, queue its fenced write, fire events once it applied

  #onSettled(job: RunningJob, ok: boolean, value: unknown): void {
    job.markSettled();
    this.#unsettled--;
    this.#watchdog.disarm(job);
    this.#settings.profiler?.record(`queue.job.${job.type}`, job.runMs as number, !ok);
    if (job.isFinalized) {
      this.#maybeFreeSlot(job);
      return;
    }
    const at = this.#settings.clock.now();
    if (job.intent === 'release') {
      this.#release(job);
    } else if (job.intent === 'cancel') {
      const error = errorJson(new JobCancelledError(job.id));
      this.#finalize(job, { kind: 'cancelled', id: job.id, token: job.token, error, at });
    } else if (!ok) {
      this.#fail(job, value);
    } else {
      let result: string;
      try {
        result = fastJson(value) ?? toJson(value, `result of job ${job.id} (${job.type})`);
      } catch (error) {
        this.#fail(job, error);
        return;
      }
      this.#finalize(job, { kind: 'succeeded', id: job.id, token: job.token, result, at }, value);
    }
  }

  #fail(job: RunningJob, error: unknown): void {
    const at = this.#settings.clock.now();
    const text = errorJson(error);
    if (job.attempt < job.maxAttempts) {
      const runAt = Math.round(at + backoffDelay(job.attempt, this.#backoffOf(job)));
      this.#finalize(job, { kind: 'retry', id: job.id, token: job.token, error: text, runAt, at }, error);
    } else {
      this.#finalize(job, { kind: 'failed', id: job.id, token: job.token, error: text, at }, error);
    }
  }

  #backoffOf(job: RunningJob): ResolvedRetryOptions {
    const base = this.#types.get(job.type)?.backoff ?? this.#settings.defaultBackoff;
    if (job.claimed.backoff === null) return base;
    try {
      return resolveBackoff('backoff', JSON.parse(job.claimed.backoff) as JobBackoff, base);
    } catch {
      return base;
    }
  }

  #release(job: RunningJob): void {
    this.#finalize(job, { kind: 'released', id: job.id, token: job.token, at: this.#settings.clock.now() });
  }

  /** Decides a run's outcome and queues its fenced write; events fire once the write applied. */
  #finalize(job: RunningJob, completion: Completion, detail?: unknown): void {
    job.outcome = 'decided';
    if (this.#running.get(job.id) === job) this.#running.delete(job.id);
    this.#progress.cancelTimer(job);
    // The last progress report must land before the final status (a progress write after it is fenced out).
    if (this.#progress.hasPending(job)) {
      // Counted until the completion is queued, so shutdown waits for it instead of closing storage under it.
      this.#finalizing++;
      void this.#progress.writeFinal(job).finally(() => {
        this.#finalizing--;
        this.#completions.push(completion, job, detail);
      });
    } else {
      this.#completions.push(completion, job, detail);
    }
    this.#drain.check();
  }

  #onWritten(entry: PendingCompletion, applied: boolean): void {
    const job = entry.job;
    if (job === undefined) return;
    job.outcome = 'written';
    if (applied) reportOutcome(this.#events, this.#context, job, entry.completion, entry.detail);
    else if (entry.completion.kind !== 'released')
      warnLeaseLost(this.#context, job, 'before the outcome was written; outcome discarded');
    if (!this.#waiters.isEmpty) this.#waiters.notify(job.id);
    this.#maybeFreeSlot(job);
    this.#drain.check();
  }

  /** A heartbeat or progress write found the lease taken over: this run's outcome no longer counts. */
  #onLeaseLost(job: RunningJob): void {
    if (job.isFinalized) return;
    job.outcome = 'written';
    if (this.#running.get(job.id) === job) this.#running.delete(job.id);
    this.#progress.cancelTimer(job);
    warnLeaseLost(this.#context, job, '(expired and taken over); aborting this run');
    this.#watchdog.abort(job, new Error(`lease of job ${job.id} was lost`));
    this.#maybeFreeSlot(job);
    this.#drain.check();
  }

  #maybeFreeSlot(job: RunningJob): void {
    if (job.outcome !== 'written' || !job.isSettled) return;
    job.outcome = 'slot-freed';
    this.#busy--;
    this.#wake();
  }

  // -- shutdown

  async #shutdown(graceful: boolean, timeoutMs: number): Promise<void> {
    this.#state = 'stopping';
    this.#claims.stop();
    this.#schedules.stop();
    this.#maintenance.stopMaintenance();
    const abortGraceMs = graceful ? Math.min(1_000, timeoutMs / 4) : Math.min(1_000, timeoutMs);
    if (graceful) await this.#drain.wait(timeoutMs - abortGraceMs);
    if (this.#running.size > 0) {
      const reason = new ClosedError('JobQueue worker (stopping)');
      for (const job of this.#running.values()) {
        if (job.isFinalized) continue;
        job.intent = 'release';
        this.#watchdog.abort(job, reason);
      }
      await this.#drain.wait(abortGraceMs);
      // Handlers that ignore the abort: hand their leases back now; their late outcome is fenced out.
      for (const job of [...this.#running.values()]) if (!job.isFinalized) this.#release(job);
    }
    while (this.#finalizing > 0 || !this.#completions.isIdle) {
      if (this.#finalizing > 0 && this.#completions.isIdle) await new Promise<void>((resolve) => setImmediate(resolve));
      else await this.#completions.flush();
    }
    this.#maintenance.stopHeartbeat();
    if (this.#unsubscribe) {
      const unsubscribe = this.#unsubscribe;
      this.#unsubscribe = undefined;
      await unsubscribe().catch((error: unknown) => this.#backgroundError('unsubscribe', error));
    }
    if (this.#state === 'stopping') this.#state = 'idle';
    this.#releaseWorkerHold?.();
    this.#releaseWorkerHold = undefined;
  }

  #isDrained(): boolean {
    return this.#running.size === 0 && this.#finalizing === 0 && this.#completions.queued === 0;
  }

  // -- helpers

  #assertOpen(): void {
    if (this.#state === 'closed' || this.#closePromise) throw new ClosedError('JobQueue');
  }

  #backgroundError(what: string, error: unknown): void {
    this.#stats.backgroundErrors++;
    this.#lastError = `${what}: ${(error as Error)?.message ?? String(error)}`;
    this.#settings.logger.warn({ err: error, workerId: this.#settings.workerId }, `JobQueue ${what} failed`);
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }
}
