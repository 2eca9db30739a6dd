/**
 * The parts of `pg` that hotpath uses, declared structurally (kysely style: "we don't use the type from
 * `pg` here to not have a dependency to it") so the public types compile without pg installed.
 * @module
 */

/** A query result. */
export interface PgQueryResult<R> {
  /** The rows returned. */
  rows: R[];
  /** Rows affected or returned, when the server reports it. */
  rowCount: number | null;
}

/** A query with bound values; `name` makes it a named prepared statement on that connection. */
export interface PgQueryConfig {
  /** SQL text with `$1…` placeholders. */
  text: string;
  /** Values bound to the placeholders. */
  values?: unknown[];
  /** Name of the prepared statement (parsed once per connection). */
  name?: string;
}

/** Something that runs queries: a pool or a client. */
export interface PgQueryable {
  /** Runs one statement. */
  query<R = Record<string, unknown>>(config: PgQueryConfig): Promise<PgQueryResult<R>>;
}

/** A client checked out of a pool. */
export interface PgPoolClient extends PgQueryable {
  /** Returns the client; passing an error destroys it instead of reusing it. */
  release(destroy?: Error | boolean): void;
  /** The server process id of the connection (for `pg_cancel_backend`). */
  readonly processID?: number;
  /** Subscribes to connection errors. */
  on(event: 'error', listener: (error: Error) => void): unknown;
  /** Unsubscribes from connection errors. */
  removeListener(event: 'error', listener: (error: Error) => void): unknown;
}

/** A pg `Pool` (pass your own as `PostgresStorage({ pool })`). */
export interface PgPool extends PgQueryable {
  /** Checks out a client (callback form: the listener is attached before any other I/O runs). */
  connect(callback: (error: Error | undefined, client: PgPoolClient | undefined) => void): void;
  /** Closes every connection. */
  end(): Promise<void>;
  /** Subscribes to errors of idle connections. */
  on(event: 'error', listener: (error: Error) => void): unknown;
  /** Connections open. */
  readonly totalCount: number;
  /** Connections open and idle. */
  readonly idleCount: number;
  /** Callers waiting for a connection. */
  readonly waitingCount: number;
}

/** @internal A standalone pg Client (used for LISTEN). */
export interface PgClient extends PgQueryable {
  connect(): Promise<void>;
  end(): Promise<void>;
  on(event: 'error' | 'end', listener: (error?: Error) => void): unknown;
  on(event: 'notification', listener: (message: { channel: string; payload?: string }) => void): unknown;
  removeAllListeners(event?: string): unknown;
}

/** @internal Connection settings passed to pg's Pool and Client constructors. */
export interface PgConnectionConfig {
  connectionString?: string;
  statement_timeout?: number;
  /** Client-side deadline of one query, ms: the call rejects (and the connection is discarded) when no reply came. */
  query_timeout?: number;
  connectionTimeoutMillis?: number;
  application_name?: string;
}

/** @internal Pool settings passed to pg's Pool constructor. */
export interface PgPoolConfig extends PgConnectionConfig {
  max?: number;
  idleTimeoutMillis?: number;
  maxLifetimeSeconds?: number;
}

/** @internal The pg module. */
export interface PgModule {
  Pool: new (config: PgPoolConfig) => PgPool;
  Client: new (config: PgConnectionConfig) => PgClient;
}
