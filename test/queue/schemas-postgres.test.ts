/**
 * Issue 20: on PostgreSQL the queue's tables, functions and trigger live in the storage's `schema`, so
 * two services that chose their own schema in one database never see (or run) each other's jobs.
 */
import { JobQueue } from 'hotpath/queue';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { PostgresStorage } from '../../src/storage/index.js';
import { eventually } from '../helpers/async.js';
import { freshPgSchema, needsPostgres } from '../helpers/services.js';

const hasPostgres = await needsPostgres();

describe.runIf(hasPostgres)('queue in the PostgreSQL storage schema', () => {
  it('two queues in two schemas of one database keep their jobs apart', async () => {
    // The connection's own search_path points at a third schema: without the fix both queues share it.
    const scratch = await freshPgSchema('hp_queue_scratch');
    const a = await freshPgSchema('hp_queue_a');
    const b = await freshPgSchema('hp_queue_b');
    const storageA = new PostgresStorage({ connectionString: scratch.url, schema: a.schema, max: 2 });
    const storageB = new PostgresStorage({ connectionString: scratch.url, schema: b.schema, max: 2 });
    const queueA = new JobQueue({ storage: storageA, pollIntervalMs: 20 });
    const queueB = new JobQueue({ storage: storageB, pollIntervalMs: 20 });
    const ranInB: unknown[] = [];
    try {
      queueB.register('report', async (data) => {
        ranInB.push(data);
        return 'b';
      });
      await queueB.start();
      const idA = await queueA.enqueue('report', { from: 'a' });
      const idB = await queueB.enqueue('report', { from: 'b' });
      expect(await queueB.wait(idB, { timeoutMs: 10_000 })).toBe('b');
      // B's worker never sees A's job, by id or by claim.
      expect(await queueB.get(idA)).toBeUndefined();
      expect((await queueA.get(idA))?.status).toBe('queued');
      expect(ranInB).toEqual([{ from: 'b' }]);
      expect((await queueA.health()).counts).toMatchObject({ queued: 1, succeeded: 0 });
      expect((await queueB.health()).counts).toMatchObject({ queued: 0, succeeded: 1 });

      // Tables, functions and the trigger are in each storage's schema, none in the connection's.
      const client = new pg.Client({ connectionString: scratch.url });
      await client.connect();
      try {
        const tables = await client.query<{ schema: string; name: string }>(
          `SELECT table_schema AS schema, table_name AS name FROM information_schema.tables
           WHERE table_name IN ('hotpath_jobs', 'hotpath_schedules') AND table_schema = ANY($1) ORDER BY 1, 2`,
          [[a.schema, b.schema, scratch.schema]],
        );
        expect(tables.rows).toEqual(
          [a.schema, b.schema].sort().flatMap((schema) => [
            { schema, name: 'hotpath_jobs' },
            { schema, name: 'hotpath_schedules' },
          ]),
        );
        const functions = await client.query<{ schema: string }>(
          `SELECT n.nspname AS schema FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE p.proname LIKE 'hotpath_jobs_%' AND n.nspname = ANY($1)`,
          [[a.schema, b.schema, scratch.schema]],
        );
        expect(functions.rows.filter((row) => row.schema === scratch.schema)).toEqual([]);
        expect(functions.rows.filter((row) => row.schema === a.schema)).toHaveLength(3);
      } finally {
        await client.end();
      }

      // A's own worker runs A's job (its NOTIFY channel is A's).
      queueA.register('report', async () => 'a');
      await queueA.start();
      expect(await queueA.wait(idA, { timeoutMs: 10_000 })).toBe('a');
      await eventually(async () => (await queueB.health()).counts.succeeded === 1);
    } finally {
      await queueA.close();
      await queueB.close();
      await storageA.close();
      await storageB.close();
      await a.drop();
      await b.drop();
      await scratch.drop();
    }
  });
});
