/**
 * Runs an example service as a child process and drives it over real HTTP, with the stand-in quotes API
 * in this process counting what the service asked it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type QuotesUpstream, startQuotesUpstream } from '../../examples/shared/quotes-upstream.js';

/** A running example service. */
export interface RunningExample {
  /** `http://127.0.0.1:<port>` from its `listening on …` line. */
  readonly url: string;
  /** Everything it printed so far. */
  output(): { stdout: string; stderr: string };
  /** Sends `signal` and resolves with the exit code and signal once it exited. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts `examples/<name>/server.ts` with `PORT=0` and the given environment, and resolves once it printed
 * its listening line.
 * @throws Error with its output when it exits first or does not listen within `timeoutMs`.
 */
export function startExample(name: string, env: Record<string, string>, timeoutMs = 40_000): Promise<RunningExample> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', `examples/${name}/server.ts`], {
    env: { ...process.env, PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop('SIGKILL');
      reject(new Error(`${name} did not listen within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    const onData = () => {
      const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)?.[1];
      if (url === undefined) return;
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      resolve({ url, output: () => ({ stdout, stderr }), stop });
    };
    child.stdout?.on('data', onData);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (code ${code}, signal ${signal}) before listening\n${stdout}\n${stderr}`));
    });
  });
}

/** An HTTP answer with its body read. */
export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: test convenience, the assertions check the shape
  json: any;
}

