/**
 * The parts of better-sqlite3 that hotpath uses, declared structurally (kysely style) so the public
 * types compile without better-sqlite3 installed.
 * @module
 */

/** A better-sqlite3 prepared statement. */
export interface SqliteStatement {
  /** True when the statement returns rows (SELECT, or a write with RETURNING). */
  readonly reader: boolean;
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  run(...params: unknown[]): { changes: number; lastInsertRowid: number | bigint };
  iterate(...params: unknown[]): IterableIterator<unknown>;
  /** Makes `get`/`all` return the first column's value instead of a row object. */
  pluck(toggle?: boolean): SqliteStatement;
}

/** A better-sqlite3 database connection. */
export interface SqliteDatabase {
  prepare(sql: string): SqliteStatement;
  exec(sql: string): unknown;
  pragma(source: string, options?: { simple?: boolean }): unknown;
  close(): unknown;
  readonly open: boolean;
  readonly inTransaction: boolean;
}

/** The better-sqlite3 default export. */
export type SqliteDatabaseConstructor = new (
  filename: string,
  options?: { readonly?: boolean; fileMustExist?: boolean; timeout?: number },
) => SqliteDatabase;
