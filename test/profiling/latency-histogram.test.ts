import { ConfigError } from 'hotpath/core';
import { LatencyHistogram } from 'hotpath/profiling';
import { describe, expect, it } from 'vitest';

/** A small deterministic PRNG (mulberry32) so failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function normal(random: () => number): number {
  const u = random() || Number.MIN_VALUE;
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/** Exact nearest-rank percentile of a sorted array (the definition the histogram follows). */
function exactPercentile(sorted: Float64Array, p: number): number {
  if (p === 0) return sorted[0] as number;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] as number;
}

const PS = [0, 1, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100];

function checkAccuracy(values: Float64Array): number {
  const histogram = new LatencyHistogram();
  for (let i = 0; i < values.length; i++) histogram.record(values[i] as number);
  const sorted = Float64Array.from(values).sort();
  let worst = 0;
  const got = histogram.percentiles(PS);
  PS.forEach((p, i) => {
    const exact = exactPercentile(sorted, p);
    const single = histogram.percentile(p);
    expect(got[i]).toBe(single);
    const error = Math.abs(single - exact) / exact;
    worst = Math.max(worst, error);
    expect(error, `p${p}: exact ${exact}, got ${single}`).toBeLessThan(0.01);
  });
  expect(histogram.count).toBe(values.length);
  expect(histogram.min).toBe(sorted[0]);
  expect(histogram.max).toBe(sorted[sorted.length - 1]);
  return worst;
}

/**
 * Sample counts. Under mutation testing (`npm run mutate`, which sets HOTPATH_MUTATION=1) every mutant re-runs
 * these tests on instrumented code, where a million records take seconds: the properties do not depend on the
 * count, so they run on fewer samples there.
 */
const SAMPLES = process.env.HOTPATH_MUTATION === '1' ? 20_000 : 1_000_000;
const MANY_RECORDS = process.env.HOTPATH_MUTATION === '1' ? 100_000 : 10_000_000;

describe('LatencyHistogram accuracy', () => {
  it(`percentiles of ${SAMPLES.toLocaleString('en')} log-normal samples are within 1% of an exact sort`, () => {
    const random = rng(42);
    const values = new Float64Array(SAMPLES);
    // Median e^0 = 1 ms with a heavy tail: p99.99 ≈ 2,000 ms, smallest values in the microseconds.
    for (let i = 0; i < values.length; i++) values[i] = Math.exp(2 * normal(random));
    expect(checkAccuracy(values)).toBeLessThan(0.005);
  });

  it(`percentiles of ${SAMPLES.toLocaleString('en')} bimodal samples (cache hits ~µs, misses ~tens of ms) are within 1%`, () => {
    const random = rng(7);
    const values = new Float64Array(SAMPLES);
    for (let i = 0; i < values.length; i++) {
      values[i] =
        random() < 0.8 ? Math.abs(0.002 + 0.0005 * normal(random)) + 1e-5 : Math.abs(40 + 8 * normal(random)) + 0.1;
    }
    expect(checkAccuracy(values)).toBeLessThan(0.005);
  });

  it('keeps microsecond and sub-microsecond values at their precision', () => {
    const histogram = new LatencyHistogram();
    for (const v of [0.0012, 0.0013, 0.0014, 0.00025]) histogram.record(v);
    expect(Math.abs(histogram.percentile(25) - 0.00025) / 0.00025).toBeLessThan(0.004);
    expect(histogram.percentile(0)).toBe(0.00025);
    expect(Math.abs(histogram.percentile(50) - 0.0012) / 0.0012).toBeLessThan(0.004);
    expect(Math.abs(histogram.percentile(75) - 0.0013) / 0.0013).toBeLessThan(0.004);
    expect(histogram.percentile(100)).toBe(0.0014);
  });

  it('significantDigits: 1 trades precision for 8× less memory', () => {
    const coarse = new LatencyHistogram({ significantDigits: 1 });
    const fine = new LatencyHistogram();
    expect(coarse.memoryBytes * 8).toBe(fine.memoryBytes);
    const random = rng(3);
    const values = Float64Array.from({ length: 100_000 }, () => Math.exp(normal(random)));
    for (const v of values) coarse.record(v);
    const sorted = values.sort();
    for (const p of [50, 90, 99]) {
      const exact = exactPercentile(sorted, p);
      expect(Math.abs(coarse.percentile(p) - exact) / exact).toBeLessThan(0.035);
    }
  });
});

