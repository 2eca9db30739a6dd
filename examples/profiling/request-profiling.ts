/**
 * Profile a small request handler: per-operation latency percentiles, a request scope that attributes
 * database queries to the request, N+1 detection, slow-operation reports and a Prometheus export.
 * Run: node --import tsx examples/profiling/request-profiling.ts
 */
import { setTimeout as delay } from 'node:timers/promises';
import { Profiler } from 'hotpath/profiling';

const profiler = new Profiler({
  slowThresholdMs: 40,
  nPlusOneThreshold: 5,
  onSlow: (op) => console.log(`slow: ${op.name} took ${op.ms.toFixed(0)} ms (scope ${op.scope ?? '-'})`),
  onNPlusOne: (e) => console.log(`N+1 in "${e.scope}": "${e.shape}" ran ${e.count} times`),
});

// A stand-in database: each query notes its shape (statement without values) and is timed.
async function query(sql: string, ms: number): Promise<number> {
  profiler.noteQuery(sql);
  return profiler.time('db.query', async () => {
    await delay(ms);
    return 1;
  });
}

// The naive handler loads each book's author with its own query: the classic N+1.
async function listBooks(): Promise<number> {
  await query('select * from books limit $1', 2);
  let authors = 0;
  for (let i = 0; i < 8; i++) authors += await query('select * from authors where id = $1', 1);
  return authors;
}

for (let i = 0; i < 3; i++) await profiler.scope('GET /books', listBooks);
await profiler.scope('GET /report', () => query('select sum(total) from orders', 50));

const db = profiler.stats('db.query');
console.log(`db.query: count=${db?.count} errors=${db?.errors} p50<=p99: ${(db?.p50 ?? 0) <= (db?.p99 ?? 0)}`);
const books = profiler.scopeStats('GET /books');
console.log(
  `GET /books: runs=${books?.count} queries per request=${books?.operations['db.query']?.perScope} nPlusOne=${books?.nPlusOne}`,
);
const exposition = profiler.toPrometheus({ labels: { service: 'bookshop' } });
const countLine = exposition.split('\n').find((line) => line.startsWith('hotpath_operation_duration_seconds_count{'));
console.log(`prometheus: ${countLine}`);
profiler.close();
