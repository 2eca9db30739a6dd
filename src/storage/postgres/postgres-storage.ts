/**
 * PostgreSQL backend on `pg` (loaded when constructed): a tuned pool, JSONB documents, named prepared
 * statements on hot paths, `putMany` as one JSONB-array statement per chunk, transactions on one
 * checked-out connection.
 * @module
 */
import { Kysely, PostgresDialect } from 'kysely';
import { abortable, abortReason, throwIfAborted } from '../../core/abort.js';
import { ClosedError, ConflictError, StorageError } from '../../core/errors.js';
import { checkNumber } from '../../core/options.js';
import { aggregateNothing, normaliseAggregate } from '../aggregation.js';
import { indexName } from '../common-options.js';
import {
  encodeDocument,
  encodeManyPatch,
  encodePatch,
  normaliseFind,
  normaliseWhere,
  pageOf,
  prepareBatch,
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
import type { PgPoolClient, PgQueryable, PgQueryConfig, PgQueryResult } from './postgres-driver-types.js';
import { PgListener } from './postgres-listener.js';
import {
  openShared,
  type PgShared,
  type PostgresStorageOptions,
  type PgTableStatements as TableStatements,
} from './postgres-pool.js';

export type { PostgresStorageOptions } from './postgres-pool.js';

/** JSON text of one `putMany` chunk is kept below this many characters (pg sends it as one parameter). */
const MAX_CHUNK_CHARS = 32 * 1024 * 1024;

interface TxState {
  client: PgPoolClient;
  finished: boolean;
}

/** Options of one statement sent by the adapter. */
interface QueryOptions {
  /** Makes it a named prepared statement. */
  name?: string;
  /** Aborts the call and cancels the statement on the server. */
  signal?: AbortSignal | undefined;
  /** A read: retried once when its pooled connection had died, and always safe to retry. */
  isRead?: boolean;
}

/**
 * True when a failed write certainly had no effect: the server refused the statement as a whole (any
 * SQLSTATE outside the connection classes 08 and 57P), the server was not accepting connections
 * (57P03), or the connection was never made (refused, unreachable, or the pool's wait for one timed out).
 */
function isRetrySafeWrite(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) {
    return code === '57P03' || (!code.startsWith('08') && !code.startsWith('57P'));
  }
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return true;
  return /timeout exceeded when trying to connect/i.test((error as Error)?.message ?? '');
}

/** True for errors that mean the connection itself is unusable (no SQLSTATE, or classes 08/57P). */
function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  if (typeof code !== 'string') return true;
  return code.startsWith('08') || code.startsWith('57P') || code === 'ECONNRESET' || code === 'EPIPE';
}

class PostgresSession extends SqlSession implements StorageAdapter {
  readonly kind = 'postgres' as const;
  readonly sql: SqlAccess;
  readonly #shared: PgShared;
  readonly #tx: TxState | undefined;
  readonly #exec: PgQueryable;

  constructor(shared: PgShared, tx: TxState | undefined) {
    super();
    this.#shared = shared;
    this.#tx = tx;
    this.#exec = tx ? tx.client : shared.pool;
    const session = this;
    this.sql = {
      dialect: 'postgres',
      schema: shared.schema,
      async query<R = Record<string, unknown>>(
        text: string,
        params?: readonly unknown[],
        options?: { name?: string },
      ): Promise<R[]> {
        session.#check();
        if (typeof text !== 'string' || text.length === 0) {
          throw new StorageError('storage.sql.query: sql must be a non-empty string');
        }
        const name = options?.name;
        const result = await session.#q<R>('query', undefined, text, params ? [...params] : [], { name });
        return result;
      },
      transaction<T>(fn: (sql: SqlAccess) => Promise<T>): Promise<T> {
        return session.transaction((tx) => fn(tx.sql as SqlAccess));
      },
      listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>> {
        session.#check();
        const shared = session.#shared;
        shared.listener ??= new PgListener(() => new shared.pg.Client(shared.connection), shared.clock, shared.logger);
        return shared.listener.listen(channel, onNotify);
      },
    };
  }

