/**
 * Queue benchmark: hotpath's JobQueue against the queues users would otherwise pick, on the same
 * machine and database, side by side and interleaved over rounds. One run prints every table of the
 * queue section of docs/benchmarks.md.
 *
 * - memory: no-op jobs end to end (enqueue + drain) vs p-queue `addAll` (end to end only: `addAll`
 *   starts running tasks while it adds them, so it has no separate "enqueue part").
 * - SQLite (WAL, synchronous=NORMAL for every library): `enqueueMany` N, then drain, vs plainjob
 *   (`addMany`, its worker) and liteque (smaller N: it sorts the whole queue per job).
 * - PostgreSQL (server defaults fsync=on, synchronous_commit=on): `enqueueMany` N, then drain, vs
 *   graphile-worker 0.17.3 with its documented batching (local queue 500 + batched completions,
 *   24 concurrent jobs), graphile-worker 0.16 defaults and pg-boss 10 (the last two at N/5: they are
 *   20× slower and would dominate the run); plus enqueue → handler start with an idle worker.
 *   What is durable: hotpath commits enqueues and completions with synchronous_commit=on (durable when
 *   acknowledged); its claims, lease renewals, progress and reaps commit with synchronous_commit=off
 *   (a database crash may lose the last few hundred ms of them, which only makes those jobs claimable
 *   again once their lease expires). graphile-worker and pg-boss run every statement at the server
 *   default (on); graphile 0.17.3's batched completions are durable when its batch commits.
 *
 * `npm run bench -- queue`; QUEUE_BENCH_N (default 50,000), QUEUE_BENCH_ROUNDS (default 3) and
 * QUEUE_BENCH_ONLY (memory | sqlite | postgres | latency: only the enqueue → start probe | latency-parts: what
 * one enqueue's round trip is made of) scale it.
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
const SLOW_N = Math.max(1, Math.round(N / 5));
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
async function phases(
  title: string,
  contenders: Contender[],
  tables: { enqueue: boolean } = { enqueue: true },
): Promise<{ enqueue: Row[]; drain: Row[] }> {
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
  if (tables.enqueue) printRows(`${title}: enqueue (jobs/s)`, result.enqueue, contenders[0]?.name);
  printRows(`${title}: ${tables.enqueue ? 'drain' : 'end to end'} (jobs/s)`, result.drain, contenders[0]?.name);
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
  await phases(`memory: ${total.toLocaleString('en')} no-op jobs, enqueue + drain`, runs, { enqueue: false });
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

type Graphile = typeof import('graphile-worker') | typeof import('graphile-worker-0.17');

/** graphile-worker's documented high-throughput settings (worker.graphile.org/docs/performance). */
const GRAPHILE_BATCHED = {
  concurrentJobs: 24,
  maxPoolSize: 25,
  localQueue: { size: 500 },
  completeJobBatchDelay: 0,
  failJobBatchDelay: 0,
};

/** Starts a graphile-worker runner (either version) in `schema` with `worker` preset options. */
async function graphileRunner(
  graphile: Graphile,
  schema: string,
  worker: Record<string, unknown>,
  taskList: Record<string, () => Promise<void>>,
): Promise<{ stop(): Promise<void> }> {
  const logger = new graphile.Logger(() => () => {});
  const options = {
    connectionString: PG_URL,
    schema,
    noHandleSignals: true,
    pollInterval: 100,
    logger,
    taskList,
    concurrency: worker.concurrentJobs as number,
    // 0.17 reads its batching options from the preset; 0.16 ignores the preset.
    preset: { worker: { ...worker, connectionString: PG_URL, schema, pollInterval: 100, logger } },
  };
  return (graphile.run as (options: unknown) => Promise<{ stop(): Promise<void> }>)(options);
}

