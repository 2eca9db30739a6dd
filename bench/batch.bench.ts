/**
 * batch: `BatchProcessor.map` vs p-map and p-queue `addAll`, and `Batcher.load` vs DataLoader, on
 * 100,000 async no-op items at concurrency 16 (issue #6). Run: `npm run bench -- batch`.
 */
import DataLoader from 'dataloader';
import pMap from 'p-map';
import PQueue from 'p-queue';
import { Batcher, BatchProcessor } from '../src/batch/index.js';
import { firstOccurrences, KeyIndex } from '../src/batch/key-index.js';
import { compareRuns } from './harness.js';

const ITEMS = 100_000;
const CONCURRENCY = 16;
const BATCH_SIZE = 1000;
const items = Array.from({ length: ITEMS }, (_, i) => i);
const noop = async (item: number): Promise<number> => item;

/** Two untimed passes each, so every contender is measured with its code optimised, not while it JITs. */
async function warmUp(runs: Record<string, () => Promise<unknown>>): Promise<void> {
  for (let pass = 0; pass < 2; pass++) for (const run of Object.values(runs)) await run();
}

const processor = new BatchProcessor({ concurrency: CONCURRENCY });
const processorWithRetry = new BatchProcessor({
  concurrency: CONCURRENCY,
  retry: { retries: 3, baseDelayMs: 1 },
  onProgress: () => {},
});

const mapRuns = {
  'BatchProcessor.map': async () => {
    const results = await processor.map(items, noop);
    return results.length;
  },
  'BatchProcessor.map (retry + progress on)': async () => {
    const results = await processorWithRetry.map(items, noop);
    return results.length;
  },
  'p-map': async () => {
    const results = await pMap(items, noop, { concurrency: CONCURRENCY });
    return results.length;
  },
  'p-queue addAll': async () => {
    const queue = new PQueue({ concurrency: CONCURRENCY });
    const results = await queue.addAll(items.map((item) => () => noop(item)));
    return results.length;
  },
};
await warmUp(mapRuns);
await compareRuns(
  `map: ${ITEMS.toLocaleString('en')} async no-op items, concurrency ${CONCURRENCY} (items/s)`,
  mapRuns,
  { rounds: 9 },
);

const loadMany = async (keys: readonly number[]): Promise<number[]> => keys.slice();

const loadRuns = {
  'Batcher.load': async () => {
    const batcher = new Batcher<number, number>(loadMany, { maxBatchSize: BATCH_SIZE });
    const values = await Promise.all(items.map((key) => batcher.load(key)));
    return { ops: values.length, extra: { batches: batcher.stats().batches } };
  },
  'DataLoader.load (defaults: cache on)': async () => {
    const loader = new DataLoader<number, number>(loadMany, { maxBatchSize: BATCH_SIZE });
    const values = await Promise.all(items.map((key) => loader.load(key)));
    return values.length;
  },
  'DataLoader.load (cache: false)': async () => {
    const loader = new DataLoader<number, number>(loadMany, { maxBatchSize: BATCH_SIZE, cache: false });
    const values = await Promise.all(items.map((key) => loader.load(key)));
    return values.length;
  },
};
await warmUp(loadRuns);
await compareRuns(
  `load: ${ITEMS.toLocaleString('en')} distinct keys in one tick, batch size ${BATCH_SIZE} (loads/s)`,
  loadRuns,
  { rounds: 9 },
);

// String ids (UUIDs, slugs). The de-duplication of a burst at dispatch (what lets a repeat share a load
// of the same tick) is measured alone too: its share of a load's time is the cost of sharing in this
// no-repeat workload. The in-flight index (used only for loads arriving while batches fly) is shown too.
const stringKeys = items.map((i) => `user-${i}`);
const loadManyStrings = async (keys: readonly string[]): Promise<string[]> => keys.slice();
const stringRuns = {
  'Batcher.load (string keys)': async () => {
    const batcher = new Batcher<string, string>(loadManyStrings, { maxBatchSize: BATCH_SIZE });
    const values = await Promise.all(stringKeys.map((key) => batcher.load(key)));
    return values.length;
  },
  'DataLoader.load (string keys, defaults)': async () => {
    const loader = new DataLoader<string, string>(loadManyStrings, { maxBatchSize: BATCH_SIZE });
    const values = await Promise.all(stringKeys.map((key) => loader.load(key)));
    return values.length;
  },
  'DataLoader.load (string keys, cache: false)': async () => {
    const loader = new DataLoader<string, string>(loadManyStrings, { maxBatchSize: BATCH_SIZE, cache: false });
    const values = await Promise.all(stringKeys.map((key) => loader.load(key)));
    return values.length;
  },
  'burst de-duplication alone (the sharing cost)': async () => {
    const first = firstOccurrences(stringKeys, stringKeys.length);
    return first.length;
  },
  'in-flight index alone (100,000 keys)': async () => {
    const index = new KeyIndex((ref) => stringKeys[ref], BATCH_SIZE);
    for (let i = 0; i < stringKeys.length; i++) index.findOrAdd(stringKeys[i], i);
    index.clear();
    return stringKeys.length;
  },
};
await warmUp(stringRuns);
await compareRuns(
  `load: ${ITEMS.toLocaleString('en')} distinct string keys in one tick, batch size ${BATCH_SIZE} (loads/s)`,
  stringRuns,
  { rounds: 9 },
);

