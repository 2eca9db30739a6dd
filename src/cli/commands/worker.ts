/**
 * `hotpath worker <module>`: runs a module's job handlers against the database until SIGTERM/SIGINT.
 * @module
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Logger } from '../../core/logger.js';
import type {
  JobContext,
  JobHandler,
  JobTypeOptions,
  SandboxedHandlerSpec,
  ScheduleOptions,
  ScheduleSpec,
} from '../../queue/index.js';
import { handleShutdownSignals, JobQueue } from '../../queue/index.js';
import type { StorageAdapter } from '../../storage/index.js';
import { CommandFailure, databaseUrl, openStorage, shownUrl, UsageError } from '../common.js';
import type { Output } from '../output.js';

/** What a worker module's default-export function receives. */
export interface WorkerApp {
  /** The queue the worker runs (enqueue, wait, list… work as usual). */
  readonly queue: JobQueue;
  /** The storage behind it (`HOTPATH_DATABASE_URL`). */
  readonly storage: StorageAdapter;
  /** The worker's log (info lines on stdout, JSON lines with `--json`). */
  readonly logger: Logger;
  /**
   * Registers a handler — a function, or `{ file, exportName?, timeoutMs? }` to run it in a worker
   * thread that its deadline or a cancel terminates; skipped (with a log line) when `--types` leaves
   * the type out.
   */
  register(type: string, handler: JobHandler | SandboxedHandlerSpec, options?: JobTypeOptions): void;
  /** Declares a recurring job (see `JobQueue.schedule`); it fires while the worker runs. */
  schedule(name: string, spec: ScheduleSpec, type: string, data?: unknown, options?: ScheduleOptions): Promise<void>;
}

/**
 * A handler entry of the map form: a function, `{ handler, attempts?, backoff?, timeoutMs? }`, or a
 * sandboxed `{ file, exportName?, timeoutMs?, attempts?, backoff? }`.
 */
type HandlerEntry =
  | JobHandler
  | ({ handler: JobHandler } & JobTypeOptions)
  | (SandboxedHandlerSpec & Omit<JobTypeOptions, 'timeoutMs'>);

/** Options of `hotpath worker`, as parsed. */
export interface WorkerCommandOptions {
  databaseUrl?: string;
  concurrency: number;
  types?: string[];
  shutdownTimeoutMs: number;
}

/** Runs the worker until a shutdown signal, which exits the process (0 after a clean stop). */
export async function runWorker(modulePath: string, options: WorkerCommandOptions, output: Output): Promise<number> {
  const url = databaseUrl(options.databaseUrl);
  const loaded = await loadModule(modulePath);
  const storage = openStorage(url);
  const logger = output.logger();
  const queue = new JobQueue({ storage, concurrency: options.concurrency, logger: withoutJobFailures(logger) });
  const wanted = options.types === undefined ? undefined : new Set(options.types);
  const registered: string[] = [];
  const schedules: string[] = [];
  const app: WorkerApp = {
    queue,
    storage,
    logger,
    register(type, handler, typeOptions) {
      if (wanted !== undefined && !wanted.has(type)) {
        logger.info({ type }, 'type skipped (not in --types)');
        return;
      }
      queue.register(type, typeof handler === 'function' ? logged(type, handler, logger) : handler, typeOptions);
      registered.push(type);
    },
    async schedule(name, spec, type, data = {}, scheduleOptions) {
      await queue.schedule(name, spec, type, data, scheduleOptions);
      schedules.push(name);
    },
  };
  try {
    if (typeof loaded === 'function') {
      await (loaded as (app: WorkerApp) => unknown)(app);
    } else {
      for (const [type, entry] of Object.entries(loaded as Record<string, HandlerEntry>)) {
        if (typeof entry === 'function') {
          app.register(type, entry);
        } else if (
          entry !== null &&
          typeof entry === 'object' &&
          'handler' in entry &&
          typeof entry.handler === 'function'
        ) {
          const { handler, ...typeOptions } = entry;
          app.register(type, handler, typeOptions);
        } else if (entry !== null && typeof entry === 'object' && 'file' in entry) {
          const { file, exportName, timeoutMs, ...typeOptions } = entry;
          app.register(type, { file, exportName, timeoutMs }, typeOptions);
        } else {
          throw new CommandFailure(
            `${modulePath}: export "${type}" must be a handler function, { handler, … } or { file, … }`,
          );
        }
      }
    }
    const missing = options.types?.filter((type) => !registered.includes(type)) ?? [];
    if (missing.length > 0) {
      throw new UsageError(`--types names ${missing.join(', ')}, which ${modulePath} does not register`);
    }
    if (registered.length === 0 && schedules.length === 0) {
      throw new CommandFailure(`${modulePath} registers no job handler and no schedule: nothing to run`);
    }
    followEvents(queue, logger);
    await queue.start();
  } catch (error) {
    await queue.close().catch(() => {});
    await storage.close().catch(() => {});
    throw error;
  }
  logger.info(
    {
      workerId: queue.workerId,
      backend: queue.backend,
      database: shownUrl(url),
      types: registered.join(','),
      schedules: schedules.length > 0 ? schedules.join(',') : undefined,
      concurrency: options.concurrency,
    },
    'worker started',
  );
  // The started queue holds the process open; SIGTERM/SIGINT run the queue's staged stop under the
  // deadline (leases handed back without spending an attempt), close, and exit 0 (1 when the stop
  // failed or a second signal cut it short).
  handleShutdownSignals(queue, {
    timeoutMs: options.shutdownTimeoutMs,
    logger,
    onStopped: async () => {
      await storage.close();
      logger.info({ released: queue.stats().released }, 'worker stopped');
    },
  });
  // Never resolves: the shutdown handler ends the process.
  return new Promise<number>(() => {});
}

