/**
 * SQLite backend on better-sqlite3 (loaded when constructed). One connection, WAL mode; hot paths run
 * cached prepared statements synchronously; async transactions hold a write lock that callers outside
 * them wait for.
 * @module
 */
import { Kysely } from 'kysely';
import { throwIfAborted } from '../../core/abort.js';
import { ClosedError, ConfigError, ConflictError, StorageError } from '../../core/errors.js';
import { checkNumber, describeValue } from '../../core/options.js';
import type { LatencyRecorder } from '../../core/recorder.js';
import { aggregateNothing, normaliseAggregate } from '../aggregation.js';
import { indexName } from '../common-options.js';
import {
  encodeDocument,
  encodeManyPatch,
  encodePatch,
  normaliseFind,
  normaliseWhere,
  pageOf,
  resolveId,
} from '../documents.js';
import { checkCollection, checkField, checkId, quoteIdent } from '../names.js';
import { aggregateRows, aggregateStatement } from '../sql/sql-aggregate.js';
import { countStatement, findStatement, indexColumns, updateManyStatement } from '../sql/sql-query.js';
import { collectionsOf, type MetaRow, metaOf, SqlSession, sha1, wrapDriverError } from '../sql/sql-session.js';
import type {
  AggregateOptions,
  AggregateRow,
  DocumentWithMeta,
  FindOptions,
  FindResult,
  PutOptions,
  SqlAccess,
  StorageAdapter,
  StorageCallOptions,
  StorageStats,
  StoredDocument,
  UntypedDatabase,
  UpdateOptions,
  Where,
} from '../types.js';
import { openShared, type SqliteShared, type SqliteStorageOptions, type TableStatements } from './sqlite-connection.js';
import { lockedSqliteDialect } from './sqlite-dialect.js';
import type { SqliteStatement } from './sqlite-driver-types.js';

export type { SqliteStorageOptions } from './sqlite-connection.js';

interface TxState {
  finished: boolean;
  depth: number;
}

function normaliseParams(params: readonly unknown[] | undefined): unknown[] {
  if (!params || params.length === 0) return [];
  let out: unknown[] | undefined;
  for (let i = 0; i < params.length; i++) {
    const value = params[i];
    if (value === undefined || typeof value === 'boolean') {
      out ??= [...params];
      out[i] = value === undefined ? null : value ? 1 : 0;
    }
  }
  return out ?? (params as unknown[]);
}

/**
 * One view of the database: the adapter itself (gated by the write lock) or the view bound to an
 * open transaction (already holding it).
 */
class SqliteSession extends SqlSession implements StorageAdapter {
  readonly kind = 'sqlite' as const;
  readonly sql: SqlAccess;
  readonly #shared: SqliteShared;
  readonly #tx: TxState | undefined;
  #kysely: Kysely<UntypedDatabase> | undefined;

  constructor(shared: SqliteShared, tx: TxState | undefined) {
    super();
    this.#shared = shared;
    this.#tx = tx;
    const session = this;
    this.sql = {
      dialect: 'sqlite',
      query<R = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<R[]> {
        return session.#run(() => session.#query<R>(text, params));
      },
      transaction<T>(fn: (sql: SqlAccess) => Promise<T>): Promise<T> {
        return session.transaction((tx) => fn(tx.sql as SqlAccess));
      },
    };
  }

  // ---- gating -------------------------------------------------------------------------------------

  /** True once `close()` was called. */
  get isClosed(): boolean {
    return this.#shared.closed;
  }

