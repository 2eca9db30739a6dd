/**
 * The one place that picks a queue backend for a storage adapter. A new backend is a new file in this
 * folder plus one line here; the engine knows only the {@link QueueBackend} interface.
 * @module
 */
import { ConfigError } from '../../core/errors.js';
import type { SqlAccess, StorageAdapter } from '../../storage/types.js';
import type { QueueBackend } from '../backend.js';
import { MemoryBackend } from './memory-backend.js';
import { PostgresBackend } from './postgres-backend.js';
import { SqliteBackend } from './sqlite-backend.js';

/**
 * The backend that stores jobs next to `storage` (none → in memory).
 * @param agingMs - priority aging (0 = off); the memory backend orders its heaps by it.
 * @throws ConfigError for a storage adapter without SQL access or of an unknown kind.
 */
export function createQueueBackend(storage: StorageAdapter | undefined, agingMs: number): QueueBackend {
  if (storage === undefined || storage.kind === 'memory') return new MemoryBackend(agingMs);
  const sql = storage.sql;
  if (sql === undefined) {
    throw new ConfigError('JobQueue.storage', `JobQueue.storage of kind "${storage.kind}" has no SQL access`);
  }
  if (storage.kind === 'sqlite' && sql.dialect === 'sqlite') return new SqliteBackend(sql);
  if (storage.kind === 'postgres' && sql.dialect === 'postgres') return new PostgresBackend(sql, sql.schema);
  throw new ConfigError('JobQueue.storage', `JobQueue.storage of kind "${storage.kind}" is not supported`);
}

/**
 * The SQL access of `tx`, a transaction of the queue's storage, for an enqueue inside it (undefined for
 * the memory backend, which has no transactions).
 * @throws ConfigError when `tx` belongs to another kind of storage.
 */
export function transactionSql(backend: QueueBackend, tx: StorageAdapter | undefined): SqlAccess | undefined {
  if (tx === undefined || backend.kind === 'memory') return undefined;
  const sql = tx.sql;
  if (sql === undefined || tx.kind !== backend.kind) {
    throw new ConfigError('JobQueue.enqueue.tx', `tx must be a transaction of the queue's ${backend.kind} storage`);
  }
  return sql;
}

/**
 * The backend's `init` run once: concurrent callers share one attempt, and a failed attempt lets the
 * next call try again. Inside a caller's transaction the tables are created on it (waiting for the
 * queue's own connection would wait for the lock that transaction holds on SQLite); that does not
 * count as done, since the transaction may roll back.
 */
export function initOnce(backend: QueueBackend): (inTx?: SqlAccess) => Promise<void> {
  let done = false;
  let pending: Promise<void> | undefined;
  return (inTx) => {
    if (inTx !== undefined && !done) return backend.init(inTx);
    pending ??= backend.init().then(
      () => {
        done = true;
      },
      (error: unknown) => {
        pending = undefined;
        throw error;
      },
    );
    return pending;
  };
}
