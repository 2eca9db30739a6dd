/**
 * A Kysely dialect over the adapter's own better-sqlite3 connection whose connections go through the
 * adapter's {@link WriteLock}, so `adapter.db` queries and Kysely transactions are serialised with
 * `adapter.transaction()` instead of silently joining an open one.
 * @module
 */
import {
  CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  type QueryResult,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
} from 'kysely';
import type { WriteLock } from '../write-lock.js';
import type { SqliteDatabase } from './sqlite-driver-types.js';

class LockedSqliteConnection implements DatabaseConnection {
  readonly #db: SqliteDatabase;
  constructor(db: SqliteDatabase) {
    this.#db = db;
  }

  executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    try {
      const stmt = this.#db.prepare(compiledQuery.sql);
      const params = compiledQuery.parameters as unknown[];
      if (stmt.reader) return Promise.resolve({ rows: stmt.all(...params) as R[] });
      const { changes, lastInsertRowid } = stmt.run(...params);
      return Promise.resolve({
        rows: [],
        numAffectedRows: BigInt(changes),
        insertId: BigInt(lastInsertRowid),
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async *streamQuery<R>(compiledQuery: CompiledQuery): AsyncIterableIterator<QueryResult<R>> {
    const stmt = this.#db.prepare(compiledQuery.sql);
    for (const row of stmt.iterate(...(compiledQuery.parameters as unknown[]))) yield { rows: [row as R] };
  }
}

class LockedSqliteDriver implements Driver {
  readonly #connection: LockedSqliteConnection;
  readonly #lock: WriteLock | undefined;
  constructor(db: SqliteDatabase, lock: WriteLock | undefined) {
    this.#connection = new LockedSqliteConnection(db);
    this.#lock = lock;
  }
  async init(): Promise<void> {}
  async acquireConnection(): Promise<DatabaseConnection> {
    if (this.#lock) await this.#lock.acquire();
    return this.#connection;
  }
  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('BEGIN IMMEDIATE'));
  }
  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('COMMIT'));
  }
  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('ROLLBACK'));
  }
  async releaseConnection(): Promise<void> {
    this.#lock?.release();
  }
  // The adapter owns the connection and closes it.
  async destroy(): Promise<void> {}
}

/**
 * Builds the dialect. `lock` is the adapter's write lock, or undefined for the Kysely instance bound
 * to an open `adapter.transaction()` (which already holds the lock).
 */
export function lockedSqliteDialect(db: SqliteDatabase, lock: WriteLock | undefined): Dialect {
  return {
    createAdapter: () => new SqliteAdapter(),
    createDriver: () => new LockedSqliteDriver(db, lock),
    createQueryCompiler: () => new SqliteQueryCompiler(),
    createIntrospector: (kysely: Kysely<unknown>) => new SqliteIntrospector(kysely),
  };
}
