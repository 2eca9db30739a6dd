/**
 * Cache benchmarks: hotpath `Cache` against raw lru-cache (get / fetch), async-cache-dedupe, cache-manager
 * `wrap` (on Keyv without serialization) and bentocache `getOrSet` (memory only, no
 * serialization), side by side in one process.
 *
 * 1. get hit — sync read of a warm key (100 keys rotating).
 * 2. getOrSet hot hit, call cost — the synchronous work of one call; the returned promise is not awaited
 *    (the harness settles them between samples, outside the timing, so continuations still run). Libraries
 *    that do their lookup after an internal `await` look better here than they are.
 * 3. getOrSet hot hit, awaited — 100 calls per iteration, then `await Promise.all`: end-to-end cost.
 * 4. Cold stampede — 1,000 concurrent callers on 100 cold keys, 5 ms loader: loader calls and wall time.
 *
 * Run: npm run bench -- cache
 */
import { createCache as createDedupeCache } from 'async-cache-dedupe';
import { BentoCache, bentostore } from 'bentocache';
import { memoryDriver } from 'bentocache/drivers/memory';
import { createCache as createCacheManager } from 'cache-manager';
import { Cache } from 'hotpath/cache';
import { Keyv } from 'keyv';
import { LRUCache } from 'lru-cache';
import { compareOps, median, printRows, type Row } from './harness.js';

interface Quote {
  symbol: string;
  price: number;
}

const KEYS = Array.from({ length: 100 }, (_, i) => `SYM${i}`);
const TTL_MS = 600_000;
const quoteOf = (key: string): Quote => ({ symbol: key, price: key.length });

// ---- instances, warmed with the 100 keys ----------------------------------------------------------

const ours = new Cache<Quote>({ name: 'bench', max: 1_000, ttlMs: TTL_MS });
const lruPlain = new LRUCache<string, Quote>({ max: 1_000, ttl: TTL_MS });
const lruFetch = new LRUCache<string, Quote>({
  max: 1_000,
  ttl: TTL_MS,
  fetchMethod: async (key) => quoteOf(key),
});
const dedupe = createDedupeCache({ ttl: TTL_MS / 1000, storage: { type: 'memory', options: { size: 1_000 } } }).define(
  'quote',
  async (key: string) => quoteOf(key),
);
/**
 * cache-manager as its README recommends for in-memory use: Keyv with serialization turned off (the default
 * Keyv Map JSON-serializes every hit). The README's other option, a CacheableMemory store (`cacheable`),
 * was slower here: 3.7 µs vs 0.58 µs per awaited hit, in a side run of this harness.
 */
function keyvWithoutSerialization(): Keyv {
  const keyv = new Keyv();
  keyv.serialize = undefined;
  keyv.deserialize = undefined;
  return keyv;
}
const manager = createCacheManager({ ttl: TTL_MS, stores: [keyvWithoutSerialization()] });
const bento = new BentoCache({
  default: 'memory',
  stores: { memory: bentostore().useL1Layer(memoryDriver({ maxItems: 1_000, serialize: false })) },
});

const oursLoader = () => quoteOf('x');
const managerLoader = async () => quoteOf('x');
const bentoFactory = () => quoteOf('x');

for (const key of KEYS) {
  await ours.getOrSet(key, () => quoteOf(key));
  lruPlain.set(key, quoteOf(key));
  await lruFetch.fetch(key);
  await dedupe.quote(key);
  await manager.wrap(key, async () => quoteOf(key), TTL_MS);
  await bento.getOrSet({ key, factory: () => quoteOf(key), ttl: TTL_MS });
}

let i = 0;
const nextKey = (): string => KEYS[i++ % 100] as string;

// ---- 1. get hit -----------------------------------------------------------------------------------

await compareOps('cache: get hit (sync, 100 warm keys)', {
  'hotpath Cache.get': () => ours.get(nextKey()),
  'lru-cache get': () => lruPlain.get(nextKey()),
});

// 10,000 keys with a TTL: the working set no longer fits the CPU caches, so every pointer a hit follows
// costs a cache miss. Keys are visited in a shuffled order (not sequential), like real traffic.
const BIG = 10_000;
const bigKeys = Array.from({ length: BIG }, (_, n) => `SYM${n}`);
for (let n = BIG - 1; n > 0; n--) {
  const m = Math.floor(Math.random() * (n + 1));
  [bigKeys[n], bigKeys[m]] = [bigKeys[m] as string, bigKeys[n] as string];
}
const oursBig = new Cache<Quote>({ name: 'bench-10k', max: BIG, ttlMs: TTL_MS });
const lruBig = new LRUCache<string, Quote>({ max: BIG, ttl: TTL_MS });
for (const key of bigKeys) {
  oursBig.set(key, quoteOf(key));
  lruBig.set(key, quoteOf(key));
}
let b = 0;
const nextBig = (): string => bigKeys[b++ % BIG] as string;
await compareOps(`cache: get hit (sync, ${BIG.toLocaleString('en')} warm keys, ttl set)`, {
  'hotpath Cache.get': () => oursBig.get(nextBig()),
  'lru-cache get (ttl)': () => lruBig.get(nextBig()),
});

// ---- 2. getOrSet hot hit, call cost ----------------------------------------------------------------

await compareOps('cache: getOrSet hot hit — call cost (promise not awaited)', {
  'hotpath Cache.getOrSet': () => {
    ours.getOrSet(nextKey(), oursLoader);
  },
  'lru-cache fetch': () => {
    lruFetch.fetch(nextKey());
  },
  'async-cache-dedupe': () => {
    dedupe.quote(nextKey());
  },
  'cache-manager wrap': () => {
    manager.wrap(nextKey(), managerLoader, TTL_MS);
  },
  'bentocache getOrSet': () => {
    bento.getOrSet({ key: nextKey(), factory: bentoFactory, ttl: TTL_MS });
  },
});