/** Imports the worker module and returns its default export (a handler map or a function). */
async function loadModule(modulePath: string): Promise<unknown> {
  const href = pathToFileURL(resolve(process.cwd(), modulePath)).href;
  let namespace: Record<string, unknown>;
  try {
    namespace = (await import(href)) as Record<string, unknown>;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const hint = /\.(c|m)?ts$/.test(modulePath)
      ? ' (a .ts module needs a TypeScript loader: node --import tsx node_modules/.bin/hotpath worker …)'
      : '';
    throw new CommandFailure(`cannot load ${modulePath}: ${message}${hint}`);
  }
  const exported = namespace.default;
  if (typeof exported === 'function' || (exported !== null && typeof exported === 'object')) return exported;
  throw new CommandFailure(
    `${modulePath} must have a default export: a { type: handler } map or an (app) => … function`,
  );
}

/**
 * The queue's own logger minus its per-job failure warnings: the worker logs every failure itself,
 * once, at info level with the other state changes.
 */
function withoutJobFailures(logger: Logger): Logger {
  return {
    ...logger,
    warn: (fields, msg) => {
      if (msg?.startsWith('JobQueue: job failed') === true) return;
      logger.warn(fields, msg);
    },
    error: (fields, msg) => {
      if (msg?.startsWith('JobQueue: job failed') === true) return;
      logger.error(fields, msg);
    },
  };
}

/** The handler, with one "job running" line when an attempt starts. */
function logged(type: string, handler: JobHandler, logger: Logger): JobHandler {
  return (data: unknown, job: JobContext) => {
    logger.info({ id: job.id, type, attempt: job.attempt, maxAttempts: job.maxAttempts }, 'job running');
    return handler(data, job);
  };
}

/** One info line per state change after `running`: succeeded, failed (retrying or final), cancelled. */
function followEvents(queue: JobQueue, logger: Logger): void {
  queue.on('completed', (job) =>
    logger.info({ id: job.id, type: job.type, attempt: job.attempt, runMs: roundMs(job.runMs) }, 'job succeeded'),
  );
  queue.on('failed', (job, error, willRetry) => {
    const message = error instanceof Error ? error.message : String(error);
    logger.info(
      { id: job.id, type: job.type, attempt: job.attempt, runMs: roundMs(job.runMs), error: message },
      willRetry ? 'job failed, queued for retry' : 'job failed',
    );
  });
  queue.on('cancelled', (job) => logger.info({ id: job.id, type: job.type, attempt: job.attempt }, 'job cancelled'));
  queue.on('stalled', (job) =>
    logger.warn({ id: job.id, type: job.type }, 'job stalled: its handler ignores the abort signal'),
  );
  queue.on('error', (error) => logger.warn({ err: error }, 'queue background error (retrying)'));
}

function roundMs(ms: number | undefined): number | undefined {
  return ms === undefined ? undefined : Math.round(ms * 10) / 10;
}
