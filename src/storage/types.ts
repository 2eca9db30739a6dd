/**
 * The storage contract: JSON documents in named collections, implemented by the memory, SQLite and
 * PostgreSQL backends. Sibling modules (queue) depend on these interfaces only.
 * @module
 */

/** A stored document: a plain JSON object with its `id`. */
export type StoredDocument<T extends object = Record<string, unknown>> = T & {
  /** The document's id (its primary key). */
  id: string;
};

/** Comparison operators on one top-level field. */
export interface FieldCondition {
  /** Greater than (numbers compare with numbers, strings with strings by code point). */
  gt?: string | number;
  /** Greater than or equal. */
  gte?: string | number;
  /** Less than. */
  lt?: string | number;
  /** Less than or equal. */
  lte?: string | number;
  /** Not equal; also matches documents without the field. */
  ne?: string | number | boolean | null;
  /** Equal to one of these (at most 1,000 values). */
  in?: ReadonlyArray<string | number | boolean>;
}

/** Filter on top-level fields: a plain value means equality. */
export type Where = Record<string, string | number | boolean | null | FieldCondition>;

/** Options of {@link StorageAdapter.find}. */
export interface FindOptions {
  /** Filter on top-level fields (default: every document). */
  where?: Where;
  /** Sort field and direction (default: `id` ascending). */
  orderBy?: {
    /** A top-level field name, or `id`. */
    field: string;
    /** Default `asc`. */
    direction?: 'asc' | 'desc';
  };
  /** Page size (default 100, at most 10,000). */
  limit?: number;
  /** Opaque cursor from a previous page's `nextCursor`. */
  cursor?: string;
}

/** One page of {@link StorageAdapter.find}; `nextCursor` is undefined on the last page. */
export interface FindResult<T extends object> {
  /** The documents of this page, in order. */
  items: StoredDocument<T>[];
  /** Pass as `cursor` to get the next page; undefined on the last page. */
  nextCursor: string | undefined;
}

/** A document with its bookkeeping columns, from {@link StorageAdapter.getWithMeta}. */
export interface DocumentWithMeta<T extends object = Record<string, unknown>> {
  /** The document. */
  doc: StoredDocument<T>;
  /** Starts at 1; every put/update of this id adds 1. Pass it as `expectedVersion` to `update`. */
  version: number;
  /** When the id was first written, epoch ms (from the adapter's clock). */
  createdAt: number;
  /** When it was last written, epoch ms. */
  updatedAt: number;
}

/** Options of {@link StorageAdapter.update}. */
export interface UpdateOptions {
  /** Fail with `ConflictError` unless the stored version equals this. */
  expectedVersion?: number;
}

/** Result of {@link StorageAdapter.health}. */
export interface StorageHealth {
  /** True when the probe succeeded. */
  ok: boolean;
  /** Round-trip time of the probe, in ms. */
  latencyMs: number;
  /** Why the probe failed. */
  error?: string;
}

/** Plain-number statistics of an adapter (pool figures are 0/1 for single-connection backends). */
export interface StorageStats {
  /** Open connections. */
  total: number;
  /** Open connections not in use. */
  idle: number;
  /** Callers waiting for a connection (SQLite/memory: for the open transaction). */
  waiting: number;
  [extra: string]: number;
}

/**
 * Low-level SQL access for sibling modules (the job queue) that keep their own tables in the same
 * database and must share the adapter's connection and transactions. Parameters are always bound.
 */
export interface SqlAccess {
  /** Which SQL dialect `query` speaks. */
  readonly dialect: 'sqlite' | 'postgres';
  /**
   * PostgreSQL: the schema the adapter's tables live in (its `schema` option), so code sharing the
   * connection (the job queue) puts its tables there too; undefined: the connection's current schema.
   */
  readonly schema?: string | undefined;
  /**
   * Runs one statement with bound parameters and returns its rows (`RETURNING` rows for writes).
   * SQLite placeholders are `?`, PostgreSQL `$1…`. `name` makes it a named prepared statement on PostgreSQL.
   */
  query<R = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
    options?: { name?: string },
  ): Promise<R[]>;
  /** Runs `fn` in one transaction on one connection; commit on return, rollback on throw. */
  transaction<T>(fn: (sql: SqlAccess) => Promise<T>): Promise<T>;
  /**
   * PostgreSQL only: subscribes to `LISTEN channel` on a dedicated connection (re-established after
   * it drops). Returns an unsubscribe function.
   */
  listen?(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>>;
}

/** A document store over one backend. Every method validates its input before touching state. */
export interface StorageAdapter {
  /** Which backend this is. */
  readonly kind: 'memory' | 'sqlite' | 'postgres';
  /** SQL access for SQL backends, bound to the transaction inside `transaction(fn)`; undefined for memory. */
  readonly sql: SqlAccess | undefined;
  /** The document with this id, or undefined. */
  get<T extends object = Record<string, unknown>>(
    collection: string,
    id: string,
  ): Promise<StoredDocument<T> | undefined>;
  /** The document with its version and timestamps, or undefined. */
  getWithMeta<T extends object = Record<string, unknown>>(
    collection: string,
    id: string,
  ): Promise<DocumentWithMeta<T> | undefined>;
  /** Inserts or replaces a document; returns its id (`doc.id`, `options.id`, or a new sortable id). */
  put<T extends object>(collection: string, doc: T, options?: { id?: string }): Promise<string>;
  /** Inserts or replaces many documents in one transaction; returns their ids in input order. */
  putMany<T extends object>(collection: string, docs: readonly T[]): Promise<string[]>;
  /**
   * Shallow-merges `patch` into the document atomically and bumps its version; returns the new document,
   * or undefined when there is no such document.
   * @throws ConflictError when `expectedVersion` does not match.
   */
  update<T extends object = Record<string, unknown>>(
    collection: string,
    id: string,
    patch: Partial<T>,
    options?: UpdateOptions,
  ): Promise<StoredDocument<T> | undefined>;
  /** Deletes a document; returns whether it existed. */
  delete(collection: string, id: string): Promise<boolean>;
  /** Queries a collection with keyset pagination. */
  find<T extends object = Record<string, unknown>>(collection: string, options?: FindOptions): Promise<FindResult<T>>;
  /** Counts the documents matching `where`. */
  count(collection: string, where?: Where): Promise<number>;
  /** Runs `fn` in a transaction: commit on return, rollback on throw. `tx` sees its own writes. */
  transaction<T>(fn: (tx: StorageAdapter) => Promise<T>): Promise<T>;
  /** Creates an index on a top-level field so `find` on it is indexed. Idempotent. */
  ensureIndex(collection: string, field: string): Promise<void>;
  /** Names of the collections that exist. */
  collections(): Promise<string[]>;
  /** Probes the backend. Never throws. */
  health(): Promise<StorageHealth>;
  /** Pool statistics. */
  stats(): StorageStats;
  /** Releases connections and timers; idempotent. */
  close(): Promise<void>;
  /** Same as `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * The table map of `adapter.db` (the Kysely instance): any table, any column. For typed access use
 * `adapter.db as unknown as Kysely<YourDatabase>`.
 */
export type UntypedDatabase = Record<string, Record<string, unknown>>;