describe('LatencyHistogram memory bound', () => {
  it(`${MANY_RECORDS.toLocaleString('en')} records leave its size unchanged, within the documented 64 KiB`, () => {
    const histogram = new LatencyHistogram();
    const before = histogram.memoryBytes;
    expect(before).toBeLessThanOrEqual(64 * 1024);
    expect(before).toBe(21_504); // 42 octaves × 128 buckets × 4 bytes
    const random = rng(1);
    const values = Float64Array.from({ length: 4096 }, () => Math.exp(3 * normal(random)));
    for (let i = 0; i < MANY_RECORDS; i++) histogram.record(values[i & 4095] as number);
    expect(histogram.count).toBe(MANY_RECORDS);
    expect(histogram.memoryBytes).toBe(before);
  });

  it('the largest allowed range still fits in 64 KiB', () => {
    const histogram = new LatencyHistogram({ maxValueMs: 2 ** 40 });
    expect(histogram.memoryBytes).toBeLessThanOrEqual(32 * 1024);
  });

  it('a bucket past 2^32 − 1 counts stays exact (counts widen once, still ≤ 64 KiB)', () => {
    const histogram = new LatencyHistogram({ maxValueMs: 2 ** 40 });
    histogram.record(5);
    for (let i = 0; i < 33; i++) histogram.merge(histogram);
    expect(histogram.count).toBe(2 ** 33);
    expect(histogram.memoryBytes).toBeLessThanOrEqual(64 * 1024);
    expect(histogram.percentile(50)).toBe(5);
    histogram.record(10);
    expect(histogram.count).toBe(2 ** 33 + 1);
    expect(histogram.percentile(100)).toBe(10);
  });
});

