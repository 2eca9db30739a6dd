/**
 * Work in progress: the Sqlite backend lands in the next commit.
 * @module
 */
import { ConfigError } from '../core/index.js';
import type { SqlAccess } from '../storage/types.js';
import { MemoryBackend } from './memory-backend.js';

/** Placeholder until the Sqlite backend lands. */
export class SqliteBackend extends MemoryBackend {
  constructor(_sql: SqlAccess) {
    super(0);
    throw new ConfigError('JobQueue.storage', 'Sqlite queue backend not available yet');
  }
}
