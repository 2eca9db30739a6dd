/**
 * `copyStorage`: copies collections from one adapter to another in batches (the seeds' SQLite →
 * PostgreSQL migration), safe to re-run because it upserts by id.
 * @module
 */

import { throwIfAborted } from '../core/abort.js';
import { ConfigError, StorageError } from '../core/errors.js';
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
  /**
   * Check and count only, nothing is written: the target must be reachable and able to create a table
   * and write to it (checked in a transaction that is rolled back), and each collection reports how
   * many documents a real run would copy, how many of them would replace documents already in the
   * target, and the target's count afterwards.
   */
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
  /** Documents in the target afterwards (in a dry run: now). */
  targetCount: number;
  /** Dry run: documents a real run would write (the source's count). */
  wouldCopy?: number;
  /** Dry run: of those, how many have an id already in the target (a real run replaces them). */
  wouldReplace?: number;
  /** Dry run: the target's count after a real run (`targetCount + wouldCopy - wouldReplace`). */
  expectedTargetCount?: number;
}

/** Result of {@link copyStorage}. */
export interface CopyStorageResult {
  /** Whether this was a dry run (nothing written). */
  dryRun: boolean;
  /** One entry per collection, in the order copied. */
  collections: CollectionCopyResult[];
  /**
   * True when every collection's target count equals its source count (in a dry run: when every
   * `expectedTargetCount` equals the source count, i.e. the copy would leave the two equal).
   */
  countsMatch: boolean;
}

/** Name of the table the dry run creates (and rolls back) to check that the target can create tables. */
const PROBE_COLLECTION = 'hotpath_copy_probe';
/** Ids per existence query of the dry run (the `in` limit of `where`). */
const ID_BATCH = 1000;

/** Thrown inside the probe transaction so that it rolls back. */
class ProbeDone extends Error {}

/**
 * Checks that the target answers and can create a table and write to it: in a transaction that is
 * rolled back, so nothing is left behind. A PostgreSQL schema that does not exist fails here.
 * @throws StorageError saying which check failed (cause: the backend's error).
 */
async function checkTarget(to: StorageAdapter, signal: AbortSignal | undefined): Promise<void> {
  const health = await to.health();
  if (!health.ok) {
    throw new StorageError(`copyStorage: the target is not reachable: ${health.error ?? 'unknown error'}`);
  }
  try {
    await to.transaction(
      async (tx) => {
        await tx.put(PROBE_COLLECTION, { id: 'probe' }, { signal });
        throw new ProbeDone();
      },
      { signal },
    );
  } catch (error) {
    if (error instanceof ProbeDone) return;
    if (signal?.aborted) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new StorageError(`copyStorage: the target cannot create tables or write to them: ${reason}`, {
      cause: error,
    });
  }
}

/** How many documents of the source collection have an id that already exists in the target. */
async function countExisting(
  from: StorageAdapter,
  to: StorageAdapter,
  collection: string,
  batchSize: number,
  signal: AbortSignal | undefined,
): Promise<number> {
  let existing = 0;
  let cursor: string | undefined;
  do {
    throwIfAborted(signal);
    const page = await from.find(collection, { limit: batchSize, ...(cursor ? { cursor } : {}), signal });
    const ids = page.items.map((doc) => doc.id);
    for (let i = 0; i < ids.length; i += ID_BATCH) {
      existing += await to.count(collection, { id: { in: ids.slice(i, i + ID_BATCH) } }, { signal });
    }
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return existing;
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
  if (dryRun) await checkTarget(to, signal);
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
      const targetCount = await to.count(collection, undefined, { signal });
      const wouldReplace = targetCount === 0 ? 0 : await countExisting(from, to, collection, batchSize, signal);
      onProgress?.({ collection, copied: 0, total: sourceCount });
      results.push({
        collection,
        sourceCount,
        copied: 0,
        targetCount,
        wouldCopy: sourceCount,
        wouldReplace,
        expectedTargetCount: targetCount + sourceCount - wouldReplace,
      });
      continue;
    }
    results.push({ collection, sourceCount, copied, targetCount: await to.count(collection) });
  }
  return {
    dryRun,
    collections: results,
    countsMatch: results.every((r) => r.sourceCount === (r.expectedTargetCount ?? r.targetCount)),
  };
}
