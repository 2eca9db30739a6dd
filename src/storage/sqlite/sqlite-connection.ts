/**
 * Opening the SQLite connection: options, pragmas (WAL, synchronous, busy timeout, cache, mmap) and the
 * periodic WAL checkpoint, and the state the adapter shares with the views bound to its transactions.
 * @module
 */
import { type Clock, systemClock, type TimerHandle } from '../../core/clock.js';
import { StorageError } from '../../core/errors.js';
import { type Logger, silentLogger } from '../../core/logger.js';
import { validateOptions } from '../../core/options.js';
import type { LatencyRecorder } from '../../core/recorder.js';
import { COMMON_SCHEMA, DEFAULT_TABLE_PREFIX, type StorageCommonOptions } from '../common-options.js';
import { describeFailure } from '../documents.js';
import { loadDriver, resolveDriver } from '../driver-loader.js';
import { WriteLock } from '../write-lock.js';
import { CheckpointThread } from './checkpoint-thread.js';
import type { SqliteDatabase, SqliteDatabaseConstructor, SqliteStatement } from './sqlite-driver-types.js';

/** Options of {@link SqliteStorage}. */
export interface SqliteStorageOptions extends StorageCommonOptions {
  /** Database file path, or `:memory:` (required). */
  filename: string;
  /** How long a write waits for another process's lock before failing, ms (default 5,000). */
  busyTimeoutMs?: number;
  /** `synchronous` pragma: `NORMAL` (default; durable across process crashes in WAL mode) or `FULL` (also across power loss). */
  synchronous?: 'NORMAL' | 'FULL';
  /** Page cache size in KiB (default 65,536 = 64 MiB). */
  cacheSizeKb?: number;
  /** Memory-mapped I/O size in bytes (default 268,435,456 = 256 MiB; 0 disables). */
  mmapSizeBytes?: number;
  /**
   * Interval of the background `wal_checkpoint(PASSIVE)`, ms (default 1,000 when it runs in its thread,
   * 30,000 when `checkpointThread: false`; 0 disables). Together with `journal_size_limit` it keeps the
   * WAL file from growing without bound when readers pin it. In the thread a checkpoint with nothing to
   * copy costs the event loop one message, so it runs often and the WAL stays short.
   */
  checkpointIntervalMs?: number;
  /**
   * Run that checkpoint on a second connection in a worker thread (default true for a file database),
   * so copying pages never stops the event loop; `false` runs it on the adapter's own connection
   * between transactions. If the thread cannot start or dies, checkpoints fall back to the adapter's
   * connection and a warning is logged once.
   */
  checkpointThread?: boolean;
  /** WAL size kept after a checkpoint, bytes (`journal_size_limit`, default 67,108,864 = 64 MiB). */
  walSizeLimitBytes?: number;
  /**
   * WAL length, in pages, past which a commit runs a checkpoint before it returns
   * (`wal_autocheckpoint`; default 8,192 pages = 32 MiB at 4 KiB pages). SQLite's own default of
   * 1,000 pages (4 MiB) makes any bulk write of more than 4 MiB pay for a full checkpoint inside its
   * own commit; with the higher threshold the `checkpointIntervalMs` timer usually does that work
   * instead, off the event loop (`checkpointThread`). 0 turns the in-commit checkpoint off; with
   * `checkpointIntervalMs: 0` as well nothing checkpoints and the WAL grows without bound.
   */
  walAutocheckpointPages?: number;
  /** Prepared statements kept for `sql.query` and `find` shapes (default 500). */
  statementCacheSize?: number;
}

const SCHEMA = {
  ...COMMON_SCHEMA,
  filename: { type: 'string', required: true, nonEmpty: true },
  busyTimeoutMs: { type: 'number', min: 0, max: 3_600_000, integer: true },
  synchronous: { type: 'string', oneOf: ['NORMAL', 'FULL'] },
  cacheSizeKb: { type: 'number', min: 0, max: 1_073_741_824, integer: true },
  mmapSizeBytes: { type: 'number', min: 0, max: 2 ** 45, integer: true },
  checkpointIntervalMs: { type: 'number', min: 0, max: 86_400_000, integer: true },
  checkpointThread: { type: 'boolean' },
  walSizeLimitBytes: { type: 'number', min: 0, max: 2 ** 45, integer: true },
  walAutocheckpointPages: { type: 'number', min: 0, max: 2 ** 31 - 1, integer: true },
  statementCacheSize: { type: 'number', min: 1, max: 100_000, integer: true },
} as const;

/** Prepared statements of one collection's table (built once, reused by every call). */
export interface TableStatements {
  table: string;
  get: SqliteStatement;
  getMeta: SqliteStatement;
  upsert: SqliteStatement;
  remove: SqliteStatement;
  readForUpdate: SqliteStatement;
  writeIfVersion: SqliteStatement;
  shapes: { get: string; upsert: string; remove: string; readForUpdate: string; writeIfVersion: string };
}

