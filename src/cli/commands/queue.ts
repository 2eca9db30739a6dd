/**
 * `hotpath queue stats | list | show | retry | cancel | purge`: inspect and steer the stored jobs.
 * @module
 */
import { JOB_STATUSES, type JobInfo, JobQueue, type JobStatus, type PurgeOptions } from '../../queue/index.js';
import type { StorageAdapter } from '../../storage/index.js';
import { CommandFailure, databaseUrl, ExitCode, openStorage, UsageError } from '../common.js';
import type { Output } from '../output.js';

/** Options every `queue` subcommand takes. */
export interface QueueCommandOptions {
  databaseUrl?: string;
}

/** Opens the queue (as a producer: it claims nothing), runs `fn`, closes both. */
async function withQueue<T>(
  options: QueueCommandOptions,
  fn: (queue: JobQueue, storage: StorageAdapter) => Promise<T>,
): Promise<T> {
  const storage = openStorage(databaseUrl(options.databaseUrl));
  const queue = new JobQueue({ storage });
  try {
    return await fn(queue, storage);
  } finally {
    await queue.close().catch(() => {});
    await storage.close().catch(() => {});
  }
}

/** Checks a `--status` value. */
export function parseStatus(text: string, allowed: readonly JobStatus[] = JOB_STATUSES): JobStatus {
  if (!(allowed as readonly string[]).includes(text)) {
    throw new UsageError(`--status: expected one of ${allowed.join(', ')}, got "${text}"`);
  }
  return text as JobStatus;
}

/** `queue stats`: stored counts per status, the age of the oldest ready job, reachability. */
export async function queueStats(options: QueueCommandOptions, output: Output): Promise<number> {
  return withQueue(options, async (queue) => {
    const health = await queue.health();
    if (!health.backendReachable)
      throw new CommandFailure(`the queue's database is not reachable: ${health.error ?? ''}`);
    const counts = health.counts;
    if (output.isJson) {
      output.json({ backend: health.backend, counts, oldestQueuedAgeMs: health.oldestQueuedAgeMs });
      return ExitCode.ok;
    }
    output.table(
      ['status', 'jobs'],
      JOB_STATUSES.map((status) => [status, String(counts[status])]),
    );
    output.line(
      `oldest ready job waiting: ${health.oldestQueuedAgeMs === 0 ? '-' : formatMs(health.oldestQueuedAgeMs)}`,
    );
    return ExitCode.ok;
  });
}

/** `queue list`: one page of jobs, oldest first. */
export async function queueList(
  options: QueueCommandOptions & { status?: JobStatus; type?: string; limit: number },
  output: Output,
): Promise<number> {
  return withQueue(options, async (queue) => {
    const page = await queue.list({
      ...(options.status === undefined ? {} : { status: options.status }),
      ...(options.type === undefined ? {} : { type: options.type }),
      limit: options.limit,
    });
    if (output.isJson) {
      output.json({ items: page.items, nextCursor: page.nextCursor ?? null });
      return ExitCode.ok;
    }
    output.table(
      ['id', 'type', 'status', 'attempts', 'created', 'finished'],
      page.items.map((job) => [
        job.id,
        job.type,
        job.status,
        `${job.attempts}/${job.maxAttempts ?? '-'}`,
        new Date(job.createdAt).toISOString(),
        job.finishedAt === undefined ? '-' : new Date(job.finishedAt).toISOString(),
      ]),
    );
    if (page.nextCursor !== undefined) output.line(`(more: raise --limit, at most 1000)`);
    return ExitCode.ok;
  });
}

/** `queue show <id>`: every field of one job; exit 1 when there is no such job. */
export async function queueShow(id: string, options: QueueCommandOptions, output: Output): Promise<number> {
  return withQueue(options, async (queue) => {
    const job = await queue.get(id);
    if (job === undefined) throw new CommandFailure(`no job ${id}`);
    if (output.isJson) {
      output.json(job);
      return ExitCode.ok;
    }
    for (const [key, value] of Object.entries(describeJob(job))) output.line(`${key.padEnd(15)} ${value}`);
    return ExitCode.ok;
  });
}

/** `queue retry <id>` or `queue retry --status failed|cancelled [--type]`: back to queued, attempts reset. */
export async function queueRetry(
  id: string | undefined,
  options: QueueCommandOptions & { status?: JobStatus; type?: string },
  output: Output,
): Promise<number> {
  if ((id === undefined) === (options.status === undefined)) {
    throw new UsageError('queue retry: give a job id or --status failed|cancelled (not both)');
  }
  return withQueue(options, async (queue) => {
    if (id !== undefined) {
      const isRetried = await queue.retry(id);
      if (output.isJson) output.json({ id, retried: isRetried });
      else output.line(isRetried ? `retried ${id}` : `not retried: ${id} is missing or not failed/cancelled`);
      return isRetried ? ExitCode.ok : ExitCode.failure;
    }
    // Collect the ids first: a retried job leaves the status being paged, which would shift pages.
    const ids = await collectIds(queue, options.status as JobStatus, options.type);
    let retried = 0;
    const progress = output.progress('retry', ids.length);
    for (const jobId of ids) {
      if (await queue.retry(jobId)) retried++;
      progress.update(retried);
    }
    progress.stop();
    if (output.isJson) output.json({ status: options.status, matched: ids.length, retried });
    else output.line(`retried ${retried} of ${ids.length} ${options.status} jobs`);
    return ExitCode.ok;
  });
}

