/**
 * What the two SQL backends share about rows: table names, column lists, the columns an insert
 * binds, the final states, and the mapping of driver rows to backend rows. Column names are
 * snake_case; drivers may return BIGINT as strings (node-postgres does), so numeric columns go
 * through `Number`.
 * @module
 */
import type { ClaimedJob, Completion, JobRow, NewJob, ScheduleRow } from '../backend.js';
import type { JobStatus } from '../types.js';

/** Table of jobs, before schema qualification. */
export const JOBS_TABLE = 'hotpath_jobs';
/** Table of recurring-job schedules, before schema qualification. */
export const SCHEDULES_TABLE = 'hotpath_schedules';

/** Columns read by `get` and `list`. */
export const ROW_COLUMNS =
  'id, type, data, status, priority, run_at, created_at, started_at, finished_at, attempts, max_attempts, ' +
  'progress_done, progress_total, progress_stage, result, error, key, owner, cancel_requested';

/** Columns returned by a claim. */
export const CLAIM_COLUMNS =
  'id, type, data, priority, run_at, created_at, attempts, max_attempts, timeout_ms, backoff, token';

/** Columns of a schedule row. */
export const SCHEDULE_COLUMNS = 'name, spec, type, data, options, next_run_at';

/** Columns an insert binds, in {@link insertValues} order (the status is the literal `'queued'`). */
export const INSERT_COLUMNS = [
  'id',
  'type',
  'data',
  'priority',
  'run_at',
  'created_at',
  'max_attempts',
  'timeout_ms',
  'backoff',
  'key',
  'key_retention_ms',
  'owner',
] as const;

/** How many of {@link INSERT_COLUMNS} a lean insert binds (the rest keep their defaults). */
export const LEAN_COLUMN_COUNT = 6;

/** The states a job does not leave by itself, as an SQL list. */
export const FINAL_STATES = "('succeeded', 'failed', 'cancelled')";

/**
 * Most jobs carry no per-job attempts, timeout, backoff or key: such a job binds 6 values instead of
 * 11 (binding is a third of the insert cost on SQLite; node-pg serialises every array element to text).
 */
export function isLean(job: NewJob): boolean {
  return (
    job.maxAttempts === null &&
    job.timeoutMs === null &&
    job.backoff === null &&
    job.key === null &&
    job.keyRetentionMs === 0 &&
    job.owner === null
  );
}

/** The values of one job in {@link INSERT_COLUMNS} order (the first 6 when `lean`), written into `out` at `at`. */
export function insertValues(job: NewJob, lean: boolean, out: unknown[], at: number): number {
  out[at++] = job.id;
  out[at++] = job.type;
  out[at++] = job.data;
  out[at++] = job.priority;
  out[at++] = job.runAt;
  out[at++] = job.createdAt;
  if (lean) return at;
  out[at++] = job.maxAttempts;
  out[at++] = job.timeoutMs;
  out[at++] = job.backoff;
  out[at++] = job.key;
  out[at++] = job.keyRetentionMs;
  out[at++] = job.owner;
  return at;
}

/** One completion as the columns the completion statements read: id, token, kind, result, error, at, run_at. */
export function completionValues(
  c: Completion,
): [string, number, string, string | null, string | null, number, number | null] {
  return [
    c.id,
    c.token,
    c.kind,
    c.kind === 'succeeded' ? c.result : null,
    c.kind === 'released' || c.kind === 'succeeded' ? null : c.error,
    Math.round(c.at),
    c.kind === 'retry' ? c.runAt : null,
  ];
}

/**
 * The SET clause that writes completions: table alias `j`, completion row alias `c` with the
 * {@link completionValues} columns. A job whose cancel was requested by another process while it ran
 * is not retried or handed back but cancelled; a hand-back gives the attempt back.
 */
export const COMPLETION_SET = `
    status = CASE
      WHEN c.kind IN ('retry', 'released') AND j.cancel_requested THEN 'cancelled'
      WHEN c.kind IN ('retry', 'released') THEN 'queued'
      ELSE c.kind END,
    result = c.result,
    error = CASE WHEN c.kind = 'released' THEN j.error ELSE c.error END,
    finished_at = CASE WHEN c.kind IN ('retry', 'released') AND NOT j.cancel_requested THEN NULL ELSE c.at END,
    run_at = CASE WHEN c.kind = 'retry' THEN c.run_at ELSE j.run_at END,
    attempts = CASE WHEN c.kind = 'released' THEN j.attempts - 1 ELSE j.attempts END,
    token = CASE WHEN c.kind = 'released' THEN j.token + 1 ELSE j.token END,
    lease_until = NULL,
    cancel_requested = FALSE`;