// ---- 3. getOrSet hot hit, awaited -------------------------------------------------------------------

const BATCH = 100;
const batchOf = (call: (key: string) => Promise<unknown>) => async () => {
  const pending: Promise<unknown>[] = new Array(BATCH);
  for (let n = 0; n < BATCH; n++) pending[n] = call(nextKey());
  await Promise.all(pending);
};
const awaited = await compareOps(`cache: getOrSet hot hit — awaited (ops = batches of ${BATCH} calls)`, {
  'hotpath Cache.getOrSet': batchOf((key) => ours.getOrSet(key, oursLoader)),
  'lru-cache fetch': batchOf((key) => lruFetch.fetch(key)),
  'async-cache-dedupe': batchOf((key) => dedupe.quote(key)),
  'cache-manager wrap': batchOf((key) => manager.wrap(key, managerLoader, TTL_MS)),
  'bentocache getOrSet': batchOf((key) => bento.getOrSet({ key, factory: bentoFactory, ttl: TTL_MS })),
});
console.log(
  `(calls/s = batches/s × ${BATCH}: ${awaited.map((row) => `${row.name} ${((row.opsPerSec * BATCH) / 1e6).toFixed(2)}M`).join(', ')})`,
);

// ---- 4. cold stampede ---------------------------------------------------------------------------

const CALLERS = 1_000;
const COLD_KEYS = 100;
const LOADER_MS = 5;
const slowQuote = (key: string): Promise<Quote> =>
  new Promise((resolve) => setTimeout(() => resolve(quoteOf(key)), LOADER_MS));

const stampedeOurs = new Cache<Quote>({ name: 'stampede', max: 100_000, ttlMs: TTL_MS });
const stampedeLru = new LRUCache<string, Quote, { calls: { count: number } }>({
  max: 100_000,
  ttl: TTL_MS,
  fetchMethod: (key, _stale, { context }) => {
    context.calls.count++;
    return slowQuote(key);
  },
});
const dedupeStampede = createDedupeCache({
  ttl: TTL_MS / 1000,
  storage: { type: 'memory', options: { size: 100_000 } },
});
let dedupeCalls = { count: 0 };
const dedupeSlow = dedupeStampede.define('slowQuote', (key: string) => {
  dedupeCalls.count++;
  return slowQuote(key);
});
const managerStampede = createCacheManager({ ttl: TTL_MS, stores: [keyvWithoutSerialization()] });
const bentoStampede = new BentoCache({
  default: 'memory',
  stores: { memory: bentostore().useL1Layer(memoryDriver({ maxItems: 100_000, serialize: false })) },
});

type Workload = (calls: { count: number }) => (key: string) => Promise<unknown>;
const workloads: Record<string, Workload> = {
  'hotpath Cache.getOrSet': (calls) => (key) =>
    stampedeOurs.getOrSet(key, () => {
      calls.count++;
      return slowQuote(key);
    }),
  'lru-cache fetch': (calls) => (key) => stampedeLru.fetch(key, { context: { calls } }),
  'async-cache-dedupe': (calls) => {
    dedupeCalls = calls;
    return (key) => dedupeSlow.slowQuote(key);
  },
  'cache-manager wrap': (calls) => (key) =>
    managerStampede.wrap(
      key,
      () => {
        calls.count++;
        return slowQuote(key);
      },
      TTL_MS,
    ),
  'bentocache getOrSet': (calls) => (key) =>
    bentoStampede.getOrSet({
      key,
      ttl: TTL_MS,
      factory: () => {
        calls.count++;
        return slowQuote(key);
      },
    }),
};

// Own loop instead of compareRuns: a settle pause before each timed run keeps one library's leftovers
// (bentocache's run takes ~100 ms and leaves timers and garbage) out of the next one's time; the
// harness's rotation would otherwise always put the same library right after bentocache.
const ROUNDS = 25;
const names = Object.keys(workloads);
const samples = new Map<string, number[]>(names.map((name) => [name, []]));
const loaderCalls = new Map<string, number[]>(names.map((name) => [name, []]));
let round = 0;
for (let r = 0; r < ROUNDS; r++) {
  for (const name of [...names.slice(r % names.length), ...names.slice(0, r % names.length)]) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    globalThis.gc?.();
    round++;
    const calls = { count: 0 };
    const call = (workloads[name] as Workload)(calls);
    const start = performance.now();
    const pending: Promise<unknown>[] = [];
    for (let n = 0; n < CALLERS; n++) pending.push(call(`cold:${round}:${n % COLD_KEYS}`));
    await Promise.all(pending);
    samples.get(name)?.push(performance.now() - start);
    loaderCalls.get(name)?.push(calls.count);
  }
}
const rows: Row[] = names.map((name) => {
  const times = samples.get(name) ?? [];
  const callsPerRun = loaderCalls.get(name) ?? [];
  return {
    name,
    samples: times.map((ms) => CALLERS / (ms / 1000)),
    opsPerSec: CALLERS / (median(times) / 1000),
    extra: {
      'loader calls per run': `${Math.min(...callsPerRun)}–${Math.max(...callsPerRun)}`,
      'total ms (median)': median(times).toFixed(1),
    },
  };
});
printRows(
  `cache: cold stampede — ${CALLERS} concurrent callers, ${COLD_KEYS} keys, ${LOADER_MS} ms loader, ${ROUNDS} rounds (ops = callers/s)`,
  rows,
  names[0],
);

await ours.close();
await oursBig.close();
await stampedeOurs.close();
await bento.disconnectAll();
await bentoStampede.disconnectAll();
