/**
 * What the SQLite and PostgreSQL queue backends share: the insert flow (free expired keys, insert in
 * chunks, find the holders of deduped keys), reads, cancel / retry / reap, schedules and counts. The
 * dialect files keep only what differs: DDL, the claim, batched writes and placeholders.
 * @module
 */
import type { SqlAccess } from '../../storage/types.js';
import type { CancelOutcome, JobRow, ListQuery, NewJob, PurgeQuery, ScheduleRow } from '../backend.js';
import type { JobStatus } from '../types.js';
import {
  emptyCounts,
  FINAL_STATES,
  JOBS_TABLE,
  ROW_COLUMNS,
  SCHEDULE_COLUMNS,
  SCHEDULES_TABLE,
  toJobRow,
  toScheduleRow,
} from './sql-rows.js';

/** Bound parameters of one statement, with the placeholder syntax of its dialect (`?` or `$n`). */
export class SqlParams {
  readonly values: unknown[] = [];
  readonly #numbered: boolean;

  constructor(dialect: SqlAccess['dialect']) {
    this.#numbered = dialect === 'postgres';
  }

  /** Binds `value`; returns its placeholder. */
  add(value: unknown): string {
    this.values.push(value);
    return this.#numbered ? `$${this.values.length}` : '?';
  }

  /** Binds each value; returns their placeholders, comma-separated. */
  list(values: readonly unknown[]): string {
    return values.map((value) => this.add(value)).join(', ');
  }
}

/** Rows per DELETE of `purge`. */
const PURGE_CHUNK = 1000;

/** Quotes an SQL identifier. */
const quote = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/** The queue's tables, qualified by the storage's schema when it has one. */
export interface SqlTables {
  /** The jobs table, e.g. `"app_a".hotpath_jobs`. */
  jobs: string;
  /** The schedules table. */
  schedules: string;
  /** Qualifies another object (function, trigger function) of the queue the same way. */
  qualify(name: string): string;
}

/** Names of the queue's tables in `schema` (undefined: the connection's current schema). */
export function sqlTables(schema: string | undefined): SqlTables {
  const qualify = (name: string) => (schema === undefined ? name : `${quote(schema)}.${name}`);
  return { jobs: qualify(JOBS_TABLE), schedules: qualify(SCHEDULES_TABLE), qualify };
}

/** The parts of a SQL queue backend that are the same on every dialect. */
export abstract class SqlBackend {
  protected readonly sql: SqlAccess;
  protected readonly tables: SqlTables;

  constructor(sql: SqlAccess, tables: SqlTables) {
    this.sql = sql;
    this.tables = tables;
  }

  /** New bound parameters in this backend's placeholder syntax. */
  protected params(): SqlParams {
    return new SqlParams(this.sql.dialect);
  }

  /** Rows per insert statement for these jobs. */
  protected abstract insertChunkSize(jobs: readonly NewJob[]): number;
  /** Inserts one chunk; with `returning`, skips key conflicts and returns the ids written. */
  protected abstract insertChunk(
    sql: SqlAccess,
    jobs: readonly NewJob[],
    returning: boolean,
  ): Promise<Array<{ id: string }>>;
  /** Called after a running job's cancel was requested (PostgreSQL: a hint to its worker). */
  protected async cancelRequested(_id: string): Promise<void> {}
  /** Called after a job was queued again by `retry` (PostgreSQL: a hint to idle workers). */
  protected async requeued(): Promise<void> {}

