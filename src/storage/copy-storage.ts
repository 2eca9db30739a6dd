/**
 * `copyStorage`: copies collections from one adapter to another in batches (the seeds' SQLite →
 * PostgreSQL migration), safe to re-run because it upserts by id.
 * @module
 */

import { throwIfAborted } from '../core/abort.js';
import { ConfigError } from '../core/errors.js';
import { validateOptions } from '../core/options.js';
import { checkCollection } from './names.js';
import type { StorageAdapter } from './types.js';

/** Progress of one collection, reported after every batch. */
export interface CopyProgress {
  /** The collection being copied. */
  collection: string;
  /** Documents copied so far in this collection. */
  copied: number;
  /** Documents the source held when the collection started. */
  total: number;
}

/** Options of {@link copyStorage}. */
export interface CopyStorageOptions {
  /** Collections to copy (default: every collection of the source). */
  collections?: readonly string[];
  /** Documents per read page and per `putMany` (default 1,000; at most 10,000). */
  batchSize?: number;
  /** Only count: nothing is written to the target. */
  dryRun?: boolean;
  /** Called after every batch. */
  onProgress?: (progress: CopyProgress) => void;
  /** Stops between batches; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Counts of one collection after a copy (or dry run). */
export interface CollectionCopyResult {
  /** The collection. */
  collection: string;
  /** Documents in the source (counted before copying). */
  sourceCount: number;
  /** Documents written to the target by this run (0 in a dry run). */
  copied: number;
  /** Documents in the target afterwards. */
  targetCount: number;
}

/** Result of {@link copyStorage}. */
export interface CopyStorageResult {
  /** Whether this was a dry run (nothing written). */
  dryRun: boolean;
  /** One entry per collection, in the order copied. */
  collections: CollectionCopyResult[];
  /** True when every collection's target count equals its source count. */
  countsMatch: boolean;
}

/**
 * Copies every document of the chosen collections from `from` to `to`, page by page in id order
 * (keyset pagination, so concurrent inserts into the source do not shift pages). Documents keep their
 * ids; versions and timestamps start fresh in the target. Re-running is safe: it upserts by id.
 * @throws ConfigError on invalid options; StorageError from either backend.
 */
export async function copyStorage(
  from: StorageAdapter,
  to: StorageAdapter,
  options: CopyStorageOptions = {},
): Promise<CopyStorageResult> {
  validateOptions('copyStorage', options, {
    collections: { type: 'object' },
    batchSize: { type: 'number', min: 1, max: 10_000, integer: true },
    dryRun: { type: 'boolean' },
    onProgress: { type: 'function' },
    signal: { type: 'object' },
  });
  if (from === to) throw new ConfigError('copyStorage.to', 'copyStorage: source and target are the same adapter');
  const batchSize = options.batchSize ?? 1000;
  const dryRun = options.dryRun ?? false;
  const { signal, onProgress } = options;
  const names = options.collections ? [...options.collections] : await from.collections();
  for (const name of names) checkCollection(name);
  const results: CollectionCopyResult[] = [];
  for (const collection of names) {
    throwIfAborted(signal);
    const sourceCount = await from.count(collection);
    let copied = 0;
    if (!dryRun) {
      let cursor: string | undefined;
      do {
        throwIfAborted(signal);
        const page = await from.find(collection, { limit: batchSize, ...(cursor ? { cursor } : {}) });
        if (page.items.length > 0) await to.putMany(collection, page.items);
        copied += page.items.length;
        cursor = page.nextCursor;
        onProgress?.({ collection, copied, total: sourceCount });
      } while (cursor !== undefined);
    } else {
      onProgress?.({ collection, copied: 0, total: sourceCount });
    }
    results.push({ collection, sourceCount, copied, targetCount: await to.count(collection) });
  }
  return {
    dryRun,
    collections: results,
    countsMatch: results.every((r) => r.sourceCount === r.targetCount),
  };
}
