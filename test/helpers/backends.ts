/**
 * The storage backends tests run against — one list for storage and queue tests (kysely style: one
 * suite, `for (const backend of BACKENDS)`), and the openers behind it for tests that need one backend
 * with backend-specific options.
 *
 * Every opener gives a fresh, empty store of its own (a temp directory for SQLite, a fresh schema for
 * PostgreSQL) and a `cleanup` that closes the store and removes its files/schema.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  MemoryStorage,
  type MemoryStorageOptions,
  PostgresStorage,
  type PostgresStorageOptions,
  SqliteStorage,
  type SqliteStorageOptions,
  type StorageAdapter,
} from 'hotpath/storage';
import { freshPgSchema, needsPostgres } from './services.js';

// The PostgreSQL entry is part of every loop over BACKENDS, so a file that imports this list needs it.
const hasPostgres = await needsPostgres();

/** The name of one backend. */
export type BackendName = 'memory' | 'sqlite' | 'postgres';

/**
 * Options every backend accepts (clock, profiler, …), plus `label`: a prefix for the temp directory or
 * schema name, so leftovers say which test made them.
 */
export type BackendOptions = MemoryStorageOptions & { label?: string };

/** A freshly opened store; `cleanup` closes it and removes what it made. */
export interface OpenedBackend<S extends StorageAdapter = StorageAdapter> {
  storage: S;
  cleanup(): Promise<void>;
}

/** One backend in the list. */
export interface Backend {
  name: BackendName;
  /** False when its server is unreachable (use with `describe.runIf(backend.available)`). */
  available: boolean;
  /** True for backends that keep data across processes (SQLite, PostgreSQL). */
  durable: boolean;
  /** Opens a fresh, empty store. */
  open(options?: BackendOptions): Promise<OpenedBackend>;
}

/** A fresh in-memory store. */
export async function openMemory(options: BackendOptions = {}): Promise<OpenedBackend<MemoryStorage>> {
  const { label: _label, ...rest } = options;
  const storage = new MemoryStorage(rest);
  return { storage, cleanup: () => storage.close() };
}

/** A fresh SQLite store in a temp directory of its own (`dir`, `filename` say where). */
export async function openSqlite(
  options: Partial<SqliteStorageOptions> & { label?: string } = {},
): Promise<OpenedBackend<SqliteStorage> & { dir: string; filename: string }> {
  const { label = 'hp-storage', ...rest } = options;
  const dir = mkdtempSync(join(tmpdir(), `${label}-`));
  const filename = join(dir, 'db.sqlite');
  const storage = new SqliteStorage({ filename, ...rest });
  return {
    storage,
    dir,
    filename,
    async cleanup() {
      await storage.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A fresh PostgreSQL store in a schema of its own (`url` connects into it, `schema` names it).
 * With `pool`, the adapter uses that pool instead (open it on `url`; the schema is made first).
 */
export async function openPostgres(
  options: Partial<PostgresStorageOptions> & { label?: string } = {},
): Promise<OpenedBackend<PostgresStorage> & { url: string; schema: string }> {
  const { label = 'hp_storage', ...rest } = options;
  const own = await freshPgSchema(label);
  let storage: PostgresStorage;
  try {
    storage = new PostgresStorage(
      rest.pool ? (rest as PostgresStorageOptions) : { connectionString: own.url, max: 4, ...rest },
    );
  } catch (error) {
    await own.drop();
    throw error;
  }
  return {
    storage,
    url: own.url,
    schema: own.schema,
    async cleanup() {
      await storage.close();
      await own.drop();
    },
  };
}

/** Every backend, memory first. */
export const BACKENDS: readonly Backend[] = [
  { name: 'memory', available: true, durable: false, open: openMemory },
  {
    name: 'sqlite',
    available: true,
    durable: true,
    open: (options: BackendOptions = {}) => openSqlite({ ...options, label: options.label ?? 'hp-storage' }),
  },
  {
    name: 'postgres',
    available: hasPostgres,
    durable: true,
    open: (options: BackendOptions = {}) => openPostgres({ ...options, label: options.label ?? 'hp_storage' }),
  },
];

/** The backends that keep data across processes (SQLite, PostgreSQL). */
export const DURABLE_BACKENDS: readonly Backend[] = BACKENDS.filter((b) => b.durable);

/** The backend called `name`. */
export function backend(name: BackendName): Backend {
  const found = BACKENDS.find((b) => b.name === name);
  if (!found) throw new Error(`no backend called ${name}`);
  return found;
}

/** Opens `backend`, runs `fn` with the store, and cleans up whatever happens. */
export async function withBackend<T>(
  which: Backend,
  fn: (storage: StorageAdapter) => Promise<T>,
  options?: BackendOptions,
): Promise<T> {
  const { storage, cleanup } = await which.open(options);
  try {
    return await fn(storage);
  } finally {
    await cleanup();
  }
}