/** State shared by the adapter and the views bound to its transactions. */
export interface SqliteShared {
  db: SqliteDatabase;
  lock: WriteLock;
  clock: Clock;
  profiler: LatencyRecorder | undefined;
  logger: Logger;
  prefix: string;
  tables: Map<string, TableStatements>;
  statements: Map<string, SqliteStatement>;
  statementCacheSize: number;
  tableExists: SqliteStatement;
  closed: boolean;
  checkpointTimer: TimerHandle | undefined;
  /** The periodic checkpoint's own connection and thread (file databases in WAL mode). */
  checkpointThread: CheckpointThread | undefined;
  counters: {
    checkpoints: number;
    checkpointErrors: number;
    transactions: number;
    rollbacks: number;
    lockWaits: number;
  };
  savepointSeq: number;
}

/** Opens the database and applies the pragmas.
 * @throws ConfigError on invalid options or a missing driver; StorageError when the file cannot be opened. */
export function openShared(options: SqliteStorageOptions): SqliteShared {
  validateOptions('SqliteStorage', options, SCHEMA);
  const Database = loadDriver<SqliteDatabaseConstructor>('better-sqlite3', 'SqliteStorage');
  const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
  let db: SqliteDatabase;
  try {
    db = new Database(options.filename, { timeout: busyTimeoutMs });
  } catch (error) {
    throw new StorageError(describeFailure('open', undefined, error), { cause: error });
  }
  const walSizeLimitBytes = options.walSizeLimitBytes ?? 67_108_864;
  let isWal = false;
  try {
    isWal = db.pragma('journal_mode = WAL', { simple: true }) === 'wal';
    db.pragma(`synchronous = ${options.synchronous ?? 'NORMAL'}`);
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    db.pragma(`cache_size = -${options.cacheSizeKb ?? 65_536}`);
    db.pragma('temp_store = MEMORY');
    db.pragma(`mmap_size = ${options.mmapSizeBytes ?? 268_435_456}`);
    db.pragma(`journal_size_limit = ${walSizeLimitBytes}`);
    db.pragma(`wal_autocheckpoint = ${options.walAutocheckpointPages ?? 8_192}`);
    db.pragma('foreign_keys = ON');
  } catch (error) {
    db.close();
    throw new StorageError(describeFailure('open', undefined, error), { cause: error });
  }
  const logger = options.logger ?? silentLogger;
  const shared: SqliteShared = {
    db,
    lock: new WriteLock(),
    clock: options.clock ?? systemClock,
    profiler: options.profiler,
    logger,
    prefix: options.tablePrefix ?? DEFAULT_TABLE_PREFIX,
    tables: new Map(),
    statements: new Map(),
    statementCacheSize: options.statementCacheSize ?? 500,
    tableExists: db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").pluck(),
    closed: false,
    checkpointTimer: undefined,
    checkpointThread:
      isWal && options.checkpointThread !== false
        ? new CheckpointThread({
            driverPath: resolveDriver('better-sqlite3', 'SqliteStorage'),
            filename: options.filename,
            busyTimeoutMs,
            walSizeLimitBytes,
            onFailure: (error) =>
              logger.warn(
                { err: error },
                'storage: the checkpoint thread is unavailable; checkpoints run on the main connection from now on',
              ),
          })
        : undefined,
    counters: { checkpoints: 0, checkpointErrors: 0, transactions: 0, rollbacks: 0, lockWaits: 0 },
    savepointSeq: 0,
  };
  const intervalMs = options.checkpointIntervalMs ?? (shared.checkpointThread ? 1_000 : 30_000);
  if (intervalMs > 0) {
    const tick = (): void => {
      shared.checkpointTimer = undefined;
      if (shared.closed) return;
      const thread = shared.checkpointThread;
      if (thread !== undefined && thread.failure === undefined) {
        if (!thread.isBusy) checkpointInThread(shared, thread);
      } else if (!shared.lock.isHeld && !db.inTransaction) {
        // Never checkpoint from inside someone's open transaction.
        try {
          db.pragma('wal_checkpoint(PASSIVE)');
          shared.counters.checkpoints++;
        } catch (error) {
          shared.counters.checkpointErrors++;
          shared.logger.warn({ err: error }, 'storage: wal_checkpoint failed');
        }
      }
      shared.checkpointTimer = shared.clock.setTimeout(tick, intervalMs, { unref: true });
    };
    shared.checkpointTimer = shared.clock.setTimeout(tick, intervalMs, { unref: true });
  }
  return shared;
}

/** One checkpoint in the thread; after the thread has died the next tick runs inline. */
function checkpointInThread(shared: SqliteShared, thread: CheckpointThread): void {
  thread.checkpoint().then(
    () => {
      shared.counters.checkpoints++;
    },
    (error: unknown) => {
      if (shared.closed) return;
      shared.counters.checkpointErrors++;
      // A thread that died has said so through onFailure.
      if (thread.failure === undefined) shared.logger.warn({ err: error }, 'storage: wal_checkpoint failed');
    },
  );
}
