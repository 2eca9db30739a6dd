/**
 * The hotpath demo: the main job of a market-data backend on the embedded defaults (a SQLite file under
 * .hotpath/ + memory), with no server to install.
 *
 * 1. A local upstream API (127.0.0.1) enforces a strict rate limit (429 + Retry-After), has variable
 *    latency and occasional 503s.
 * 2. A few hundred quote lookups go through BatchProcessor → Cache (stampede-safe) → APIClient (retries,
 *    RateLimit/Retry-After feedback) → RateLimiter, with a progress bar.
 * 3. The quotes are stored with StorageManager; analysis jobs with priorities and progress run on the
 *    SQLite-backed QueueManager and store their results.
 * 4. A report of what the run measured: requests, 429s, retries, cache hit rate, jobs, p50/p95/p99.
 *
 * `npm run demo -- --postgres` (or HOTPATH_DATABASE_URL=postgres://…) runs the same on PostgreSQL.
 */
import { createHotpath } from 'hotpath/app';
import { BatchProcessor } from 'hotpath/batch';
import { APIClient } from 'hotpath/client';
import { createProgressBar } from './progress.js';
import { startUpstream } from './upstream.js';

interface Quote {
  symbol: string;
  price: number;
  currency: string;
  history: number[];
}
interface Analysis {
  symbols: string[];
  meanPrice: number;
  maxVolatility: number;
  movers: string[];
}

const SYMBOLS = 150;
const LOOKUPS = 400;
const GROUP_SIZE = 10;

function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296;
  };
}

const usePostgres = process.argv.includes('--postgres');
const pgUrl = process.env.HOTPATH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const started = performance.now();

const upstream = await startUpstream({
  limit: 40,
  windowMs: 1000,
  failureRate: 0.04,
  minLatencyMs: 5,
  maxLatencyMs: 45,
});
const app = await createHotpath({
  profile: 'development',
  env: { ...process.env, HOTPATH_LOG_LEVEL: process.env.HOTPATH_LOG_LEVEL ?? 'error' },
  databaseUrl: usePostgres ? pgUrl : 'sqlite://.hotpath/demo.db',
  caches: { quotes: { max: 500, ttlMs: 60_000, staleWhileRevalidateMs: 30_000 } },
  // Deliberately a little above what the upstream allows (40/s): the 429s and RateLimit headers it
  // sends back slow this limiter down for every caller that shares it.
  rateLimiters: { upstream: { limit: 45, intervalMs: 1000, maxConcurrent: 12 } },
  queue: { concurrency: 4, pollIntervalMs: 25 },
});

const client = new APIClient({
  baseUrl: `${upstream.url}/v1`,
  rateLimiter: app.rateLimiter('upstream'),
  retry: { retries: 6, baseDelayMs: 50, maxDelayMs: 2_000 },
  attemptTimeoutMs: 2_000,
  timeoutMs: 20_000,
  connections: 16,
  profiler: app.profiler,
});
const quotesCache = app.cache<Quote>('quotes');
const quotes = app.storage.collection<Quote>('quotes');
const analyses = app.storage.collection<Analysis>('analyses');
let exitCode = 0;

