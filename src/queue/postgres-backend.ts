/**
 * PostgreSQL backend: many processes on many machines share one queue. A claim is one statement —
 * pick the best ready rows with `ORDER BY priority DESC, run_at, id LIMIT n FOR UPDATE SKIP LOCKED`
 * over a partial index of queued rows and update lease, attempt and fencing token, `RETURNING` them.
 * New jobs `NOTIFY` idle workers (a statement-level trigger, so a job enqueued in a transaction wakes
 * them at commit); polling is the fallback. Completions of a batch are one `UPDATE … FROM unnest(…)`.
 * Tables live in the connection's current schema.
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

const INSERT_COLUMNS =
  'id, type, data, status, priority, run_at, created_at, max_attempts, timeout_ms, backoff, key, key_retention_ms';
const INSERT_ONE = `INSERT INTO ${T} (${INSERT_COLUMNS}) VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8, $9, $10, $11)`;
const INSERT_MANY =
  `INSERT INTO ${T} (${INSERT_COLUMNS}) ` +
  `SELECT id, type, data, 'queued', priority, run_at, created_at, max_attempts, timeout_ms, backoff, key, key_retention_ms ` +
  'FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::bigint[], $6::bigint[], $7::int[], $8::float8[], $9::text[], $10::text[], $11::bigint[]) ' +
  'AS u(id, type, data, priority, run_at, created_at, max_attempts, timeout_ms, backoff, key, key_retention_ms)';
// Most jobs carry no per-job attempts, timeout, backoff or key: 6 arrays instead of 11 (node-pg
// serialises every array element to text, so this is most of the client-side insert cost).
const INSERT_MANY_LEAN =
  `INSERT INTO ${T} (id, type, data, status, priority, run_at, created_at) ` +
  `SELECT id, type, data, 'queued', priority, run_at, created_at ` +
  'FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::bigint[], $6::bigint[]) ' +
  'AS u(id, type, data, priority, run_at, created_at)';
const isLean = (job: NewJob): boolean =>
  job.maxAttempts === null &&
  job.timeoutMs === null &&
  job.backoff === null &&
  job.key === null &&
  job.keyRetentionMs === 0;
const ON_KEY_CONFLICT = ' ON CONFLICT (key) WHERE key IS NOT NULL DO NOTHING RETURNING id';
// Rows per unnest statement: 5,000 keeps each array parameter a few hundred KB for typical payloads.
const INSERT_CHUNK = 5_000;
const FINAL = "('succeeded', 'failed', 'cancelled')";

/**
 * A CTE that makes the statement's own transaction commit without waiting for the WAL flush. Used
 * only where a write lost in a database crash is harmless under at-least-once delivery: a claim,
 * lease renewal, progress or reap that vanishes leaves the job claimable again, exactly as if the
 * lease had expired. Enqueues and completions stay synchronous. Saves one fsync (1–5 ms with
 * fsync=on) per claim, which is most of the enqueue → start latency and half the drain cost.
 */
const ASYNC_COMMIT = "relaxed AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true))";

const CLAIM_RETURNS =
  'TABLE (id text, type text, data text, priority integer, run_at bigint, created_at bigint, attempts integer, ' +
  'max_attempts integer, timeout_ms double precision, backoff text, token bigint)';

/**
 * The claim is a SQL function so that it can carry planner settings. Right after a bulk enqueue the
 * table's statistics still say "a few rows", and the planner then picks a bitmap scan of every
 * ready row plus a sort — measured 60–90 ms per claim at 50,000 queued jobs. With bitmap scans,
 * sequential scans and sorts off, it walks the ready index in (priority DESC, run_at, id) order and
 * stops after `limit` rows, whatever the statistics say. (The aged order is an expression: it has
 * to sort the ready rows, so that variant keeps the planner's defaults.)
 */
