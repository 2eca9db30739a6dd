/**
 * `hotpath migrate --from <url> --to <url>`: copies collections between databases (`copyStorage`)
 * with progress, per-collection counts and a verification pass; `--dry-run` checks the target and
 * counts without writing.
 * @module
 */

import type { StorageAdapter } from '../../storage/index.js';
import { copyStorage } from '../../storage/index.js';
import { ExitCode, openStorage, shownUrl, UsageError } from '../common.js';
import type { Output, Progress } from '../output.js';

/** Options of `hotpath migrate`, as parsed. */
export interface MigrateCommandOptions {
  from: string;
  to: string;
  collections?: string[];
  batchSize: number;
  dryRun: boolean;
  verify: boolean;
}

/** One collection's outcome. */
interface CollectionReport {
  collection: string;
  sourceCount: number;
  copied: number;
  targetCount: number;
  /** Documents that differ between source and target (verification pass), or null when not verified. */
  mismatched: number | null;
  /** Up to 5 ids that differ or are missing in the target. */
  mismatchedIds: string[];
  ok: boolean;
}

/** A collection name no user collection can have, for the write probe (rolled back). */
const PROBE_COLLECTION = 'hotpath_migrate_probe';
/** Thrown inside the probe transaction to roll it back. */
const ROLLBACK = Symbol('rollback');

/** Runs the migration; resolves with the exit code. */
export async function runMigrate(options: MigrateCommandOptions, output: Output): Promise<number> {
  if (options.from === options.to) throw new UsageError('--from and --to are the same database');
  const from = openStorage(options.from);
  let to: StorageAdapter | undefined;
  try {
    to = openStorage(options.to);
    const target = await checkTarget(to);
    const source = await from.health();
    if (!source.ok) {
      return report(output, options, [], {
        ok: false,
        problem: `the source is not reachable (${shownUrl(options.from)}): ${source.error ?? ''}`,
      });
    }
    if (!target.ok) {
      return report(output, options, [], { ok: false, problem: target.problem });
    }
    const names = options.collections ?? (await from.collections());
    if (!output.isJson) {
      output.line(
        `${options.dryRun ? 'dry run: ' : ''}${shownUrl(options.from)} → ${shownUrl(options.to)}: ${names.length} collection(s)`,
      );
    }
    const reports: CollectionReport[] = [];
    for (const collection of names) {
      let progress: Progress | undefined;
      const result = await copyStorage(from, to, {
        collections: [collection],
        batchSize: options.batchSize,
        dryRun: options.dryRun,
        onProgress: ({ copied, total }) => {
          if (options.dryRun) return;
          progress ??= output.progress(collection, total);
          progress.update(copied, total);
        },
      });
      progress?.stop();
      const counts = result.collections[0];
      if (counts === undefined) continue;
      const verification =
        options.dryRun || !options.verify
          ? { mismatched: null, ids: [] }
          : await verifyCollection(from, to, collection, options.batchSize);
      reports.push({
        collection,
        sourceCount: counts.sourceCount,
        copied: counts.copied,
        targetCount: counts.targetCount,
        mismatched: verification.mismatched,
        mismatchedIds: verification.ids,
        ok: options.dryRun || (counts.sourceCount === counts.targetCount && (verification.mismatched ?? 0) === 0),
      });
    }
    return report(output, options, reports, { ok: reports.every((r) => r.ok) });
  } finally {
    await from.close().catch(() => {});
    await to?.close().catch(() => {});
  }
}

/**
 * The target is reachable and a collection can be created and written there: one write in a
 * transaction that is rolled back (both SQL backends roll back DDL), so nothing is left behind.
 */
async function checkTarget(to: StorageAdapter): Promise<{ ok: true } | { ok: false; problem: string }> {
  const health = await to.health();
  if (!health.ok) return { ok: false, problem: `the target is not reachable: ${health.error ?? 'no answer'}` };
  try {
    await to.transaction(async (tx) => {
      await tx.put(PROBE_COLLECTION, { probe: true }, { id: 'probe' });
      throw ROLLBACK;
    });
  } catch (error) {
    if (error !== ROLLBACK) {
      const message = error instanceof Error ? error.message : String(error);
      return { ok: false, problem: `cannot create or write a collection in the target: ${message}` };
    }
  }
  return { ok: true };
}

/** Reads both sides in id order, page by page, and counts documents that differ or are missing. */
async function verifyCollection(
  from: StorageAdapter,
  to: StorageAdapter,
  collection: string,
  batchSize: number,
): Promise<{ mismatched: number; ids: string[] }> {
  let mismatched = 0;
  const ids: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await from.find(collection, { limit: batchSize, ...(cursor === undefined ? {} : { cursor }) });
    for (const doc of page.items) {
      const id = (doc as { id: string }).id;
      const copy = await to.get(collection, id);
      if (copy === undefined || stableJson(copy) !== stableJson(doc)) {
        mismatched++;
        if (ids.length < 5) ids.push(id);
      }
    }
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return { mismatched, ids };
}

/** JSON with object keys sorted, so key order does not count as a difference. */
function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    inner !== null && typeof inner === 'object' && !Array.isArray(inner)
      ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : inner,
  );
}

function report(
  output: Output,
  options: MigrateCommandOptions,
  reports: CollectionReport[],
  outcome: { ok: boolean; problem?: string },
): number {
  if (output.isJson) {
    output.json({
      ok: outcome.ok,
      dryRun: options.dryRun,
      from: shownUrl(options.from),
      to: shownUrl(options.to),
      ...(outcome.problem === undefined ? {} : { problem: outcome.problem }),
      collections: reports,
    });
  } else {
    if (reports.length > 0) {
      output.table(
        ['collection', 'source', options.dryRun ? 'would copy' : 'copied', 'target', 'verified'],
        reports.map((r) => [
          r.collection,
          String(r.sourceCount),
          String(options.dryRun ? r.sourceCount : r.copied),
          String(r.targetCount),
          r.mismatched === null
            ? '-'
            : r.mismatched === 0 && r.sourceCount === r.targetCount
              ? 'ok'
              : `${r.mismatched} differ${r.mismatchedIds.length > 0 ? ` (${r.mismatchedIds.join(', ')})` : ''}`,
        ]),
      );
    }
    if (outcome.problem !== undefined) output.error(`migrate: ${outcome.problem}`);
    else if (options.dryRun) output.line('dry run: the target accepts writes; nothing was written');
    else
      output.line(
        outcome.ok ? 'migrated: counts match and every document verified' : 'migration incomplete: see above',
      );
  }
  return outcome.ok ? ExitCode.ok : ExitCode.failure;
}
