/**
 * profiling benchmarks: `npm run bench -- profiling`.
 *
 * 1. record() throughput on 1e6 pre-generated log-normal latencies (median 2 ms, heavy tail, values down
 *    to microseconds): our LatencyHistogram vs perf_hooks.createHistogram, hdr-histogram-js (pure JS) and
 *    prom-client Histogram / Summary. perf_hooks and hdr only take integers, so they get the values
 *    pre-scaled to integer microseconds ("raw": the conversion is not timed) and, for perf_hooks, also
 *    with the conversion a caller holding fractional ms must do.
 * 2. Profiler.time() around a sync no-op vs a bare performance.now() pair.
 */
import { createHistogram } from 'node:perf_hooks';
import * as hdr from 'hdr-histogram-js';
import { Histogram as PromHistogram, Summary as PromSummary, Registry } from 'prom-client';
import { LatencyHistogram, Profiler } from '../src/profiling/index.js';
import { compareOps, compareRuns } from './harness.js';

const N = 1_000_000;
/** Passes over the 1e6 values per timed run, so a run lasts long enough to time well (≥ 10 ms). */
const PASSES = 3;

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = mulberry32(2026);
const valuesMs = new Float64Array(N);
for (let i = 0; i < N; i++) {
  const u = random() || Number.MIN_VALUE;
  valuesMs[i] = Math.exp(Math.log(2) + 1.2 * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random()));
}
/** The same values as integer microseconds (≥ 1) for the integer-only histograms. */
const valuesUs = new Float64Array(N);
for (let i = 0; i < N; i++) valuesUs[i] = Math.max(1, Math.round((valuesMs[i] as number) * 1000));

const ours = new LatencyHistogram();
const viaProfiler = new Profiler();
const nodeHistogram = createHistogram();
const nodeHistogramScaled = createHistogram();
const hdrHistogram = hdr.build({ useWebAssembly: false, numberOfSignificantValueDigits: 2 });
const registry = new Registry();
const promHistogram = new PromHistogram({ name: 'bench_histogram_seconds', help: 'bench', registers: [registry] });
const promSummary = new PromSummary({
  name: 'bench_summary_seconds',
  help: 'bench',
  percentiles: [0.5, 0.9, 0.99, 0.999],
  registers: [registry],
});

const run = (recordAll: () => void) => async (): Promise<number> => {
  for (let pass = 0; pass < PASSES; pass++) recordAll();
  return N * PASSES;
};

await compareRuns(
  `record() throughput, 1e6 log-normal values (records/s), ${PASSES} passes per run`,
  {
    'LatencyHistogram.record(ms)': run(() => {
      for (let i = 0; i < N; i++) ours.record(valuesMs[i] as number);
    }),
    'Profiler.record(name, ms)': run(() => {
      for (let i = 0; i < N; i++) viaProfiler.record('db.query', valuesMs[i] as number);
    }),
    'perf_hooks createHistogram.record (raw int µs)': run(() => {
      for (let i = 0; i < N; i++) nodeHistogram.record(valuesUs[i] as number);
    }),
    'perf_hooks createHistogram.record (ms → int µs)': run(() => {
      for (let i = 0; i < N; i++) nodeHistogramScaled.record(Math.max(1, Math.round((valuesMs[i] as number) * 1000)));
    }),
    'hdr-histogram-js recordValue (JS, raw int µs)': run(() => {
      for (let i = 0; i < N; i++) hdrHistogram.recordValue(valuesUs[i] as number);
    }),
    'prom-client Histogram.observe': run(() => {
      for (let i = 0; i < N; i++) promHistogram.observe((valuesMs[i] as number) / 1000);
    }),
    'prom-client Summary.observe': run(() => {
      for (let i = 0; i < N; i++) promSummary.observe((valuesMs[i] as number) / 1000);
    }),
  },
  { rounds: 7 },
);

console.log(
  `\nmemory: LatencyHistogram ${ours.memoryBytes} B (fixed); hdr-histogram-js ${hdrHistogram.estimatedFootprintInBytes} B; ` +
    'perf_hooks: native, outside the JS heap',
);
const p = ours.summary();
console.log(
  `check (same values): ours p50=${p.p50.toFixed(4)} p99=${p.p99.toFixed(3)} ms; ` +
    `perf_hooks p50=${(nodeHistogram.percentile(50) / 1000).toFixed(4)} p99=${(nodeHistogram.percentile(99) / 1000).toFixed(3)} ms; ` +
    `hdr p50=${(hdrHistogram.getValueAtPercentile(50) / 1000).toFixed(4)} p99=${(hdrHistogram.getValueAtPercentile(99) / 1000).toFixed(3)} ms`,
);

const profiler = new Profiler();
const noop = (): number => 1;
let sink = 0;
await compareOps(
  'Profiler.time() on a sync no-op vs a bare performance.now() pair (ops/s)',
  {
    'Profiler.time(name, noop)': () => {
      sink += profiler.time('noop', noop);
    },
    'performance.now() pair around noop': () => {
      const startedAt = performance.now();
      sink += noop();
      sink += performance.now() - startedAt;
    },
    'Profiler.start(name) → stop()': () => {
      const stop = profiler.start('noop.start');
      sink += noop();
      stop();
    },
  },
  { rounds: 5 },
);
if (sink === Number.MIN_VALUE) console.log(sink);

const scoped = new Profiler();
await compareOps(
  'the cost of a scope: time() alone vs a whole scope() run around it (ops/s)',
  {
    'time() outside scopes': () => {
      sink += scoped.time('noop', noop);
    },
    'scope(name, () => time(noop))': () => scoped.scope('req', () => scoped.time('noop', noop)),
  },
  { rounds: 3 },
);
profiler.close();
scoped.close();
viaProfiler.close();