/** A graphile-worker contender: `add_jobs` in one statement, then drain. */
function graphileContender(graphile: Graphile, name: string, n: number, worker: Record<string, unknown>): Contender {
  return {
    name,
    n,
    async run() {
      const pg = await import('pg');
      const schema = uniqueName('gw');
      const client = new pg.default.Client({ connectionString: PG_URL });
      let done = 0;
      const logger = new graphile.Logger(() => () => {});
      const utils = await graphile.makeWorkerUtils({ connectionString: PG_URL, schema, logger });
      await utils.migrate();
      const specs = JSON.stringify(Array.from({ length: n }, (_, i) => ({ identifier: 'noop', payload: { i } })));
      await client.connect();
      const start = performance.now();
      await client.query(
        `SELECT count(*) FROM "${schema}".add_jobs(array(SELECT json_populate_recordset(null::"${schema}".job_spec, $1::json)))`,
        [specs],
      );
      const enqueued = performance.now();
      const runner = await graphileRunner(graphile, schema, worker, {
        noop: async () => {
          done++;
        },
      });
      await waitFor(() => done >= n);
      const drained = performance.now();
      await runner.stop();
      await utils.release();
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await client.end();
      return { enqueue: enqueued - start, drain: drained - enqueued };
    },
  };
}

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
  const graphile016 = await import('graphile-worker');
  const graphile017 = await import('graphile-worker-0.17');
  const schemas: Array<{ drop(): Promise<void> }> = [];
  const dropLater = (schema: string) =>
    schemas.push({
      drop: async () => {
        const client = new pg.default.Client({ connectionString: PG_URL });
        await client.connect();
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await client.end();
      },
    });

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
      name: `pg-boss 10 insert + 8 work() × batchSize 500 (${SLOW_N.toLocaleString('en')} jobs)`,
      n: SLOW_N,
      async run() {
        const schema = uniqueName('pgboss');
        const boss = new PgBoss({ connectionString: PG_URL, schema, max: 10 });
        boss.on('error', () => {});
        await boss.start();
        dropLater(schema);
        await boss.createQueue('noop');
        const batch = Array.from({ length: SLOW_N }, (_, i) => ({ name: 'noop', data: { i } }));
        const start = performance.now();
        for (let i = 0; i < batch.length; i += 5_000) await boss.insert(batch.slice(i, i + 5_000));
        const enqueued = performance.now();
        let done = 0;
        for (let i = 0; i < 8; i++) {
          await boss.work('noop', { batchSize: 500, pollingIntervalSeconds: 0.5 }, async (jobs) => {
            done += jobs.length;
          });
        }
        await waitFor(() => done >= SLOW_N);
        const drained = performance.now();
        await boss.stop({ graceful: false, wait: true });
        return { enqueue: enqueued - start, drain: drained - enqueued };
      },
    },
    graphileContender(
      graphile017,
      'graphile-worker 0.17.3 add_jobs + run (24 jobs, local queue 500, batched completions)',
      N,
      GRAPHILE_BATCHED,
    ),
    graphileContender(
      graphile016,
      `graphile-worker 0.16 add_jobs + run (concurrency 24, defaults; ${SLOW_N.toLocaleString('en')} jobs)`,
      SLOW_N,
      { concurrentJobs: 24 },
    ),
  ];
  try {
    await phases(
      `PostgreSQL (fsync=on, synchronous_commit=on; hotpath claims and leases at off, see the header): enqueueMany ${N.toLocaleString('en')}, then drain`,
      runs,
    );
    await latencyBench(graphile016, graphile017);
  } finally {
    for (const schema of schemas) await schema.drop().catch(() => {});
  }
}

/**
 * Enqueue → handler start with an idle worker in another connection pool (NOTIFY wakes it): one
 * producer `enqueue` / `addJob` at a time, the next one 5 ms after the previous job started.
 */