  #check(): void {
    if (this.#tx?.finished) throw new StorageError('storage: this transaction has already finished');
    if (this.#shared.closed) throw new ClosedError('SqliteStorage');
  }

  /** Runs a synchronous operation now, or after the open transaction when one holds the lock. */
  #run<T>(op: () => T, signal?: AbortSignal): Promise<T> {
    try {
      throwIfAborted(signal);
      this.#check();
      if (this.#tx || !this.#shared.lock.isHeld) return Promise.resolve(op());
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#afterLock(op, signal);
  }

  async #afterLock<T>(op: () => T, signal: AbortSignal | undefined): Promise<T> {
    this.#shared.counters.lockWaits++;
    await this.#shared.lock.acquire(signal);
    try {
      this.#check();
      return op();
    } finally {
      this.#shared.lock.release();
    }
  }

  // SQLite statements and transactions are atomic and local: a failed one had no effect (busy, full
  // disk and I/O errors roll back), so retrying is always safe.
  #wrap(op: string, collection: string | undefined, error: unknown): unknown {
    return wrapDriverError(op, collection, error, true);
  }

  protected wrapError(op: string, collection: string | undefined, error: unknown): unknown {
    return this.#wrap(op, collection, error);
  }

  protected async probe(): Promise<void> {
    await this.#run(() => this.#statement('SELECT 1').pluck().get());
  }

