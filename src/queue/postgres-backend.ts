/**
 * Work in progress: the Postgres backend lands in the next commit.
 * @module
 */
import { ConfigError } from '../core/index.js';
import type { SqlAccess } from '../storage/types.js';
import { MemoryBackend } from './memory-backend.js';

/** Placeholder until the Postgres backend lands. */
export class PostgresBackend extends MemoryBackend {
  constructor(_sql: SqlAccess) {
    super(0);
    throw new ConfigError('JobQueue.storage', 'Postgres queue backend not available yet');
  }
}
