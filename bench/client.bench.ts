/**
 * APIClient throughput: keep-alive GET of a small JSON document at concurrency 32 against a local
 * node:http server running in a child process (so the server does not share our event loop).
 * Ours runs with retries, a rate limiter and a circuit breaker configured but never firing.
 * Anchors: undici Pool.request (the floor we build on), undici.request, global fetch, axios, got, ky.
 * Targets (issue #5): ≥ 0.9× Pool.request, ≥ 3× fetch, got and axios.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent as HttpAgent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import axios from 'axios';
import got from 'got';
import ky from 'ky';
import { Pool, request as undiciRequest } from 'undici';
import { APIClient } from '../src/client/index.js';
import { RateLimiter } from '../src/ratelimit/index.js';
import { startQuotaUpstream } from '../test/client/quota-upstream.js';
import { compareRuns } from './harness.js';

const CONCURRENCY = 32;
const REQUESTS_PER_RUN = 8_000;

// Two server workers (node:cluster, sharing one port): on a shared 2-core machine one server process
// was the bottleneck (~3.5k req/s) and squeezed every fast client to the same figure.
const SERVER = `
const cluster = require('node:cluster');
const http = require('node:http');
if (cluster.isPrimary) {
  let reported = false;
  for (let i = 0; i < 2; i++) {
    cluster.fork().on('message', (port) => {
      if (!reported) process.stdout.write(port + '\\n');
      reported = true;
    });
  }
  process.stdin.on('end', () => { for (const id in cluster.workers) cluster.workers[id].kill(); process.exit(0); });
  process.stdin.resume();
} else {
  const body = JSON.stringify({ id: 42, symbol: 'AAPL', price: 189.25, volume: 51234567, tags: ['tech', 'nasdaq'], ts: '2026-01-15T12:00:00Z' });
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => process.send(server.address().port));
}
`;

// node:cluster forks its script file, so the server is written to a temp file first.
const serverDir = mkdtempSync(join(tmpdir(), 'hotpath-client-bench-'));
const serverFile = join(serverDir, 'server.cjs');
writeFileSync(serverFile, SERVER);
const child = spawn(process.execPath, [serverFile], { stdio: ['pipe', 'pipe', 'inherit'] });
const port = await new Promise<number>((resolve, reject) => {
  child.stdout.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
  child.once('error', reject);
});
const origin = `http://127.0.0.1:${port}`;
const url = `${origin}/quote`;

// A limit that never binds: the limiter's admit path runs on every attempt, but never waits.
const limiter = new RateLimiter({ limit: 1_000_000_000, intervalMs: 1000 });
console.log(`server: 2 node:http workers in a child process on ${origin}`);

const ours = new APIClient({
  baseUrl: origin,
  connections: CONCURRENCY,
  retry: { retries: 3, baseDelayMs: 100, maxDelayMs: 2000 },
  rateLimiter: limiter,
  circuitBreaker: { failureThreshold: 5, halfOpenAfterMs: 10_000 },
  timeoutMs: 10_000,
  attemptTimeoutMs: 5_000,
});
const pool = new Pool(origin, { connections: CONCURRENCY });
const nodeAgent = new HttpAgent({ keepAlive: true, maxSockets: CONCURRENCY });
const axiosClient = axios.create({ httpAgent: nodeAgent });
const gotClient = got.extend({ agent: { http: nodeAgent } });

/** Client-process CPU per request (µs), median over rounds: steadier than req/s on a shared machine. */
const cpuSamples = new Map<string, number[]>();
function medianOf(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1] as number;
}

async function run(name: string, fn: () => Promise<unknown>): Promise<{ ops: number; extra: Record<string, string> }> {
  const cpuStart = process.cpuUsage();
  let started = 0;
  let checksum = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (started++ < REQUESTS_PER_RUN) {
        const data = (await fn()) as { id: number };
        checksum += data.id;
      }
    }),
  );
  if (checksum !== REQUESTS_PER_RUN * 42) throw new Error(`bad checksum ${checksum}`);
  const cpu = process.cpuUsage(cpuStart);
  const samples = cpuSamples.get(name) ?? [];
  samples.push((cpu.user + cpu.system) / REQUESTS_PER_RUN);
  cpuSamples.set(name, samples);
  return { ops: REQUESTS_PER_RUN, extra: { 'client CPU µs/req (median)': medianOf(samples).toFixed(1) } };
}