describe('LatencyHistogram operations', () => {
  it('summary() reports exact count/min/mean/max/sum and percentiles; zeros when empty', () => {
    const histogram = new LatencyHistogram();
    expect(histogram.summary()).toEqual({
      count: 0,
      min: 0,
      mean: 0,
      max: 0,
      sum: 0,
      p50: 0,
      p90: 0,
      p95: 0,
      p99: 0,
      p999: 0,
    });
    for (let i = 1; i <= 1000; i++) histogram.record(i);
    const summary = histogram.summary();
    expect(summary).toMatchObject({ count: 1000, min: 1, max: 1000, sum: 500_500, mean: 500.5 });
    expect(Math.abs(summary.p90 - 900) / 900).toBeLessThan(0.004);
    expect(JSON.parse(JSON.stringify(histogram))).toEqual(summary);
  });

  it('merge() of same-layout histograms equals recording everything in one', () => {
    const random = rng(11);
    const a = new LatencyHistogram();
    const b = new LatencyHistogram();
    const all = new LatencyHistogram();
    for (let i = 0; i < 50_000; i++) {
      const v = Math.exp(normal(random));
      (i % 3 === 0 ? a : b).record(v);
      all.record(v);
    }
    a.merge(b);
    expect(a.count).toBe(all.count);
    expect(a.min).toBe(all.min);
    expect(a.max).toBe(all.max);
    expect(a.sum).toBeCloseTo(all.sum, 6);
    expect(a.percentiles([50, 90, 99, 99.9])).toEqual(all.percentiles([50, 90, 99, 99.9]));
  });

  it('merge() across different options re-buckets at the coarser precision', () => {
    const fine = new LatencyHistogram();
    const coarse = new LatencyHistogram({ significantDigits: 1, maxValueMs: 1000 });
    for (let i = 1; i <= 1000; i++) coarse.record(i / 10);
    fine.merge(coarse);
    expect(fine.count).toBe(1000);
    expect(fine.max).toBe(100);
    expect(Math.abs(fine.percentile(50) - 50) / 50).toBeLessThan(0.035);
    expect(() => fine.merge({} as LatencyHistogram)).toThrow(ConfigError);
  });

  it('values above maxValueMs are counted, max stays exact and percentiles saturate near the bound', () => {
    const histogram = new LatencyHistogram({ maxValueMs: 100 });
    histogram.record(50);
    histogram.record(5000);
    expect(histogram.count).toBe(2);
    expect(histogram.max).toBe(5000);
    expect(histogram.percentile(100)).toBe(5000);
    histogram.record(6000);
    expect(histogram.percentile(60)).toBeLessThanOrEqual(128);
  });

  it('reset() forgets everything and keeps the same memory', () => {
    const histogram = new LatencyHistogram();
    const bytes = histogram.memoryBytes;
    for (let i = 0; i < 100; i++) histogram.record(i);
    histogram.reset();
    expect(histogram.count).toBe(0);
    expect(histogram.percentile(99)).toBe(0);
    expect(histogram.memoryBytes).toBe(bytes);
    histogram.record(3);
    expect(histogram.summary()).toMatchObject({ count: 1, min: 3, max: 3, p50: 3 });
  });

  it('rejects bad values and percentiles with ConfigError, leaving the histogram unchanged', () => {
    const histogram = new LatencyHistogram();
    histogram.record(1);
    for (const bad of [
      -0.001,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      '1' as unknown as number,
      null as unknown as number,
    ]) {
      expect(() => histogram.record(bad)).toThrow(ConfigError);
    }
    for (const p of [-1, 100.01, Number.NaN, '50' as unknown as number]) {
      expect(() => histogram.percentile(p)).toThrow(ConfigError);
      expect(() => histogram.percentiles([50, p])).toThrow(ConfigError);
    }
    expect(histogram.summary()).toMatchObject({ count: 1, min: 1, max: 1, sum: 1 });
    histogram.record(0);
    expect(histogram.min).toBe(0);
    expect(histogram.percentile(0)).toBe(0);
  });

  it('every option rejects bad values with ConfigError naming it', () => {
    const bad: Array<[string, unknown]> = [
      ['maxValueMs', 0],
      ['maxValueMs', -5],
      ['maxValueMs', Number.NaN],
      ['maxValueMs', Number.POSITIVE_INFINITY],
      ['maxValueMs', 2 ** 41],
      ['maxValueMs', '1000'],
      ['significantDigits', 0],
      ['significantDigits', 3],
      ['significantDigits', 1.5],
      ['significantDigits', Number.NaN],
      ['significantDigits', '2'],
    ];
    for (const [option, value] of bad) {
      let caught: unknown;
      try {
        new LatencyHistogram({ [option]: value } as never);
      } catch (error) {
        caught = error;
      }
      expect(caught, `${option}=${String(value)}`).toBeInstanceOf(ConfigError);
      expect((caught as ConfigError).option).toBe(`LatencyHistogram.${option}`);
    }
    expect(() => new LatencyHistogram({ maxValue: 5 } as never)).toThrow(ConfigError);
    expect(() => new LatencyHistogram(null as never)).toThrow(ConfigError);
    expect(new LatencyHistogram({ maxValueMs: 0.001, significantDigits: 1 }).maxValueMs).toBe(0.001);
  });
});

describe('LatencyHistogram edges (pinned by mutation testing)', () => {
  it('percentiles() answers in the order asked, and an empty histogram answers 0', () => {
    const empty = new LatencyHistogram();
    expect(empty.percentile(50)).toBe(0);
    expect(empty.percentiles([50, 99])).toEqual([0, 0]);
    const histogram = new LatencyHistogram();
    for (let i = 1; i <= 1000; i++) histogram.record(i);
    const asked = [99, 10, 50, 100];
    expect(histogram.percentiles(asked)).toEqual(asked.map((p) => histogram.percentile(p)));
    expect(histogram.percentile(100)).toBe(1000);
    expect(histogram.min).toBe(1);
    expect(() => histogram.percentile(101)).toThrow('p must be a number in 0–100, got 101');
    expect(() => histogram.record(-1)).toThrow('ms must be a finite number >= 0, got -1');
  });
});
