/**
 * WorkerPool: CPU-bound functions in worker threads (on piscina), so the event loop keeps serving
 * requests while a calculation runs.
 * @module
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type MessagePort, Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { abortReason } from '../core/abort.js';
import { ClosedError, ConfigError, RateLimitError } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { validateOptions } from '../core/options.js';
import type { LatencyRecorder } from '../core/recorder.js';

/** Options of {@link WorkerPool}. */
export interface WorkerPoolOptions {
  /**
   * Absolute path or `file:` URL of the module whose export runs in the workers (its default export,
   * or the export named by `name`). Plain `.js`/`.mjs`/`.cjs`; workers do not inherit a TS loader.
   */
  filename: string | URL;
  /** Export to call when a run names none (default: the default export). */
  name?: string | undefined;
  /** Most worker threads; integer 1–1024 (default: available cores − 1, at least 1, leaving one for the event loop). */
  maxThreads?: number | undefined;
  /** Threads kept alive when idle; integer 0–`maxThreads` (default 0: threads start on demand). */
  minThreads?: number | undefined;
  /**
   * Tasks that may wait for a thread (beyond one running per thread); one more is rejected at once
   * with RateLimitError. Integer 0–1,000,000 (default 1024).
   */
  maxQueue?: number | undefined;
  /** An idle thread above `minThreads` exits after this long, ms, 0–86,400,000 (default 30,000). */
  idleTimeoutMs?: number | undefined;
  /** Receives each task's duration (queue wait included) as `batch.worker`. */
  profiler?: LatencyRecorder | undefined;
  /** Where pool-level errors are reported (default: silent). */
  logger?: Logger | undefined;
}

/** Per-task options of {@link WorkerPool.run}. */
export interface WorkerRunOptions {
  /** Aborts the task: a queued task is dropped, a running one has its thread terminated. Rejects with `signal.reason`. */
  signal?: AbortSignal | undefined;
  /** Export to call for this task (default: the pool's `name`, else the default export). */
  name?: string | undefined;
  /** Objects moved (not copied) to the worker, such as `ArrayBuffer`s. */
  transferList?: ReadonlyArray<ArrayBuffer | MessagePort> | undefined;
}

/** Counters of a {@link WorkerPool}; plain numbers. */
export interface WorkerPoolStats {
  /** Threads alive now. */
  threads: number;
  /** Tasks waiting for a thread. */
  queued: number;
  /** Tasks submitted and not yet settled (queued + running). */
  pending: number;
  /** Tasks that finished successfully. */
  completed: number;
  /** Tasks that failed (thrown in the worker, aborted or rejected by a full queue). */
  failed: number;
  /** Tasks refused because the queue was full. */
  rejected: number;
  /** Pool-level errors (a worker crashing outside a task, a close timing out), also logged. */
  poolErrors: number;
  /** Share of thread time spent running tasks since start, 0–1. */
  utilization: number;
}

const SCHEMA = {
  filename: { type: 'any', required: true },
  name: { type: 'string', nonEmpty: true },
  maxThreads: { type: 'number', min: 1, max: 1024, integer: true },
  minThreads: { type: 'number', min: 0, max: 1024, integer: true },
  maxQueue: { type: 'number', min: 0, max: 1_000_000, integer: true },
  idleTimeoutMs: { type: 'number', min: 0, max: 86_400_000 },
  profiler: { type: 'object' },
  logger: { type: 'object' },
} as const;

/**
 * Runs a module's exported function in worker threads: `run(data)` posts `data` (structured clone)
 * to an idle thread, or queues it (bounded), and resolves with what the function returns.
 * Usable as a {@link BatchProcessor} handler: `processor.map(items, (item, { signal }) => pool.run(item, { signal }))`.
 *
 * @example
 * ```ts
 * await using pool = new WorkerPool<number[], number>({ filename: new URL('./simulate.mjs', import.meta.url) });
 * const result = await pool.run(prices);
 * ```
 */
