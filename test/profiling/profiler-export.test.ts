import { setTimeout as delay } from 'node:timers/promises';
import { ConfigError, ManualClock } from 'hotpath/core';
import { EventLoopMonitor, Profiler } from 'hotpath/profiling';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually } from '../helpers/async.js';

const open: Array<{ close(): void }> = [];
afterEach(() => {
  for (const item of open.splice(0)) item.close();
});
function make(options: ConstructorParameters<typeof Profiler>[0] = {}): Profiler {
  const profiler = new Profiler(options);
  open.push(profiler);
  return profiler;
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * A strict reader of the Prometheus text format 0.0.4: every line is a HELP, a TYPE or a sample; each
 * family is declared once, before its samples; label values are unescaped; values are Go floats.
 * Throws on anything else, so a malformed exposition fails the test.
 */
function parseExposition(text: string): { types: Map<string, string>; samples: Sample[] } {
  expect(text.endsWith('\n')).toBe(true);
  const types = new Map<string, string>();
  const helped = new Set<string>();
  const samples: Sample[] = [];
  const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
  for (const line of text.slice(0, -1).split('\n')) {
    const help = /^# HELP ([^ ]+) (.*)$/.exec(line);
    if (help) {
      const [, name = ''] = help;
      if (!metricName.test(name) || helped.has(name)) throw new Error(`bad HELP: ${line}`);
      helped.add(name);
      continue;
    }
    const type = /^# TYPE ([^ ]+) (counter|gauge|summary|histogram|untyped)$/.exec(line);
    if (type) {
      const [, name = '', kind = ''] = type;
      if (!metricName.test(name) || types.has(name)) throw new Error(`bad TYPE: ${line}`);
      types.set(name, kind);
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!sample) throw new Error(`bad line: ${JSON.stringify(line)}`);
    const [, name = '', , body = '', rawValue = ''] = sample;
    const labels: Record<string, string> = {};
    let rest = body;
    while (rest.length > 0) {
      const label = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"(,|$)/.exec(rest);
      if (!label) throw new Error(`bad labels in ${JSON.stringify(line)}`);
      const [all, key = '', value = ''] = label;
      labels[key] = value.replace(/\\(\\|"|n)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      rest = rest.slice(all.length);
    }
    const value = rawValue === '+Inf' ? Infinity : rawValue === '-Inf' ? -Infinity : Number(rawValue);
    if (rawValue !== 'NaN' && Number.isNaN(value)) throw new Error(`bad value in ${line}`);
    const family = types.has(name) ? name : name.replace(/_(sum|count)$/, '');
    if (!types.has(family)) throw new Error(`sample before its TYPE: ${line}`);
    if (family !== name && types.get(family) !== 'summary' && types.get(family) !== 'histogram') {
      throw new Error(`_sum/_count on a ${types.get(family)}: ${line}`);
    }
    samples.push({ name, labels, value });
  }
  return { types, samples };
}

describe('Profiler.toPrometheus', () => {
  it('writes a valid summary with quantiles, _sum and _count in seconds, plus error and slow counters', () => {
    const profiler = make({ slowThresholdMs: 50 });
    for (let i = 1; i <= 100; i++) profiler.record('db.query', i, i === 100);
    const { types, samples } = parseExposition(profiler.toPrometheus());
    expect(types.get('hotpath_operation_duration_seconds')).toBe('summary');
    const find = (name: string, labels: Record<string, string>) =>
      samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
    const p50 = find('hotpath_operation_duration_seconds', { name: 'db.query', quantile: '0.5' });
    expect(Math.abs((p50 ?? 0) - 0.05) / 0.05).toBeLessThan(0.01);
    expect(find('hotpath_operation_duration_seconds', { name: 'db.query', quantile: '0.999' })).toBe(0.1);
    expect(find('hotpath_operation_duration_seconds_count', { name: 'db.query' })).toBe(100);
    expect(find('hotpath_operation_duration_seconds_sum', { name: 'db.query' })).toBeCloseTo(5.05, 9);
    expect(find('hotpath_operation_errors_total', { name: 'db.query' })).toBe(1);
    expect(find('hotpath_operation_slow_total', { name: 'db.query' })).toBe(51);
    expect(find('hotpath_profiler_dropped_records_total', {})).toBe(0);
  });

  it('escapes hostile names as label values and sanitises the prefix', () => {
    const profiler = make();
    const hostile = 'GET /a"b\\c\nd{e}=f,g';
    profiler.record(hostile, 1);
    profiler.record('queue.job.send-email', 2);
    const text = profiler.toPrometheus({ prefix: '9my-app.', labels: { service: 'api "v2"\\x' } });
    const { samples } = parseExposition(text);
    const names = new Set(samples.map((s) => s.name));
    expect([...names].every((n) => n.startsWith('_9my_app_'))).toBe(true);
    const labelled = samples.filter((s) => s.labels['name'] === hostile);
    expect(labelled.length).toBeGreaterThan(0);
    expect(labelled.every((s) => s.labels['service'] === 'api "v2"\\x')).toBe(true);
    expect(samples.some((s) => s.labels['name'] === 'queue.job.send-email')).toBe(true);
  });

  it('is valid when empty, and includes event-loop delay while a monitor is open', async () => {
    const profiler = make();
    parseExposition(profiler.toPrometheus());
    const monitor = profiler.monitorEventLoop({ resolutionMs: 1 });
    // Polled: on a loaded machine the first delay sample can take longer than any fixed wait.
    await eventually(() => {
      const { types, samples } = parseExposition(profiler.toPrometheus());
      expect(types.get('hotpath_event_loop_delay_seconds')).toBe('summary');
      expect(samples.find((s) => s.name === 'hotpath_event_loop_delay_seconds_count')?.value).toBeGreaterThan(0);
      return true;
    });
    monitor.close();
    expect(profiler.toPrometheus()).not.toContain('event_loop');
  });

  it('rejects invalid or reserved constant labels and unknown options', () => {
    const profiler = make();
    for (const labels of [{ 'bad-name': 'x' }, { __reserved: 'x' }, { name: 'x' }, { quantile: 'x' }, { ok: 5 }]) {
      expect(() => profiler.toPrometheus({ labels: labels as unknown as Record<string, string> })).toThrow(ConfigError);
    }
    expect(() => profiler.toPrometheus({ prefx: 'x' } as never)).toThrow(ConfigError);
  });
});

describe('Profiler.toJSON, memory and event loop', () => {
  it('toJSON() is plain data with metrics, scopes, drops, memory and a timestamp from the clock', async () => {
    const clock = new ManualClock(1_700_000_123_000);
    const profiler = make({ clock, maxMetrics: 2 });
    profiler.record('a', 1);
    await profiler.scope('req', async () => profiler.record('a', 2));
    profiler.record('c', 1);
    const json = JSON.parse(JSON.stringify(profiler));
    expect(json.metrics.a.count).toBe(2);
    expect(json.metrics.req.count).toBe(1);
    expect(json.scopes.req.operations.a.count).toBe(1);
    expect(json.droppedRecords).toBe(1);
    expect(json.timestamp).toBe(1_700_000_123_000);
    expect(json.memory.rss).toBeGreaterThan(0);
    expect(json.eventLoop).toBeUndefined();
  });

  it('memory() reports current usage and peaks that never go below it', () => {
    const profiler = make();
    const first = profiler.memory();
    for (const key of [
      'rss',
      'heapUsed',
      'heapTotal',
      'external',
      'arrayBuffers',
      'peakRss',
      'peakHeapUsed',
    ] as const) {
      expect(Number.isSafeInteger(first[key])).toBe(true);
    }
    // A live process has a heap and a resident set; the heap in use fits the heap reserved.
    expect(first.rss).toBeGreaterThan(1_000_000);
    expect(first.heapUsed).toBeGreaterThan(1_000_000);
    expect(first.heapUsed).toBeLessThanOrEqual(first.heapTotal);
    expect(first.peakRss).toBeGreaterThanOrEqual(first.rss);
    expect(first.peakHeapUsed).toBeGreaterThanOrEqual(first.heapUsed);
    const ballast = Array.from({ length: 200_000 }, (_, i) => ({ i }));
    const during = profiler.memory();
    // The figures are live: 200,000 small objects (≥ 1.6 MB of array alone) show in heapUsed.
    expect(during.heapUsed).toBeGreaterThan(first.heapUsed + 1_000_000);
    ballast.length = 0;
    const after = profiler.memory();
    expect(after.peakHeapUsed).toBeGreaterThanOrEqual(during.heapUsed);
    expect(after.peakRss).toBeGreaterThanOrEqual(first.peakRss);
  });

  it('monitorEventLoop() reports a blocked loop in ms and is closeable', async () => {
    const profiler = make();
    const monitor = profiler.monitorEventLoop({ resolutionMs: 1 });
    expect(monitor.stats().count).toBe(0);
    await delay(10);
    const blockUntil = performance.now() + 60;
    while (performance.now() < blockUntil) {
      // Busy-wait: the loop cannot run its timers, so the next delay sample is ~60 ms late.
    }
    // The late sample lands when the loop next runs the monitor's timer; on a loaded machine that can take
    // more than one 10 ms wait, and samples taken before the block may already be there, so poll (up to 2 s)
    // until the blocked one shows — a monitor that never records it still fails below.
    for (let i = 0; i < 200 && monitor.stats().max < 50; i++) await delay(10);
    const stats = monitor.stats();
    expect(stats.count).toBeGreaterThan(0);
    expect(stats.max).toBeGreaterThanOrEqual(50);
    expect(stats.max).toBeLessThan(10_000);
    expect(stats.p50).toBeLessThanOrEqual(stats.max);
    monitor.reset();
    expect(monitor.stats().count).toBe(0);
    monitor.close();
    monitor.close();
    expect(monitor.isClosed).toBe(true);
  });

  it('an EventLoopMonitor can be used on its own with `using`', () => {
    {
      using monitor = new EventLoopMonitor();
      expect(monitor.isClosed).toBe(false);
      open.push(monitor);
    }
    expect((open[0] as EventLoopMonitor).isClosed).toBe(true);
    expect(() => new EventLoopMonitor({ resolutionMs: 0 })).toThrow(ConfigError);
  });
});

describe('Profiler options', () => {
  const bad: Array<[string, unknown]> = [
    ['slowThresholdMs', 0],
    ['slowThresholdMs', -1],
    ['slowThresholdMs', Number.NaN],
    ['slowThresholdMs', '500'],
    ['onSlow', 'log'],
    ['onSlow', {}],
    ['logger', 'console'],
    ['logger', { info() {} }],
    ['logger', null],
    ['maxMetrics', 0],
    ['maxMetrics', 1.5],
    ['maxMetrics', Number.POSITIVE_INFINITY],
    ['maxMetrics', 100_001],
    ['nPlusOneThreshold', 1],
    ['nPlusOneThreshold', 2.5],
    ['nPlusOneThreshold', -3],
    ['onNPlusOne', true],
    ['histogram', 'fine'],
    ['histogram', { significantDigits: 3 }],
    ['histogram', { maxValueMs: -1 }],
    ['histogram', { unknown: 1 }],
    ['now', 5],
    ['clock', { now: () => 1 }],
    ['clock', 'system'],
    ['memorySampleIntervalMs', 0],
    ['memorySampleIntervalMs', 5],
    ['memorySampleIntervalMs', 12.5],
    ['memorySampleIntervalMs', Number.NaN],
    ['monitor', true],
  ];
  it.each(bad)('%s = %o is rejected with ConfigError naming it', (option, value) => {
    let caught: unknown;
    try {
      new Profiler({ [option]: value } as never);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).option.startsWith(`Profiler.${option}`)).toBe(true);
  });

  it('accepts good values, including Infinity for slowThresholdMs', () => {
    const profiler = make({
      slowThresholdMs: Number.POSITIVE_INFINITY,
      maxMetrics: 1,
      nPlusOneThreshold: 2,
      histogram: { maxValueMs: 60_000, significantDigits: 1 },
      memorySampleIntervalMs: 1000,
    });
    profiler.record('x', 1e9);
    expect(profiler.stats('x')?.slow).toBe(0);
    expect(profiler.histogram('x')?.significantDigits).toBe(1);
    expect(() => new Profiler(5 as never)).toThrow(ConfigError);
  });
});

describe('exact contracts (pinned by mutation testing)', () => {
  it('record(ms) accepts finite ms >= 0 only, with a message naming the value; state untouched', () => {
    const profiler = make();
    profiler.record('op', 0);
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY, '5' as unknown as number]) {
      expect(() => profiler.record('op', bad)).toThrow(`ms must be a finite number >= 0, got ${String(bad)}`);
    }
    expect(profiler.stats('op')?.count).toBe(1);
  });

  it('names are checked on first use by record, time and start, also right after another name', () => {
    const profiler = make();
    const long = 'x'.repeat(201);
    profiler.record('ok', 1);
    const message = 'metric name must be a non-empty string of at most 200 characters, got';
    expect(() => profiler.record('', 1)).toThrow(`${message} 0 characters`);
    expect(() => profiler.record(long, 1)).toThrow(`${message} 201 characters`);
    expect(() => profiler.time('', () => 1)).toThrow(`${message} 0 characters`);
    expect(() => profiler.time(long, () => 1)).toThrow(`${message} 201 characters`);
    expect(() => profiler.start('')).toThrow(`${message} 0 characters`);
    expect(() => profiler.start(long)).toThrow(`${message} 201 characters`);
    expect(() => profiler.record(7 as unknown as string, 1)).toThrow(`${message} number`);
    profiler.record('x'.repeat(200), 1); // the longest allowed
    expect(Object.keys(profiler.snapshot())).toEqual(['ok', 'x'.repeat(200)]);
  });

  it('time() awaits thenables only: null, plain objects and objects with a non-function then are returned as is', async () => {
    const profiler = make();
    expect(profiler.time('sync', () => null)).toBeNull();
    // biome-ignore lint/suspicious/noThenProperty: the point of the test is a `then` that is not a function
    const notThenable = { then: 5 };
    expect(profiler.time('sync', () => notThenable)).toBe(notThenable);
    expect(profiler.stats('sync')?.count).toBe(2);
    const thenableFunction = Object.assign(() => 0, {
      // biome-ignore lint/suspicious/noThenProperty: a function that is a thenable must be awaited
      then: (resolve: (v: string) => void) => resolve('done'),
    });
    const result = profiler.time('fn-thenable', () => thenableFunction);
    expect(result).toBeInstanceOf(Promise);
    expect(await result).toBe('done');
    expect(profiler.stats('fn-thenable')?.count).toBe(1);
  });

  it('histogram option errors name Profiler.histogram; logger/clock/noteQuery errors name the method', () => {
    expect(() => new Profiler({ histogram: { significantDigits: 9 } })).toThrow(
      expect.objectContaining({ option: 'Profiler.histogram.significantDigits' }),
    );
    expect(() => new Profiler({ histogram: { significantDigits: 9 } })).toThrow(
      /^Profiler\.histogram\.significantDigits/,
    );
    const logger = { debug() {}, info() {}, warn() {} } as never;
    expect(() => new Profiler({ logger })).toThrow('Profiler.logger must have a error() method');
    const clock = { now: () => 0, setTimeout: () => 0 } as never;
    expect(() => new Profiler({ clock })).toThrow('Profiler.clock must have a clearTimeout() method');
    const profiler = make();
    expect(() => profiler.noteQuery(5 as unknown as string)).toThrow('shape must be a string, got number');
    expect(() => profiler.toPrometheus({ labels: { 'bad-name': 'x' } })).toThrow(
      'label name "bad-name" is not a valid, unreserved Prometheus label name',
    );
    expect(() => profiler.toPrometheus({ labels: { region: 5 as unknown as string } })).toThrow(
      'label region must be a string, got number',
    );
  });

  it('Prometheus event-loop family: quantiles, sum and count in seconds from the monitor', async () => {
    const profiler = make();
    const monitor = profiler.monitorEventLoop({ resolutionMs: 10 });
    // Wait for a few samples (how long that takes depends on the machine's load, so poll, do not time).
    for (let i = 0; i < 200 && monitor.stats().count < 3; i++) await delay(20);
    const stats = monitor.stats();
    expect(stats.count).toBeGreaterThanOrEqual(3);
    const text = profiler.toPrometheus({ labels: { region: 'eu' } });
    // Read the figures back and compare with the monitor's own stats (taken a moment earlier: within 5 %).
    const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1]);
    expect(text).toContain('# TYPE hotpath_event_loop_delay_seconds summary');
    const count = value(/^hotpath_event_loop_delay_seconds_count\{region="eu"\} (\S+)$/m);
    expect(count).toBeGreaterThanOrEqual(stats.count);
    const sum = value(/^hotpath_event_loop_delay_seconds_sum\{region="eu"\} (\S+)$/m);
    expect(sum).toBeGreaterThan(0);
    expect(sum / count).toBeCloseTo(stats.mean / 1000, 2);
    const p50 = value(/^hotpath_event_loop_delay_seconds\{region="eu",quantile="0.5"\} (\S+)$/m);
    expect(p50).toBeGreaterThan(0.005); // ~10 ms resolution, in seconds
    expect(p50).toBeLessThan(1);
    expect(text).toMatch(/^hotpath_profiler_dropped_records_total\{region="eu"\} 0$/m);
    monitor.close();
  });
});

describe('EventLoopMonitor figures are in ms and ordered (pinned by mutation testing)', () => {
  it('min <= p50 <= p90 <= p99 <= p999 <= max, mean inside, all in plausible ms; zeros before the first sample', async () => {
    const monitor = new EventLoopMonitor();
    open.push(monitor);
    expect(monitor.stats()).toEqual({ count: 0, min: 0, mean: 0, max: 0, stddev: 0, p50: 0, p90: 0, p99: 0, p999: 0 });
    for (let i = 0; i < 200 && monitor.stats().count < 3; i++) await delay(20);
    const s = monitor.stats();
    expect(s.count).toBeGreaterThanOrEqual(3);
    const ordered = [s.min, s.p50, s.p90, s.p99, s.p999, s.max];
    expect([...ordered].sort((a, b) => a - b)).toEqual(ordered);
    expect(s.mean).toBeGreaterThanOrEqual(s.min);
    expect(s.mean).toBeLessThanOrEqual(s.max);
    // The default resolution is 10 ms: every sample is about that, never nanoseconds, never minutes.
    expect(s.min).toBeGreaterThan(5);
    expect(s.max).toBeLessThan(10_000);
    expect(s.stddev).toBeLessThan(10_000);
  });
});
