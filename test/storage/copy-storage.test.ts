/**
 * copyStorage: SQLite → PostgreSQL of 100,000 documents with equal counts; a dry run writes nothing;
 * re-running is safe (upsert by id). Plus small cases on every pair of backends.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CopyProgress, copyStorage, MemoryStorage, PostgresStorage, SqliteStorage } from 'hotpath/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshPgSchema, needsPostgres } from '../helpers/services.js';

const hasPostgres = await needsPostgres();

describe('copyStorage between memory and SQLite', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'hp-copy-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('copies every collection, reports counts and progress; dry run writes nothing', async () => {
    const from = new MemoryStorage();
    const to = new SqliteStorage({ filename: join(dir, 'copy.db') });
    await from.putMany(
      'projects',
      Array.from({ length: 25 }, (_, i) => ({ id: `p${i}`, n: i })),
    );
    await from.putMany('users', [{ id: 'u1', name: 'ünïcödé 😀' }]);
    await from.ensureIndex('empty', 'x');

    const dry = await copyStorage(from, to, { dryRun: true, batchSize: 10 });
    const fresh = { copied: 0, targetCount: 0, wouldReplace: 0 };
    expect(dry).toEqual({
      dryRun: true,
      countsMatch: true, // the copy would leave source and target equal
      collections: [
        { collection: 'empty', sourceCount: 0, wouldCopy: 0, expectedTargetCount: 0, ...fresh },
        { collection: 'projects', sourceCount: 25, wouldCopy: 25, expectedTargetCount: 25, ...fresh },
        { collection: 'users', sourceCount: 1, wouldCopy: 1, expectedTargetCount: 1, ...fresh },
      ],
    });
    // Nothing written, not even the table the target check created and rolled back.
    expect(await to.collections()).toEqual([]);

    // Against a target that already holds some of the ids, and others of its own.
    await to.putMany('projects', [{ id: 'p3' }, { id: 'p7' }, { id: 'only-in-target' }]);
    const overlapping = await copyStorage(from, to, { dryRun: true, batchSize: 10, collections: ['projects'] });
    expect(overlapping).toEqual({
      dryRun: true,
      countsMatch: false, // 'only-in-target' would remain: 26 against 25
      collections: [
        {
          collection: 'projects',
          sourceCount: 25,
          copied: 0,
          targetCount: 3,
          wouldCopy: 25,
          wouldReplace: 2,
          expectedTargetCount: 26,
        },
      ],
    });
    expect(await to.count('projects')).toBe(3);
    await to.delete('projects', 'p3');
    await to.delete('projects', 'p7');
    await to.delete('projects', 'only-in-target');

    const progress: CopyProgress[] = [];
    const result = await copyStorage(from, to, { batchSize: 10, onProgress: (p) => progress.push(p) });
    expect(result.countsMatch).toBe(true);
    expect(result.collections.find((c) => c.collection === 'projects')).toEqual({
      collection: 'projects',
      sourceCount: 25,
      copied: 25,
      targetCount: 25,
    });
    expect(progress.filter((p) => p.collection === 'projects').map((p) => p.copied)).toEqual([10, 20, 25]);
    expect(await to.get('users', 'u1')).toEqual({ id: 'u1', name: 'ünïcödé 😀' });

    // Re-running is safe: same counts, no duplicates.
    const again = await copyStorage(from, to, { collections: ['projects'] });
    expect(again.collections).toEqual([{ collection: 'projects', sourceCount: 25, copied: 25, targetCount: 25 }]);

    await expect(copyStorage(from, to, { batchSize: 0 })).rejects.toMatchObject({ code: 'ERR_HOTPATH_CONFIG' });
    await expect(copyStorage(from, to, { collections: ['bad name'] })).rejects.toMatchObject({
      code: 'ERR_HOTPATH_CONFIG',
    });
    await expect(copyStorage(from, from)).rejects.toMatchObject({ code: 'ERR_HOTPATH_CONFIG' });
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await expect(copyStorage(from, to, { signal: controller.signal })).rejects.toThrow('stop');
    await from.close();
    await to.close();
  });
});

describe.runIf(hasPostgres)('copyStorage SQLite → PostgreSQL, 100,000 documents', () => {
  let dir: string;
  let schema: Awaited<ReturnType<typeof freshPgSchema>>;
  let from: SqliteStorage;
  let to: PostgresStorage;
  const TOTAL = 100_000;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hp-copy-'));
    schema = await freshPgSchema('hp_copy');
    from = new SqliteStorage({ filename: join(dir, 'source.db') });
    to = new PostgresStorage({ connectionString: schema.url, max: 4 });
    const docs = Array.from({ length: TOTAL }, (_, i) => ({
      id: `f${String(i).padStart(6, '0')}`,
      city: `city${i % 50}`,
      tempC: (i % 60) - 20,
      at: i,
    }));
    await from.putMany('forecasts', docs);
    await from.putMany('research', [{ id: 'r1', title: 'Quantum 量子' }]);
  });
  afterAll(async () => {
    await from?.close();
    await to?.close();
    await schema?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('dry run checks the target and only counts', async () => {
    const dry = await copyStorage(from, to, { dryRun: true });
    const fresh = { copied: 0, targetCount: 0, wouldReplace: 0 };
    expect(dry.collections).toEqual([
      { collection: 'forecasts', sourceCount: TOTAL, wouldCopy: TOTAL, expectedTargetCount: TOTAL, ...fresh },
      { collection: 'research', sourceCount: 1, wouldCopy: 1, expectedTargetCount: 1, ...fresh },
    ]);
    expect(dry.countsMatch).toBe(true);
    expect(await to.collections()).toEqual([]);
  });

  it('dry run against a PostgreSQL schema that does not exist fails with StorageError, as the real run would', async () => {
    const missing = `hp_no_such_schema_${process.pid}`;
    const url = new URL(schema.url);
    url.searchParams.set('options', `-c search_path=${missing}`);
    for (const target of [
      new PostgresStorage({ connectionString: schema.url, schema: missing, max: 2 }),
      new PostgresStorage({ connectionString: url.toString(), max: 2 }),
    ]) {
      try {
        const error = await copyStorage(from, target, { dryRun: true, collections: ['research'] }).catch(
          (e: unknown) => e,
        );
        expect(error).toMatchObject({
          code: 'ERR_HOTPATH_STORAGE',
          message: expect.stringMatching(/target cannot create tables.*schema/),
        });
        // The real run fails too (before this change the dry run said all was well).
        await expect(copyStorage(from, target, { collections: ['research'] })).rejects.toMatchObject({
          code: 'ERR_HOTPATH_STORAGE',
        });
      } finally {
        await target.close();
      }
    }
    // An unreachable target is reported as such.
    const closedPort = new PostgresStorage({ connectionString: 'postgres://postgres@127.0.0.1:1/test', max: 1 });
    try {
      await expect(copyStorage(from, closedPort, { dryRun: true })).rejects.toMatchObject({
        code: 'ERR_HOTPATH_STORAGE',
        message: expect.stringContaining('target is not reachable'),
      });
    } finally {
      await closedPort.close();
    }
  });

  it('copies everything with equal counts and identical documents', async () => {
    const result = await copyStorage(from, to, { batchSize: 5000 });
    expect(result.countsMatch).toBe(true);
    expect(result.collections).toEqual([
      { collection: 'forecasts', sourceCount: TOTAL, copied: TOTAL, targetCount: TOTAL },
      { collection: 'research', sourceCount: 1, copied: 1, targetCount: 1 },
    ]);
    for (const id of ['f000000', 'f054321', 'f099999']) {
      expect(await to.get('forecasts', id)).toEqual(await from.get('forecasts', id));
    }
    expect(await to.count('forecasts', { tempC: { lt: 0 } })).toBe(await from.count('forecasts', { tempC: { lt: 0 } }));
    expect(await to.get('research', 'r1')).toEqual({ id: 'r1', title: 'Quantum 量子' });
  });
});
