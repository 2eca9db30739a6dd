/**
 * The contract between the backend-agnostic {@link JobQueue} engine and its storage backends
 * (memory, SQLite, PostgreSQL). Internal: users pick a backend through `JobQueue({ storage })`.
 * Times are epoch ms from the queue's clock, so every backend orders and expires by the same clock.
 * @module
 */
import type { SqlAccess } from '../storage/types.js';
import type { JobStatus, QueueBackendKind } from './types.js';

/** A validated job ready to be written. JSON fields are already serialised. */
export interface NewJob {
  id: string;
  type: string;
  /** JSON text. */
  data: string;
  priority: number;
  runAt: number;
  createdAt: number;
  maxAttempts: number | null;
  timeoutMs: number | null;
  /** JSON text of a JobBackoff, or null. */
  backoff: string | null;
  key: string | null;
  keyRetentionMs: number;
  /** Who submitted it, or null. */
  owner: string | null;
}

/** A job handed to a worker by `claim`, with the fencing token of this claim. */
export interface ClaimedJob {
  id: string;
  type: string;
  data: string;
  priority: number;
  runAt: number;
  createdAt: number;
  /** Attempts including this one. */
  attempts: number;
  maxAttempts: number | null;
  timeoutMs: number | null;
  backoff: string | null;
  /** Fencing token: every write about this run must carry it, and fails once another claim bumped it. */
  token: number;
}

/** A stored job, as `get` and `list` read it. */
export interface JobRow {
  id: string;
  type: string;
  data: string;
  status: JobStatus;
  priority: number;
  runAt: number;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  attempts: number;
  maxAttempts: number | null;
  progressDone: number | null;
  progressTotal: number | null;
  progressStage: string | null;
  result: string | null;
  error: string | null;
  key: string | null;
  owner: string | null;
  cancelRequested: boolean;
}

/** The outcome of one run, written fenced by `(id, token)`. */
export type Completion =
  | { kind: 'succeeded'; id: string; token: number; result: string; at: number }
  | { kind: 'failed'; id: string; token: number; error: string; at: number }
  | { kind: 'retry'; id: string; token: number; error: string; runAt: number; at: number }
  | { kind: 'cancelled'; id: string; token: number; error: string; at: number }
  /** Hand the lease back without spending the attempt (graceful stop). */
  | { kind: 'released'; id: string; token: number; at: number };

/** One lease to renew. */
export interface Lease {
  id: string;
  token: number;
}

/** Arguments of {@link QueueBackend.claim}. */
export interface ClaimRequest {
  types: readonly string[];
  limit: number;
  now: number;
  leaseUntil: number;
  /** Priority aging in ms, or 0 for none. */
  agingMs: number;
  workerId: string;
}

/** A recurring job's stored state. */
export interface ScheduleRow {
  name: string;
  /** JSON of the ScheduleSpec, compared to detect a changed spec. */
  spec: string;
  type: string;
  data: string;
  /** JSON of the ScheduleOptions. */
  options: string;
  nextRunAt: number;
}

/** Outcome of `cancel` at the storage level. */
export type CancelOutcome = 'cancelled' | 'requested' | 'finished' | 'missing';

/** Filter of `list` at the storage level. */
export interface ListQuery {
  status: JobStatus | undefined;
  type: string | undefined;
  limit: number;
  /** Return ids strictly greater than this. */
  after: string | undefined;
}

/** Filter of `purge` at the storage level. */
export interface PurgeQuery {
  /** A final status. */
  status: 'succeeded' | 'failed' | 'cancelled';
  /** Only jobs finished strictly before this (epoch ms), or any when undefined. */
  finishedBefore: number | undefined;
  type: string | undefined;
  /** Most jobs to delete (or count) in this call. */
  limit: number;
  /** Key retention is judged at this time: a job whose dedupe key is still reserved is kept. */
  now: number;
  /** Count instead of delete. */
  dryRun: boolean;
}

/** A storage backend of the queue. Every method is safe to call from several processes at once. */
export interface QueueBackend {
  readonly kind: QueueBackendKind;
  /**
   * Creates tables and indexes (idempotent). With `sql` (a caller's open transaction) the statements
   * run inside it, so a first enqueue inside a transaction does not wait for the lock that transaction holds.
   */
  init(sql?: SqlAccess): Promise<void>;
  /**
   * Writes jobs (in one transaction; inside `sql` when given, the caller's transaction) and returns
   * their ids in input order: for a deduped key, the id of the job that holds it.
   */
  insert(jobs: readonly NewJob[], now: number, sql?: SqlAccess): Promise<string[]>;
  /** Claims up to `limit` ready jobs of `types` (best first), leasing them until `leaseUntil`. */
  claim(request: ClaimRequest): Promise<ClaimedJob[]>;
  /** Earliest `runAt` of a queued job of `types` (for exact wake-ups), when cheaply known. */
  nextRunAt?(types: readonly string[]): Promise<number | undefined>;
  /**
   * Extends leases still held (same token, still running). Returns the ids whose lease was lost and
   * those whose cancellation was requested.
   */
  renew(leases: readonly Lease[], leaseUntil: number): Promise<{ lost: string[]; cancelRequested: string[] }>;
  /** Writes outcomes fenced by token; returns the ids whose write applied. */
  complete(completions: readonly Completion[]): Promise<Set<string>>;
  /** Stores progress fenced by token; false when the lease was lost. */
  progress(lease: Lease, done: number, total: number | null, stage: string | null): Promise<boolean>;
  get(id: string): Promise<JobRow | undefined>;
  list(query: ListQuery): Promise<JobRow[]>;
  /** Queued → cancelled at once; running → cancel requested (the owner aborts it). */
  cancel(id: string, now: number, error: string): Promise<CancelOutcome>;
  /** Failed or cancelled → queued with attempts reset; false otherwise. */
  retry(id: string, now: number): Promise<boolean>;
  /**
   * Takes back leases that expired before `now`: queued again, or failed when the last attempt's
   * lease expired, or cancelled when cancel was requested. Returns how many.
   */
  reap(now: number, defaultAttempts: number, error: string): Promise<number>;
  /** Deletes up to `limit` jobs finished before `finishedBefore` (honouring key retention). */
  sweep(now: number, finishedBefore: number, limit: number): Promise<number>;
  /** Deletes (or with `dryRun`, counts) up to `limit` finished jobs matching `query`; returns how many. */
  purge(query: PurgeQuery): Promise<number>;
  counts(): Promise<Record<JobStatus, number>>;
  /** Earliest `runAt` of a job ready at `now` but still queued (undefined when none). */
  oldestReady(now: number): Promise<number | undefined>;
  /** Creates or updates a schedule; keeps the stored `nextRunAt` when the spec did not change. */
  upsertSchedule(row: ScheduleRow): Promise<ScheduleRow>;
  getSchedules(names: readonly string[]): Promise<ScheduleRow[]>;
  /**
   * Fires one tick: advances `nextRunAt` from `dueAt` to `nextAt` only if it still is `dueAt` and,
   * in the same transaction, inserts `job`. Returns whether this call fired it.
   */
  fireSchedule(name: string, dueAt: number, nextAt: number, job: NewJob): Promise<boolean>;
  deleteSchedule(name: string): Promise<boolean>;
  /** Subscribes to "new work" and "cancel requested" hints from other processes (PostgreSQL). */
  subscribe?(onWork: () => void, onCancel: (id: string) => void): Promise<() => Promise<void>>;
  /** Releases backend resources (not the shared storage). */
  close(): Promise<void>;
}
