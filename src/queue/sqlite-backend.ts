/**
 * SQLite backend: the queue's own tables on the storage adapter's one connection. Claims take a batch
 * in one `UPDATE … WHERE id IN (SELECT … ORDER BY priority DESC, run_at, id LIMIT n) RETURNING`, which
 * runs under SQLite's single write lock, over a partial index of queued rows. Several processes may
 * share the file (the busy timeout serialises them), but SQLite has one writer: more processes add no
 * throughput.
 * @module
 */
import type { SqlAccess } from '../storage/types.js';
import type {
  CancelOutcome,
  ClaimedJob,
  ClaimRequest,
  Completion,
  JobRow,
  Lease,
  ListQuery,
  NewJob,
  QueueBackend,
  ScheduleRow,
} from './backend.js';
import {
  CLAIM_COLUMNS,
  emptyCounts,
  ROW_COLUMNS,
  SCHEDULES_TABLE as S,
  SCHEDULE_COLUMNS,
  sortClaimed,
  JOBS_TABLE as T,
  toClaimedJob,
  toJobRow,
  toScheduleRow,
} from './sql-rows.js';
import type { JobStatus } from './types.js';

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS ${T} (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    status TEXT NOT NULL,
    priority INTEGER NOT NULL,
    run_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER,
    timeout_ms REAL,
    backoff TEXT,
    token INTEGER NOT NULL DEFAULT 0,
    lease_until INTEGER,
    worker TEXT,
    progress_done REAL,
    progress_total REAL,
    progress_stage TEXT,
    result TEXT,
    error TEXT,
    key TEXT,
    key_retention_ms INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0
  ) WITHOUT ROWID`,
  // WITHOUT ROWID: the table itself is the b-tree on id (UUIDv7, so inserts append), which saves the
  // separate primary-key index a rowid table needs — measured 1.5× faster bulk inserts of 50,000 jobs.
  // Ready rows only: the index stays as small as the backlog, and finished jobs cost nothing here.
  `CREATE INDEX IF NOT EXISTS ${T}_ready ON ${T} (priority DESC, run_at, id) WHERE status = 'queued'`,
  `CREATE INDEX IF NOT EXISTS ${T}_leases ON ${T} (lease_until) WHERE status = 'running'`,
  `CREATE INDEX IF NOT EXISTS ${T}_finished ON ${T} (finished_at) WHERE finished_at IS NOT NULL`,
  `CREATE UNIQUE INDEX IF NOT EXISTS ${T}_key ON ${T} (key) WHERE key IS NOT NULL`,
  `CREATE TABLE IF NOT EXISTS ${S} (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    options TEXT NOT NULL,
    next_run_at INTEGER NOT NULL
  )`,
];

const LEAN_COLUMNS = 'id, type, data, status, priority, run_at, created_at';
const isLean = (job: NewJob): boolean =>
  job.maxAttempts === null &&
  job.timeoutMs === null &&
  job.backoff === null &&
  job.key === null &&
  job.keyRetentionMs === 0;
const INSERT_COLUMNS =
  'id, type, data, status, priority, run_at, created_at, max_attempts, timeout_ms, backoff, key, key_retention_ms';
// 11 bound values per row; 500 rows = 5,500 parameters, well under SQLite's 32,766 limit, and few
// enough statement shapes (a full chunk plus one remainder per batch size) for the statement cache.
const INSERT_CHUNK = 500;
// Lean rows bind 6 values: 2,500 rows = 15,000 parameters, and 20 statements for 50,000 jobs instead of 100.
const LEAN_CHUNK = 2_500;
const FINAL = "('succeeded', 'failed', 'cancelled')";

function placeholders(count: number): string {
  return Array.from({ length: count }, () => '?').join(', ');
}

/** The SQLite queue backend. */
export class SqliteBackend implements QueueBackend {
  readonly kind = 'sqlite' as const;
  readonly #sql: SqlAccess;
  readonly #claimSql = new Map<string, string>();
  readonly #insertSql = new Map<string, string>();

  constructor(sql: SqlAccess) {
    this.#sql = sql;
  }

  async init(inTx?: SqlAccess): Promise<void> {
    const create = async (sql: SqlAccess) => {
      for (const statement of SCHEMA) await sql.query(statement);
    };
    await (inTx ? create(inTx) : this.#sql.transaction(create));
  }

  async insert(jobs: readonly NewJob[], now: number, sql?: SqlAccess): Promise<string[]> {
    const hasKeys = jobs.some((job) => job.key !== null);
    const chunk = !hasKeys && jobs.every(isLean) ? LEAN_CHUNK : INSERT_CHUNK;
    if (!hasKeys && jobs.length <= chunk) {
      await this.#insertChunk(sql ?? this.#sql, jobs, false);
      return jobs.map((job) => job.id);
    }
    const run = async (tx: SqlAccess): Promise<string[]> => {
      const keys = hasKeys ? [...new Set(jobs.flatMap((job) => (job.key === null ? [] : [job.key])))] : [];
      for (let i = 0; i < keys.length; i += INSERT_CHUNK) {
        const part = keys.slice(i, i + INSERT_CHUNK);
        // Keys of jobs finished longer than their retention ago are free again.
        await tx.query(
          `UPDATE ${T} SET key = NULL WHERE key IN (${placeholders(part.length)}) AND status IN ${FINAL} AND finished_at + key_retention_ms <= ?`,
          [...part, now],
        );
      }
      const inserted = new Set<string>();
      for (let i = 0; i < jobs.length; i += chunk) {
        const rows = await this.#insertChunk(tx, jobs.slice(i, i + chunk), hasKeys);
        for (const row of rows) inserted.add(row.id);
      }
      if (!hasKeys) return jobs.map((job) => job.id);
      const holders = new Map<string, string>();
      for (let i = 0; i < keys.length; i += INSERT_CHUNK) {
        const part = keys.slice(i, i + INSERT_CHUNK);
        const rows = await tx.query<{ id: string; key: string }>(
          `SELECT id, key FROM ${T} WHERE key IN (${placeholders(part.length)})`,
          part,
        );
        for (const row of rows) holders.set(row.key, row.id);
      }
      return jobs.map((job) => (job.key === null || inserted.has(job.id) ? job.id : (holders.get(job.key) ?? job.id)));
    };
    return sql ? run(sql) : this.#sql.transaction(run);
  }

  async #insertChunk(sql: SqlAccess, jobs: readonly NewJob[], returning: boolean): Promise<Array<{ id: string }>> {
    // Most jobs carry no per-job attempts, timeout, backoff or key: bind 6 values instead of 11
    // (binding is a third of the insert cost at this size).
    const lean = !returning && jobs.every(isLean);
    const shape = `${jobs.length}:${returning}:${lean}`;
    let text = this.#insertSql.get(shape);
    if (text === undefined) {
      const row = lean ? "(?, ?, ?, 'queued', ?, ?, ?)" : "(?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?)";
      text =
        `INSERT INTO ${T} (${lean ? LEAN_COLUMNS : INSERT_COLUMNS}) VALUES ${Array.from({ length: jobs.length }, () => row).join(', ')}` +
        (returning ? ' ON CONFLICT (key) WHERE key IS NOT NULL DO NOTHING RETURNING id' : '');
      this.#insertSql.set(shape, text);
    }
    const params: unknown[] = new Array(jobs.length * (lean ? 6 : 11));
    let at = 0;
    for (const job of jobs) {
      params[at++] = job.id;
      params[at++] = job.type;
      params[at++] = job.data;
      params[at++] = job.priority;
      params[at++] = job.runAt;
      params[at++] = job.createdAt;
      if (lean) continue;
      params[at++] = job.maxAttempts;
      params[at++] = job.timeoutMs;
      params[at++] = job.backoff;
      params[at++] = job.key;
      params[at++] = job.keyRetentionMs;
    }
    return sql.query<{ id: string }>(text, params);
  }

  async claim(request: ClaimRequest): Promise<ClaimedJob[]> {
    const aging = request.agingMs > 0;
    const shape = `${request.types.length}:${aging}`;
    let text = this.#claimSql.get(shape);
    if (text === undefined) {
      const order = aging ? '(priority - run_at / ?) DESC, run_at, id' : 'priority DESC, run_at, id';
      const typeFilter = request.types.length === 1 ? 'type = ?' : `type IN (${placeholders(request.types.length)})`;
      text =
        `UPDATE ${T} SET status = 'running', attempts = attempts + 1, token = token + 1, lease_until = ?, started_at = ?, worker = ? ` +
        `WHERE id IN (SELECT id FROM ${T} WHERE status = 'queued' AND run_at <= ? AND ${typeFilter} ORDER BY ${order} LIMIT ?) ` +
        `RETURNING ${CLAIM_COLUMNS}`;
      this.#claimSql.set(shape, text);
    }
    const params: unknown[] = [request.leaseUntil, request.now, request.workerId, request.now, ...request.types];
    if (aging) params.push(request.agingMs);
    params.push(request.limit);
    const rows = await this.#sql.query(text, params);
    return sortClaimed(rows.map(toClaimedJob), request.agingMs);
  }

  async renew(leases: readonly Lease[], leaseUntil: number): Promise<{ lost: string[]; cancelRequested: string[] }> {
    const rows = await this.#sql.query<{ id: string; cancel_requested: number }>(
      `UPDATE ${T} SET lease_until = ? FROM (SELECT value ->> 0 AS id, value ->> 1 AS token FROM json_each(?)) AS l ` +
        `WHERE ${T}.id = l.id AND ${T}.token = l.token AND ${T}.status = 'running' RETURNING ${T}.id, ${T}.cancel_requested`,
      [leaseUntil, JSON.stringify(leases.map((lease) => [lease.id, lease.token]))],
    );
    const held = new Set(rows.map((row) => row.id));
    return {
      lost: leases.filter((lease) => !held.has(lease.id)).map((lease) => lease.id),
      cancelRequested: rows.filter((row) => row.cancel_requested === 1).map((row) => row.id),
    };
  }

  async complete(completions: readonly Completion[]): Promise<Set<string>> {
    const payload = completions.map((c) => [
      c.id,
      c.token,
      c.kind,
      c.kind === 'succeeded' ? c.result : null,
      c.kind === 'failed' || c.kind === 'cancelled' || c.kind === 'retry' ? c.error : null,
      c.at,
      c.kind === 'retry' ? c.runAt : null,
    ]);
    // One statement for the whole batch. A job whose cancel was requested by another process while it
    // ran is not retried or handed back but cancelled.
    const rows = await this.#sql.query<{ id: string }>(
      `UPDATE ${T} SET
        status = CASE
          WHEN c.kind IN ('retry', 'released') AND ${T}.cancel_requested = 1 THEN 'cancelled'
          WHEN c.kind IN ('retry', 'released') THEN 'queued'
          ELSE c.kind END,
        result = c.result,
        error = CASE WHEN c.kind = 'released' THEN ${T}.error ELSE c.error END,
        finished_at = CASE WHEN c.kind IN ('retry', 'released') AND ${T}.cancel_requested = 0 THEN NULL ELSE c.at END,
        run_at = CASE WHEN c.kind = 'retry' THEN c.run_at ELSE ${T}.run_at END,
        attempts = CASE WHEN c.kind = 'released' THEN ${T}.attempts - 1 ELSE ${T}.attempts END,
        token = CASE WHEN c.kind = 'released' THEN ${T}.token + 1 ELSE ${T}.token END,
        lease_until = NULL,
        cancel_requested = 0
      FROM (SELECT value ->> 0 AS id, value ->> 1 AS token, value ->> 2 AS kind, value ->> 3 AS result,
                   value ->> 4 AS error, value ->> 5 AS at, value ->> 6 AS run_at FROM json_each(?)) AS c
      WHERE ${T}.id = c.id AND ${T}.token = c.token AND ${T}.status = 'running'
      RETURNING ${T}.id`,
      [JSON.stringify(payload)],
    );
    return new Set(rows.map((row) => row.id));
  }

  async progress(lease: Lease, done: number, total: number | null, stage: string | null): Promise<boolean> {
    const rows = await this.#sql.query(
      `UPDATE ${T} SET progress_done = ?, progress_total = ?, progress_stage = ? WHERE id = ? AND token = ? AND status = 'running' RETURNING id`,
      [done, total, stage, lease.id, lease.token],
    );
    return rows.length > 0;
  }

  async get(id: string): Promise<JobRow | undefined> {
    const rows = await this.#sql.query(`SELECT ${ROW_COLUMNS} FROM ${T} WHERE id = ?`, [id]);
    return rows[0] === undefined ? undefined : toJobRow(rows[0]);
  }

  async list(query: ListQuery): Promise<JobRow[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (query.status !== undefined) {
      where.push('status = ?');
      params.push(query.status);
    }
    if (query.type !== undefined) {
      where.push('type = ?');
      params.push(query.type);
    }
    if (query.after !== undefined) {
      where.push('id > ?');
      params.push(query.after);
    }
    params.push(query.limit);
    const rows = await this.#sql.query(
      `SELECT ${ROW_COLUMNS} FROM ${T} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT ?`,
      params,
    );
    return rows.map(toJobRow);
  }

  async cancel(id: string, now: number, error: string): Promise<CancelOutcome> {
    const cancelled = await this.#sql.query(
      `UPDATE ${T} SET status = 'cancelled', finished_at = ?, error = ?, token = token + 1 WHERE id = ? AND status = 'queued' RETURNING id`,
      [now, error, id],
    );
    if (cancelled.length > 0) return 'cancelled';
    const requested = await this.#sql.query(
      `UPDATE ${T} SET cancel_requested = 1 WHERE id = ? AND status = 'running' RETURNING id`,
      [id],
    );
    if (requested.length > 0) return 'requested';
    const rows = await this.#sql.query(`SELECT status FROM ${T} WHERE id = ?`, [id]);
    return rows.length > 0 ? 'finished' : 'missing';
  }

  async retry(id: string, now: number): Promise<boolean> {
    const rows = await this.#sql.query(
      `UPDATE ${T} SET status = 'queued', attempts = 0, error = NULL, result = NULL, finished_at = NULL, started_at = NULL,
        progress_done = NULL, progress_total = NULL, progress_stage = NULL, run_at = ?, token = token + 1, cancel_requested = 0
       WHERE id = ? AND status IN ('failed', 'cancelled') RETURNING id`,
      [now, id],
    );
    return rows.length > 0;
  }

  async reap(now: number, defaultAttempts: number, error: string): Promise<number> {
    const rows = await this.#sql.query(
      `UPDATE ${T} SET
        status = CASE WHEN cancel_requested = 1 THEN 'cancelled'
                      WHEN attempts >= COALESCE(max_attempts, ?) THEN 'failed' ELSE 'queued' END,
        finished_at = CASE WHEN cancel_requested = 1 OR attempts >= COALESCE(max_attempts, ?) THEN ? ELSE NULL END,
        error = CASE WHEN cancel_requested = 0 AND attempts >= COALESCE(max_attempts, ?) THEN ? ELSE error END,
        token = token + 1, lease_until = NULL, cancel_requested = 0
       WHERE status = 'running' AND lease_until < ? RETURNING id`,
      [defaultAttempts, defaultAttempts, now, defaultAttempts, error, now],
    );
    return rows.length;
  }

  async sweep(now: number, finishedBefore: number, limit: number): Promise<number> {
    const rows = await this.#sql.query(
      `DELETE FROM ${T} WHERE id IN (SELECT id FROM ${T} WHERE finished_at IS NOT NULL AND finished_at < ?
         AND status IN ${FINAL} AND (key IS NULL OR finished_at + key_retention_ms <= ?) LIMIT ?) RETURNING id`,
      [finishedBefore, now, limit],
    );
    return rows.length;
  }

  async counts(): Promise<Record<JobStatus, number>> {
    const rows = await this.#sql.query<{ status: JobStatus; n: number }>(
      `SELECT status, count(*) AS n FROM ${T} GROUP BY status`,
    );
    const counts = emptyCounts();
    for (const row of rows) counts[row.status] = Number(row.n);
    return counts;
  }

  async oldestReady(now: number): Promise<number | undefined> {
    const rows = await this.#sql.query<{ at: number | null }>(
      `SELECT min(run_at) AS at FROM ${T} WHERE status = 'queued' AND run_at <= ?`,
      [now],
    );
    const at = rows[0]?.at;
    return at === null || at === undefined ? undefined : Number(at);
  }

  async upsertSchedule(row: ScheduleRow): Promise<ScheduleRow> {
    const rows = await this.#sql.query(
      `INSERT INTO ${S} (${SCHEDULE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET type = excluded.type, data = excluded.data, options = excluded.options,
         next_run_at = CASE WHEN ${S}.spec = excluded.spec THEN ${S}.next_run_at ELSE excluded.next_run_at END,
         spec = excluded.spec
       RETURNING ${SCHEDULE_COLUMNS}`,
      [row.name, row.spec, row.type, row.data, row.options, row.nextRunAt],
    );
    return toScheduleRow(rows[0] as Record<string, unknown>);
  }

  async getSchedules(names: readonly string[]): Promise<ScheduleRow[]> {
    if (names.length === 0) return [];
    const rows = await this.#sql.query(
      `SELECT ${SCHEDULE_COLUMNS} FROM ${S} WHERE name IN (${placeholders(names.length)})`,
      names,
    );
    return rows.map(toScheduleRow);
  }

  async fireSchedule(name: string, dueAt: number, nextAt: number, job: NewJob): Promise<boolean> {
    return this.#sql.transaction(async (sql) => {
      const moved = await sql.query(
        `UPDATE ${S} SET next_run_at = ? WHERE name = ? AND next_run_at = ? RETURNING name`,
        [nextAt, name, dueAt],
      );
      if (moved.length === 0) return false;
      await this.insert([job], job.createdAt, sql);
      return true;
    });
  }

  async deleteSchedule(name: string): Promise<boolean> {
    const rows = await this.#sql.query(`DELETE FROM ${S} WHERE name = ? RETURNING name`, [name]);
    return rows.length > 0;
  }

  async close(): Promise<void> {}
}
