/**
 * Bulk work with hotpath/batch: fetch 50 quotes with 10 in flight (retries, progress, per-item results),
 * coalesce scattered per-symbol lookups into one call with a Batcher, and run a CPU-heavy simulation
 * in a worker thread so the event loop stays free.
 * Run: node --import tsx examples/batch/bulk-quotes.ts
 */
import { Batcher, BatchProcessor, type BatchProgress, WorkerPool } from 'hotpath/batch';

const symbols = Array.from({ length: 50 }, (_, i) => `S${String(i).padStart(2, '0')}`);
const attempts = new Map<string, number>();

/** A stand-in upstream: 20 ms per call; every 7th symbol fails its first attempt; S13 is delisted. */
async function fetchQuote(symbol: string, signal: AbortSignal): Promise<number> {
  const attempt = (attempts.get(symbol) ?? 0) + 1;
  attempts.set(symbol, attempt);
  await new Promise<void>((resolve, reject) => {
    // The signal is shared by every call of the run: remove the listener when done.
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, 20);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  if (symbol === 'S13') throw new Error('delisted');
  if (Number(symbol.slice(1)) % 7 === 0 && attempt === 1) throw new Error('503 from upstream');
  return 100 + Number(symbol.slice(1));
}

// 1. 50 quotes, 10 in flight, 2 retries each, throttled progress.
const reports: BatchProgress[] = [];
const processor = new BatchProcessor({
  concurrency: 10,
  retry: { retries: 2, baseDelayMs: 10, maxDelayMs: 50 },
  onProgress: (progress) => reports.push(progress),
  progressIntervalMs: 50,
});
const started = performance.now();
const quotes = await processor.map(symbols, (symbol, { signal }) => fetchQuote(symbol, signal));
const elapsedMs = performance.now() - started;
const failed = quotes.flatMap((quote, i) => (quote.ok ? [] : [`${symbols[i]}: ${(quote.error as Error).message}`]));
console.log(`fetched ${quotes.filter((q) => q.ok).length}/50 quotes in ${elapsedMs.toFixed(0)} ms with 10 in flight`);
console.log(`retries: ${processor.stats().retries}; failed: ${failed.join(', ')}`);
console.log(`progress reports: ${reports.length}, last: ${JSON.stringify(reports.at(-1))}`);

// 2. Lookups scattered over the code but made in the same tick go to the backend as one call.
const backendCalls: string[][] = [];
const prices = new Batcher(
  async (keys: string[]) => {
    backendCalls.push(keys);
    return keys.map((key) => 100 + Number(key.slice(1)));
  },
  { maxBatchSize: 100 },
);
const wanted = ['S01', 'S02', 'S03', 'S01', 'S04', 'S02', 'S05', 'S01'];
const looked = await Promise.all(wanted.map((symbol) => prices.load(symbol)));
console.log(
  `${wanted.length} lookups -> ${backendCalls.length} loadMany call with ${backendCalls[0]?.length} distinct keys: ${looked.join(' ')}`,
);

// 3. CPU-heavy work in a worker thread.
await using pool = new WorkerPool<object, number>({
  filename: new URL('./simulate-worker.mjs', import.meta.url),
  maxThreads: 1,
});
const probabilityUp = await pool.run({ start: 100, paths: 20_000, steps: 50, volatility: 0.02 });
console.log(`simulated 20000 price paths in a worker thread: P(up after 50 steps) = ${probabilityUp.toFixed(3)}`);
