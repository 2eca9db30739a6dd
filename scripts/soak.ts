/**
 * `npm run soak -- --minutes N [--postgres URL] [--sample-seconds S] [--json]` drives every module at a
 * steady load — cache getOrSet over a rolling key space, the rate limiter, the API client against a loopback
 * server, batching, SQLite and PostgreSQL storage, and a SQLite job queue — and samples heap (after GC),
 * RSS, active handles and the PostgreSQL connections it holds. At the end it says, per series, whether it
 * stayed flat: the mean of the last third of the samples within 10 % (plus a small absolute slack) of the
 * mean of the second third (the first third is warm-up).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BatchProcessor } from '../src/batch/index.js';
import { Cache } from '../src/cache/index.js';
import { APIClient } from '../src/client/index.js';
import { Profiler } from '../src/profiling/index.js';
import { JobQueue } from '../src/queue/index.js';
import { RateLimiter } from '../src/ratelimit/index.js';
import { PostgresStorage, SqliteStorage, type StorageAdapter } from '../src/storage/index.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '1' },
    'sample-seconds': { type: 'string', default: '10' },
    postgres: { type: 'string', default: process.env.HOTPATH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
    'no-postgres': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const minutes = Number(values.minutes);
const sampleMs = Number(values['sample-seconds']) * 1_000;
if (!(minutes > 0) || !(sampleMs > 0)) {
  console.error('usage: npm run soak -- --minutes N [--sample-seconds S] [--postgres URL | --no-postgres] [--json]');
  process.exit(2);
}
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) console.warn('run with --expose-gc (npm run soak does) for heap figures after collection');

const dir = mkdtempSync(join(tmpdir(), 'hotpath-soak-'));
const profiler = new Profiler();
const cache = new Cache<{ key: string; at: number }>({ name: 'soak', max: 5_000, ttlMs: 2_000, profiler });
const limiter = new RateLimiter({ limit: 2_000, intervalMs: 1_000, maxConcurrent: 64 });
const upstream = createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ path: req.url, ok: true }));
});
await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
const { port } = upstream.address() as { port: number };
const client = new APIClient({
  baseUrl: `http://127.0.0.1:${port}/`,
  rateLimiter: limiter,
  profiler,
  timeoutMs: 5_000,
});
const batch = new BatchProcessor({ batchSize: 50, concurrency: 4 });
const sqlite = new SqliteStorage({ filename: join(dir, 'soak.sqlite'), profiler });
const queueStorage = new SqliteStorage({ filename: join(dir, 'queue.sqlite') });
const queue = new JobQueue({ storage: queueStorage, concurrency: 8, profiler, resultTtlMs: 5_000 });
queue.register('soak', async (data) => ({ echoed: data }));
await queue.start();

let postgres: StorageAdapter | undefined;
if (!values['no-postgres']) {
  try {
    postgres = new PostgresStorage({
      connectionString: values.postgres,
      max: 4,
      applicationName: 'hotpath-soak',
      profiler,
    });
    await postgres.count('soak_docs');
  } catch (error) {
    console.warn(`PostgreSQL not used: ${(error as Error).message}`);
    await postgres?.close();
    postgres = undefined;
  }
}

let stopping = false;
let operations = 0;
let failures = 0;
async function loop(name: string, step: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; !stopping; i++) {
    try {
      await step(i);
      operations++;
    } catch (error) {
      failures++;
      if (failures <= 5) console.warn(`${name}: ${(error as Error).message}`);
    }
    if (i % 50 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
}

const loops = [
  loop('cache', (i) => {
    const key = `k${i % 20_000}`;
    return cache.getOrSet(key, async () => ({ key, at: i }));
  }),
  loop('client', (i) => client.get(`/items/${i % 100}`)),
  loop('batch', async (i) => {
    const items = Array.from({ length: 200 }, (_, j) => i + j);
    await batch.map(items, async (item) => item * 2);
  }),
  loop('sqlite', async (i) => {
    const id = `d${i % 10_000}`;
    await sqlite.put('soak_docs', { id, i, text: 'x'.repeat(200) });
    await sqlite.get('soak_docs', id);
    if (i % 100 === 0) await sqlite.find('soak_docs', { where: { i: { gte: i - 50 } }, limit: 20 });
  }),
  loop('queue', async (i) => {
    const id = await queue.enqueue('soak', { i });
    if (i % 20 === 0) await queue.wait(id, { timeoutMs: 30_000 });
  }),
];
const pg = postgres;
if (pg !== undefined) {
  loops.push(
    loop('postgres', async (i) => {
      const id = `d${i % 10_000}`;
      await pg.put('soak_docs', { id, i });
      await pg.get('soak_docs', id);
    }),
  );
}

interface Sample {
  atS: number;
  heapMB: number;
  rssMB: number;
  handles: number;
  pgConnections: number;
  opsPerS: number;
}
const samples: Sample[] = [];
const started = performance.now();
let lastOps = 0;
async function sample(): Promise<void> {
  gc?.();
  const memory = process.memoryUsage();
  let pgConnections = 0;
  if (pg?.sql !== undefined) {
    const rows = await pg.sql.query<{ n: string }>(
      "SELECT count(*)::text AS n FROM pg_stat_activity WHERE application_name = 'hotpath-soak'",
    );
    pgConnections = Number(rows[0]?.n ?? 0);
  }
  const atS = (performance.now() - started) / 1_000;
  const entry: Sample = {
    atS: Math.round(atS),
    heapMB: +(memory.heapUsed / 2 ** 20).toFixed(1),
    rssMB: +(memory.rss / 2 ** 20).toFixed(1),
    handles: process.getActiveResourcesInfo().length,
    pgConnections,
    opsPerS: Math.round((operations - lastOps) / (sampleMs / 1_000)),
  };
  lastOps = operations;
  samples.push(entry);
  if (!values.json) {
    console.log(
      `t=${entry.atS}s heap ${entry.heapMB} MB, rss ${entry.rssMB} MB, handles ${entry.handles}, ` +
        `pg connections ${entry.pgConnections}, ${entry.opsPerS} ops/s, cache size ${cache.stats().size}`,
    );
  }
}

const endAt = performance.now() + minutes * 60_000;
while (performance.now() < endAt) {
  await new Promise((resolve) => setTimeout(resolve, Math.min(sampleMs, endAt - performance.now())));
  await sample();
}
stopping = true;
await Promise.all(loops);

/** Flat: the last third's mean within 10 % (+ slack) of the middle third's; the first third is warm-up. */
function verdict(series: readonly number[], slack: number): { middle: number; last: number; flat: boolean } {
  const third = Math.max(1, Math.floor(series.length / 3));
  const mean = (values: readonly number[]) => values.reduce((sum, v) => sum + v, 0) / Math.max(1, values.length);
  const middle = mean(series.slice(third, 2 * third));
  const last = mean(series.slice(-third));
  return { middle: +middle.toFixed(1), last: +last.toFixed(1), flat: last <= middle * 1.1 + slack };
}
const report = {
  minutes,
  operations,
  failures,
  samples: samples.length,
  heapMB: verdict(
    samples.map((s) => s.heapMB),
    2,
  ),
  rssMB: verdict(
    samples.map((s) => s.rssMB),
    8,
  ),
  handles: verdict(
    samples.map((s) => s.handles),
    2,
  ),
  pgConnections: verdict(
    samples.map((s) => s.pgConnections),
    0,
  ),
};
if (values.json) console.log(JSON.stringify({ ...report, series: samples }));
else {
  console.log(`\n${operations} operations, ${failures} failures, ${samples.length} samples over ${minutes} min`);
  for (const key of ['heapMB', 'rssMB', 'handles', 'pgConnections'] as const) {
    const { middle, last, flat } = report[key];
    console.log(`${key}: middle third ${middle}, last third ${last} → ${flat ? 'flat' : 'GROWING'}`);
  }
}

await queue.close();
await Promise.all([
  client.close(),
  limiter.close(),
  cache.close(),
  sqlite.close(),
  queueStorage.close(),
  postgres?.close(),
]);
await new Promise((resolve) => upstream.close(resolve));
rmSync(dir, { recursive: true, force: true });
const allFlat = (['heapMB', 'rssMB', 'handles', 'pgConnections'] as const).every((key) => report[key].flat);
process.exit(allFlat && failures === 0 ? 0 : 1);