  /** True once `close()` was called. */
  get isClosed(): boolean {
    return this.#shared.closed;
  }

  #check(): void {
    if (this.#tx?.finished) throw new StorageError('storage: this transaction has already finished');
    if (this.#shared.closed) throw new ClosedError('PostgresStorage');
  }

  #wrap(op: string, collection: string | undefined, error: unknown, isRead = false): unknown {
    if (!(error as { isHotpathError?: boolean })?.isHotpathError && !this.#tx && isConnectionError(error)) {
      this.#shared.counters.connectionErrors++;
    }
    return wrapDriverError(op, collection, error, isRead || isRetrySafeWrite(error));
  }

  protected wrapError(op: string, collection: string | undefined, error: unknown): unknown {
    return this.#wrap(op, collection, error);
  }

  protected async probe(): Promise<void> {
    this.#check();
    await this.#q('health', undefined, 'SELECT 1', []);
  }

  /** Runs one statement, timing it and wrapping driver errors. */
  async #q<R>(
    op: string,
    collection: string | undefined,
    text: string,
    values: unknown[],
    options: QueryOptions = {},
  ): Promise<R[]> {
    const profiler = this.#shared.profiler;
    const start = profiler ? performance.now() : 0;
    const { name, signal } = options;
    const config: PgQueryConfig = name === undefined ? { text, values } : { name, text, values };
    try {
      let result: PgQueryResult<R>;
      try {
        result = await (signal ? this.#sendAbortable<R>(config, signal) : this.#exec.query<R>(config));
      } catch (error) {
        // A read that failed only because its pooled connection had died (the server restarted, or
        // an idle connection was cut) runs once more on a fresh connection. Never a write: it may
        // have been applied before the connection went.
        if (!options.isRead || this.#tx || !isConnectionError(error) || signal?.aborted || this.#shared.closed) {
          throw error;
        }
        this.#shared.counters.readRetries++;
        result = await (signal ? this.#sendAbortable<R>(config, signal) : this.#exec.query<R>(config));
      }
      if (profiler) {
        profiler.record(`storage.${op}`, performance.now() - start, false);
        profiler.noteQuery?.(text);
      }
      return result.rows;
    } catch (error) {
      if (profiler) {
        profiler.record(`storage.${op}`, performance.now() - start, true);
        profiler.noteQuery?.(text);
      }
      // An aborted call rejects with the signal's reason, whatever the driver said meanwhile.
      if (signal?.aborted) throw abortReason(signal);
      throw this.#wrap(op, collection, error, options.isRead === true);
    }
  }

  /**
   * Sends one statement that `signal` may abort: the call rejects at once with the signal's reason, and
   * the statement is cancelled on the server (`pg_cancel_backend`). Outside a transaction the statement
   * runs on a connection of its own, released only once it has settled and any cancel has landed, so
   * a late cancel can never hit someone else's statement.
   */
  async #sendAbortable<R>(config: PgQueryConfig, signal: AbortSignal): Promise<PgQueryResult<R>> {
    throwIfAborted(signal);
    let broken: Error | undefined;
    const onError = (error: Error): void => {
      broken = error;
      this.#shared.counters.connectionErrors++;
    };
    const client = this.#tx ? this.#tx.client : await this.#checkout(signal, onError);
    let cancelling: Promise<void> | undefined;
    let settled = false;
    const running = client.query<R>(config);
    const done = (error?: unknown): void => {
      settled = true;
      if (this.#tx) return;
      if (error !== undefined && isConnectionError(error)) broken ??= error as Error;
      const release = (): void => {
        // A broken client keeps the listener: it may still emit while pg-pool ends it.
        if (!broken) client.removeListener('error', onError);
        client.release(broken ?? false);
      };
      if (cancelling) void cancelling.then(release);
      else release();
    };
    running.then(
      () => done(),
      (error: unknown) => done(error),
    );
    return abortable(running, signal, () => {
      if (!settled) cancelling = this.#cancelBackend(client);
    });
  }

  /**
   * Checks out a pooled connection with `onError` attached; the wait for it ends with `signal`.
   * A checked-out client has no error listener of the pool's; without one an 'error' event (the server
   * terminating it while we hold it) would crash the process. The listener is attached inside the
   * connect callback: with the promise form a FATAL message parsed from the same socket chunk that freed
   * the client arrives before the awaiting code runs (seen under pg_terminate_backend in the durability test).
   */
  async #checkout(signal: AbortSignal | undefined, onError: (error: Error) => void): Promise<PgPoolClient> {
    const connecting = new Promise<PgPoolClient>((resolve, reject) => {
      this.#shared.pool.connect((error, client) => {
        if (error || !client) reject(error ?? new Error('pool returned no client'));
        else {
          client.on('error', onError);
          resolve(client);
        }
      });
    });
    if (!signal) return connecting;
    try {
      return await abortable(connecting, signal);
    } catch (error) {
      // Given up while waiting: hand the connection back when it arrives.
      connecting.then(
        (client) => {
          client.removeListener('error', onError);
          client.release();
        },
        () => undefined,
      );
      throw error;
    }
  }

  /** Cancels the statement running on `client` from another connection; never throws. */
  async #cancelBackend(client: PgPoolClient): Promise<void> {
    const pid = client.processID;
    if (typeof pid !== 'number') return;
    const shared = this.#shared;
    const cancel = { text: 'SELECT pg_cancel_backend($1)', values: [pid] };
    try {
      // Its own short-lived connection when we know how to open one: the pool may be exhausted.
      if (shared.connection.connectionString) {
        const admin = new shared.pg.Client(shared.connection);
        admin.on('error', () => undefined);
        await admin.connect();
        try {
          await admin.query(cancel);
        } finally {
          await admin.end();
        }
      } else {
        await shared.pool.query(cancel);
      }
      shared.counters.cancelled++;
    } catch (error) {
      shared.logger.warn({ err: error }, 'storage: cancelling an aborted statement failed');
    }
  }

  #qualified(collection: string): string {
    const table = quoteIdent(this.#shared.prefix + collection);
    return this.#shared.schema ? `${quoteIdent(this.#shared.schema)}.${table}` : table;
  }

  // Document operations send these statements straight to pg, not through Kysely: Kysely compiles every
  // query (~23k get ops/s against ~42k for a named prepared statement, issue #7). Kysely serves `db`/`migrate`.
  #prepareTable(collection: string): TableStatements {
    const table = this.#qualified(collection);
    const hash = sha1(`${this.#shared.schema ?? ''}.${this.#shared.prefix}${collection}`).slice(0, 20);
    const statements: TableStatements = {
      table,
      names: {
        get: `hp_get_${hash}`,
        upsert: `hp_put_${hash}`,
        upsertMany: `hp_putm_${hash}`,
        remove: `hp_del_${hash}`,
        update: `hp_upd_${hash}`,
      },
      shapes: {
        get: `SELECT data FROM ${table} WHERE id = $1`,
        getMeta: `SELECT data, version, created_at, updated_at FROM ${table} WHERE id = $1`,
        upsert:
          `INSERT INTO ${table} AS t (id, data, created_at, updated_at, version) VALUES ($1, $2::jsonb, $3, $3, 1) ` +
          'ON CONFLICT (id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at, version = t.version + 1',
        // One JSONB array parameter expanded server-side: ~237k rows/s vs ~225k for 1,000-row VALUES
        // lists (issue #7 measurements), and no statement re-planning per batch size.
        upsertMany:
          `INSERT INTO ${table} AS t (id, data, created_at, updated_at, version) ` +
          "SELECT e ->> 'id', e, $2, $2, 1 FROM jsonb_array_elements($1::jsonb) AS e " +
          'ON CONFLICT (id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at, version = t.version + 1',
        remove: `DELETE FROM ${table} WHERE id = $1`,
        update: `UPDATE ${table} SET data = data || $1::jsonb, updated_at = $2, version = version + 1 WHERE id = $3 RETURNING data`,
        updateIf:
          `UPDATE ${table} SET data = data || $1::jsonb, updated_at = $2, version = version + 1 ` +
          'WHERE id = $3 AND version = $4 RETURNING data',
      },
    };
    return statements;
  }

  async #existing(collection: string, signal?: AbortSignal): Promise<TableStatements | undefined> {
    const known = this.#shared.tables.get(collection);
    if (known) return known;
    checkCollection(collection);
    const statements = this.#prepareTable(collection);
    const rows = await this.#q<{ found: boolean }>(
      'tableExists',
      collection,
      'SELECT to_regclass($1) IS NOT NULL AS found',
      [statements.table],
      { isRead: true, signal },
    );
    if (!rows[0]?.found) return undefined;
    if (!this.#tx) this.#shared.tables.set(collection, statements);
    return statements;
  }

  async #ensureTable(collection: string): Promise<TableStatements> {
    const known = this.#shared.tables.get(collection);
    if (known) return known;
    checkCollection(collection);
    const statements = this.#prepareTable(collection);
    const ddl =
      `CREATE TABLE IF NOT EXISTS ${statements.table} (id text COLLATE "C" NOT NULL PRIMARY KEY, data jsonb NOT NULL, ` +
      'created_at bigint NOT NULL, updated_at bigint NOT NULL, version integer NOT NULL DEFAULT 1)';
    try {
      await this.#q('createTable', collection, ddl, []);
    } catch (error) {
      // Two connections creating the same table race on the catalog; the loser's table exists anyway. The
      // loser sees a unique violation on pg_class/pg_type (23505), the table (42P07) or its row type (42710).
      const code = (error as { cause?: { code?: string } }).cause?.code;
      if (this.#tx || (code !== '23505' && code !== '42P07' && code !== '42710')) throw error;
    }
    // Inside a transaction the table only exists once it commits: cache it only outside.
    if (!this.#tx) this.#shared.tables.set(collection, statements);
    return statements;
  }

  // ---- documents ----------------------------------------------------------------------------------

  async get<T extends object = Record<string, unknown>>(
    collection: string,
    id: string,
    options?: StorageCallOptions,
  ): Promise<StoredDocument<T> | undefined> {
    this.#check();
    const signal = options?.signal;
    const table = this.#shared.tables.get(collection) ?? (await this.#existing(collection, signal));
    if (typeof id !== 'string' || id.length === 0 || id.length > 512 || id.includes('\0')) checkId(id);
    if (table === undefined) return undefined;
    // Named prepared statement: parsed and planned once per connection (~42k vs ~31k ops/s unnamed).
    const rows = await this.#q<{ data: StoredDocument<T> }>('get', collection, table.shapes.get, [id], {
      name: table.names.get,
      isRead: true,
      signal,
    });
    return rows[0]?.data;
  }

  async getWithMeta<T extends object = Record<string, unknown>>(
    collection: string,
    id: string,
    options?: StorageCallOptions,
  ): Promise<DocumentWithMeta<T> | undefined> {
    this.#check();
    checkId(id);
    const signal = options?.signal;
    const table = await this.#existing(collection, signal);
    if (table === undefined) return undefined;
    const rows = await this.#q<MetaRow>('getWithMeta', collection, table.shapes.getMeta, [id], {
      isRead: true,
      signal,
    });
    return rows[0] ? metaOf<T>(rows[0]) : undefined;
  }

  async put<T extends object>(collection: string, doc: T, options?: PutOptions): Promise<string> {
    this.#check();
    checkCollection(collection);
    const now = this.#shared.clock.now();
    const id = resolveId(doc, options?.id, now);
    const json = encodeDocument(doc, id);
    const table = await this.#ensureTable(collection);
    await this.#q('put', collection, table.shapes.upsert, [id, json, now], {
      name: table.names.upsert,
      signal: options?.signal,
    });
    return id;
  }

  async putMany<T extends object>(
    collection: string,
    docs: readonly T[],
    options?: StorageCallOptions,
  ): Promise<string[]> {
    const signal = options?.signal;
    this.#check();
    checkCollection(collection);
    const now = this.#shared.clock.now();
    const { ids, jsons } = prepareBatch(docs, now);
    if (jsons.length === 0) return ids;
    // Chunks of at most batchSize documents and MAX_CHUNK_CHARS; an id already in the current chunk
    // starts a new one, because one statement cannot upsert the same row twice — so duplicates are
    // applied in order, exactly like the other backends.
    const chunks: string[] = [];
    let parts: string[] = [];
    let inChunk = new Set<string>();
    let chars = 0;
    for (let i = 0; i < jsons.length; i++) {
      const json = jsons[i] as string;
      const id = ids[i] as string;
      if (
        parts.length >= this.#shared.batchSize ||
        (parts.length > 0 && chars + json.length > MAX_CHUNK_CHARS) ||
        inChunk.has(id)
      ) {
        chunks.push(`[${parts.join(',')}]`);
        parts = [];
        inChunk = new Set();
        chars = 0;
      }
      parts.push(json);
      inChunk.add(id);
      chars += json.length + 1;
    }
    chunks.push(`[${parts.join(',')}]`);
    const table = await this.#ensureTable(collection);
    const write = async (session: PostgresSession): Promise<void> => {
      for (const chunk of chunks) {
        await session.#q('putMany', collection, table.shapes.upsertMany, [chunk, now], {
          name: table.names.upsertMany,
          signal,
        });
      }
    };
    // One statement is atomic on its own; several need one transaction.
    if (chunks.length === 1 || this.#tx) await write(this);
    else await this.transaction((tx) => write(tx as PostgresSession), { signal });
    return ids;
  }

  async update<T extends object = Record<string, unknown>>(
    collection: string,
    id: string,
    patch: Partial<T>,
    options?: UpdateOptions,
  ): Promise<StoredDocument<T> | undefined> {
    this.#check();
    checkId(id);
    const cleanPatch = encodePatch(patch, id);
    const expected = options?.expectedVersion;
    if (expected !== undefined) checkNumber('expectedVersion', expected, { min: 0, integer: true });
    const signal = options?.signal;
    const table = await this.#existing(collection, signal);
    if (table === undefined) return undefined;
    const now = this.#shared.clock.now();
    const patchJson = JSON.stringify(cleanPatch);
    // `data || patch` is a shallow merge done by the server in one statement: atomic under concurrency.
    const rows =
      expected === undefined
        ? await this.#q<{ data: StoredDocument<T> }>('update', collection, table.shapes.update, [patchJson, now, id], {
            name: table.names.update,
            signal,
          })
        : await this.#q<{ data: StoredDocument<T> }>(
            'update',
            collection,
            table.shapes.updateIf,
            [patchJson, now, id, expected],
            { signal },
          );
    if (rows[0]) return rows[0].data;
    if (expected === undefined) return undefined;
    const current = await this.getWithMeta(collection, id, { signal });
    if (current === undefined) return undefined;
    throw new ConflictError(
      `storage.update on "${collection}": document ${JSON.stringify(id).slice(0, 80)} is at version ${current.version}, expected ${expected}`,
      expected,
      current.version,
    );
  }

  async updateMany(
    collection: string,
    where: Where,
    patch: Record<string, unknown>,
    options?: StorageCallOptions,
  ): Promise<number> {
    this.#check();
    checkCollection(collection);
    const clauses = normaliseWhere(where);
    const clean = encodeManyPatch(patch);
    const signal = options?.signal;
    const table = await this.#existing(collection, signal);
    if (table === undefined) return 0;
    const { text, values } = updateManyStatement('postgres', table.table, clauses, clean, this.#shared.clock.now());
    const rows = await this.#q<{ n: string }>('updateMany', collection, text, values, { signal });
    return Number(rows[0]?.n ?? 0);
  }

  async delete(collection: string, id: string, options?: StorageCallOptions): Promise<boolean> {
    this.#check();
    checkId(id);
    const signal = options?.signal;
    const table = await this.#existing(collection, signal);
    if (table === undefined) return false;
    const rows = await this.#q<{ id: string }>('delete', collection, `${table.shapes.remove} RETURNING id`, [id], {
      name: table.names.remove,
      signal,
    });
    return rows.length > 0;
  }

  async find<T extends object = Record<string, unknown>>(
    collection: string,
    options?: FindOptions,
  ): Promise<FindResult<T>> {
    this.#check();
    checkCollection(collection);
    const find = normaliseFind(options);
    const signal = options?.signal;
    const table = await this.#existing(collection, signal);
    if (table === undefined) return { items: [], nextCursor: undefined };
    const { text, values } = findStatement('postgres', table.table, find);
    const rows = await this.#q<{ data: StoredDocument<T> }>('find', collection, text, values, { isRead: true, signal });
    return pageOf(
      rows.map((row) => row.data),
      find,
    );
  }

  async count(collection: string, where?: Where, options?: StorageCallOptions): Promise<number> {
    this.#check();
    checkCollection(collection);
    const clauses = normaliseWhere(where);
    const signal = options?.signal;
    const table = await this.#existing(collection, signal);
    if (table === undefined) return 0;
    const { text, values } = countStatement('postgres', table.table, clauses);
    const rows = await this.#q<{ n: string }>('count', collection, text, values, { isRead: true, signal });
    return Number(rows[0]?.n ?? 0);
  }

  async aggregate(collection: string, options: AggregateOptions): Promise<AggregateRow[]> {
    this.#check();
    checkCollection(collection);
    const agg = normaliseAggregate(options);
    const signal = options.signal;
    const table = await this.#existing(collection, signal);
    if (table === undefined) return aggregateNothing(agg);
    const { text, values } = aggregateStatement('postgres', table.table, agg);
    const rows = await this.#q<Record<string, unknown>>('aggregate', collection, text, values, {
      isRead: true,
      signal,
    });
    return aggregateRows(rows, agg);
  }

  async ensureIndex(collection: string, field: string, options?: StorageCallOptions): Promise<void> {
    throwIfAborted(options?.signal);
    this.#check();
    checkCollection(collection);
    checkField(field);
    if (field === 'id') return;
    const table = await this.#ensureTable(collection);
    const name = quoteIdent(indexName(this.#shared.prefix + collection, field, sha1));
    try {
      await this.#q(
        'ensureIndex',
        collection,
        `CREATE INDEX IF NOT EXISTS ${name} ON ${table.table} (${indexColumns('postgres', field)})`,
        [],
        { signal: options?.signal },
      );
    } catch (error) {
      const code = (error as { cause?: { code?: string } }).cause?.code;
      if (this.#tx || (code !== '23505' && code !== '42P07')) throw error;
    }
  }

  async collections(options?: StorageCallOptions): Promise<string[]> {
    this.#check();
    const rows = await this.#q<{ name: string }>(
      'collections',
      undefined,
      'SELECT table_name AS name FROM information_schema.tables WHERE table_schema = COALESCE($1, current_schema()) ' +
        "AND table_type = 'BASE TABLE' ORDER BY table_name",
      [this.#shared.schema ?? null],
      { isRead: true, signal: options?.signal },
    );
    return collectionsOf(
      rows.map((row) => row.name),
      this.#shared.prefix,
    );
  }

  /**
   * Runs `fn` in a transaction on one pooled connection: commit on return, rollback on throw. Nested
   * calls use savepoints. A connection that fails mid-transaction is discarded, not reused.
   */
  async transaction<T>(fn: (tx: StorageAdapter) => Promise<T>, options?: StorageCallOptions): Promise<T> {
    throwIfAborted(options?.signal);
    this.#check();
    if (this.#tx) return this.#savepoint(fn);
    const shared = this.#shared;
    let broken: Error | undefined;
    const onError = (error: Error): void => {
      broken = error;
      shared.counters.connectionErrors++;
      shared.logger.warn({ err: error }, 'storage: connection failed inside a transaction');
    };
    let client: PgPoolClient;
    try {
      client = await this.#checkout(options?.signal, onError);
    } catch (error) {
      if (options?.signal?.aborted) throw abortReason(options.signal);
      throw this.#wrap('transaction', undefined, error);
    }
    const state: TxState = { client, finished: false };
    const release = (): void => {
      // A broken client keeps the listener: it may still emit while pg-pool ends it.
      if (broken) shared.counters.discarded++;
      else client.removeListener('error', onError);
      client.release(broken ?? false);
    };
    try {
      await client.query({ text: 'BEGIN' });
    } catch (error) {
      broken = error as Error;
      release();
      throw this.#wrap('transaction', undefined, error);
    }
    shared.counters.transactions++;
    const tx = new PostgresSession(shared, state);
    let result: T;
    try {
      result = await fn(tx);
    } catch (error) {
      state.finished = true;
      shared.counters.rollbacks++;
      try {
        await client.query({ text: 'ROLLBACK' });
      } catch (rollbackError) {
        broken ??= rollbackError as Error;
      }
      release();
      throw error;
    }
    state.finished = true;
    try {
      await client.query({ text: 'COMMIT' });
    } catch (error) {
      if (isConnectionError(error)) broken ??= error as Error;
      shared.counters.rollbacks++;
      release();
      throw this.#wrap('transaction', undefined, error);
    }
    release();
    return result;
  }

  async #savepoint<T>(fn: (tx: StorageAdapter) => Promise<T>): Promise<T> {
    const name = `hp_sp_${++this.#shared.savepointSeq}`;
    await this.#q('savepoint', undefined, `SAVEPOINT ${name}`, []);
    try {
      const result = await fn(this);
      await this.#q('savepoint', undefined, `RELEASE SAVEPOINT ${name}`, []);
      return result;
    } catch (error) {
      await this.#q('savepoint', undefined, `ROLLBACK TO SAVEPOINT ${name}`, []);
      throw error;
    }
  }

  /** The Kysely instance over the same pool, for the app's own typed tables. */
  get db(): Kysely<UntypedDatabase> {
    this.#check();
    this.#shared.kysely ??= new Kysely<UntypedDatabase>({
      dialect: new PostgresDialect({ pool: this.#shared.pool as never }),
    });
    return this.#shared.kysely;
  }

  stats(): StorageStats {
    const { pool, counters } = this.#shared;
    return {
      total: pool.totalCount,
      idle: pool.idleCount,
      waiting: pool.waitingCount,
      listenReconnects: this.#shared.listener?.reconnects ?? 0,
      ...counters,
    };
  }

  async close(): Promise<void> {
    if (this.#tx) return;
    const shared = this.#shared;
    if (shared.closed) return;
    shared.closed = true;
    await shared.listener?.close();
    shared.tables.clear();
    if (shared.ownsPool) await shared.pool.end();
  }
}

/**
 * PostgreSQL document storage on pg (`npm install pg`): JSONB documents, one table per collection,
 * a pool with recycling and broken-connection replacement.
 *
 * @example
 * ```ts
 * const storage = new PostgresStorage({ connectionString: process.env.DATABASE_URL, max: 10 });
 * await storage.ensureIndex('forecasts', 'city');
 * const { items } = await storage.find('forecasts', { where: { city: 'Oslo' }, limit: 20 });
 * await storage.close();
 * ```
 * @throws ConfigError on invalid options or when pg is not installed.
 */
export class PostgresStorage extends PostgresSession {
  constructor(options: PostgresStorageOptions) {
    super(openShared(options), undefined);
  }
}
