/**
 * Queue benchmark: hotpath's JobQueue against the queues users would otherwise pick, on the same
 * machine and database, side by side and interleaved over rounds.
 *
 * - memory: no-op jobs end to end (enqueue + drain) vs p-queue `addAll`.
 * - SQLite (WAL, synchronous=NORMAL for every library): `enqueueMany` N, then drain, vs plainjob
 *   (`addMany`, its worker) and liteque (smaller N: it sorts the whole queue per job).
 * - PostgreSQL (fsync=on, synchronous_commit=on): `enqueueMany` N, then drain, vs pg-boss 10
 *   (`insert`, 8 `work()` loops × batchSize 500) and graphile-worker 0.16 (`add_jobs`, concurrency 24);
 *   plus enqueue → start latency with an idle worker.
 *
 * `npm run bench -- queue`; QUEUE_BENCH_N (default 50,000) and QUEUE_BENCH_ROUNDS (default 3) scale it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JobQueue } from 'hotpath/queue';
import { PostgresStorage, SqliteStorage } from '../src/storage/index.js';
import { freshPgSchema, needsPostgres, PG_URL, uniqueName } from '../test/helpers/services.js';
import { median, percentiles, printRows, type Row } from './harness.js';

const N = Number(process.env.QUEUE_BENCH_N ?? 50_000);
const ROUNDS = Number(process.env.QUEUE_BENCH_ROUNDS ?? 3);
const LITEQUE_N = Math.min(N, 2_000);
const LATENCY_SAMPLES = 200;

type Phase = { enqueue: number; drain: number };
type Contender = { name: string; n: number; run: () => Promise<Phase> };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(check: () => boolean, timeoutMs = 600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('benchmark run did not finish');
    await sleep(1);
  }
}

/** Runs every contender `ROUNDS` times interleaved and prints the enqueue and drain tables. */
async function phases(title: string, contenders: Contender[]): Promise<{ enqueue: Row[]; drain: Row[] }> {
  const enqueue = new Map<string, number[]>(contenders.map((c) => [c.name, []]));
  const drain = new Map<string, number[]>(contenders.map((c) => [c.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = [...contenders.slice(round % contenders.length), ...contenders.slice(0, round % contenders.length)];
    for (const contender of order) {
      globalThis.gc?.();
      const phase = await contender.run();
      enqueue.get(contender.name)?.push(contender.n / (phase.enqueue / 1000));
      drain.get(contender.name)?.push(contender.n / (phase.drain / 1000));
    }
  }
  const rows = (samples: Map<string, number[]>): Row[] =>
    contenders.map((c) => ({
      name: c.name,
      samples: samples.get(c.name) ?? [],
      opsPerSec: median(samples.get(c.name) ?? []),
      extra: { jobs: c.n },
    }));
  const result = { enqueue: rows(enqueue), drain: rows(drain) };
  printRows(`${title}: enqueue (jobs/s)`, result.enqueue, contenders[0]?.name);
  printRows(`${title}: drain (jobs/s)`, result.drain, contenders[0]?.name);
  return result;
}

// ------------------------------------------------------------------ memory

async function memoryBench(): Promise<void> {
  const { default: PQueue } = await import('p-queue');
  const total = N * 2;
  const runs: Contender[] = [
    {
      name: 'hotpath JobQueue (memory, concurrency 10000)',
      n: total,
      async run() {
        const queue = new JobQueue({ concurrency: 10_000 });
        let done = 0;
        queue.register('noop', () => {
          done++;
        });
        await queue.start();
        const start = performance.now();
        const batch = Array.from({ length: total }, (_, i) => ({ type: 'noop', data: i }));
        await queue.enqueueMany(batch);
        const enqueued = performance.now();
        await waitFor(() => done === total);
        const end = performance.now();
        await queue.close();
        return { enqueue: enqueued - start, drain: end - start };
      },
    },
    {
      name: 'p-queue addAll (concurrency Infinity)',
      n: total,
      async run() {
        const queue = new PQueue();
        let done = 0;
        const start = performance.now();
        const tasks = Array.from({ length: total }, () => async () => {
          done++;
        });
        const all = queue.addAll(tasks);
        const enqueued = performance.now();
        await all;
        await waitFor(() => done === total);
        return { enqueue: enqueued - start, drain: performance.now() - start };
      },
    },
  ];
  const { drain } = await phases(`memory: ${total.toLocaleString('en')} no-op jobs, enqueue + drain end to end`, runs);
  void drain;
}

// ------------------------------------------------------------------ SQLite

async function sqliteBench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hotpath-queue-bench-'));
  const { better, defineQueue, defineWorker } = await import('plainjob');
  const { default: Database } = await import('better-sqlite3');
  const liteque = await import('liteque');
  let seq = 0;
  const file = () => join(dir, `q${seq++}.db`);
  const silent = { error() {}, warn() {}, info() {}, debug() {} };
  const runs: Contender[] = [
    {
      name: 'hotpath JobQueue (sqlite, concurrency 500)',
      n: N,
      async run() {
        const storage = new SqliteStorage({ filename: file() });
        const queue = new JobQueue({ storage, concurrency: 500 });
        let done = 0;
        queue.register('noop', () => {
          done++;
        });
        await queue.get('warm-up'); // tables exist before timing, as for the others
        const batch = Array.from({ length: N }, (_, i) => ({ type: 'noop', data: { i } }));
        const start = performance.now();
        await queue.enqueueMany(batch);
        const enqueued = performance.now();
        await queue.start();
        await waitFor(() => done === N);
        const drained = performance.now();
        await queue.close();
        await storage.close();
        return { enqueue: enqueued - start, drain: drained - enqueued };
      },
    },
    {
      name: 'plainjob addMany + worker',
      n: N,
      async run() {
        const db = new Database(file());
        const queue = defineQueue({ connection: better(db), logger: silent });
        const batch = Array.from({ length: N }, (_, i) => ({ i }));
        const start = performance.now();
        queue.addMany('noop', batch);
        const enqueued = performance.now();
        let done = 0;
        const worker = defineWorker(
          'noop',
          () => {
            done++;
          },
          { queue, logger: silent, pollIntervall: 10 },
        );
        void worker.start();
        await waitFor(() => done === N);
        const drained = performance.now();
        await worker.stop();
        queue.close();
        db.close();
        return { enqueue: enqueued - start, drain: drained - enqueued };
      },
    },
  ];
  try {
    await phases(`SQLite (WAL, synchronous=NORMAL): enqueueMany ${N.toLocaleString('en')}, then drain`, runs);
    await litequeProbe(liteque, file());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * liteque 0.7 dequeues inside an async drizzle transaction, which better-sqlite3 12 (the installed
 * driver) refuses ("Transaction function cannot return a promise"); its drain cannot be measured here.
 */
async function litequeProbe(liteque: typeof import('liteque'), filename: string): Promise<void> {
  const db = liteque.buildDBClient(filename, { runMigrations: true });
  const queue = new liteque.SqliteQueue<{ i: number }>('noop', db, {
    defaultJobArgs: { numRetries: 0 },
    keepFailedJobs: false,
  });
  const start = performance.now();
  for (let i = 0; i < LITEQUE_N; i++) await queue.enqueue({ i });
  const enqueuePerSec = LITEQUE_N / ((performance.now() - start) / 1000);
  let drain = 'n/a';
  try {
    await queue.attemptDequeue({ timeoutSecs: 60 });
  } catch (error) {
    drain = `fails: ${(error as Error).message}`;
  }
  console.log(
    `\nliteque 0.7 (${LITEQUE_N} jobs): enqueue ${Math.round(enqueuePerSec)} jobs/s one by one; drain ${drain}`,
  );
}

// ------------------------------------------------------------------ PostgreSQL

async function postgresBench(): Promise<void> {
  const pg = await import('pg');
  const admin = new pg.default.Client({ connectionString: PG_URL });
  await admin.connect();
  const settings = await admin.query<{ name: string; setting: string }>(
    "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'server_version')",
  );
  console.log(`\nPostgreSQL settings: ${settings.rows.map((row) => `${row.name}=${row.setting}`).join(', ')}`);
  await admin.end();
  const { default: PgBoss } = await import('pg-boss');
  const graphile = await import('graphile-worker');
  const schemas: Array<{ drop(): Promise<void> }> = [];

  const runs: Contender[] = [
    {
      name: 'hotpath JobQueue (postgres, concurrency 2000, claimBatchSize 500)',
      n: N,
      async run() {
        const schema = await freshPgSchema('qb');
        schemas.push(schema);
        const storage = new PostgresStorage({ connectionString: schema.url, max: 4 });
        const queue = new JobQueue({ storage, concurrency: 2_000, claimBatchSize: 500 });
        let done = 0;
        queue.register('noop', () => {
          done++;
        });
        await queue.get('warm-up');
        const batch = Array.from({ length: N }, (_, i) => ({ type: 'noop', data: { i } }));
        const start = performance.now();
        await queue.enqueueMany(batch);
        const enqueued = performance.now();
        await queue.start();
        await waitFor(() => done === N);
        const drained = performance.now();
        await queue.close();
        await storage.close();
        return { enqueue: enqueued - start, drain: drained - enqueued };
      },
    },
    {
      name: 'pg-boss 10 insert + 8 work() × batchSize 500',
      n: N,
      async run() {
        const schema = uniqueName('pgboss');
        const boss = new PgBoss({ connectionString: PG_URL, schema, max: 10 });
        boss.on('error', () => {});
        await boss.start();
        schemas.push({
          drop: async () => {
            const client = new pg.default.Client({ connectionString: PG_URL });
            await client.connect();
            await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
            await client.end();
          },
        });
        await boss.createQueue('noop');
        const batch = Array.from({ length: N }, (_, i) => ({ name: 'noop', data: { i } }));
        const start = performance.now();
        for (let i = 0; i < batch.length; i += 5_000) await boss.insert(batch.slice(i, i + 5_000));
        const enqueued = performance.now();
        let done = 0;
        for (let i = 0; i < 8; i++) {
          await boss.work('noop', { batchSize: 500, pollingIntervalSeconds: 0.5 }, async (jobs) => {
            done += jobs.length;
          });
        }
        await waitFor(() => done >= N);
        const drained = performance.now();
        await boss.stop({ graceful: false, wait: true });
        return { enqueue: enqueued - start, drain: drained - enqueued };
      },
    },
    {
      name: 'graphile-worker 0.16 add_jobs + run (concurrency 24)',
      n: N,
      async run() {
        const schema = uniqueName('gw');
        schemas.push({
          drop: async () => {
            const client = new pg.default.Client({ connectionString: PG_URL });
            await client.connect();
            await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
            await client.end();
          },
        });
        let done = 0;
        const logger = new graphile.Logger(() => () => {});
        const utils = await graphile.makeWorkerUtils({ connectionString: PG_URL, schema, logger });
        await utils.migrate();
        const specs = JSON.stringify(Array.from({ length: N }, (_, i) => ({ identifier: 'noop', payload: { i } })));
        const pool = new pg.default.Pool({ connectionString: PG_URL, max: 2 });
        const start = performance.now();
        await pool.query(
          `SELECT count(*) FROM "${schema}".add_jobs(array(SELECT json_populate_recordset(null::"${schema}".job_spec, $1::json)))`,
          [specs],
        );
        const enqueued = performance.now();
        const runner = await graphile.run({
          connectionString: PG_URL,
          schema,
          concurrency: 24,
          noHandleSignals: true,
          pollInterval: 100,
          logger,
          taskList: {
            noop: async () => {
              done++;
            },
          },
        });
        await waitFor(() => done >= N);
        const drained = performance.now();
        await runner.stop();
        await utils.release();
        await pool.end();
        return { enqueue: enqueued - start, drain: drained - enqueued };
      },
    },
  ];
  try {
    await phases(
      `PostgreSQL (fsync=on, synchronous_commit=on): enqueueMany ${N.toLocaleString('en')}, then drain`,
      runs,
    );
    await latencyBench(graphile);
  } finally {
    for (const schema of schemas) await schema.drop().catch(() => {});
  }
}

/** Enqueue → handler start with an idle worker in another connection pool (NOTIFY wakes it). */
async function latencyBench(graphile: typeof import('graphile-worker')): Promise<void> {
  const schema = await freshPgSchema('ql');
  const producerStorage = new PostgresStorage({ connectionString: schema.url, max: 2 });
  const workerStorage = new PostgresStorage({ connectionString: schema.url, max: 4 });
  const producer = new JobQueue({ storage: producerStorage });
  const worker = new JobQueue({ storage: workerStorage, concurrency: 4, pollIntervalMs: 1_000 });
  const ours: number[] = [];
  let sentAt = 0;
  let resolveStart: (() => void) | undefined;
  worker.register('ping', () => {
    ours.push(performance.now() - sentAt);
    resolveStart?.();
  });
  await worker.start();
  await producer.get('warm-up');
  await sleep(200);
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    const started = new Promise<void>((resolve) => {
      resolveStart = resolve;
    });
    sentAt = performance.now();
    await producer.enqueue('ping', i);
    await started;
    await sleep(5); // idle again
  }
  await worker.close();
  await producer.close();
  await workerStorage.close();
  await producerStorage.close();
  await schema.drop();

  const gwSchema = uniqueName('gwl');
  const logger = new graphile.Logger(() => () => {});
  const utils = await graphile.makeWorkerUtils({ connectionString: PG_URL, schema: gwSchema, logger });
  await utils.migrate();
  const theirs: number[] = [];
  const runner = await graphile.run({
    connectionString: PG_URL,
    schema: gwSchema,
    concurrency: 4,
    noHandleSignals: true,
    pollInterval: 1_000,
    logger,
    taskList: {
      ping: async () => {
        theirs.push(performance.now() - sentAt);
        resolveStart?.();
      },
    },
  });
  await sleep(200);
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    const started = new Promise<void>((resolve) => {
      resolveStart = resolve;
    });
    sentAt = performance.now();
    await utils.addJob('ping', { i });
    await started;
    await sleep(5);
  }
  await runner.stop();
  await utils.release();
  const pg = await import('pg');
  const client = new pg.default.Client({ connectionString: PG_URL });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS "${gwSchema}" CASCADE`);
  await client.end();

  const a = percentiles(ours);
  const b = percentiles(theirs);
  console.log(`\n## PostgreSQL: enqueue → handler start, idle worker (${LATENCY_SAMPLES} samples, ms)`);
  console.log('| name | p50 | p95 | p99 |');
  console.log('| --- | ---: | ---: | ---: |');
  console.log(`| hotpath JobQueue (ours) | ${a.p50.toFixed(2)} | ${a.p95.toFixed(2)} | ${a.p99.toFixed(2)} |`);
  console.log(`| graphile-worker 0.16 | ${b.p50.toFixed(2)} | ${b.p95.toFixed(2)} | ${b.p99.toFixed(2)} |`);
}

const only = process.env.QUEUE_BENCH_ONLY;
console.log(`queue bench: N=${N}, rounds=${ROUNDS}; SQLite WAL + synchronous=NORMAL for all SQLite contenders`);
if (!only || only === 'memory') await memoryBench();
if (!only || only === 'sqlite') await sqliteBench();
if ((!only || only === 'postgres') && (await needsPostgres())) await postgresBench();
