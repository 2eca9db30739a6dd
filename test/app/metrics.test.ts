import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createHotpath, type Hotpath } from 'hotpath/app';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeExposition } from '../../src/core/prometheus-text.js';
import { requireCommand } from './external-tools.js';

const promtool = requireCommand('promtool', 'prometheus');

/** Builds an app with every kind of family populated: caches, limiter, queue, event-loop monitor. */
async function busyApp(): Promise<Hotpath> {
  const app = await createHotpath({
    profile: 'test',
    env: {},
    caches: { quotes: { max: 100, ttlMs: 60_000 }, 'weird "name"\n': { max: 5, ttlMs: 1000 } },
    rateLimiters: { upstream: { limit: 10, intervalMs: 1000, maxQueued: 0 } },
    queue: { concurrency: 1, pollIntervalMs: 5 },
  });
  app.profiler.monitorEventLoop({ resolutionMs: 1 });
  const quotes = app.cache<number>('quotes');
  await quotes.getOrSet('AAPL', async () => 1);
  await quotes.getOrSet('AAPL', async () => 2);
  await app.rateLimiter('upstream').schedule(async () => 1);
  app.requests.add('GET', '/quotes/:symbol', 200);
  app.requests.add('GET', '/quotes/:symbol', 503);
  app.queue?.register('double', async (data) => (data as { n: number }).n * 2);
  await app.queue?.start();
  const id = await app.queue!.enqueue('double', { n: 2 });
  await app.queue!.queue.wait(id, { timeoutMs: 5000 });
  await new Promise((resolve) => setTimeout(resolve, 20));
  return app;
}

/** Metric names of every sample line (`name{…} value` → name). */
function sampleNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    names.add(/^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0] ?? '');
  }
  return names;
}

describe('app metrics', () => {
  let app: Hotpath;
  let text: string;
  beforeAll(async () => {
    app = await busyApp();
    text = await app.metrics();
  });
  afterAll(() => app.close());

  it('types totals since start as counters named …_total, levels as gauges', () => {
    const types = new Map<string, string>();
    for (const match of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(match[1] as string, match[2] as string);
    for (const name of [
      'hotpath_cache_hits_total',
      'hotpath_cache_misses_total',
      'hotpath_cache_stale_hits_total',
      'hotpath_cache_evictions_total',
      'hotpath_cache_loads_total',
      'hotpath_ratelimit_rejected_total',
      'hotpath_ratelimit_started_total',
      'hotpath_queue_succeeded_total',
      'hotpath_operation_errors_total',
      'hotpath_http_responses_total',
    ]) {
      expect(types.get(name), name).toBe('counter');
    }
    for (const [name, type] of types) expect(name.endsWith('_total'), `${name} is a ${type}`).toBe(type === 'counter');
    expect(types.get('hotpath_cache_entries')).toBe('gauge');
    expect(types.has('hotpath_cache_hits')).toBe(false);
    expect(text).toContain('hotpath_cache_hits_total{cache="quotes"} 1');
    expect(text).toContain('hotpath_cache_max_entries{cache="quotes"} 100');
    expect(text).toContain('hotpath_queue_succeeded_total 1');
    expect(text).toMatch(/^hotpath_event_loop_delay_max_seconds \d/m);
  });

  it('has one HELP and one TYPE per family: the app families go through the profiler’s writer', () => {
    const helps = [...text.matchAll(/^# HELP (\S+)/gm)].map((m) => m[1]);
    expect(new Set(helps).size).toBe(helps.length);
  });

  it.runIf(promtool)('passes `promtool check metrics` without a lint finding', () => {
    const result = spawnSync(promtool as string, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(`${result.stdout}${result.stderr}`.trim()).toBe('');
    expect(result.status).toBe(0);
  });

  it.runIf(promtool)('promtool would catch a gauge named like a counter (the check can fail)', () => {
    const bad = '# HELP x_hits Hits.\n# TYPE x_hits counter\nx_hits 1\n';
    const result = spawnSync(promtool as string, ['check', 'metrics'], { input: bad, encoding: 'utf8' });
    expect(`${result.stdout}${result.stderr}`).toMatch(/_total/);
  });

  it('every metric the Grafana dashboard reads exists in the /metrics output', () => {
    const dashboard = JSON.parse(readFileSync(new URL('../../docs/grafana-dashboard.json', import.meta.url), 'utf8'));
    const exprs: string[] = [];
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node !== null && typeof node === 'object') {
        for (const [key, value] of Object.entries(node)) {
          if (key === 'expr' && typeof value === 'string') exprs.push(value);
          else walk(value);
        }
      }
    };
    walk(dashboard);
    expect(exprs.length).toBeGreaterThan(10);
    const exported = sampleNames(text);
    const read = new Set(exprs.flatMap((expr) => [...expr.matchAll(/\bhotpath_[a-z0-9_]+/g)].map((m) => m[0])));
    const missing = [...read].filter((name) => !exported.has(name));
    expect(missing).toEqual([]);
  });
});

describe('writeExposition', () => {
  it('refuses a counter without _total, a gauge with it, and a family written twice', () => {
    const family = (name: string, type: 'counter' | 'gauge') => ({ name, type, help: 'h', samples: [{ value: 1 }] });
    expect(() => writeExposition([family('a_hits', 'counter')])).toThrow(/_total/);
    expect(() => writeExposition([family('a_total', 'gauge')])).toThrow(/_total/);
    expect(() => writeExposition([family('a', 'gauge'), family('a', 'gauge')])).toThrow(/twice/);
    expect(writeExposition([family('a_total', 'counter')], [['service', 'x"y']])).toBe(
      '# HELP a_total h\n# TYPE a_total counter\na_total{service="x\\"y"} 1\n',
    );
  });
});
