/**
 * What the SQLite and PostgreSQL adapters share, written once: Kysely migrations over `db`, the health
 * probe, `await using`, the collection list read from the catalogue, and turning rows into documents.
 * Each adapter supplies how it runs a statement; the statements themselves come from `sql-query.ts`.
 * @module
 */
import { createHash } from 'node:crypto';
import { type Kysely, type Migration, type MigrationResult, Migrator } from 'kysely';
import { StorageError } from '../../core/errors.js';
import { describeFailure } from '../documents.js';
import { COLLECTION_NAME } from '../names.js';
import type { DocumentWithMeta, StorageHealth, StoredDocument, UntypedDatabase } from '../types.js';

/** The hash behind index and prepared-statement names (hex SHA-1). */
export function sha1(text: string): string {
  return createHash('sha1').update(text).digest('hex');
}

/** A row of `SELECT data, version, created_at, updated_at` (data as JSON text on SQLite, parsed on PostgreSQL). */
export interface MetaRow {
  data: string | object;
  version: number;
  created_at: number | string;
  updated_at: number | string;
}

/** The document and its bookkeeping columns from one row. */
export function metaOf<T extends object>(row: MetaRow): DocumentWithMeta<T> {
  return {
    doc: (typeof row.data === 'string' ? JSON.parse(row.data) : row.data) as StoredDocument<T>,
    version: row.version,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

/** Collection names behind a list of table names: those with the prefix whose rest is a valid collection name. */
export function collectionsOf(tables: readonly string[], prefix: string): string[] {
  return tables
    .filter((name) => name.startsWith(prefix))
    .map((name) => name.slice(prefix.length))
    .filter((name) => COLLECTION_NAME.test(name))
    .sort();
}

/**
 * A driver error as a `StorageError` naming the operation and collection (cause kept) and whether
 * retrying is safe; hotpath's own errors pass through unchanged.
 */
export function wrapDriverError(
  op: string,
  collection: string | undefined,
  error: unknown,
  isRetrySafe: boolean,
): unknown {
  if ((error as { isHotpathError?: boolean })?.isHotpathError) return error;
  return new StorageError(describeFailure(op, collection, error), { cause: error, isRetrySafe });
}

/** The members both SQL adapters implement the same way, over what each one supplies. */
export abstract class SqlSession {
  /** The Kysely instance over the adapter's connection(s), for the app's own typed tables. */
  abstract get db(): Kysely<UntypedDatabase>;

  /** Runs `SELECT 1` the way every other statement runs (throws when closed or unreachable). */
  protected abstract probe(): Promise<void>;

  /** Wraps a driver error of `op` as the adapter does. */
  protected abstract wrapError(op: string, collection: string | undefined, error: unknown): unknown;

  /** Releases connections and timers; idempotent. */
  abstract close(): Promise<void>;

  /**
   * Runs Kysely migrations (`{ name: { up, down? } }`, applied in name order) to the latest.
   * @throws StorageError when a migration fails (cause: the migration's error).
   */
  async migrate(migrations: Record<string, Migration>): Promise<MigrationResult[]> {
    const migrator = new Migrator({
      db: this.db,
      provider: { getMigrations: async () => migrations },
    });
    const { error, results } = await migrator.migrateToLatest();
    if (error !== undefined) throw this.wrapError('migrate', undefined, error);
    return [...(results ?? [])];
  }

  /** Probes the database with `SELECT 1`. Never throws: a failure is `{ ok: false, error }`. */
  async health(): Promise<StorageHealth> {
    const start = performance.now();
    try {
      await this.probe();
      return { ok: true, latencyMs: performance.now() - start };
    } catch (error) {
      return { ok: false, latencyMs: performance.now() - start, error: (error as Error).message };
    }
  }

  /** Same as {@link close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
