/**
 * Shared benchmark harness. Every module's bench runs our code and the anchor libraries side by side
 * in one process, interleaved over several rounds (this machine is noisy), and reports medians and
 * the ratio ours/anchor.
 *
 * - `compareOps` — micro benchmarks (ops/s of a small function), timed in batches of calls per sample.
 * - `compareRuns` — macro workloads (a whole run of N operations, timed end to end).
 * - `benchMode` — named modes of a bench (`npm run bench -- storage --ab`).
 */

/** A function under test: sync or async. */
export type BenchFn = () => unknown;

export interface CompareOptions {
  /** Interleaved rounds; the median across rounds is reported (default 5). */
  rounds?: number;
  /** Measuring time per function per round, ms (default 300). */
  timeMs?: number;
  /** Warm-up per function per round, ms (default 100). */
  warmupMs?: number;
  /** Name of the entry that is ours (default: the first). */
  ours?: string;
  /**
   * `compareOps`: how long one timed sample (a batch of calls) should last, µs (default 200). The batch size
   * is calibrated per function from its warm-up so that two timer reads (~40 ns here) are ≤ 0.05 % of a sample.
   */
  sampleUs?: number;
}

export interface Row {
  name: string;
  /** Median operations per second across rounds. */
  opsPerSec: number;
  /** Each round's ops/s. */
  samples: number[];
  /** Free-form extra columns (e.g. loader calls, violations). */
  extra?: Record<string, string | number>;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function rotate<T>(items: T[], by: number): T[] {
  const k = by % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/** `true` when the bench was started with `--<name>` (`npm run bench -- storage --ab`). */
export function benchMode(name: string): boolean {
  return process.argv.includes(`--${name}`);
}

/** Runs `batch` calls of the function under test and returns nothing; async when the function is. */
type Batched = (batch: number) => unknown;

let batchedCount = 0;

/**
 * A loop calling `fn` `batch` times. The loop is compiled fresh for every function (unique source), so each
 * has its own call site: one shared loop would see every function under test, go megamorphic and stop
 * inlining, which would add a few ns to exactly the operations this harness has to resolve (~20 ns).
 */
function batchedLoop(fn: BenchFn, isAsync: boolean): Batched {
  const id = batchedCount++;
  const body = isAsync
    ? `/* batch ${id} */ return async function batched${id}(n) { for (let i = 0; i < n; i++) await fn(); };`
    : `/* batch ${id} */ return function batched${id}(n) { for (let i = 0; i < n; i++) fn(); };`;
  return new Function('fn', body)(fn) as Batched;
}

/** Drains pending microtasks and promise continuations (calls that were not awaited) outside the timing. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

interface Timed {
  calls: number;
  ms: number;
  /** ms of each batch. */
  samples: number[];
}

/** Repeats batches for `forMs`; returns the calls made, the time spent inside the batches and each batch's time. */
async function timeBatches(run: Batched, batch: number, isAsync: boolean, forMs: number): Promise<Timed> {
  let calls = 0;
  let ms = 0;
  const samples: number[] = [];
  const until = performance.now() + forMs;
  while (performance.now() < until) {
    const startedAt = performance.now();
    if (isAsync) await run(batch);
    else run(batch);
    const took = performance.now() - startedAt;
    ms += took;
    samples.push(took);
    calls += batch;
    await settle();
  }
  return { calls, ms, samples };
}

/** The batch size that makes one sample last about `sampleUs` (from the warm-up's rate), 1 … 1e6. */
function calibrate(warm: Timed, sampleUs: number): number {
  const nsPerCall = warm.calls > 0 && warm.ms > 0 ? (warm.ms * 1e6) / warm.calls : 1_000;
  return Math.max(1, Math.min(1_000_000, Math.round((sampleUs * 1_000) / nsPerCall)));
}

interface Subject {
  run: Batched;
  isAsync: boolean;
  batch: number;
}

async function prepare(fn: BenchFn, warmupMs: number, sampleUs: number): Promise<Subject> {
  const first = fn();
  const isAsync = typeof (first as PromiseLike<unknown> | undefined)?.then === 'function';
  if (isAsync) await first;
  const run = batchedLoop(fn, isAsync);
  // Two passes: a rough batch of 16 to find the rate, then the warm-up proper at the calibrated size.
  let batch = calibrate(await timeBatches(run, 16, isAsync, Math.min(20, warmupMs)), sampleUs);
  batch = calibrate(await timeBatches(run, batch, isAsync, warmupMs), sampleUs);
  return { run, isAsync, batch };
}

/** ns per call of an empty function in the same batched loop: what the harness itself adds to every figure. */
export async function harnessFloorNs(sampleUs = 200): Promise<number> {
  const empty = (): undefined => undefined;
  const subject = await prepare(empty, 50, sampleUs);
  const timed = await timeBatches(subject.run, subject.batch, false, 100);
  return (median(timed.samples) * 1e6) / subject.batch;
}

/**
 * Micro benchmark: ops/s of each function, interleaved over rounds. Each sample times a batch of calls
 * (sized so a sample lasts `sampleUs`), not one call: bracketing every call with two timer reads costs ~40 ns
 * here, which would pull the ratio of any ~20–70 ns operation toward 1×. Async functions are awaited call by
 * call inside the batch; calls whose promise is not returned are settled between samples, outside the timing.
 * A round's figure is the batch size / the median batch time: on this shared machine a sample that was
 * preempted by another process is an outlier the median ignores (so are the rarer GC pauses, which makes
 * allocating contenders look no worse than they are). The row is the median over rounds. The table's title
 * line also prints the loop's own floor (ns per call of an empty function).
 */
export async function compareOps(
  title: string,
  fns: Record<string, BenchFn>,
  options: CompareOptions = {},
): Promise<Row[]> {
  const { rounds = 5, timeMs = 300, warmupMs = 100, sampleUs = 200 } = options;
  const names = Object.keys(fns);
  const samples = new Map<string, number[]>(names.map((name) => [name, []]));
  const subjects = new Map<string, Subject>();
  for (const name of names) subjects.set(name, await prepare(fns[name] as BenchFn, warmupMs, sampleUs));
  for (let round = 0; round < rounds; round++) {
    for (const name of rotate(names, round)) {
      const subject = subjects.get(name) as Subject;
      await timeBatches(subject.run, subject.batch, subject.isAsync, warmupMs / 2);
      const timed = await timeBatches(subject.run, subject.batch, subject.isAsync, timeMs);
      const sampleMs = median(timed.samples);
      samples.get(name)?.push(sampleMs > 0 ? (subject.batch * 1000) / sampleMs : 0);
    }
  }
  const rows = names.map((name) => ({
    name,
    samples: samples.get(name) ?? [],
    opsPerSec: median(samples.get(name) ?? []),
    extra: { 'ns/op': (1e9 / median(samples.get(name) ?? [])).toFixed(1), batch: subjects.get(name)?.batch ?? 0 },
  }));
  const floor = await harnessFloorNs(sampleUs);
  printRows(`${title} [batched samples; harness floor ${floor.toFixed(1)} ns/call]`, rows, options.ours ?? names[0]);
  return rows;
}

/** A macro workload: runs once and returns the number of operations it did (plus optional extra columns). */
export type RunFn = () => Promise<number | { ops: number; extra?: Record<string, string | number> }>;

/** Macro benchmark: each workload runs `rounds` times, interleaved; ops/s = ops / wall time, median. */
export async function compareRuns(
  title: string,
  runs: Record<string, RunFn>,
  options: CompareOptions = {},
): Promise<Row[]> {
  const { rounds = 5 } = options;
  const names = Object.keys(runs);
  const samples = new Map<string, number[]>(names.map((name) => [name, []]));
  const extras = new Map<string, Record<string, string | number>>();
  for (let round = 0; round < rounds; round++) {
    for (const name of rotate(names, round)) {
      globalThis.gc?.();
      const start = performance.now();
      const outcome = await (runs[name] as RunFn)();
      const seconds = (performance.now() - start) / 1000;
      const ops = typeof outcome === 'number' ? outcome : outcome.ops;
      if (typeof outcome === 'object' && outcome.extra) extras.set(name, outcome.extra);
      samples.get(name)?.push(ops / seconds);
    }
  }
  const rows = names.map((name) => {
    const row: Row = { name, samples: samples.get(name) ?? [], opsPerSec: median(samples.get(name) ?? []) };
    const extra = extras.get(name);
    if (extra) row.extra = extra;
    return row;
  });
  printRows(title, rows, options.ours ?? names[0]);
  return rows;
}

export function formatOps(ops: number): string {
  if (ops >= 1e6) return `${(ops / 1e6).toFixed(2)}M`;
  if (ops >= 1e3) return `${(ops / 1e3).toFixed(1)}k`;
  return ops.toFixed(1);
}

/** Prints a table: name, median ops/s, ratio ours/that row (how many times faster ours is), extras. */
export function printRows(title: string, rows: Row[], ours: string | undefined): void {
  const base = rows.find((row) => row.name === ours);
  console.log(`\n## ${title}`);
  console.log('| name | ops/s (median) | ours / this | extra |');
  console.log('| --- | ---: | ---: | --- |');
  for (const row of rows) {
    const ratio = base && row.opsPerSec > 0 ? (base.opsPerSec / row.opsPerSec).toFixed(2) : '-';
    const extra = row.extra
      ? Object.entries(row.extra)
          .map(([k, v]) => `${k}=${v}`)
          .join(', ')
      : '';
    console.log(
      `| ${row.name}${row.name === ours ? ' (ours)' : ''} | ${formatOps(row.opsPerSec)} | ${row.name === ours ? '1.00' : `${ratio}×`} | ${extra} |`,
    );
  }
}

/** Latency percentiles of a list of samples in ms. */
export function percentiles(samplesMs: number[]): { p50: number; p95: number; p99: number } {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
  return { p50: at(50), p95: at(95), p99: at(99) };
}