export class WorkerPool<In = unknown, Out = unknown> {
  readonly #piscina: Piscina<In, Out>;
  readonly #maxQueue: number;
  /** Tasks accepted at once: one running per thread plus `maxQueue` waiting. */
  readonly #capacity: number;
  readonly #profiler: LatencyRecorder | undefined;
  readonly #filename: string;
  #isClosed = false;
  #closing: Promise<void> | undefined;
  /**
   * Settles once the module has loaded in a probe thread: `undefined`, or the ConfigError that every
   * run rejects with. Started by the first `run`.
   */
  #probe: Promise<ConfigError | undefined> | undefined;
  /** True once the probe succeeded: runs skip the race against it. */
  #isLoadable = false;
  #loadError: ConfigError | undefined;
  /** Tasks submitted and not settled; bounded by threads + `maxQueue` (piscina refuses more). */
  readonly #tasks = new Set<Promise<Out>>();
  readonly #logger: Logger;
  #failed = 0;
  #rejected = 0;
  #poolErrors = 0;

  /** @throws ConfigError for a missing or relative filename, unknown options or out-of-range numbers. */
  constructor(options: WorkerPoolOptions) {
    validateOptions('WorkerPool', options, SCHEMA);
    const filename = toPath(options.filename);
    this.#filename = filename;
    const maxThreads = options.maxThreads ?? Math.max(1, availableParallelism() - 1);
    const minThreads = options.minThreads ?? 0;
    if (minThreads > maxThreads) {
      throw new ConfigError(
        'WorkerPool.minThreads',
        `WorkerPool.minThreads (${minThreads}) must be <= maxThreads (${maxThreads})`,
      );
    }
    this.#maxQueue = options.maxQueue ?? 1024;
    this.#capacity = maxThreads + this.#maxQueue;
    this.#profiler = options.profiler;
    this.#logger = options.logger ?? silentLogger;
    this.#piscina = new Piscina<In, Out>({
      filename,
      ...(options.name === undefined ? {} : { name: options.name }),
      maxThreads,
      minThreads,
      // The bound is enforced here: piscina's maxQueue skips tasks that carry an AbortSignal (they
      // wait in a separate, unbounded line), and most hotpath callers pass one.
      maxQueue: Number.POSITIVE_INFINITY,
      idleTimeout: options.idleTimeoutMs ?? 30_000,
    });
    // Piscina emits 'error' for a worker that crashed outside a task or a close that timed out; an
    // EventEmitter 'error' without a listener would crash the process.
    this.#piscina.on('error', (error: unknown) => {
      this.#poolErrors++;
      this.#logger.error({ err: error }, 'WorkerPool: worker pool error');
    });
  }

  /**
   * Runs one task in a worker thread.
   * @throws (rejects) the worker function's error; RateLimitError when `maxQueue` tasks already wait
   *   (`retryAfterMs` 0: retry when a task finishes); `signal.reason` on abort; ClosedError after `close()`.
   */
  async run(data: In, options: WorkerRunOptions = {}): Promise<Out> {
    if (this.#isClosed) throw new ClosedError('WorkerPool');
    if (this.#loadError !== undefined) throw this.#loadError;
    const { signal } = options;
    if (signal?.aborted) throw abortReason(signal);
    if (this.#tasks.size >= this.#capacity) {
      this.#rejected++;
      this.#failed++;
      throw new RateLimitError(`WorkerPool queue is full (${this.#maxQueue} tasks waiting)`, 0);
    }
    const runOptions: Parameters<Piscina<In, Out>['run']>[1] = {};
    if (signal !== undefined) runOptions.signal = signal;
    if (options.name !== undefined) runOptions.name = options.name;
    if (options.transferList !== undefined) runOptions.transferList = [...options.transferList];
    const start = this.#profiler === undefined ? 0 : performance.now();
    const probe = this.#isLoadable ? undefined : (this.#probe ??= this.#startProbe());
    const task = this.#piscina.run(data, runOptions);
    this.#tasks.add(task);
    try {
      // Until the module is known to load, a task may wait forever: piscina queues it behind a worker
      // that failed to start (issue 18). The probe's verdict ends that wait.
      const result =
        probe === undefined
          ? await task
          : await Promise.race([
              task,
              probe.then((error) => {
                if (error !== undefined) throw error;
                return task;
              }),
            ]);
      this.#profiler?.record('batch.worker', performance.now() - start);
      return result;
    } catch (error) {
      this.#failed++;
      this.#profiler?.record('batch.worker', performance.now() - start, true);
      // Piscina wraps aborts in its own AbortError; the hotpath convention is the signal's reason.
      if (signal?.aborted) throw abortReason(signal);
      // A worker that failed to start may also reject its task with the raw load error.
      if (probe !== undefined) {
        const loadError = await probe;
        if (loadError !== undefined) throw loadError;
      }
      if (error instanceof Error && error.name === 'DataCloneError') {
        throw new ConfigError(
          'WorkerPool.run.data',
          `WorkerPool.run: a task's data and result must survive a structured clone (no functions, class instances lose their prototype): ${error.message}`,
          { cause: error },
        );
      }
      throw error;
    } finally {
      this.#tasks.delete(task);
    }
  }

  /**
   * Loads the module once in a throwaway thread and reports whether it loads. A module that fails to
   * load (missing, syntax error, throws at top level) leaves piscina's tasks queued forever with
   * minThreads 0, so this is the only prompt way to tell; it runs the module's top-level code once more.
   */
  #startProbe(): Promise<ConfigError | undefined> {
    return new Promise<ConfigError | undefined>((resolve) => {
      const filename = this.#filename;
      let worker: Worker;
      try {
        worker = new Worker(PROBE_SOURCE, { eval: true, workerData: { href: pathToFileURL(filename).href } });
      } catch (error) {
        resolve(undefined); // no threads to probe with: piscina will report the same problem itself
        this.#logger.warn({ err: error }, 'WorkerPool: could not start the load probe');
        return;
      }
      worker.unref();
      let isSettled = false;
      const settle = (message: string | undefined, cause?: unknown): void => {
        if (isSettled) return;
        isSettled = true;
        void worker.terminate();
        if (message === undefined) {
          this.#isLoadable = true;
          resolve(undefined);
          return;
        }
        const error = new ConfigError(
          'WorkerPool.filename',
          `WorkerPool: ${filename} does not load in a worker thread: ${message}`,
          { cause },
        );
        this.#loadError = error;
        // Tasks already queued behind the failed worker would never settle; the pool is unusable.
        this.#piscina.destroy().catch(() => {});
        resolve(error);
      };
      worker.once('message', (reply: { error?: string; stack?: string }) => {
        if (reply.error === undefined) settle(undefined);
        else settle(reply.error, Object.assign(new Error(reply.error), { stack: reply.stack }));
      });
      worker.once('error', (error: Error) => settle(error.message, error));
      worker.once('exit', () => settle('the probe thread exited before loading it'));
    });
  }

  /** Counters now. */
  stats(): WorkerPoolStats {
    return {
      threads: this.#piscina.threads.length,
      queued: this.#piscina.queueSize,
      pending: this.#tasks.size,
      completed: this.#piscina.completed,
      failed: this.#failed,
      rejected: this.#rejected,
      poolErrors: this.#poolErrors,
      utilization: this.#piscina.utilization,
    };
  }

  /**
   * Refuses new tasks, lets the queued and running ones finish, then stops the threads. Idempotent.
   * With `{ force: true }`, queued tasks reject and running ones have their threads terminated.
   */
  close(options: { force?: boolean } = {}): Promise<void> {
    this.#isClosed = true;
    if (options.force || this.#loadError !== undefined) {
      this.#closing = this.#piscina.destroy();
      return this.#closing;
    }
    this.#closing ??= Promise.allSettled([...this.#tasks]).then(() => this.#piscina.close());
    return this.#closing;
  }

  /** Same as {@link WorkerPool.close}, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Runs in the probe thread: import the module, post `{}` or `{ error, stack }`. CommonJS (eval). */
const PROBE_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
import(workerData.href).then(
  () => parentPort.postMessage({}),
  (error) => parentPort.postMessage({ error: String(error && error.message || error), stack: error && error.stack }),
);
`;

function toPath(filename: unknown): string {
  if (filename instanceof URL) {
    if (filename.protocol !== 'file:') {
      throw new ConfigError('WorkerPool.filename', `WorkerPool.filename must be a file: URL, got ${filename.protocol}`);
    }
    return fileURLToPath(filename);
  }
  if (typeof filename !== 'string' || filename.length === 0) {
    throw new ConfigError('WorkerPool.filename', 'WorkerPool.filename must be an absolute path or a file: URL');
  }
  if (filename.startsWith('file:')) return fileURLToPath(filename);
  if (!filename.startsWith('/') && !/^[A-Za-z]:[\\/]/.test(filename)) {
    throw new ConfigError(
      'WorkerPool.filename',
      `WorkerPool.filename must be absolute (workers resolve relative paths from their own cwd), got ${JSON.stringify(filename)}`,
    );
  }
  return filename;
}