/** `queue cancel <id>`: queued → cancelled now; running → cancel requested (its worker aborts it). */
export async function queueCancel(id: string, options: QueueCommandOptions, output: Output): Promise<number> {
  return withQueue(options, async (queue) => {
    const isCancelled = await queue.cancel(id);
    const job = await queue.get(id);
    if (output.isJson) output.json({ id, cancelled: isCancelled, status: job?.status ?? null });
    else
      output.line(
        isCancelled
          ? `cancelled ${id} (${job?.status === 'running' ? 'cancel requested; its worker stops it' : job?.status})`
          : `not cancelled: ${id} is ${job === undefined ? 'missing' : `already ${job.status}`}`,
      );
    return isCancelled ? ExitCode.ok : ExitCode.failure;
  });
}

/** Jobs per `JobQueue.purge` call, so the progress bar moves and no call holds the write lock for long. */
const PURGE_STEP = 1000;

/**
 * `queue purge --status succeeded|failed|cancelled --older-than 7d [--type]`: deletes finished jobs
 * that finished before the cutoff through `JobQueue.purge`, in steps. A job whose dedupe `key` is still
 * retained is kept.
 */
export async function queuePurge(
  options: QueueCommandOptions & { status: JobStatus; olderThanMs: number; type?: string; dryRun?: boolean },
  output: Output,
): Promise<number> {
  return withQueue(options, async (queue, storage) => {
    if (storage.sql === undefined) {
      throw new CommandFailure('queue purge needs a SQL database (sqlite:// or postgres://)');
    }
    const filter = {
      status: options.status as PurgeOptions['status'],
      olderThanMs: options.olderThanMs,
      ...(options.type === undefined ? {} : { type: options.type }),
    };
    const total = await queue.purge({ ...filter, dryRun: true });
    let deleted = 0;
    if (options.dryRun !== true && total > 0) {
      const progress = output.progress('purge', total);
      for (;;) {
        const step = await queue.purge({ ...filter, limit: PURGE_STEP });
        deleted += step;
        progress.update(deleted);
        if (step < PURGE_STEP) break;
      }
      progress.stop();
    }
    const olderThan = formatMs(options.olderThanMs);
    if (output.isJson) {
      output.json({
        status: options.status,
        olderThanMs: options.olderThanMs,
        matched: total,
        deleted,
        dryRun: options.dryRun === true,
      });
    } else if (options.dryRun === true) {
      output.line(`would delete ${total} ${options.status} jobs finished more than ${olderThan} ago`);
    } else {
      output.line(`deleted ${deleted} ${options.status} jobs finished more than ${olderThan} ago`);
    }
    return ExitCode.ok;
  });
}

async function collectIds(queue: JobQueue, status: JobStatus, type: string | undefined): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await queue.list({
      status,
      limit: 1000,
      ...(type === undefined ? {} : { type }),
      ...(cursor === undefined ? {} : { cursor }),
    });
    for (const job of page.items) ids.push(job.id);
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return ids;
}

function describeJob(job: JobInfo): Record<string, string> {
  const time = (at: number | undefined) => (at === undefined ? '-' : new Date(at).toISOString());
  return {
    id: job.id,
    type: job.type,
    status: job.status,
    priority: String(job.priority),
    attempts: `${job.attempts}/${job.maxAttempts ?? '-'}`,
    key: job.key ?? '-',
    created: time(job.createdAt),
    runAt: time(job.runAt),
    started: time(job.startedAt),
    finished: time(job.finishedAt),
    progress:
      job.progress === undefined
        ? '-'
        : `${job.progress.done}/${job.progress.total ?? '?'}${job.progress.stage ? ` ${job.progress.stage}` : ''}`,
    cancelRequested: String(job.cancelRequested),
    data: JSON.stringify(job.data),
    result: job.result === undefined ? '-' : JSON.stringify(job.result),
    error: job.error === undefined ? '-' : JSON.stringify(job.error),
  };
}

/** `90061000` → `1d 1h 1m 1s`; below a second, `250ms`. */
export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const parts: string[] = [];
  let rest = Math.round(ms / 1000);
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.join(' ');
}