/** Column types of the queue's tables, spelled per dialect below. */
type ColumnType = 'text' | 'int' | 'bigint' | 'real' | 'bool';

const COLUMN_TYPES: Record<'sqlite' | 'postgres', Record<ColumnType, string>> = {
  sqlite: { text: 'TEXT', int: 'INTEGER', bigint: 'INTEGER', real: 'REAL', bool: 'INTEGER' },
  postgres: { text: 'text', int: 'integer', bigint: 'bigint', real: 'double precision', bool: 'boolean' },
};

const JOB_TABLE_COLUMNS: ReadonlyArray<readonly [string, ColumnType, string]> = [
  ['id', 'text', 'PRIMARY KEY'],
  ['type', 'text', 'NOT NULL'],
  ['data', 'text', 'NOT NULL'],
  ['status', 'text', 'NOT NULL'],
  ['priority', 'int', 'NOT NULL'],
  ['run_at', 'bigint', 'NOT NULL'],
  ['created_at', 'bigint', 'NOT NULL'],
  ['started_at', 'bigint', ''],
  ['finished_at', 'bigint', ''],
  ['attempts', 'int', 'NOT NULL DEFAULT 0'],
  ['max_attempts', 'int', ''],
  ['timeout_ms', 'real', ''],
  ['backoff', 'text', ''],
  ['token', 'bigint', 'NOT NULL DEFAULT 0'],
  ['lease_until', 'bigint', ''],
  ['worker', 'text', ''],
  ['progress_done', 'real', ''],
  ['progress_total', 'real', ''],
  ['progress_stage', 'text', ''],
  ['result', 'text', ''],
  ['error', 'text', ''],
  ['key', 'text', ''],
  ['key_retention_ms', 'bigint', 'NOT NULL DEFAULT 0'],
  ['cancel_requested', 'bool', 'NOT NULL DEFAULT FALSE'],
  ['owner', 'text', ''],
];

/** Columns added after the first release: `init` adds them to tables made before. */
export const ADDED_JOB_COLUMNS: ReadonlyArray<readonly [string, ColumnType]> = [['owner', 'text']];

/** The SQL type of an added column in `dialect`. */
export function columnType(dialect: 'sqlite' | 'postgres', type: ColumnType): string {
  return COLUMN_TYPES[dialect][type];
}

const SCHEDULE_TABLE_COLUMNS: ReadonlyArray<readonly [string, ColumnType, string]> = [
  ['name', 'text', 'PRIMARY KEY'],
  ['spec', 'text', 'NOT NULL'],
  ['type', 'text', 'NOT NULL'],
  ['data', 'text', 'NOT NULL'],
  ['options', 'text', 'NOT NULL'],
  ['next_run_at', 'bigint', 'NOT NULL'],
];

/** The tables and indexes of the queue in `dialect`, created if missing. */
export function tableStatements(
  dialect: 'sqlite' | 'postgres',
  tables: { jobs: string; schedules: string },
  options: { jobsTableSuffix: string; readyIndexInclude: string },
): string[] {
  const types = COLUMN_TYPES[dialect];
  const columns = (list: typeof JOB_TABLE_COLUMNS) =>
    list.map(([name, type, constraint]) => `${name} ${types[type]} ${constraint}`.trimEnd()).join(',\n    ');
  const T = tables.jobs;
  // Index names are never qualified: an index always lives in its table's schema.
  const index = (name: string) => `${JOBS_TABLE}_${name}`;
  return [
    `CREATE TABLE IF NOT EXISTS ${T} (\n    ${columns(JOB_TABLE_COLUMNS)}\n  )${options.jobsTableSuffix}`,
    // Ready rows only: the index stays as small as the backlog, and finished jobs cost nothing here.
    `CREATE INDEX IF NOT EXISTS ${index('ready')} ON ${T} (priority DESC, run_at, id)${options.readyIndexInclude} WHERE status = 'queued'`,
    `CREATE INDEX IF NOT EXISTS ${index('leases')} ON ${T} (lease_until) WHERE status = 'running'`,
    `CREATE INDEX IF NOT EXISTS ${index('finished')} ON ${T} (finished_at) WHERE finished_at IS NOT NULL`,
    `CREATE UNIQUE INDEX IF NOT EXISTS ${index('key')} ON ${T} (key) WHERE key IS NOT NULL`,
    `CREATE TABLE IF NOT EXISTS ${tables.schedules} (\n    ${columns(SCHEDULE_TABLE_COLUMNS)}\n  )`,
  ];
}

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
    owner: strOrNull(raw.owner),
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