async function latencyBench(graphile016: Graphile, graphile017: Graphile): Promise<void> {
  let sentAt = 0;
  let resolveStart: (() => void) | undefined;
  const probe = async (send: (i: number) => Promise<unknown>): Promise<number[]> => {
    const samples: number[] = [];
    await sleep(200);
    for (let i = 0; i < LATENCY_SAMPLES; i++) {
      const started = new Promise<void>((resolve) => {
        resolveStart = () => {
          samples.push(performance.now() - sentAt);
          resolve();
        };
      });
      sentAt = performance.now();
      await send(i);
      await started;
      await sleep(5); // idle again
    }
    return samples;
  };

  const ours = async (): Promise<number[]> => {
    const schema = await freshPgSchema('ql');
    const producerStorage = new PostgresStorage({ connectionString: schema.url, max: 2 });
    const workerStorage = new PostgresStorage({ connectionString: schema.url, max: 4 });
    const producer = new JobQueue({ storage: producerStorage });
    const worker = new JobQueue({ storage: workerStorage, concurrency: 4, pollIntervalMs: 1_000 });
    worker.register('ping', () => resolveStart?.());
    await worker.start();
    await producer.get('warm-up');
    const samples = await probe((i) => producer.enqueue('ping', i));
    await worker.close();
    await producer.close();
    await workerStorage.close();
    await producerStorage.close();
    await schema.drop();
    return samples;
  };

  const theirs = async (graphile: Graphile, worker: Record<string, unknown>): Promise<number[]> => {
    const gwSchema = uniqueName('gwl');
    const logger = new graphile.Logger(() => () => {});
    const utils = await graphile.makeWorkerUtils({ connectionString: PG_URL, schema: gwSchema, logger });
    await utils.migrate();
    const runner = await graphileRunner(graphile, gwSchema, worker, { ping: async () => resolveStart?.() });
    const samples = await probe((i) => utils.addJob('ping', { i }));
    await runner.stop();
    await utils.release();
    const pg = await import('pg');
    const client = new pg.default.Client({ connectionString: PG_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS "${gwSchema}" CASCADE`);
    await client.end();
    return samples;
  };
  // Interleaved: each round runs every contender once, so a change in the machine's load hits all of them.
  const rows: Array<[string, () => Promise<number[]>, number[]]> = [
    ['hotpath JobQueue (ours, concurrency 4)', ours, []],
    ['graphile-worker 0.17.3 (batched settings above)', () => theirs(graphile017, GRAPHILE_BATCHED), []],
    ['graphile-worker 0.16 (concurrency 4, defaults)', () => theirs(graphile016, { concurrentJobs: 4 }), []],
  ];
  for (let round = 0; round < ROUNDS; round++) {
    for (const [, run, samples] of rows) samples.push(...(await run()));
  }
  console.log(
    `\n## PostgreSQL: enqueue → handler start, idle worker (${ROUNDS} × ${LATENCY_SAMPLES} samples, interleaved, ms)`,
  );
  console.log('| name | p50 | p95 | p99 |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const [name, , samples] of rows) {
    const p = percentiles(samples);
    console.log(`| ${name} | ${p.p50.toFixed(2)} | ${p.p95.toFixed(2)} | ${p.p99.toFixed(2)} |`);
  }
}

/**
 * What the enqueue part of the probe is made of, one connection each, 300 sequential calls, p50 per round:
 * `enqueue()`, the same INSERT sent raw through the same storage, and an INSERT into a one-column table with
 * `synchronous_commit` on and off (the WAL flush an acknowledged job pays), against `SELECT 1` (the round trip);
 * each back to back and 5 ms apart, the probe's idle gap (a sleeping server process costs more per call).
 */
async function latencyParts(): Promise<void> {
  const CALLS = 300;
  const schema = await freshPgSchema('qp');
  const storage = new PostgresStorage({ connectionString: schema.url, max: 2 });
  const queue = new JobQueue({ storage });
  await queue.get('warm-up');
  const sql = storage.sql;
  if (sql === undefined) throw new Error('PostgresStorage has no sql access');
  await sql.query('CREATE TABLE hotpath_bench_one (id text PRIMARY KEY)');
  const rawInsert = `INSERT INTO hotpath_jobs (id, type, data, status, priority, run_at, created_at) VALUES ($1, 'ping', '1', 'queued', 0, 0, 0)`;
  // Back to back, and 5 ms apart as in the enqueue → start probe, where every process sleeps between samples.
  const GAPS_MS = [0, 5];
  const p50 = async (call: (i: number) => Promise<unknown>, gapMs: number): Promise<number> => {
    const samples: number[] = [];
    for (let i = 0; i < CALLS; i++) {
      const startedAt = performance.now();
      await call(i);
      samples.push(performance.now() - startedAt);
      if (gapMs > 0) await sleep(gapMs);
    }
    return percentiles(samples).p50;
  };
  const parts: Array<[string, (round: number) => (i: number) => Promise<unknown>]> = [
    ['`enqueue()` (one durable INSERT)', () => (i) => queue.enqueue('ping', i)],
    ['the same INSERT, raw through the same storage', (r) => (i) => sql.query(rawInsert, [`raw-${r}-${i}`])],
    [
      'INSERT into a one-column table, synchronous_commit=on',
      (r) => (i) => sql.query('INSERT INTO hotpath_bench_one VALUES ($1)', [`on-${r}-${i}`]),
    ],
    [
      'the same, synchronous_commit=off',
      // One statement, as the queue's own relaxed writes do it: set_config(…, true) lasts for its transaction.
      (r) => (i) =>
        sql.query(
          "WITH relaxed AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true)) INSERT INTO hotpath_bench_one SELECT $1 FROM relaxed",
          [`off-${r}-${i}`],
        ),
    ],
    ['SELECT 1 (the round trip)', () => () => sql.query('SELECT 1')],
  ];
  const results = parts.map(() => GAPS_MS.map((): number[] => []));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [g, gapMs] of GAPS_MS.entries()) {
      for (const [at, [, call]] of parts.entries()) results[at]?.[g]?.push(await p50(call(round * 2 + g), gapMs));
    }
  }
  console.log(`\n## PostgreSQL: what one enqueue costs (${ROUNDS} rounds × ${CALLS} calls, p50 per round, ms)`);
  console.log('| call | back to back | 5 ms apart (as in the probe) |');
  console.log('| --- | --- | --- |');
  const cell = (values: number[] | undefined) => (values ?? []).map((ms) => ms.toFixed(3)).join(', ');
  for (const [at, [name]] of parts.entries()) {
    console.log(`| ${name} | ${cell(results[at]?.[0])} | ${cell(results[at]?.[1])} |`);
  }
  await queue.close();
  await storage.close();
  await schema.drop();
}

const only = process.env.QUEUE_BENCH_ONLY;
console.log(`queue bench: N=${N}, rounds=${ROUNDS}; SQLite WAL + synchronous=NORMAL for all SQLite contenders`);
if (!only || only === 'memory') await memoryBench();
if (!only || only === 'sqlite') await sqliteBench();
if ((!only || only === 'postgres') && (await needsPostgres())) await postgresBench();
if (only === 'latency-parts' && (await needsPostgres())) await latencyParts();
if (only === 'latency' && (await needsPostgres())) {
  await latencyBench(await import('graphile-worker'), await import('graphile-worker-0.17'));
}