// Repeats: 100,000 loads of 10,000 keys (each 10×, interleaved), as a page of posts loading its authors.
// Batcher sends each key once per window; DataLoader without a cache sends every repeat.
const repeatedKeys = items.map((i) => `user-${i % 10_000}`);
const repeatRuns = {
  'Batcher.load (10× repeats)': async () => {
    const batcher = new Batcher<string, string>(loadManyStrings, { maxBatchSize: BATCH_SIZE });
    const values = await Promise.all(repeatedKeys.map((key) => batcher.load(key)));
    return { ops: values.length, extra: { keysSent: batcher.stats().keys } };
  },
  'DataLoader.load (10× repeats, defaults)': async () => {
    let keysSent = 0;
    const loader = new DataLoader<string, string>(
      async (keys) => {
        keysSent += keys.length;
        return keys.slice();
      },
      { maxBatchSize: BATCH_SIZE },
    );
    const values = await Promise.all(repeatedKeys.map((key) => loader.load(key)));
    return { ops: values.length, extra: { keysSent } };
  },
  'DataLoader.load (10× repeats, cache: false)': async () => {
    let keysSent = 0;
    const loader = new DataLoader<string, string>(
      async (keys) => {
        keysSent += keys.length;
        return keys.slice();
      },
      { maxBatchSize: BATCH_SIZE, cache: false },
    );
    const values = await Promise.all(repeatedKeys.map((key) => loader.load(key)));
    return { ops: values.length, extra: { keysSent } };
  },
};
await warmUp(repeatRuns);
await compareRuns(
  `load: ${ITEMS.toLocaleString('en')} loads of 10,000 string keys in one tick, batch size ${BATCH_SIZE} (loads/s)`,
  repeatRuns,
  { rounds: 9 },
);

// ---- WorkerPool: event-loop delay while a CPU-bound task runs (moved here from the tests: it is speed) ----
{
  const { WorkerPool } = await import('../src/batch/index.js');
  const { Profiler } = await import('../src/profiling/index.js');
  const fixture = new URL('../test/batch/fixtures/cpu-task.mjs', import.meta.url);
  const { default: estimatePi } = (await import(fixture.href)) as {
    default: (task: { samples: number }) => number;
  };
  const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
  const pool = new WorkerPool<{ samples: number }, number>({ filename: fixture, maxThreads: 1, minThreads: 1 });
  await pool.run({ samples: 1000 });
  const profiler = new Profiler();
  const monitor = profiler.monitorEventLoop({ resolutionMs: 10 });
  const task = { samples: 2_000_000 };
  const poolP99: number[] = [];
  const mainP99: number[] = [];
  const taskMs: number[] = [];
  for (let round = 0; round < 5; round++) {
    // After a reset the monitor skips its first sample: wait one tick of it before each run, one after.
    monitor.reset();
    await pause(25);
    await pool.run(task);
    await pause(30);
    poolP99.push(monitor.stats().p99);
    monitor.reset();
    await pause(25);
    const startedAt = performance.now();
    estimatePi(task);
    taskMs.push(performance.now() - startedAt);
    await pause(30); // the late timer firing is what records the stall
    mainP99.push(monitor.stats().p99);
  }
  const mid = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1] as number;
  console.log(
    `\n## WorkerPool: event-loop delay p99 while a ${mid(taskMs).toFixed(0)} ms CPU task runs (5 rounds, median)`,
  );
  console.log('| where the task runs | event-loop delay p99 (ms) |');
  console.log('| --- | ---: |');
  console.log(`| WorkerPool (1 thread) | ${mid(poolP99).toFixed(1)} |`);
  console.log(`| main thread | ${mid(mainP99).toFixed(1)} |`);
  monitor.close();
  profiler.close();
  await pool.close();
}
