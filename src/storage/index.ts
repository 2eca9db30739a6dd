/**
 * hotpath/storage: JSON documents in named collections over memory, SQLite (better-sqlite3) and
 * PostgreSQL (pg) with one API, plus `StorageManager` (typed collections read through a cache) and
 * `copyStorage` (migration between backends).
 * @module
 */
export type { StorageCommonOptions } from './common-options.js';
export {
  type CollectionCopyResult,
  type CopyProgress,
  type CopyStorageOptions,
  type CopyStorageResult,
  copyStorage,
} from './copy-storage.js';
export { type CreateStorageOptions, createStorage } from './create-storage.js';
export { MemoryStorage, type MemoryStorageOptions } from './memory/memory-storage.js';
export type {
  PgPool,
  PgPoolClient,
  PgQueryable,
  PgQueryConfig,
  PgQueryResult,
} from './postgres/postgres-driver-types.js';
export { PostgresStorage, type PostgresStorageOptions } from './postgres/postgres-storage.js';
export { SqliteStorage, type SqliteStorageOptions } from './sqlite/sqlite-storage.js';
export {
  Collection,
  type CollectionOptions,
  type DocumentCache,
  StorageManager,
  type StorageManagerOptions,
} from './storage-manager.js';
export type {
  AggregateOptions,
  AggregateOrderField,
  AggregateRow,
  DocumentWithMeta,
  FieldCondition,
  FindOptions,
  FindResult,
  PutOptions,
  SqlAccess,
  StorageAdapter,
  StorageCallOptions,
  StorageHealth,
  StorageStats,
  StoredDocument,
  UntypedDatabase,
  UpdateOptions,
  Where,
} from './types.js';