  #record(op: string, shape: string, start: number, isError: boolean): void {
    const profiler = this.#shared.profiler as LatencyRecorder;
    profiler.record(op, performance.now() - start, isError);
    profiler.noteQuery?.(shape);
  }

  // ---- tables and statements ----------------------------------------------------------------------

  #statement(text: string): SqliteStatement {
    const { statements } = this.#shared;
    let stmt = statements.get(text);
    if (stmt === undefined) {
      stmt = this.#shared.db.prepare(text);
      if (statements.size >= this.#shared.statementCacheSize) {
        // Evict the oldest entry: Map iteration order is insertion order.
        const oldest = statements.keys().next().value as string;
        statements.delete(oldest);
      }
      statements.set(text, stmt);
    }
    return stmt;
  }

  // Document operations run these cached better-sqlite3 statements, not Kysely: Kysely compiles every
  // query, which holds a point get to ~66k ops/s against ~177k for a prepared statement (issue #7; 27.5k vs
  // 148.5k in bench/storage.bench.ts). Kysely is kept for `db` and `migrate`, where that cost is irrelevant.
  #prepareTable(collection: string): TableStatements {
    const table = quoteIdent(this.#shared.prefix + collection);
    const db = this.#shared.db;
    const shapes = {
      get: `SELECT data FROM ${table} WHERE id = ?`,
      upsert:
        `INSERT INTO ${table} (id, data, created_at, updated_at, version) VALUES (?, ?, ?, ?, 1) ` +
        'ON CONFLICT (id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at, version = version + 1',
      remove: `DELETE FROM ${table} WHERE id = ?`,
      readForUpdate: `SELECT data, version FROM ${table} WHERE id = ?`,
      writeIfVersion: `UPDATE ${table} SET data = ?, updated_at = ?, version = version + 1 WHERE id = ? AND version = ?`,
    };
    const statements: TableStatements = {
      table,
      get: db.prepare(shapes.get).pluck(),
      getMeta: db.prepare(`SELECT data, version, created_at, updated_at FROM ${table} WHERE id = ?`),
      upsert: db.prepare(shapes.upsert),
      remove: db.prepare(shapes.remove),
      readForUpdate: db.prepare(shapes.readForUpdate),
      writeIfVersion: db.prepare(shapes.writeIfVersion),
      shapes,
    };
    this.#shared.tables.set(collection, statements);
    return statements;
  }

  /** Statements of an existing table, or undefined when the collection has no table yet. */
  #existing(collection: string): TableStatements | undefined {
    const known = this.#shared.tables.get(collection);
    if (known) return known;
    checkCollection(collection);
    if (this.#shared.tableExists.get(this.#shared.prefix + collection) === undefined) return undefined;
    return this.#prepareTable(collection);
  }

  /** Statements of the table, creating it first when needed. */
  #ensureTable(collection: string): TableStatements {
    const known = this.#shared.tables.get(collection);
    if (known) return known;
    checkCollection(collection);
    const table = quoteIdent(this.#shared.prefix + collection);
    this.#shared.db.exec(
      `CREATE TABLE IF NOT EXISTS ${table} (id TEXT NOT NULL PRIMARY KEY, data TEXT NOT NULL, ` +
        'created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, version INTEGER NOT NULL DEFAULT 1)',
    );
    // A table created inside a transaction that rolls back disappears: forget cached statements then.
    return this.#prepareTable(collection);
  }

  // ---- synchronous operations ---------------------------------------------------------------------

  #get<T extends object>(collection: string, id: string): StoredDocument<T> | undefined {
    const table = this.#shared.tables.get(collection) ?? this.#existing(collection);
    if (typeof id !== 'string' || id.length === 0 || id.length > 512 || id.includes('\0')) checkId(id);
    if (table === undefined) return undefined;
    const start = this.#shared.profiler ? performance.now() : 0;
    let text: unknown;
    try {
      text = table.get.get(id);
    } catch (error) {
      if (this.#shared.profiler) this.#record('storage.get', table.shapes.get, start, true);
      throw this.#wrap('get', collection, error);
    }
    if (this.#shared.profiler) this.#record('storage.get', table.shapes.get, start, false);
    return text === undefined ? undefined : (JSON.parse(text as string) as StoredDocument<T>);
  }

  #getWithMeta<T extends object>(collection: string, id: string): DocumentWithMeta<T> | undefined {
    checkId(id);
    const table = this.#existing(collection);
    if (table === undefined) return undefined;
    const start = performance.now();
    try {
      const row = table.getMeta.get(id) as MetaRow | undefined;
      if (this.#shared.profiler) this.#record('storage.getWithMeta', table.shapes.get, start, false);
      return row === undefined ? undefined : metaOf<T>(row);
    } catch (error) {
      if (this.#shared.profiler) this.#record('storage.getWithMeta', table.shapes.get, start, true);
      throw this.#wrap('getWithMeta', collection, error);
    }
  }

  #put(collection: string, doc: object, explicitId: string | undefined): string {
    checkCollection(collection);
    const now = this.#shared.clock.now();
    const id = resolveId(doc, explicitId, now);
    const json = encodeDocument(doc, id);
    const start = this.#shared.profiler ? performance.now() : 0;
    let shape = '';
    try {
      const table = this.#ensureTable(collection);
      shape = table.shapes.upsert;
      table.upsert.run(id, json, now, now);
    } catch (error) {
      if (this.#shared.profiler) this.#record('storage.put', shape, start, true);
      throw this.#wrap('put', collection, error);
    }
    if (this.#shared.profiler) this.#record('storage.put', shape, start, false);
    return id;
  }

  #putMany(collection: string, docs: readonly object[]): string[] {
    checkCollection(collection);
    if (!Array.isArray(docs)) throw new ConfigError('docs', `docs must be an array, got ${describeValue(docs)}`);
    const n = docs.length;
    const ids: string[] = new Array(n);
    if (n === 0) return ids;
    const now = this.#shared.clock.now();
    const start = performance.now();
    const db = this.#shared.db;
    // Inside an open transaction a savepoint keeps the batch atomic without committing the outer one.
    const nested = db.inTransaction;
    let shape = '';
    try {
      db.exec(nested ? 'SAVEPOINT hp_put_many' : 'BEGIN IMMEDIATE');
    } catch (error) {
      throw this.#wrap('putMany', collection, error);
    }
    try {
      // Created inside the transaction, so a batch that fails leaves no empty table behind.
      const table = this.#ensureTable(collection);
      shape = table.shapes.upsert;
      const upsert = table.upsert;
      // One pass: validate, serialise and run the prepared upsert per document inside one transaction
      // (an invalid document rolls everything back). better-sqlite3 runs this at ~450k rows/s; building
      // arrays of ids and JSON first, then writing, cost ~15% more on 100,000 documents.
      for (let i = 0; i < n; i++) {
        const doc = docs[i] as object;
        const id = resolveId(doc, undefined, now);
        upsert.run(id, encodeDocument(doc, id), now, now);
        ids[i] = id;
      }
      db.exec(nested ? 'RELEASE hp_put_many' : 'COMMIT');
    } catch (error) {
      try {
        db.exec(nested ? 'ROLLBACK TO hp_put_many; RELEASE hp_put_many' : 'ROLLBACK');
      } catch {
        // The transaction is already gone (SQLite rolls back on some errors by itself).
      }
      this.#forgetTable(collection);
      if (this.#shared.profiler) this.#record('storage.putMany', shape, start, true);
      throw this.#wrap('putMany', collection, error);
    }
    if (this.#shared.profiler) this.#record('storage.putMany', shape, start, false);
    return ids;
  }

  #forgetTable(collection: string): void {
    this.#shared.tables.delete(collection);
  }

  #update<T extends object>(
    collection: string,
    id: string,
    patch: Partial<T>,
    options: UpdateOptions | undefined,
  ): StoredDocument<T> | undefined {
    checkId(id);
    const cleanPatch = encodePatch(patch, id);
    const expected = options?.expectedVersion;
    if (expected !== undefined) checkNumber('expectedVersion', expected, { min: 0, integer: true });
    const table = this.#existing(collection);
    if (table === undefined) return undefined;
    const start = performance.now();
    try {
      // Optimistic read-modify-write: the UPDATE only applies if nobody (another process) wrote since
      // the read; otherwise read again. Within this process the statements run back to back.
      for (let attempt = 0; attempt < 100; attempt++) {
        const row = table.readForUpdate.get(id) as { data: string; version: number } | undefined;
        if (row === undefined) return undefined;
        if (expected !== undefined && row.version !== expected) {
          throw new ConflictError(
            `storage.update on "${collection}": document ${JSON.stringify(id).slice(0, 80)} is at version ${row.version}, expected ${expected}`,
            expected,
            row.version,
          );
        }
        const merged = { ...(JSON.parse(row.data) as object), ...cleanPatch, id } as StoredDocument<T>;
        const result = table.writeIfVersion.run(JSON.stringify(merged), this.#shared.clock.now(), id, row.version);
        if (result.changes === 1) {
          if (this.#shared.profiler) this.#record('storage.update', table.shapes.writeIfVersion, start, false);
          return merged;
        }
      }
      throw new StorageError(`storage.update on "${collection}": too much write contention on one document`);
    } catch (error) {
      if (this.#shared.profiler) this.#record('storage.update', table.shapes.writeIfVersion, start, true);
      throw this.#wrap('update', collection, error);
    }
  }

  #updateMany(collection: string, where: Where, patch: Record<string, unknown>): number {
    checkCollection(collection);
    const clauses = normaliseWhere(where);
    const clean = encodeManyPatch(patch);
    const table = this.#existing(collection);
    if (table === undefined) return 0;
    const { text, values } = updateManyStatement('sqlite', table.table, clauses, clean, this.#shared.clock.now());
    const start = performance.now();
    try {
      const changed = this.#statement(text).run(...values).changes;
      if (this.#shared.profiler) this.#record('storage.updateMany', text, start, false);
      return changed;
    } catch (error) {
      if (this.#shared.profiler) this.#record('storage.updateMany', text, start, true);
      throw this.#wrap('updateMany', collection, error);
    }
  }

  #delete(collection: string, id: string): boolean {
    checkId(id);
    const table = this.#existing(collection);
    if (table === undefined) return false;
    const start = performance.now();
    try {
      const changed = table.remove.run(id).changes > 0;
      if (this.#shared.profiler) this.#record('storage.delete', table.shapes.remove, start, false);
      return changed;
    } catch (error) {
      if (this.#shared.profiler) this.#record('storage.delete', table.shapes.remove, start, true);
      throw this.#wrap('delete', collection, error);
    }
  }

  #find<T extends object>(collection: string, options: FindOptions | undefined): FindResult<T> {
    checkCollection(collection);
    const find = normaliseFind(options);
    const table = this.#existing(collection);
    if (table === undefined) return { items: [], nextCursor: undefined };
    const { text, values } = findStatement('sqlite', table.table, find);
    const start = performance.now();
    let rows: unknown[];
    try {
      rows = this.#statement(text)
        .pluck()
        .all(...values);
    } catch (error) {
      if (this.#shared.profiler) this.#record('storage.find', text, start, true);
      throw this.#wrap('find', collection, error);
    }
    if (this.#shared.profiler) this.#record('storage.find', text, start, false);
    const docs: StoredDocument<T>[] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) docs[i] = JSON.parse(rows[i] as string) as StoredDocument<T>;
    return pageOf(docs, find);
  }

  #count(collection: string, where: Where | undefined): number {
    checkCollection(collection);
    const clauses = normaliseWhere(where);
    const table = this.#existing(collection);
    if (table === undefined) return 0;
    const { text, values } = countStatement('sqlite', table.table, clauses);
    const start = performance.now();
    try {
      const n = this.#statement(text)
        .pluck()
        .get(...values) as number;
      if (this.#shared.profiler) this.#record('storage.count', text, start, false);
      return n;
    } catch (error) {
      if (this.#shared.profiler) this.#record('storage.count', text, start, true);
      throw this.#wrap('count', collection, error);
    }
  }

  /** Runs a read statement (cached) and returns its rows, timed and with driver errors wrapped. */
  #all(op: string, collection: string, text: string, values: readonly unknown[]): Record<string, unknown>[] {
    const start = performance.now();
    try {
      const rows = this.#statement(text)
        .pluck(false)
        .all(...values) as Record<string, unknown>[];
      if (this.#shared.profiler) this.#record(`storage.${op}`, text, start, false);
      return rows;
    } catch (error) {
      if (this.#shared.profiler) this.#record(`storage.${op}`, text, start, true);
      throw this.#wrap(op, collection, error);
    }
  }

  #aggregate(collection: string, options: AggregateOptions): AggregateRow[] {
    checkCollection(collection);
    const agg = normaliseAggregate(options);
    const table = this.#existing(collection);
    if (table === undefined) return aggregateNothing(agg);
    const { text, values } = aggregateStatement('sqlite', table.table, agg);
    return aggregateRows(this.#all('aggregate', collection, text, values), agg);
  }

  #ensureIndex(collection: string, field: string): void {
    checkCollection(collection);
    checkField(field);
    if (field === 'id') return; // the primary key already is the index
    const start = performance.now();
    const name = indexName(this.#shared.prefix + collection, field, sha1);
    let text = '';
    try {
      const table = this.#ensureTable(collection);
      text = `CREATE INDEX IF NOT EXISTS ${quoteIdent(name)} ON ${table.table} (${indexColumns('sqlite', field)})`;
      this.#shared.db.exec(text);
    } catch (error) {
      if (this.#shared.profiler) this.#record('storage.ensureIndex', text, start, true);
      throw this.#wrap('ensureIndex', collection, error);
    }
    if (this.#shared.profiler) this.#record('storage.ensureIndex', text, start, false);
  }

  #collections(): string[] {
    const rows = this.#statement("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
      .pluck()
      .all() as string[];
    return collectionsOf(rows, this.#shared.prefix);
  }

  #query<R>(text: string, params: readonly unknown[] | undefined): R[] {
    if (typeof text !== 'string' || text.length === 0) {
      throw new StorageError('storage.sql.query: sql must be a non-empty string');
    }
    const start = performance.now();
    try {
      const stmt = this.#statement(text);
      const values = normaliseParams(params);
      let rows: R[];
      if (stmt.reader) rows = stmt.pluck(false).all(...values) as R[];
      else {
        stmt.run(...values);
        rows = [];
      }
      if (this.#shared.profiler) this.#record('storage.query', text, start, false);
      return rows;
    } catch (error) {
      if (this.#shared.profiler) this.#record('storage.query', text, start, true);
      throw this.#wrap('query', undefined, error);
    }
  }

  // ---- public API ---------------------------------------------------------------------------------

  get<T extends object = Record<string, unknown>>(
    collection: string,
    id: string,
    options?: StorageCallOptions,
  ): Promise<StoredDocument<T> | undefined> {
    // Fast path without a closure: no transaction is open (the common case).
    if (this.#tx === undefined && !this.#shared.lock.isHeld && !this.#shared.closed && !options?.signal?.aborted) {
      try {
        return Promise.resolve(this.#get<T>(collection, id));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return this.#run(() => this.#get<T>(collection, id), options?.signal);
  }

  getWithMeta<T extends object = Record<string, unknown>>(
    collection: string,
    id: string,
    options?: StorageCallOptions,
  ): Promise<DocumentWithMeta<T> | undefined> {
    return this.#run(() => this.#getWithMeta<T>(collection, id), options?.signal);
  }

  put<T extends object>(collection: string, doc: T, options?: PutOptions): Promise<string> {
    return this.#run(() => this.#put(collection, doc, options?.id), options?.signal);
  }

  putMany<T extends object>(collection: string, docs: readonly T[], options?: StorageCallOptions): Promise<string[]> {
    return this.#run(() => this.#putMany(collection, docs), options?.signal);
  }

  update<T extends object = Record<string, unknown>>(
    collection: string,
    id: string,
    patch: Partial<T>,
    options?: UpdateOptions,
  ): Promise<StoredDocument<T> | undefined> {
    return this.#run(() => this.#update<T>(collection, id, patch, options), options?.signal);
  }

  updateMany(
    collection: string,
    where: Where,
    patch: Record<string, unknown>,
    options?: StorageCallOptions,
  ): Promise<number> {
    return this.#run(() => this.#updateMany(collection, where, patch), options?.signal);
  }

  delete(collection: string, id: string, options?: StorageCallOptions): Promise<boolean> {
    return this.#run(() => this.#delete(collection, id), options?.signal);
  }

  find<T extends object = Record<string, unknown>>(collection: string, options?: FindOptions): Promise<FindResult<T>> {
    return this.#run(() => this.#find<T>(collection, options), options?.signal);
  }

  count(collection: string, where?: Where, options?: StorageCallOptions): Promise<number> {
    return this.#run(() => this.#count(collection, where), options?.signal);
  }

  aggregate(collection: string, options: AggregateOptions): Promise<AggregateRow[]> {
    return this.#run(() => this.#aggregate(collection, options), options?.signal);
  }

  ensureIndex(collection: string, field: string, options?: StorageCallOptions): Promise<void> {
    return this.#run(() => this.#ensureIndex(collection, field), options?.signal);
  }

  collections(options?: StorageCallOptions): Promise<string[]> {
    return this.#run(() => this.#collections(), options?.signal);
  }

  /**
   * Runs `fn` in a transaction (`BEGIN IMMEDIATE`): commit on return, rollback on throw. Calls made on
   * the adapter from outside `fn` wait until it ends; use `tx` inside. Nested calls use savepoints.
   */
  async transaction<T>(fn: (tx: StorageAdapter) => Promise<T>, options?: StorageCallOptions): Promise<T> {
    throwIfAborted(options?.signal);
    this.#check();
    const shared = this.#shared;
    if (this.#tx) return this.#savepoint(fn);
    await shared.lock.acquire(options?.signal);
    const state: TxState = { finished: false, depth: 0 };
    try {
      this.#check();
      try {
        shared.db.exec('BEGIN IMMEDIATE');
      } catch (error) {
        throw this.#wrap('transaction', undefined, error);
      }
      shared.counters.transactions++;
      const tx = new SqliteSession(shared, state);
      let result: T;
      try {
        result = await shared.lock.runHolding(() => fn(tx));
      } catch (error) {
        state.finished = true;
        shared.counters.rollbacks++;
        if (shared.db.inTransaction) shared.db.exec('ROLLBACK');
        // Tables created inside the transaction are gone now.
        shared.tables.clear();
        throw error;
      }
      state.finished = true;
      try {
        shared.db.exec('COMMIT');
      } catch (error) {
        shared.counters.rollbacks++;
        if (shared.db.inTransaction) shared.db.exec('ROLLBACK');
        shared.tables.clear();
        throw this.#wrap('transaction', undefined, error);
      }
      return result;
    } finally {
      state.finished = true;
      shared.lock.release();
    }
  }

  async #savepoint<T>(fn: (tx: StorageAdapter) => Promise<T>): Promise<T> {
    const name = `hp_sp_${++this.#shared.savepointSeq}`;
    this.#shared.db.exec(`SAVEPOINT ${name}`);
    try {
      const result = await fn(this);
      this.#shared.db.exec(`RELEASE ${name}`);
      return result;
    } catch (error) {
      this.#shared.db.exec(`ROLLBACK TO ${name}; RELEASE ${name}`);
      this.#shared.tables.clear();
      throw error;
    }
  }

  /**
   * The Kysely instance over this connection, for the app's own typed tables (queries go through the
   * same write lock). Inside `transaction(fn)`, `tx.db` runs in that transaction.
   */
  get db(): Kysely<UntypedDatabase> {
    this.#check();
    this.#kysely ??= new Kysely<UntypedDatabase>({
      dialect: lockedSqliteDialect(this.#shared.db, this.#tx ? undefined : this.#shared.lock),
    });
    return this.#kysely;
  }

  stats(): StorageStats {
    const { lock, counters, statements } = this.#shared;
    return {
      total: this.#shared.closed ? 0 : 1,
      idle: this.#shared.closed || lock.isHeld ? 0 : 1,
      waiting: lock.waiting,
      statementsCached: statements.size,
      ...counters,
    };
  }

  async close(): Promise<void> {
    // A transaction view does not own the connection.
    if (this.#tx) return;
    const shared = this.#shared;
    if (shared.closed) return;
    // Let an open transaction finish first.
    await shared.lock.acquire();
    try {
      if (shared.closed) return;
      shared.closed = true;
      if (shared.checkpointTimer !== undefined) shared.clock.clearTimeout(shared.checkpointTimer);
      shared.tables.clear();
      shared.statements.clear();
      // Its connection ends first, so the adapter's is the last one and removes the WAL on close.
      await shared.checkpointThread?.close();
      try {
        shared.db.pragma('wal_checkpoint(PASSIVE)');
      } catch {
        // Closing checkpoints anyway.
      }
      shared.db.close();
    } finally {
      shared.lock.release();
    }
  }
}

/**
 * SQLite document storage on better-sqlite3 (`npm install better-sqlite3`): WAL, `synchronous=NORMAL`,
 * cached prepared statements, a periodic WAL checkpoint.
 *
 * @example
 * ```ts
 * const storage = new SqliteStorage({ filename: 'app.db' });
 * const id = await storage.put('forecasts', { city: 'Oslo', tempC: 4 });
 * const doc = await storage.get('forecasts', id);
 * await storage.close();
 * ```
 * @throws ConfigError on invalid options or when better-sqlite3 is not installed; StorageError when the file cannot be opened.
 */
export class SqliteStorage extends SqliteSession {
  constructor(options: SqliteStorageOptions) {
    super(openShared(options), undefined);
  }
}