try {
  console.log(
    `hotpath demo — storage: ${app.config.storage} (${app.config.databaseUrl}), upstream: ${upstream.url} (40 req/s)`,
  );

  // Popular symbols are looked up far more often than the rest (Zipf-like), as in real traffic.
  const random = seeded(7);
  const symbols = Array.from({ length: SYMBOLS }, (_, i) => `SYM${String(i).padStart(3, '0')}`);
  const lookups = Array.from({ length: LOOKUPS }, () => symbols[Math.floor(SYMBOLS * random() ** 2.2)] as string);

  const bar = createProgressBar('fetching quotes', LOOKUPS);
  const batch = new BatchProcessor({
    concurrency: 16,
    retry: false,
    profiler: app.profiler,
    progressIntervalMs: 100,
    onProgress: ({ done, failed }) => bar.update(done, failed > 0 ? `(${failed} failed)` : ''),
  });
  const results = await batch.map(lookups, (symbol, { signal }) =>
    quotesCache.getOrSet(symbol, () => client.get<Quote>(`/quotes/${symbol}`, { signal, route: '/quotes/:symbol' })),
  );
  bar.update(LOOKUPS);
  const fetched = new Map<string, Quote>();
  for (const result of results) if (result.ok) fetched.set(result.value.symbol, result.value);
  const failedLookups = results.filter((result) => !result.ok).length;

  // Store every distinct quote in one transaction (upsert by id = symbol).
  await app.profiler.time('demo.store', () =>
    quotes.saveMany([...fetched.values()].map((quote) => ({ ...quote, id: quote.symbol }))),
  );

  // Follow-up analysis jobs: one per group of symbols; groups with pricier symbols get a higher priority.
  app.queue?.register('analyze', async (data, job) => {
    const { symbols: group } = data as { symbols: string[] };
    let maxVolatility = 0;
    let sum = 0;
    const movers: string[] = [];
    for (const [index, symbol] of group.entries()) {
      const quote = await quotes.get(symbol);
      if (!quote) continue;
      const mean = quote.history.reduce((a, b) => a + b, 0) / quote.history.length;
      const variance = quote.history.reduce((a, b) => a + (b - mean) ** 2, 0) / quote.history.length;
      const volatility = Math.sqrt(variance) / mean;
      maxVolatility = Math.max(maxVolatility, volatility);
      sum += quote.price;
      if (volatility > 0.036) movers.push(symbol);
      job.progress(index + 1, group.length, 'analyzing');
    }
    const analysis: Analysis = { symbols: group, meanPrice: sum / group.length, maxVolatility, movers };
    await analyses.save({ ...analysis, id: `group-${group[0]}` });
    return { movers: movers.length };
  });
  await app.queue?.start();
  const stored = [...fetched.keys()].sort();
  const groups: string[][] = [];
  for (let i = 0; i < stored.length; i += GROUP_SIZE) groups.push(stored.slice(i, i + GROUP_SIZE));
  const jobIds = await app.queue!.queue.enqueueMany(
    groups.map((group) => ({
      type: 'analyze',
      data: { symbols: group },
      priority: Math.min(100, Math.round(Math.max(...group.map((s) => fetched.get(s)?.price ?? 0)) / 5)),
    })),
  );
  const jobBar = createProgressBar('analysis jobs  ', jobIds.length);
  let jobsDone = 0;
  let movers = 0;
  await Promise.all(
    jobIds.map(async (id) => {
      const result = (await app.queue!.queue.wait(id, { timeoutMs: 30_000 })) as { movers: number };
      movers += result.movers;
      jobBar.update(++jobsDone);
    }),
  );

  // The report: every number below was measured by this run.
  const clientStats = client.stats();
  const cacheStats = quotesCache.stats();
  const snapshot = app.profiler.snapshot();
  const seconds = (performance.now() - started) / 1000;
  console.log('\n== report');
  console.log(`lookups            ${LOOKUPS} (${fetched.size} distinct symbols, ${failedLookups} failed)`);
  console.log(
    `upstream requests  ${upstream.counts.requests} (ok ${upstream.counts.ok}, 429 ${upstream.counts.rateLimited}, 503 ${upstream.counts.unavailable})`,
  );
  console.log(
    `client             ${clientStats.requests} calls, ${clientStats.attempts} attempts, ${clientStats.retries} retries, ${clientStats.throttled} throttled (429/503) responses`,
  );
  console.log(
    `cache hit rate     ${(cacheStats.hitRate * 100).toFixed(1)}% (${cacheStats.hits} hits, ${cacheStats.misses} misses, ${cacheStats.loads} loads)`,
  );
  console.log(
    `stored             ${await quotes.count()} quotes, ${await analyses.count()} analyses in ${app.config.storage}`,
  );
  console.log(`jobs done          ${jobsDone}/${jobIds.length} analysis jobs (${movers} movers found)`);
  console.log('\noperation                              count      p50 ms     p95 ms     p99 ms');
  for (const [name, stats] of Object.entries(snapshot).sort(([a], [b]) => a.localeCompare(b))) {
    if (stats.count === 0) continue;
    const fmt = (value: number) => value.toFixed(value < 10 ? 3 : 1).padStart(10);
    console.log(
      `${name.padEnd(36)} ${String(stats.count).padStart(7)} ${fmt(stats.p50)} ${fmt(stats.p95)} ${fmt(stats.p99)}`,
    );
  }
  console.log(`\ndone in ${seconds.toFixed(1)} s`);
  if (failedLookups > 0 || jobsDone !== jobIds.length) exitCode = 1;
} catch (error) {
  console.error('demo failed:', error);
  exitCode = 1;
} finally {
  await client.close();
  await app.close();
  await upstream.close();
}
process.exitCode = exitCode;