/** Sends one request (`body` as JSON when given) and reads the whole answer. */
export async function call(method: string, url: string, body?: unknown): Promise<Answer> {
  const response = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

/** Polls a job's status URL until `until(payload)` holds; returns the payloads seen, the last one matching. */
export async function pollJob(
  url: string,
  until: (payload: Record<string, unknown>) => boolean,
  timeoutMs = 20_000,
): Promise<Array<Record<string, unknown>>> {
  const seen: Array<Record<string, unknown>> = [];
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const answer = await call('GET', url);
    expect(answer.status).toBe(200);
    seen.push(answer.json);
    if (until(answer.json)) return seen;
    if (performance.now() > deadline) {
      throw new Error(`job at ${url} never got there; last: ${JSON.stringify(answer.json)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const FINAL = new Set(['succeeded', 'failed', 'cancelled']);

/** Options of {@link describeForecastService}. */
export interface ForecastServiceSuiteOptions {
  /** `memory` runs on the test profile; `sqlite` on a SQLite file in a temp dir. */
  database: 'memory' | 'sqlite';
}

/**
 * The scenario every example service must pass: cached + stampede-safe reads, a rate-limited upstream,
 * the 202 → poll → result flow, cancellation of a running job, /health, /metrics, and a clean SIGTERM.
 */
export function describeForecastService(name: string, options: ForecastServiceSuiteOptions): void {
  describe(`examples/${name}/server.ts`, () => {
    let upstream: QuotesUpstream;
    let service: RunningExample;
    let dir: string;
    const quoteRequests = (symbol: string) => upstream.requests.get(`/v1/quotes/${symbol}`) ?? 0;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), `hotpath-example-${name}-`));
      // 100 ms per answer: long enough that the concurrent reads below really overlap one load.
      upstream = await startQuotesUpstream({ latencyMs: 100, limitPerSecond: 10 });
      service = await startExample(name, {
        NODE_ENV: 'test',
        QUOTES_API_URL: upstream.url,
        ...(options.database === 'sqlite' ? { HOTPATH_DATABASE_URL: `sqlite://${join(dir, 'service.db')}` } : {}),
      });
    });

    afterAll(async () => {
      await service?.stop('SIGKILL');
      await upstream?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('serves a quote from the cache: two reads, one upstream request', async () => {
      const first = await call('GET', `${service.url}/quotes/AAPL`);
      const second = await call('GET', `${service.url}/quotes/aapl`);
      expect(first.status).toBe(200);
      expect(first.json).toMatchObject({ symbol: 'AAPL', price: 187.4, currency: 'USD' });
      // The same `asOf`: the second answer is the stored value, not a second fetch.
      expect(second.json).toEqual(first.json);
      expect(quoteRequests('AAPL')).toBe(1);
    });

    it('concurrent misses of one key share a single upstream request (stampede-safe)', async () => {
      const answers = await Promise.all(Array.from({ length: 8 }, () => call('GET', `${service.url}/quotes/MSFT`)));
      expect(answers.map((answer) => answer.status)).toEqual(Array(8).fill(200));
      expect(new Set(answers.map((answer) => answer.text)).size).toBe(1);
      expect(quoteRequests('MSFT')).toBe(1);
    });

    it('keeps a burst of distinct symbols under the upstream limit (no 429s), and maps upstream errors', async () => {
      const symbols = ['NVDA', 'AMZN', 'GOOG', 'META', 'TSLA', 'ORCL', 'SAP', 'ASML', 'SHOP', 'UBER'];
      const answers = await Promise.all(symbols.map((symbol) => call('GET', `${service.url}/quotes/${symbol}`)));
      expect(answers.map((answer) => answer.json.symbol)).toEqual(symbols);
      // 12 requests in about a second against an upstream allowing 10/s: the limiter (8/s) held them back.
      expect(upstream.rejected()).toBe(0);
      for (const symbol of symbols) expect(quoteRequests(symbol)).toBe(1);

      const unknown = await call('GET', `${service.url}/quotes/NOPE`);
      expect(unknown.status).toBe(404);
      expect(unknown.json).toEqual({ error: { code: 'ERR_NOT_FOUND', message: 'unknown symbol NOPE' } });
      const malformed = await call('GET', `${service.url}/quotes/${encodeURIComponent('$$$')}`);
      expect(malformed.status).toBe(400);
      expect(malformed.json.error.code).toBe('ERR_INPUT');
    });

    it('runs a forecast in the background: 202 + Location, then polling to the result', async () => {
      const accepted = await call('POST', `${service.url}/jobs/forecast`, {
        symbol: 'aapl',
        horizonDays: 30,
        paths: 20_000,
      });
      expect(accepted.status).toBe(202);
      const location = accepted.headers.get('location');
      expect(location).toMatch(/^\/jobs\/[\w-]+$/);
      expect(accepted.json).toEqual({ id: expect.any(String), state: 'queued', statusUrl: location });

      const seen = await pollJob(`${service.url}${location}`, (payload) => FINAL.has(payload.state as string));
      const done = seen.at(-1) as Record<string, unknown>;
      expect(done).toMatchObject({ state: 'succeeded', type: 'forecast', progress: 20_000, total: 20_000 });
      const result = done.result as Record<string, number>;
      expect(result).toMatchObject({ symbol: 'AAPL', spot: 187.4, horizonDays: 30, paths: 20_000 });
      expect(result.p5).toBeLessThan(result.p50 as number);
      expect(result.p50).toBeLessThan(result.p95 as number);
      expect(result.probabilityUp).toBeGreaterThan(0.3);
      expect(result.probabilityUp).toBeLessThan(0.7);
      // Progress never goes backwards while polling.
      const progress = seen.map((payload) => (payload.progress as number | undefined) ?? 0);
      expect(progress).toEqual([...progress].sort((a, b) => a - b));
      // The job read the spot price through the same cache: still one upstream request for AAPL.
      expect(quoteRequests('AAPL')).toBe(1);
    });

    it('rejects a bad forecast request with 400 naming the field', async () => {
      const answer = await call('POST', `${service.url}/jobs/forecast`, { symbol: 'AAPL', paths: 5 });
      expect(answer.status).toBe(400);
      expect(answer.json.error.message).toContain('paths must be an integer from 100 to 200000, got 5');
      const unknownField = await call('POST', `${service.url}/jobs/forecast`, { symbol: 'AAPL', priority: 9 });
      expect(unknownField.status).toBe(400);
      const notJson = await call('POST', `${service.url}/jobs/forecast`, '{"symbol":');
      expect(notJson.status).toBe(400);
    });

    it('cancels a running forecast: the handler stops at its next slice and the job ends cancelled', async () => {
      const body = { symbol: 'TSLA', horizonDays: 2_520, paths: 200_000 };
      const accepted = await call('POST', `${service.url}/jobs/forecast`, body);
      expect(accepted.status).toBe(202);
      // The same forecast submitted while it is queued or running is the same job.
      const again = await call('POST', `${service.url}/jobs/forecast`, body);
      expect(again.json.id).toBe(accepted.json.id);

      const statusUrl = `${service.url}${accepted.json.statusUrl}`;
      await pollJob(statusUrl, (payload) => payload.state === 'running' && (payload.progress as number) > 0);
      const cancelled = await call('DELETE', statusUrl);
      expect(cancelled.status).toBe(202);
      expect(cancelled.json).toMatchObject({ id: accepted.json.id, cancelled: true });

      const final = (await pollJob(statusUrl, (payload) => FINAL.has(payload.state as string))).at(-1);
      expect(final).toMatchObject({
        state: 'cancelled',
        total: 200_000,
        stage: 'simulating',
        error: { code: 'ERR_HOTPATH_JOB_CANCELLED' },
      });
      expect(final?.progress).toBeLessThan(200_000);
      expect(final?.result).toBeUndefined();

      const twice = await call('POST', `${statusUrl}/cancel`);
      expect(twice.status).toBe(409);
      expect(twice.json).toMatchObject({ cancelled: false, state: 'cancelled' });
      expect((await call('GET', `${service.url}/jobs/no-such-job`)).status).toBe(404);
    });

    it('answers /health with JSON: storage, queue and caches', async () => {
      const health = await call('GET', `${service.url}/health`);
      expect(health.status).toBe(200);
      expect(health.headers.get('content-type')).toContain('application/json');
      expect(health.json).toMatchObject({
        ok: true,
        storage: { ok: true, kind: options.database },
        queue: { ok: true, workerRunning: true, counts: { succeeded: 1, cancelled: 1 } },
        caches: { quotes: { size: 12, enabled: true } },
      });
    });

    it('answers /metrics with Prometheus text from the profiler, caches, limiter and queue', async () => {
      const metrics = await call('GET', `${service.url}/metrics`);
      expect(metrics.status).toBe(200);
      expect(metrics.headers.get('content-type')).toContain('text/plain; version=0.0.4');
      // 13 upstream calls: the 12 distinct symbols and the unknown one (an error, its 404 not retried).
      const route = 'name="client.request GET /quotes/:symbol"';
      expect(metrics.text).toContain(`hotpath_operation_duration_seconds_count{${route}} 13`);
      expect(metrics.text).toContain(`hotpath_operation_errors_total{${route}} 1`);
      expect(metrics.text).toContain('hotpath_operation_duration_seconds_count{name="queue.job.forecast"} 2');
      expect(metrics.text).toContain('hotpath_cache_misses_total{cache="quotes"}');
      expect(metrics.text).toMatch(/hotpath_cache_hits_total\{cache="quotes"\} [1-9]/);
      expect(metrics.text).toContain('hotpath_ratelimit_queued{limiter="quotes-api"} 0');
      expect(metrics.text).toContain('hotpath_queue_jobs{status="succeeded"} 1');
    });

    it('times every request by route template and serves the dashboard (page, state, a CSRF-checked action)', async () => {
      const metrics = await call('GET', `${service.url}/metrics`);
      expect(metrics.text).toMatch(
        /hotpath_operation_duration_seconds_count\{name="http GET \/quotes\/:symbol"\} [1-9]/,
      );
      expect(metrics.text).toMatch(
        /hotpath_http_responses_total\{method="GET",route="\/quotes\/:symbol",status_class="2xx"\} [1-9]/,
      );
      expect(metrics.text).not.toContain('name="http GET /quotes/AAPL"');
      const page = await call('GET', `${service.url}/dashboard/`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
      const token = /name="csrf-token" content="([^"]+)"/.exec(page.text)?.[1] as string;
      const state = await call('GET', `${service.url}/dashboard/api/state`);
      expect(state.json).toMatchObject({ queue: { counts: { succeeded: 1 } }, caches: [{ name: 'quotes' }] });
      const asset = await call('GET', `${service.url}/dashboard/assets/uplot.js`);
      expect(asset.status).toBe(200);
      const refused = await fetch(`${service.url}/dashboard/api/caches/quotes/invalidate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ key: 'NOPE' }),
      });
      expect(refused.status).toBe(403);
      const invalidated = await fetch(`${service.url}/dashboard/api/caches/quotes/invalidate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrf-token': token },
        body: JSON.stringify({ key: 'NOPE' }),
      });
      expect(invalidated.status).toBe(200);
      expect(await invalidated.json()).toEqual({ ok: true, removed: 0 });
    });

    it('shuts down cleanly on SIGTERM with exit code 0', async () => {
      const { code, signal } = await service.stop('SIGTERM');
      const { stdout, stderr } = service.output();
      expect({ code, signal, stderr }).toEqual({ code: 0, signal: null, stderr: '' });
      expect(stdout).toContain('stopped cleanly');
    });
  });
}