await compareRuns(
  `keep-alive GET + JSON, concurrency ${CONCURRENCY}, ${REQUESTS_PER_RUN} requests per run (req/s)`,
  {
    'hotpath APIClient (retry+limiter+breaker)': () => run('ours', () => ours.get('/quote')),
    'undici Pool.request': () =>
      run('pool', async () => {
        const { body } = await pool.request({ path: '/quote', method: 'GET' });
        return body.json();
      }),
    'undici.request': () =>
      run('request', async () => {
        const { body } = await undiciRequest(url);
        return body.json();
      }),
    'global fetch': () =>
      run('fetch', async () => {
        const response = await fetch(url);
        return response.json();
      }),
    axios: () => run('axios', async () => (await axiosClient.get(url)).data),
    got: () => run('got', () => gotClient.get(url).json()),
    ky: () => run('ky', () => ky.get(url).json()),
  },
  { rounds: 5 },
);

await ours.close();
await limiter.close();
await pool.close();
nodeAgent.destroy();
child.stdin.end();
child.kill();
rmSync(serverDir, { recursive: true, force: true });

// ---------------------------------------------------------------------------------------------------
// Limits at the quota (issue 14): a loopback upstream in its own process enforces LIMIT per 1,000 ms by
// *arrival* time; 30 callers keep the limiter saturated for the run. Counted by the upstream: refusals
// (429) and accepted requests that arrived within the run's first `runMs`, as a share of the quota.

interface QuotaRow {
  scenario: string;
  runMs: number;
  refused: number;
  accepted: number;
  quotaUsed: string;
  rateFactor: string;
}

async function quotaRun(
  scenario: string,
  options: { upstreamLimit: number; limiterLimit: number; runMs: number; marginMs?: number; hasAimd: boolean },
): Promise<QuotaRow> {
  const upstream = await startQuotaUpstream(options.upstreamLimit, 1000);
  const quotaLimiter = new RateLimiter({
    limit: options.limiterLimit,
    intervalMs: 1000,
    ...(options.marginMs === undefined ? {} : { marginMs: options.marginMs }),
  });
  // Without AIMD: the same limiter seen through an object that lacks reportOverLimit().
  const rateLimiter = options.hasAimd
    ? quotaLimiter
    : {
        acquire: (o?: Parameters<RateLimiter['acquire']>[0]) => quotaLimiter.acquire(o),
        penalize: (ms: number) => quotaLimiter.penalize(ms),
        updateRemaining: (r: number, ms: number) => quotaLimiter.updateRemaining(r, ms),
      };
  const api = new APIClient({ baseUrl: upstream.url, rateLimiter, retry: false, timeoutMs: 120_000 });
  const end = performance.now() + options.runMs + 1000;
  await Promise.all(
    Array.from({ length: 30 }, async () => {
      while (performance.now() < end) await api.get('/quote').catch(() => {});
    }),
  );
  const stats = await upstream.stats();
  const inRun = stats.acceptedAt.filter((at) => at < options.runMs).length;
  const row: QuotaRow = {
    scenario,
    runMs: options.runMs,
    refused: stats.refused,
    accepted: inRun,
    quotaUsed: `${((100 * inRun) / ((options.upstreamLimit * options.runMs) / 1000)).toFixed(1)}%`,
    rateFactor: quotaLimiter.stats().rateFactor.toFixed(2),
  };
  await api.close();
  await quotaLimiter.close();
  await upstream.close();
  return row;
}

const quotaRows: QuotaRow[] = [
  await quotaRun('limiter 20/s = upstream 20/s, default marginMs', {
    upstreamLimit: 20,
    limiterLimit: 20,
    runMs: 60_000,
    hasAimd: true,
  }),
  await quotaRun('limiter 20/s = upstream 20/s, marginMs 0', {
    upstreamLimit: 20,
    limiterLimit: 20,
    runMs: 30_000,
    marginMs: 0,
    hasAimd: true,
  }),
  await quotaRun('limiter 20/s > upstream 15/s, AIMD (reportOverLimit)', {
    upstreamLimit: 15,
    limiterLimit: 20,
    runMs: 30_000,
    hasAimd: true,
  }),
  await quotaRun('limiter 20/s > upstream 15/s, no AIMD (penalize only)', {
    upstreamLimit: 15,
    limiterLimit: 20,
    runMs: 30_000,
    hasAimd: false,
  }),
];
console.log('\n## limits at the quota: loopback upstream counting by arrival, 30 callers, retry off\n');
console.log('| scenario | run | 429s | accepted in run | quota used | rateFactor at end |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const row of quotaRows) {
  console.log(
    `| ${row.scenario} | ${row.runMs / 1000} s | ${row.refused} | ${row.accepted} | ${row.quotaUsed} | ${row.rateFactor} |`,
  );
}