function claimFunction(aging: boolean): string {
  const name = aging ? `${T}_claim_aged` : `${T}_claim`;
  const order = aging ? '(priority - run_at::float8 / p_aging) DESC, run_at, id' : 'priority DESC, run_at, id';
  const settings = aging ? '' : 'SET enable_bitmapscan = off SET enable_seqscan = off SET enable_sort = off';
  return `CREATE OR REPLACE FUNCTION ${name}(p_now bigint, p_types text[], p_limit integer, p_lease bigint, p_worker text${aging ? ', p_aging double precision' : ''})
    RETURNS ${CLAIM_RETURNS} LANGUAGE sql VOLATILE ${settings} AS $$
      WITH ${ASYNC_COMMIT}, picked AS (
        SELECT q.id FROM ${T} q, relaxed WHERE q.status = 'queued' AND q.run_at <= p_now AND q.type = ANY(p_types)
        ORDER BY ${order.replace(/\b(priority|run_at|id)\b/g, 'q.$1')} LIMIT p_limit FOR UPDATE OF q SKIP LOCKED)
      UPDATE ${T} j SET status = 'running', attempts = j.attempts + 1, token = j.token + 1, lease_until = p_lease,
        started_at = p_now, worker = p_worker
      FROM picked WHERE j.id = picked.id
      RETURNING ${CLAIM_COLUMNS.split(', ')
        .map((column) => `j.${column}`)
        .join(', ')}
    $$`;
}
const CLAIM = `SELECT * FROM ${T}_claim($1, $2::text[], $3, $4, $5)`;
const CLAIM_AGED = `SELECT * FROM ${T}_claim_aged($1, $2::text[], $3, $4, $5, $6)`;

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS ${T} (
    id text PRIMARY KEY,
    type text NOT NULL,
    data text NOT NULL,
    status text NOT NULL,
    priority integer NOT NULL,
    run_at bigint NOT NULL,
    created_at bigint NOT NULL,
    started_at bigint,
    finished_at bigint,
    attempts integer NOT NULL DEFAULT 0,
    max_attempts integer,
    timeout_ms double precision,
    backoff text,
    token bigint NOT NULL DEFAULT 0,
    lease_until bigint,
    worker text,
    progress_done double precision,
    progress_total double precision,
    progress_stage text,
    result text,
    error text,
    key text,
    key_retention_ms bigint NOT NULL DEFAULT 0,
    cancel_requested boolean NOT NULL DEFAULT false
  )`,
  // Ready rows only: the index stays as small as the backlog, and finished jobs cost nothing here.
  `CREATE INDEX IF NOT EXISTS ${T}_ready ON ${T} (priority DESC, run_at, id) INCLUDE (type) WHERE status = 'queued'`,
  `CREATE INDEX IF NOT EXISTS ${T}_leases ON ${T} (lease_until) WHERE status = 'running'`,
  `CREATE INDEX IF NOT EXISTS ${T}_finished ON ${T} (finished_at) WHERE finished_at IS NOT NULL`,
  `CREATE UNIQUE INDEX IF NOT EXISTS ${T}_key ON ${T} (key) WHERE key IS NOT NULL`,
  `CREATE TABLE IF NOT EXISTS ${S} (
    name text PRIMARY KEY,
    spec text NOT NULL,
    type text NOT NULL,
    data text NOT NULL,
    options text NOT NULL,
    next_run_at bigint NOT NULL
  )`,
  claimFunction(false),
  claimFunction(true),
  // The channel is derived from the schema, so queues in different schemas of one database do not wake each other.
  `CREATE OR REPLACE FUNCTION ${T}_notify() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN PERFORM pg_notify('hpq_' || substr(md5(TG_TABLE_SCHEMA), 1, 16), ''); RETURN NULL; END $$`,
  `DO $$ BEGIN
     IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = '${T}_notify' AND tgrelid = '${T}'::regclass) THEN
       CREATE TRIGGER ${T}_notify AFTER INSERT ON ${T} FOR EACH STATEMENT EXECUTE PROCEDURE ${T}_notify();
     END IF;
   END $$`,
];

const COMPLETE = `UPDATE ${T} j SET
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
    cancel_requested = false
  FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[])
    AS c(id, token, kind, result, error, at, run_at)
  WHERE j.id = c.id AND j.token = c.token AND j.status = 'running'
  RETURNING j.id`;

/** The PostgreSQL queue backend. */
export class PostgresBackend implements QueueBackend {
  readonly kind = 'postgres' as const;
  readonly #sql: SqlAccess;
  #workChannel = '';
  #cancelChannel = '';

  constructor(sql: SqlAccess) {
    this.#sql = sql;
  }

  async init(inTx?: SqlAccess): Promise<void> {
    const create = async (sql: SqlAccess) => {
      // Several processes may start at once: serialise the DDL per schema.
      await sql.query(`SELECT pg_advisory_xact_lock(hashtext('hotpath_queue:' || current_schema()))`);
      for (const statement of SCHEMA) await sql.query(statement);
    };
    await (inTx ? create(inTx) : this.#sql.transaction(create));
    const rows = await (inTx ?? this.#sql).query<{ hash: string }>(
      'SELECT substr(md5(current_schema()), 1, 16) AS hash',
    );
    const hash = rows[0]?.hash ?? 'public';
    this.#workChannel = `hpq_${hash}`;
    this.#cancelChannel = `hpqc_${hash}`;
  }

  async insert(jobs: readonly NewJob[], now: number, sql?: SqlAccess): Promise<string[]> {
    const hasKeys = jobs.some((job) => job.key !== null);
    if (!hasKeys && jobs.length === 1) {
      const job = jobs[0] as NewJob;
      await (sql ?? this.#sql).query(
        INSERT_ONE,
        [
          job.id,
          job.type,
          job.data,
          job.priority,
          job.runAt,
          job.createdAt,
          job.maxAttempts,
          job.timeoutMs,
          job.backoff,
          job.key,
          job.keyRetentionMs,
        ],
        { name: 'hpq_insert_one' },
      );
      return [job.id];
    }
    if (!hasKeys && jobs.length <= INSERT_CHUNK) {
      await this.#insertChunk(sql ?? this.#sql, jobs, false);
      return jobs.map((job) => job.id);
    }
    const run = async (tx: SqlAccess): Promise<string[]> => {
      const keys = hasKeys ? [...new Set(jobs.flatMap((job) => (job.key === null ? [] : [job.key])))] : [];
      if (keys.length > 0) {
        // Keys of jobs finished longer than their retention ago are free again.
        await tx.query(
          `UPDATE ${T} SET key = NULL WHERE key = ANY($1::text[]) AND status IN ${FINAL} AND finished_at + key_retention_ms <= $2`,
          [keys, now],
        );
      }
      const inserted = new Set<string>();
      for (let i = 0; i < jobs.length; i += INSERT_CHUNK) {
        const rows = await this.#insertChunk(tx, jobs.slice(i, i + INSERT_CHUNK), hasKeys);
        for (const row of rows) inserted.add(row.id);
      }
      if (!hasKeys) return jobs.map((job) => job.id);
      const holders = new Map<string, string>();
      const rows = await tx.query<{ id: string; key: string }>(`SELECT id, key FROM ${T} WHERE key = ANY($1::text[])`, [
        keys,
      ]);
      for (const row of rows) holders.set(row.key, row.id);
      return jobs.map((job) => (job.key === null || inserted.has(job.id) ? job.id : (holders.get(job.key) ?? job.id)));
    };
    return sql ? run(sql) : this.#sql.transaction(run);
  }

  #insertChunk(sql: SqlAccess, jobs: readonly NewJob[], returning: boolean): Promise<Array<{ id: string }>> {
    const n = jobs.length;
    if (!returning && jobs.every(isLean)) {
      const ids = new Array<string>(n);
      const types = new Array<string>(n);
      const data = new Array<string>(n);
      const priorities = new Array<number>(n);
      const runAts = new Array<number>(n);
      const createdAts = new Array<number>(n);
      for (let i = 0; i < n; i++) {
        const job = jobs[i] as NewJob;
        ids[i] = job.id;
        types[i] = job.type;
        data[i] = job.data;
        priorities[i] = job.priority;
        runAts[i] = job.runAt;
        createdAts[i] = job.createdAt;
      }
      return sql.query<{ id: string }>(INSERT_MANY_LEAN, [ids, types, data, priorities, runAts, createdAts], {
        name: 'hpq_insert_lean',
      });
    }
    const columns = Array.from({ length: 11 }, () => new Array<unknown>(n));
    for (let i = 0; i < n; i++) {
      const job = jobs[i] as NewJob;
      (columns[0] as unknown[])[i] = job.id;
      (columns[1] as unknown[])[i] = job.type;
      (columns[2] as unknown[])[i] = job.data;
      (columns[3] as unknown[])[i] = job.priority;
      (columns[4] as unknown[])[i] = job.runAt;
      (columns[5] as unknown[])[i] = job.createdAt;
      (columns[6] as unknown[])[i] = job.maxAttempts;
      (columns[7] as unknown[])[i] = job.timeoutMs;
      (columns[8] as unknown[])[i] = job.backoff;
      (columns[9] as unknown[])[i] = job.key;
      (columns[10] as unknown[])[i] = job.keyRetentionMs;
    }
    return returning
      ? sql.query<{ id: string }>(INSERT_MANY + ON_KEY_CONFLICT, columns, { name: 'hpq_insert_keyed' })
      : sql.query<{ id: string }>(INSERT_MANY, columns, { name: 'hpq_insert_many' });
  }

  async claim(request: ClaimRequest): Promise<ClaimedJob[]> {
    const aging = request.agingMs > 0;
    const params: unknown[] = [request.now, request.types, request.limit, request.leaseUntil, request.workerId];
    if (aging) params.push(request.agingMs);
    const rows = await this.#sql.query(aging ? CLAIM_AGED : CLAIM, params, {
      name: aging ? 'hpq_claim_aged' : 'hpq_claim',
    });
    return sortClaimed(rows.map(toClaimedJob), request.agingMs);
  }

  async renew(leases: readonly Lease[], leaseUntil: number): Promise<{ lost: string[]; cancelRequested: string[] }> {
    const rows = await this.#sql.query<{ id: string; cancel_requested: boolean }>(
      `WITH ${ASYNC_COMMIT} UPDATE ${T} j SET lease_until = $1 FROM relaxed, unnest($2::text[], $3::bigint[]) AS l(id, token)
       WHERE j.id = l.id AND j.token = l.token AND j.status = 'running' RETURNING j.id, j.cancel_requested`,
      [leaseUntil, leases.map((lease) => lease.id), leases.map((lease) => lease.token)],
      { name: 'hpq_renew' },
    );
    const held = new Set(rows.map((row) => row.id));
    return {
      lost: leases.filter((lease) => !held.has(lease.id)).map((lease) => lease.id),
      cancelRequested: rows.filter((row) => row.cancel_requested).map((row) => row.id),
    };
  }

  async complete(completions: readonly Completion[]): Promise<Set<string>> {
    // Rows are locked in id order, so two batches touching the same rows cannot deadlock each other.
    const sorted = [...completions].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const n = sorted.length;
    const ids = new Array<string>(n);
    const tokens = new Array<number>(n);
    const kinds = new Array<string>(n);
    const results = new Array<string | null>(n);
    const errors = new Array<string | null>(n);
    const ats = new Array<number>(n);
    const runAts = new Array<number | null>(n);
    for (let i = 0; i < n; i++) {
      const c = sorted[i] as Completion;
      ids[i] = c.id;
      tokens[i] = c.token;
      kinds[i] = c.kind;
      results[i] = c.kind === 'succeeded' ? c.result : null;
      errors[i] = c.kind === 'failed' || c.kind === 'cancelled' || c.kind === 'retry' ? c.error : null;
      ats[i] = Math.round(c.at);
      runAts[i] = c.kind === 'retry' ? c.runAt : null;
    }
    const rows = await this.#sql.query<{ id: string }>(COMPLETE, [ids, tokens, kinds, results, errors, ats, runAts], {
      name: 'hpq_complete',
    });
    return new Set(rows.map((row) => row.id));
  }

  async progress(lease: Lease, done: number, total: number | null, stage: string | null): Promise<boolean> {
    const rows = await this.#sql.query(
      `WITH ${ASYNC_COMMIT} UPDATE ${T} SET progress_done = $1, progress_total = $2, progress_stage = $3 FROM relaxed
       WHERE id = $4 AND token = $5 AND status = 'running' RETURNING id`,
      [done, total, stage, lease.id, lease.token],
      { name: 'hpq_progress' },
    );
    return rows.length > 0;
  }

  async get(id: string): Promise<JobRow | undefined> {
    const rows = await this.#sql.query(`SELECT ${ROW_COLUMNS} FROM ${T} WHERE id = $1`, [id], { name: 'hpq_get' });
    return rows[0] === undefined ? undefined : toJobRow(rows[0]);
  }

  async list(query: ListQuery): Promise<JobRow[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (query.status !== undefined) {
      params.push(query.status);
      where.push(`status = $${params.length}`);
    }
    if (query.type !== undefined) {
      params.push(query.type);
      where.push(`type = $${params.length}`);
    }
    if (query.after !== undefined) {
      params.push(query.after);
      where.push(`id > $${params.length}`);
    }
    params.push(query.limit);
    const rows = await this.#sql.query(
      `SELECT ${ROW_COLUMNS} FROM ${T} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT $${params.length}`,
      params,
    );
    return rows.map(toJobRow);
  }

  async cancel(id: string, now: number, error: string): Promise<CancelOutcome> {
    const cancelled = await this.#sql.query(
      `UPDATE ${T} SET status = 'cancelled', finished_at = $1, error = $2, token = token + 1
       WHERE id = $3 AND status = 'queued' RETURNING id`,
      [now, error, id],
    );
    if (cancelled.length > 0) return 'cancelled';
    const requested = await this.#sql.query(
      `UPDATE ${T} SET cancel_requested = true WHERE id = $1 AND status = 'running' RETURNING id`,
      [id],
    );
    if (requested.length > 0) {
      // A hint for the worker running it; its next heartbeat sees the flag anyway.
      await this.#sql.query('SELECT pg_notify($1, $2)', [this.#cancelChannel, id]);
      return 'requested';
    }
    const rows = await this.#sql.query(`SELECT status FROM ${T} WHERE id = $1`, [id]);
    return rows.length > 0 ? 'finished' : 'missing';
  }

  async retry(id: string, now: number): Promise<boolean> {
    const rows = await this.#sql.query(
      `UPDATE ${T} SET status = 'queued', attempts = 0, error = NULL, result = NULL, finished_at = NULL, started_at = NULL,
        progress_done = NULL, progress_total = NULL, progress_stage = NULL, run_at = $1, token = token + 1, cancel_requested = false
       WHERE id = $2 AND status IN ('failed', 'cancelled') RETURNING id`,
      [now, id],
    );
    if (rows.length > 0) await this.#sql.query('SELECT pg_notify($1, $2)', [this.#workChannel, '']);
    return rows.length > 0;
  }

  async reap(now: number, defaultAttempts: number, error: string): Promise<number> {
    const rows = await this.#sql.query(
      `UPDATE ${T} SET
        status = CASE WHEN cancel_requested THEN 'cancelled'
                      WHEN attempts >= COALESCE(max_attempts, $1) THEN 'failed' ELSE 'queued' END,
        finished_at = CASE WHEN cancel_requested OR attempts >= COALESCE(max_attempts, $1) THEN $2 ELSE NULL END,
        error = CASE WHEN NOT cancel_requested AND attempts >= COALESCE(max_attempts, $1) THEN $3 ELSE error END,
        token = token + 1, lease_until = NULL, cancel_requested = false
       WHERE status = 'running' AND lease_until < $2 RETURNING id`,
      [defaultAttempts, now, error],
      { name: 'hpq_reap' },
    );
    return rows.length;
  }

  async sweep(now: number, finishedBefore: number, limit: number): Promise<number> {
    const rows = await this.#sql.query(
      `DELETE FROM ${T} WHERE id IN (SELECT id FROM ${T} WHERE finished_at IS NOT NULL AND finished_at < $1
         AND status IN ${FINAL} AND (key IS NULL OR finished_at + key_retention_ms <= $2) LIMIT $3 FOR UPDATE SKIP LOCKED)
       RETURNING id`,
      [finishedBefore, now, limit],
      { name: 'hpq_sweep' },
    );
    return rows.length;
  }

  async counts(): Promise<Record<JobStatus, number>> {
    const rows = await this.#sql.query<{ status: JobStatus; n: string }>(
      `SELECT status, count(*) AS n FROM ${T} GROUP BY status`,
    );
    const counts = emptyCounts();
    for (const row of rows) counts[row.status] = Number(row.n);
    return counts;
  }

  async oldestReady(now: number): Promise<number | undefined> {
    const rows = await this.#sql.query<{ at: string | null }>(
      `SELECT min(run_at) AS at FROM ${T} WHERE status = 'queued' AND run_at <= $1`,
      [now],
    );
    const at = rows[0]?.at;
    return at === null || at === undefined ? undefined : Number(at);
  }

  async upsertSchedule(row: ScheduleRow): Promise<ScheduleRow> {
    const rows = await this.#sql.query(
      `INSERT INTO ${S} (${SCHEDULE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)
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
    const rows = await this.#sql.query(`SELECT ${SCHEDULE_COLUMNS} FROM ${S} WHERE name = ANY($1::text[])`, [names]);
    return rows.map(toScheduleRow);
  }

  async fireSchedule(name: string, dueAt: number, nextAt: number, job: NewJob): Promise<boolean> {
    return this.#sql.transaction(async (sql) => {
      // The row lock makes a second process wait, then see the moved tick and fire nothing.
      const moved = await sql.query(
        `UPDATE ${S} SET next_run_at = $1 WHERE name = $2 AND next_run_at = $3 RETURNING name`,
        [nextAt, name, dueAt],
      );
      if (moved.length === 0) return false;
      await this.insert([job], job.createdAt, sql);
      return true;
    });
  }

  async deleteSchedule(name: string): Promise<boolean> {
    const rows = await this.#sql.query(`DELETE FROM ${S} WHERE name = $1 RETURNING name`, [name]);
    return rows.length > 0;
  }

  async subscribe(onWork: () => void, onCancel: (id: string) => void): Promise<() => Promise<void>> {
    const listen = this.#sql.listen;
    if (listen === undefined) return async () => {};
    const stopWork = await listen.call(this.#sql, this.#workChannel, () => onWork());
    const stopCancel = await listen.call(this.#sql, this.#cancelChannel, (payload) => onCancel(payload));
    return async () => {
      await stopWork();
      await stopCancel();
    };
  }

  async close(): Promise<void> {}
}
