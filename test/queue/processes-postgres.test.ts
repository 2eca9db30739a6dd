/** Many processes on one PostgreSQL queue: three workers share 5,000 jobs, two processes share a schedule. */
import { join } from 'node:path';
import { JobQueue } from 'hotpath/queue';
import { describe, expect, it } from 'vitest';
import { PostgresStorage } from '../../src/storage/index.js';
import { eventually } from '../helpers/async.js';
import { needsPostgres, withFreshPgSchema } from '../helpers/services.js';
import { useTempDir } from '../helpers/temp-dir.js';
import { readRuns, startWorker, stopWorker } from './fixtures/processes.js';

const hasPostgres = await needsPostgres();

describe.runIf(hasPostgres)('many processes: postgres', () => {
  const tempDir = useTempDir('hotpath-queue-chaos-');
  const withFreshSchema = (fn: (url: string) => Promise<void>) => withFreshPgSchema('queue_chaos', fn);

  it('three worker processes on one queue run each of 5,000 jobs exactly once', async () => {
    await withFreshSchema(async (url) => {
      const storage = new PostgresStorage({ connectionString: url, max: 2 });
      const producer = new JobQueue({ storage });
      const log = join(tempDir(), 'three.log');
      await producer.enqueue('chaos', -1); // creates the schema before three workers start at once
      const env = { BACKEND: 'postgres', DB: url, LOG: log, CONCURRENCY: '100', JOB_MS: '0' };
      const workers = await Promise.all([startWorker(env), startWorker(env), startWorker(env)]);
      // Enqueued once all three are claiming: with the jobs waiting first, a loaded machine let the first two
      // workers up drain all 5,000 before the third started.
      const ids = [
        ...(await producer.list({ limit: 10 })).items.map((job) => job.id),
        ...(await producer.enqueueMany(Array.from({ length: 4_999 }, (_, i) => ({ type: 'chaos', data: i })))),
      ];
      await eventually(async () => (await producer.health()).counts.succeeded === 5_000, 120_000);
      await Promise.all(workers.map(stopWorker));
      const runs = readRuns(log);
      expect(runs).toHaveLength(5_000);
      expect(new Set(runs.map((run) => run.id))).toEqual(new Set(ids));
      expect(runs.every((run) => run.attempt === 1)).toBe(true);
      // All three took part (SKIP LOCKED lets them claim side by side).
      expect(new Set(runs.map((run) => run.pid)).size).toBe(3);
      await producer.close();
      await storage.close();
    });
  }, 180_000); // child processes start slowly on a loaded 2-core CI machine

  it('two processes running one schedule fire each tick once, and a restart fires no tick twice', async () => {
    await withFreshSchema(async (url) => {
      const storage = new PostgresStorage({ connectionString: url, max: 2 });
      const log = join(tempDir(), 'ticks.log');
      const env = { BACKEND: 'postgres', DB: url, LOG: log, SCHEDULE_EVERY_MS: '100', POLL_MS: '50' };
      const [a, b] = await Promise.all([startWorker(env), startWorker(env)]);
      await eventually(() => readRuns(log).length >= 10, 90_000);
      await stopWorker(a);
      const restarted = await startWorker(env); // a restart while the other keeps going
      await eventually(() => readRuns(log).length >= 20, 90_000);
      await Promise.all([stopWorker(b), stopWorker(restarted)]);
      const rows = await storage.sql?.query<{ run_at: string; n: string }>(
        "SELECT run_at, count(*) AS n FROM hotpath_jobs WHERE type = 'tick' GROUP BY run_at",
      );
      expect(rows?.length).toBeGreaterThanOrEqual(20);
      for (const row of rows ?? []) {
        expect(Number(row.n)).toBe(1);
        expect(Number(row.run_at) % 100).toBe(0); // aligned ticks
      }
      const runs = readRuns(log);
      expect(new Set(runs.map((run) => run.id)).size).toBe(runs.length);
      await storage.close();
    });
  }, 180_000); // child processes start slowly on a loaded 2-core CI machine
});
