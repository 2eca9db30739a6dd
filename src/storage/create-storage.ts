/**
 * `createStorage(url)`: picks the backend from a URL, so apps configure storage with one setting.
 * @module
 */
import { ConfigError, redactUrl } from '../core/errors.js';
import { MemoryStorage, type MemoryStorageOptions } from './memory/memory-storage.js';
import { PostgresStorage, type PostgresStorageOptions } from './postgres/postgres-storage.js';
import { SqliteStorage, type SqliteStorageOptions } from './sqlite/sqlite-storage.js';
import type { StorageAdapter } from './types.js';

/** Extra options for {@link createStorage}, passed to whichever backend the URL selects. */
export type CreateStorageOptions =
  | MemoryStorageOptions
  | Omit<SqliteStorageOptions, 'filename'>
  | Omit<PostgresStorageOptions, 'connectionString' | 'pool'>;

/**
 * Opens storage from a URL: `memory://`, `sqlite://relative/path.db`, `sqlite:///absolute/path.db`,
 * `sqlite://:memory:`, or `postgres://…` / `postgresql://…` (passed to pg as the connection string).
 * @throws ConfigError for other schemes, an empty SQLite path, or invalid options (and when the driver is missing).
 */
export function createStorage(url: string, options: CreateStorageOptions = {}): StorageAdapter {
  if (typeof url !== 'string') throw new ConfigError('url', 'createStorage: url must be a string');
  if (url === 'memory://' || url === 'memory:') return new MemoryStorage(options as MemoryStorageOptions);
  if (url.startsWith('sqlite://')) {
    const filename = decodeURIComponent(url.slice('sqlite://'.length));
    if (filename.length === 0)
      throw new ConfigError('url', 'createStorage: sqlite:// needs a file path, e.g. sqlite://data/app.db');
    return new SqliteStorage({ ...(options as Omit<SqliteStorageOptions, 'filename'>), filename });
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    return new PostgresStorage({
      ...(options as Omit<PostgresStorageOptions, 'connectionString' | 'pool'>),
      connectionString: url,
    });
  }
  throw new ConfigError(
    'url',
    `createStorage: unsupported URL ${JSON.stringify(redactUrl(url)).slice(0, 100)} (use memory://, sqlite://path or postgres://…)`,
  );
}