  async insert(jobs: readonly NewJob[], now: number, sql?: SqlAccess): Promise<string[]> {
    const hasKeys = jobs.some((job) => job.key !== null);
    const chunk = this.insertChunkSize(jobs);
    if (!hasKeys && jobs.length <= chunk) {
      await this.insertChunk(sql ?? this.sql, jobs, false);
      return jobs.map((job) => job.id);
    }
    const run = async (tx: SqlAccess): Promise<string[]> => {
      const keys = hasKeys ? [...new Set(jobs.flatMap((job) => (job.key === null ? [] : [job.key])))] : [];
      // Keys of jobs finished longer than their retention ago are free again.
      await this.#forKeys(keys, (part, p) =>
        tx.query(
          `UPDATE ${this.tables.jobs} SET key = NULL WHERE key IN (${p.list(part)}) AND status IN ${FINAL_STATES} AND finished_at + key_retention_ms <= ${p.add(now)}`,
          p.values,
        ),
      );
      const inserted = new Set<string>();
      for (let i = 0; i < jobs.length; i += chunk) {
        const rows = await this.insertChunk(tx, jobs.slice(i, i + chunk), hasKeys);
        for (const row of rows) inserted.add(row.id);
      }
      if (!hasKeys) return jobs.map((job) => job.id);
      const holders = new Map<string, string>();
      await this.#forKeys(keys, async (part, p) => {
        const rows = await tx.query<{ id: string; key: string }>(
          `SELECT id, key FROM ${this.tables.jobs} WHERE key IN (${p.list(part)})`,
          p.values,
        );
        for (const row of rows) holders.set(row.key, row.id);
      });
      return jobs.map((job) => (job.key === null || inserted.has(job.id) ? job.id : (holders.get(job.key) ?? job.id)));
    };
    return sql ? run(sql) : this.sql.transaction(run);
  }

  /** Runs `fn` over `keys` in parts small enough for any driver's parameter limit. */
  async #forKeys(keys: readonly string[], fn: (part: string[], p: SqlParams) => Promise<unknown>): Promise<void> {
    for (let i = 0; i < keys.length; i += 500) await fn(keys.slice(i, i + 500), this.params());
  }

  async get(id: string): Promise<JobRow | undefined> {
    const p = this.params();
    const rows = await this.sql.query(
      `SELECT ${ROW_COLUMNS} FROM ${this.tables.jobs} WHERE id = ${p.add(id)}`,
      p.values,
    );
    return rows[0] === undefined ? undefined : toJobRow(rows[0]);
  }

  async list(query: ListQuery): Promise<JobRow[]> {
    const p = this.params();
    const where: string[] = [];
    if (query.status !== undefined) where.push(`status = ${p.add(query.status)}`);
    if (query.type !== undefined) where.push(`type = ${p.add(query.type)}`);
    if (query.after !== undefined) where.push(`id > ${p.add(query.after)}`);
    const rows = await this.sql.query(
      `SELECT ${ROW_COLUMNS} FROM ${this.tables.jobs} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT ${p.add(query.limit)}`,
      p.values,
    );
    return rows.map(toJobRow);
  }

  async cancel(id: string, now: number, error: string): Promise<CancelOutcome> {
    const T = this.tables.jobs;
    let p = this.params();
    const cancelled = await this.sql.query(
      `UPDATE ${T} SET status = 'cancelled', finished_at = ${p.add(now)}, error = ${p.add(error)}, token = token + 1
       WHERE id = ${p.add(id)} AND status = 'queued' RETURNING id`,
      p.values,
    );
    if (cancelled.length > 0) return 'cancelled';
    p = this.params();
    const requested = await this.sql.query(
      `UPDATE ${T} SET cancel_requested = TRUE WHERE id = ${p.add(id)} AND status = 'running' RETURNING id`,
      p.values,
    );
    if (requested.length > 0) {
      await this.cancelRequested(id);
      return 'requested';
    }
    p = this.params();
    const rows = await this.sql.query(`SELECT status FROM ${T} WHERE id = ${p.add(id)}`, p.values);
    return rows.length > 0 ? 'finished' : 'missing';
  }

  async retry(id: string, now: number): Promise<boolean> {
    const p = this.params();
    const rows = await this.sql.query(
      `UPDATE ${this.tables.jobs} SET status = 'queued', attempts = 0, error = NULL, result = NULL, finished_at = NULL,
        started_at = NULL, progress_done = NULL, progress_total = NULL, progress_stage = NULL, run_at = ${p.add(now)},
        token = token + 1, cancel_requested = FALSE
       WHERE id = ${p.add(id)} AND status IN ('failed', 'cancelled') RETURNING id`,
      p.values,
    );
    if (rows.length > 0) await this.requeued();
    return rows.length > 0;
  }

  async reap(now: number, defaultAttempts: number, error: string): Promise<number> {
    // SQLite's `?` binds once per use: every use of a value binds it again.
    const p = this.params();
    const exhausted = () => `attempts >= COALESCE(max_attempts, ${p.add(defaultAttempts)})`;
    const rows = await this.sql.query(
      `UPDATE ${this.tables.jobs} SET
        status = CASE WHEN cancel_requested THEN 'cancelled' WHEN ${exhausted()} THEN 'failed' ELSE 'queued' END,
        finished_at = CASE WHEN cancel_requested OR ${exhausted()} THEN CAST(${p.add(now)} AS BIGINT) ELSE NULL END,
        error = CASE WHEN NOT cancel_requested AND ${exhausted()} THEN ${p.add(error)} ELSE error END,
        token = token + 1, lease_until = NULL, cancel_requested = FALSE
       WHERE status = 'running' AND lease_until < ${p.add(now)} RETURNING id`,
      p.values,
    );
    return rows.length;
  }

  async purge(query: PurgeQuery): Promise<number> {
    const T = this.tables.jobs;
    // The filter, bound again at each use (SQLite's `?` binds once per use). The DELETE repeats it outside the
    // subquery so a row retried between the SELECT and the DELETE (PostgreSQL re-checks the outer WHERE
    // after waiting for a row lock) is not deleted.
    const filter = (p: SqlParams): string => {
      let where = `status = ${p.add(query.status)} AND finished_at IS NOT NULL AND (key IS NULL OR finished_at + key_retention_ms <= ${p.add(query.now)})`;
      if (query.finishedBefore !== undefined) where += ` AND finished_at < ${p.add(query.finishedBefore)}`;
      if (query.type !== undefined) where += ` AND type = ${p.add(query.type)}`;
      return where;
    };
    if (query.dryRun) {
      const p = this.params();
      const rows = await this.sql.query<{ n: number | string }>(
        `SELECT count(*) AS n FROM (SELECT 1 FROM ${T} WHERE ${filter(p)} LIMIT ${p.add(query.limit)}) m`,
        p.values,
      );
      return Number(rows[0]?.n ?? 0);
    }
    let deleted = 0;
    // In chunks, so a large purge never holds the write lock for long.
    while (deleted < query.limit) {
      const chunk = Math.min(PURGE_CHUNK, query.limit - deleted);
      const p = this.params();
      const rows = await this.sql.query(
        `DELETE FROM ${T} WHERE id IN (SELECT id FROM ${T} WHERE ${filter(p)} LIMIT ${p.add(chunk)}) AND ${filter(p)} RETURNING id`,
        p.values,
      );
      deleted += rows.length;
      if (rows.length < chunk) break;
    }
    return deleted;
  }

  async counts(): Promise<Record<JobStatus, number>> {
    const rows = await this.sql.query<{ status: JobStatus; n: number | string }>(
      `SELECT status, count(*) AS n FROM ${this.tables.jobs} GROUP BY status`,
    );
    const counts = emptyCounts();
    for (const row of rows) counts[row.status] = Number(row.n);
    return counts;
  }

  async oldestReady(now: number): Promise<number | undefined> {
    const p = this.params();
    const rows = await this.sql.query<{ at: number | string | null }>(
      `SELECT min(run_at) AS at FROM ${this.tables.jobs} WHERE status = 'queued' AND run_at <= ${p.add(now)}`,
      p.values,
    );
    const at = rows[0]?.at;
    return at === null || at === undefined ? undefined : Number(at);
  }

  async upsertSchedule(row: ScheduleRow): Promise<ScheduleRow> {
    const S = this.tables.schedules;
    const p = this.params();
    const rows = await this.sql.query(
      `INSERT INTO ${S} AS s (${SCHEDULE_COLUMNS}) VALUES (${p.list([row.name, row.spec, row.type, row.data, row.options, row.nextRunAt])})
       ON CONFLICT (name) DO UPDATE SET type = excluded.type, data = excluded.data, options = excluded.options,
         next_run_at = CASE WHEN s.spec = excluded.spec THEN s.next_run_at ELSE excluded.next_run_at END,
         spec = excluded.spec
       RETURNING ${SCHEDULE_COLUMNS}`,
      p.values,
    );
    return toScheduleRow(rows[0] as Record<string, unknown>);
  }

  async getSchedules(names: readonly string[]): Promise<ScheduleRow[]> {
    if (names.length === 0) return [];
    const p = this.params();
    const rows = await this.sql.query(
      `SELECT ${SCHEDULE_COLUMNS} FROM ${this.tables.schedules} WHERE name IN (${p.list(names)})`,
      p.values,
    );
    return rows.map(toScheduleRow);
  }

  async fireSchedule(name: string, dueAt: number, nextAt: number, job: NewJob): Promise<boolean> {
    return this.sql.transaction(async (sql) => {
      // On PostgreSQL the row lock makes a second process wait, then see the moved tick and fire nothing.
      const p = this.params();
      const moved = await sql.query(
        `UPDATE ${this.tables.schedules} SET next_run_at = ${p.add(nextAt)} WHERE name = ${p.add(name)} AND next_run_at = ${p.add(dueAt)} RETURNING name`,
        p.values,
      );
      if (moved.length === 0) return false;
      await this.insert([job], job.createdAt, sql);
      return true;
    });
  }

  async deleteSchedule(name: string): Promise<boolean> {
    const p = this.params();
    const rows = await this.sql.query(
      `DELETE FROM ${this.tables.schedules} WHERE name = ${p.add(name)} RETURNING name`,
      p.values,
    );
    return rows.length > 0;
  }

  async close(): Promise<void> {}
}
