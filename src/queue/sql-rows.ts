/**
 * Row mapping shared by the SQL backends. Column names are snake_case; drivers may return BIGINT as
 * strings (node-postgres does), so numeric columns go through `Number`.
 * @module
 */
import type { ClaimedJob, JobRow, ScheduleRow } from './backend.js';
import type { JobStatus } from './types.js';

/** Table of jobs (schema-local on PostgreSQL). */
export const JOBS_TABLE = 'hotpath_jobs';
/** Table of recurring-job schedules. */
export const SCHEDULES_TABLE = 'hotpath_schedules';

/** Columns read by `get` and `list`. */
export const ROW_COLUMNS =
  'id, type, data, status, priority, run_at, created_at, started_at, finished_at, attempts, max_attempts, ' +
  'progress_done, progress_total, progress_stage, result, error, key, cancel_requested';

/** Columns returned by a claim. */
export const CLAIM_COLUMNS =
  'id, type, data, priority, run_at, created_at, attempts, max_attempts, timeout_ms, backoff, token';

/** Columns of a schedule row. */
export const SCHEDULE_COLUMNS = 'name, spec, type, data, options, next_run_at';

type Raw = Record<string, unknown>;

const num = (value: unknown): number => (typeof value === 'number' ? value : Number(value));
const numOrNull = (value: unknown): number | null => (value === null || value === undefined ? null : num(value));
const strOrNull = (value: unknown): string | null => (value === null || value === undefined ? null : String(value));

/** Maps a `ROW_COLUMNS` row. */
export function toJobRow(raw: Raw): JobRow {
  return {
    id: raw.id as string,
    type: raw.type as string,
    data: raw.data as string,
    status: raw.status as JobStatus,
    priority: num(raw.priority),
    runAt: num(raw.run_at),
    createdAt: num(raw.created_at),
    startedAt: numOrNull(raw.started_at),
    finishedAt: numOrNull(raw.finished_at),
    attempts: num(raw.attempts),
    maxAttempts: numOrNull(raw.max_attempts),
    progressDone: numOrNull(raw.progress_done),
    progressTotal: numOrNull(raw.progress_total),
    progressStage: strOrNull(raw.progress_stage),
    result: strOrNull(raw.result),
    error: strOrNull(raw.error),
    key: strOrNull(raw.key),
    cancelRequested: raw.cancel_requested === true || raw.cancel_requested === 1,
  };
}

/** Maps a `CLAIM_COLUMNS` row. */
export function toClaimedJob(raw: Raw): ClaimedJob {
  return {
    id: raw.id as string,
    type: raw.type as string,
    data: raw.data as string,
    priority: num(raw.priority),
    runAt: num(raw.run_at),
    createdAt: num(raw.created_at),
    attempts: num(raw.attempts),
    maxAttempts: numOrNull(raw.max_attempts),
    timeoutMs: numOrNull(raw.timeout_ms),
    backoff: strOrNull(raw.backoff),
    token: num(raw.token),
  };
}

/** Claims come back from `UPDATE … RETURNING` in no particular order: start them best first. */
export function sortClaimed(jobs: ClaimedJob[], agingMs: number): ClaimedJob[] {
  return jobs.sort((a, b) => {
    const pa = agingMs > 0 ? a.priority - a.runAt / agingMs : a.priority;
    const pb = agingMs > 0 ? b.priority - b.runAt / agingMs : b.priority;
    if (pa !== pb) return pb - pa;
    if (a.runAt !== b.runAt) return a.runAt - b.runAt;
    return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  });
}

/** Zero counts for every status. */
export function emptyCounts(): Record<JobStatus, number> {
  return { queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 };
}

/** Maps a `SCHEDULE_COLUMNS` row. */
export function toScheduleRow(raw: Raw): ScheduleRow {
  return {
    name: raw.name as string,
    spec: raw.spec as string,
    type: raw.type as string,
    data: raw.data as string,
    options: raw.options as string,
    nextRunAt: Number(raw.next_run_at),
  };
}
