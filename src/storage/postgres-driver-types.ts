/**
 * The parts of `pg` that hotpath uses, declared structurally (kysely style: "we don't use the type from
 * `pg` here to not have a dependency to it") so the public types compile without pg installed.
 * @module
 */

/** A query result. */
export interface PgQueryResult<R> {
  rows: R[];
  rowCount: number | null;
}

/** A query with bound values; `name` makes it a named prepared statement on that connection. */
export interface PgQueryConfig {
  text: string;
  values?: unknown[];
  name?: string;
}

/** Something that runs queries: a pool or a client. */
export interface PgQueryable {
  query<R = Record<string, unknown>>(config: PgQueryConfig): Promise<PgQueryResult<R>>;
}

/** A client checked out of a pool. */
export interface PgPoolClient extends PgQueryable {
  /** Returns the client; passing an error destroys it instead of reusing it. */
  release(destroy?: Error | boolean): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
  removeListener(event: 'error', listener: (error: Error) => void): unknown;
  readonly processID?: number | null;
}

/** A pg Pool. */
export interface PgPool extends PgQueryable {
  connect(callback: (error: Error | undefined, client: PgPoolClient | undefined) => void): void;
  end(): Promise<void>;
  on(event: 'error', listener: (error: Error) => void): unknown;
  readonly totalCount: number;
  readonly idleCount: number;
  readonly waitingCount: number;
}

/** A standalone pg Client (used for LISTEN). */
export interface PgClient extends PgQueryable {
  connect(): Promise<void>;
  end(): Promise<void>;
  on(event: 'error' | 'end', listener: (error?: Error) => void): unknown;
  on(event: 'notification', listener: (message: { channel: string; payload?: string }) => void): unknown;
  removeAllListeners(event?: string): unknown;
}

/** Connection settings passed to pg's Pool and Client constructors. */
export interface PgConnectionConfig {
  connectionString?: string;
  statement_timeout?: number;
  connectionTimeoutMillis?: number;
  application_name?: string;
}

/** Pool settings passed to pg's Pool constructor. */
export interface PgPoolConfig extends PgConnectionConfig {
  max?: number;
  idleTimeoutMillis?: number;
  maxLifetimeSeconds?: number;
}

/** The pg module. */
export interface PgModule {
  Pool: new (config: PgPoolConfig) => PgPool;
  Client: new (config: PgConnectionConfig) => PgClient;
}
