/**
 * batch: `BatchProcessor.map` vs p-map and p-queue `addAll`, and `Batcher.load` vs DataLoader, on
 * 100,000 async no-op items at concurrency 16 (issue #6). Run: `npm run bench -- batch`.
 */
import DataLoader from 'dataloader';
import pMap from 'p-map';
import PQueue from 'p-queue';
import { Batcher, BatchProcessor } from '../src/batch/index.js';
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

// String ids (UUIDs, slugs) skip the integer fast path of the repeat check and use a Set.
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
};
await warmUp(stringRuns);
await compareRuns(
  `load: ${ITEMS.toLocaleString('en')} distinct string keys in one tick, batch size ${BATCH_SIZE} (loads/s)`,
  stringRuns,
  { rounds: 9 },
);
