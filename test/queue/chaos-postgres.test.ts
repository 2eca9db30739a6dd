/** Durability on PostgreSQL: a worker process killed with SIGKILL, and every backend connection terminated mid-run. */
import { join } from 'node:path';
import { JobQueue } from 'hotpath/queue';
import { describe, expect, it } from 'vitest';
import { PostgresStorage } from '../../src/storage/index.js';
import { eventually } from '../helpers/async.js';
import { needsPostgres, PG_URL, uniqueName, withFreshPgSchema } from '../helpers/services.js';
import { useTempDir } from '../helpers/temp-dir.js';
import { killMidRun } from './fixtures/processes.js';

const hasPostgres = await needsPostgres();

describe.runIf(hasPostgres)('chaos: postgres', () => {
  const tempDir = useTempDir('hotpath-queue-chaos-');
  const withFreshSchema = (fn: (url: string) => Promise<void>) => withFreshPgSchema('queue_chaos', fn);

  it('a SIGKILLed worker loses no job; a second worker finishes them, re-running only after lease expiry', async () => {
    await withFreshSchema(async (url) => {
      const storage = new PostgresStorage({ connectionString: url, max: 2 });
      try {
        await killMidRun(storage, { BACKEND: 'postgres', DB: url }, join(tempDir(), 'kill.log'));
      } finally {
        await storage.close();
      }
    });
  }, 180_000); // child processes start slowly on a loaded 2-core CI machine

  it('reconnects and finishes after every backend connection is terminated mid-run', async () => {
    await withFreshSchema(async (url) => {
      const applicationName = uniqueName('hpq_term');
      const storage = new PostgresStorage({ connectionString: url, max: 4, applicationName });
      const queue = new JobQueue({ storage, concurrency: 8, pollIntervalMs: 100, leaseMs: 2_000 });
      let runs = 0;
      queue.register('chaos', async () => {
        runs++;
        await new Promise((resolve) => setTimeout(resolve, 1));
      });
      await queue.enqueueMany(Array.from({ length: 2_000 }, (_, i) => ({ type: 'chaos', data: i })));
      await queue.start();
      await eventually(() => runs >= 400, 90_000);
      const pg = await import('pg');
      const admin = new pg.default.Client({ connectionString: PG_URL });
      await admin.connect();
      const killed = await admin.query(
        'SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1',
        [applicationName],
      );
      await admin.end();
      expect(killed.rowCount).toBeGreaterThan(0);
      await eventually(async () => (await queue.health()).counts.succeeded === 2_000, 120_000);
      const health = await queue.health();
      expect(health.counts).toMatchObject({ succeeded: 2_000, queued: 0, running: 0, failed: 0 });
      // It really lost connections: failed statements (retried by the queue) or dropped idle ones (the pool's).
      expect(queue.stats().backgroundErrors + (storage.stats().connectionErrors ?? 0)).toBeGreaterThan(0);
      await queue.close();
      await storage.close();
    });
  }, 180_000); // child processes start slowly on a loaded 2-core CI machine
});
