/**
 * Shared benchmark harness. Every module's bench runs our code and the anchor libraries side by side
 * in one process, interleaved over several rounds (this machine is noisy), and reports medians and
 * the ratio ours/anchor.
 *
 * - `compareOps` — micro benchmarks (ops/s of a small function) on tinybench.
 * - `compareRuns` — macro workloads (a whole run of N operations, timed end to end).
 */
import { Bench } from 'tinybench';

/** A function under test: sync or async. */
export type BenchFn = () => unknown;

export interface CompareOptions {
  /** Interleaved rounds; the median across rounds is reported (default 5). */
  rounds?: number;
  /** Measuring time per task per round, ms (tinybench `time`, default 300). */
  timeMs?: number;
  /** Warm-up per task per round, ms (default 100). */
  warmupMs?: number;
  /** Name of the entry that is ours (default: the first). */
  ours?: string;
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

/** Micro benchmark: ops/s of each function, interleaved over rounds on tinybench. */
export async function compareOps(
  title: string,
  fns: Record<string, BenchFn>,
  options: CompareOptions = {},
): Promise<Row[]> {
  const { rounds = 5, timeMs = 300, warmupMs = 100 } = options;
  const names = Object.keys(fns);
  const samples = new Map<string, number[]>(names.map((name) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    const bench = new Bench({ time: timeMs, warmupTime: warmupMs, warmup: true });
    for (const name of rotate(names, round)) bench.add(name, fns[name] as BenchFn);
    await bench.run();
    for (const task of bench.tasks) {
      const result = task.result as { throughput?: { mean: number }; error?: unknown } | undefined;
      if (result?.error) throw result.error;
      samples.get(task.name)?.push(result?.throughput?.mean ?? 0);
    }
  }
  const rows = names.map((name) => ({
    name,
    samples: samples.get(name) ?? [],
    opsPerSec: median(samples.get(name) ?? []),
  }));
  printRows(title, rows, options.ours ?? names[0]);
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
