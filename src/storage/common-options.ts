/**
 * Options shared by every storage backend.
 * @module
 */
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { OptionSchema } from '../core/options.js';
import type { LatencyRecorder } from '../core/recorder.js';

/** Options every backend accepts. */
export interface StorageCommonOptions {
  /** Time source for `created_at`/`updated_at` and generated ids (default: the system clock). */
  clock?: Clock;
  /** Receives `storage.<op>` latencies (ms) and every statement shape through `noteQuery` (N+1 detection). */
  profiler?: LatencyRecorder;
  /** Where dropped connections and background failures are reported (default: silent). */
  logger?: Logger;
  /**
   * Prefix of the table behind each collection (default `doc_`: collection `forecasts` is table
   * `doc_forecasts`); at most 15 identifier characters.
   */
  tablePrefix?: string;
}

/** Validation schema of {@link StorageCommonOptions}. */
export const COMMON_SCHEMA: OptionSchema = {
  clock: { type: 'object' },
  profiler: { type: 'object' },
  logger: { type: 'object' },
  tablePrefix: { type: 'string', pattern: /^[A-Za-z_][A-Za-z0-9_]{0,14}$/ },
};

/** Default table prefix. */
export const DEFAULT_TABLE_PREFIX = 'doc_';

/** Name of the index `ensureIndex(field)` creates: readable when short, hashed when it would be too long. */
export function indexName(table: string, field: string, hash: (text: string) => string): string {
  const plain = `${table}__${field}_idx`;
  return plain.length <= 63 ? plain : `${table.slice(0, 40)}__${hash(`${table}.${field}`).slice(0, 16)}_idx`;
}
