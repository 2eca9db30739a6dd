/**
 * Stored rows as users see them: the `JobInfo` snapshot of `get`, pages of `list`, `health()`, and the
 * error `wait` throws for a failed job.
 * @module
 */
import { JobFailedError } from '../core/errors.js';
import type { JobRow, QueueBackend } from './backend.js';
import type { JobErrorInfo, JobInfo, JobPage, JobProgress, JobQueueHealth, ListOptions } from './types.js';

/** Parses stored JSON (undefined for SQL NULL). */
export function parseJson(text: string | null): unknown {
  if (text === null) return undefined;
  return JSON.parse(text);
}

function parseError(text: string | null): JobErrorInfo | undefined {
  if (text === null) return undefined;
  try {
    return JSON.parse(text) as JobErrorInfo;
  } catch {
    return { name: 'Error', message: text };
  }
}

/** The error `wait` throws for a job that failed for good. */
export function failedError(row: JobRow): JobFailedError {
  const info = parseError(row.error);
  return new JobFailedError(
    row.id,
    `job ${row.id} (${row.type}) failed after ${row.attempts} attempt(s): ${info?.message ?? 'unknown error'}`,
    row.attempts,
    { cause: info },
  );
}

/** Converts a stored row to the public snapshot. */
export function toJobInfo(row: JobRow): JobInfo {
  let progress: JobProgress | undefined;
  if (row.progressDone !== null) {
    progress = { done: row.progressDone };
    if (row.progressTotal !== null) progress.total = row.progressTotal;
    if (row.progressStage !== null) progress.stage = row.progressStage;
  }
  return {
    id: row.id,
    type: row.type,
    data: parseJson(row.data),
    status: row.status,
    priority: row.priority,
    progress,
    result: row.status === 'succeeded' ? parseJson(row.result) : undefined,
    error: parseError(row.error),
    attempts: row.attempts,
    maxAttempts: row.maxAttempts ?? undefined,
    key: row.key ?? undefined,
    owner: row.owner ?? undefined,
    createdAt: row.createdAt,
    runAt: row.runAt,
    startedAt: row.startedAt ?? undefined,
    finishedAt: row.finishedAt ?? undefined,
    cancelRequested: row.cancelRequested,
  };
}

/** A page of `list`: asks the backend for one row more than `limit` to know whether there is a next page. */
export async function listJobs(backend: QueueBackend, options: ListOptions): Promise<JobPage> {
  const limit = options.limit ?? 100;
  const rows = await backend.list({
    status: options.status,
    type: options.type,
    limit: limit + 1,
    after: options.cursor,
  });
  const hasMore = rows.length > limit;
  const items = (hasMore ? rows.slice(0, limit) : rows).map(toJobInfo);
  return { items, nextCursor: hasMore ? items[items.length - 1]?.id : undefined };
}

/** This worker's part of `health()`. */
export type WorkerHealth = Pick<JobQueueHealth, 'backend' | 'workerRunning' | 'workerId' | 'running'>;

/** `health()`: stored counts and the oldest ready job's age, or `ok: false` when the backend fails. Never throws. */
export async function readHealth(
  backend: QueueBackend,
  worker: WorkerHealth,
  now: number,
  init: () => Promise<void>,
  lastError: string | undefined,
): Promise<JobQueueHealth> {
  try {
    await init();
    const [counts, oldest] = await Promise.all([backend.counts(), backend.oldestReady(now)]);
    const health: JobQueueHealth = {
      ...worker,
      ok: true,
      backendReachable: true,
      counts,
      oldestQueuedAgeMs: oldest === undefined ? 0 : Math.max(0, now - oldest),
    };
    if (lastError !== undefined) health.error = lastError;
    return health;
  } catch (error) {
    return {
      ...worker,
      ok: false,
      backendReachable: false,
      counts: { queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 },
      oldestQueuedAgeMs: 0,
      error: (error as Error)?.message ?? String(error),
    };
  }
}
