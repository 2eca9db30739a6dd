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

/** Options accepted by every storage method: abort the call while it waits. */
export interface StorageCallOptions {
  /**
   * Aborts the call: it rejects with `signal.reason` before it starts, while it waits for a connection
   * or a transaction, and (PostgreSQL) while its statement runs — the statement is cancelled on the server.
   */
  signal?: AbortSignal;
}

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
  /**
   * A string starting with this text (compared by code point, case-sensitive). Served by the field's
   * index on the SQL backends (a range on the index, no `LIKE`).
   */
  startsWith?: string;
  /** A string containing this text (a plain substring: `%`, `_` and `\` have no special meaning). */
  contains?: string;
  /** With `contains`: compare ignoring ASCII case (A–Z = a–z; other letters compare as they are). Default false. */
  caseInsensitive?: boolean;
}

/** Filter on top-level fields: a plain value means equality. */
export type Where = Record<string, string | number | boolean | null | FieldCondition>;

/** Options of {@link StorageAdapter.find}. */
export interface FindOptions extends StorageCallOptions {
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

/** A field of the rows of {@link StorageAdapter.aggregate}: a group field, `count`, or `sum.<field>`, `avg.<field>`, `min.<field>`, `max.<field>`. */
export type AggregateOrderField = string;

/** Options of {@link StorageAdapter.aggregate}. */
export interface AggregateOptions extends StorageCallOptions {
  /** Which documents take part (the same filter as `find`). */
  where?: Where;
  /**
   * Top-level field(s) to group by (default: one group of every matching document). Values group by
   * type and value as `find` compares them (10 and "10" are two groups); missing and `null` form one
   * group, reported as `null`; objects and arrays form one group of their own, also reported as `null`.
   */
  groupBy?: string | readonly string[];
  /** Adds `count`: the documents in each group. */
  count?: true;
  /** Adds `sum.<field>` for each field: the sum of its numeric values (`null` when the group has none). */
  sum?: readonly string[];
  /** Adds `avg.<field>`: the mean of its numeric values (`null` when none). */
  avg?: readonly string[];
  /** Adds `min.<field>`: the smallest numeric value (`null` when none). */
  min?: readonly string[];
  /** Adds `max.<field>`: the largest numeric value (`null` when none). */
  max?: readonly string[];
  /**
   * Row order (default: by the group fields, ascending). `field` is a group field, `count`, or
   * `sum.price` / `avg.price` / `min.price` / `max.price` for a requested aggregate. `null` sorts first
   * ascending and last descending; ties are broken by the group fields, ascending.
   */
  orderBy?: {
    /** A group field, `count`, or `<sum|avg|min|max>.<field>`. */
    field: AggregateOrderField;
    /** Default `asc`. */
    direction?: 'asc' | 'desc';
  };
  /** Most rows returned (default 1,000, at most 10,000). */
  limit?: number;
}

/** One row of {@link StorageAdapter.aggregate}. Only the aggregates that were asked for are present. */
export interface AggregateRow {
  /** The group's values, one per `groupBy` field (`{}` without `groupBy`). */
  group: Record<string, string | number | boolean | null>;
  /** Documents in the group (with `count: true`). */
  count?: number;
  /** Sum of each `sum` field's numeric values. */
  sum?: Record<string, number | null>;
  /** Mean of each `avg` field's numeric values. */
  avg?: Record<string, number | null>;
  /** Smallest numeric value of each `min` field. */
  min?: Record<string, number | null>;
  /** Largest numeric value of each `max` field. */
  max?: Record<string, number | null>;
}

/** Options of {@link StorageAdapter.put}. */
export interface PutOptions extends StorageCallOptions {
  /** The id to store the document under (default: `doc.id`, else a new sortable id). */
  id?: string;
}

/** Options of {@link StorageAdapter.update}. */
export interface UpdateOptions extends StorageCallOptions {
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
  /** True once `close()` was called (every call then fails with `ClosedError`). */
  readonly isClosed: boolean;
  /** SQL access for SQL backends, bound to the transaction inside `transaction(fn)`; undefined for memory. */
  readonly sql: SqlAccess | undefined;
  /** The document with this id, or undefined. */
  get<T extends object = Record<string, unknown>>(
    collection: string,
    id: string,
    options?: StorageCallOptions,
  ): Promise<StoredDocument<T> | undefined>;
  /** The document with its version and timestamps, or undefined. */
  getWithMeta<T extends object = Record<string, unknown>>(
    collection: string,
    id: string,
    options?: StorageCallOptions,
  ): Promise<DocumentWithMeta<T> | undefined>;
  /** Inserts or replaces a document; returns its id (`doc.id`, `options.id`, or a new sortable id). */
  put<T extends object>(collection: string, doc: T, options?: PutOptions): Promise<string>;
  /** Inserts or replaces many documents in one transaction; returns their ids in input order. */
  putMany<T extends object>(collection: string, docs: readonly T[], options?: StorageCallOptions): Promise<string[]>;
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
  /**
   * Shallow-merges `patch` into every document matching `where` and bumps each one's version; returns
   * how many were updated. One statement on the SQL backends (atomic). Patch keys are top-level field
   * names (not `id`).
   * @throws ConfigError on a bad `where` or patch (nothing is written).
   */
  updateMany(
    collection: string,
    where: Where,
    patch: Record<string, unknown>,
    options?: StorageCallOptions,
  ): Promise<number>;
  /** Deletes a document; returns whether it existed. */
  delete(collection: string, id: string, options?: StorageCallOptions): Promise<boolean>;
  /** Queries a collection with keyset pagination. */
  find<T extends object = Record<string, unknown>>(collection: string, options?: FindOptions): Promise<FindResult<T>>;
  /** Counts the documents matching `where`. */
  count(collection: string, where?: Where, options?: StorageCallOptions): Promise<number>;
  /**
   * Groups and summarises documents (`count`, `sum`, `avg`, `min`, `max` per group), computed by the
   * database on the SQL backends; identical rows on every backend.
   * @example
   * ```ts
   * const rows = await storage.aggregate('stocks', { groupBy: 'sector', count: true, avg: ['price'], orderBy: { field: 'count', direction: 'desc' } });
   * // [{ group: { sector: 'tech' }, count: 12, avg: { price: 181.5 } }, …]
   * ```
   * @throws ConfigError on invalid options.
   */
  aggregate(collection: string, options: AggregateOptions): Promise<AggregateRow[]>;
  /**
   * Runs `fn` in a transaction: commit on return, rollback on throw. `tx` sees its own writes.
   * `signal` aborts the wait for the transaction to begin; inside, pass it to `tx`'s calls.
   */
  transaction<T>(fn: (tx: StorageAdapter) => Promise<T>, options?: StorageCallOptions): Promise<T>;
  /** Creates an index on a top-level field so `find` on it is indexed. Idempotent. */
  ensureIndex(collection: string, field: string, options?: StorageCallOptions): Promise<void>;
  /** Names of the collections that exist. */
  collections(options?: StorageCallOptions): Promise<string[]>;
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
