/**
 * app: (1) the request middleware's cost on a minimal Fastify route — autocannon against the same route with and
 * without `fastifyProfiler`, interleaved rounds, servers in a child process; (2) the dashboard's cost on the
 * service's event loop with 50 pages connected to its live stream, against none, interleaved.
 */
import { fork } from 'node:child_process';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { median } from './harness.js';

const ROUNDS = Number(process.env.APP_BENCH_ROUNDS ?? 4);
const SECONDS = Number(process.env.APP_BENCH_SECONDS ?? 4);
const PAGES = 50;

interface Ready {
  routeUrl: string;
  dashboardUrl: string;
}
interface Loop {
  p50: number;
  p99: number;
  max: number;
  heapUsed: number;
}
interface Fixture extends Ready {
  ask: <T>(type: string) => Promise<T>;
  stop: () => Promise<void>;
}

async function startFixture(variant: string): Promise<Fixture> {
  const child = fork(fileURLToPath(new URL('./app-fixture.ts', import.meta.url)), [variant], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ready = await new Promise<Ready>((resolve) => {
    child.on('message', (message: { type: string } & Ready) => message.type === 'ready' && resolve(message));
  });
  const ask = <T>(type: string): Promise<T> =>
    new Promise((resolve) => {
      const onMessage = (message: { type: string }) => {
        if (message.type !== type) return;
        child.off('message', onMessage);
        resolve(message as T);
      };
      child.on('message', onMessage);
      child.send({ type });
    });
  const stop = async () => {
    child.send({ type: 'stop' });
    await new Promise((resolve) => child.once('exit', resolve));
  };
  return { ...ready, ask, stop };
}

/** One autocannon run: req/s, and the server process's CPU µs per request (robust to a shared machine). */
async function load(fixture: Fixture): Promise<{ rps: number; cpuMicros: number }> {
  const before = await fixture.ask<{ micros: number; served: number }>('cpu');
  const result = await autocannon({ url: `${fixture.routeUrl}/hello/ada`, connections: 10, duration: SECONDS });
  const after = await fixture.ask<{ micros: number; served: number }>('cpu');
  return { rps: result.requests.average, cpuMicros: (after.micros - before.micros) / (after.served - before.served) };
}

// 1. Middleware overhead: one process per variant, rounds interleaved (the order rotates).
const VARIANTS = ['plain', 'timing', 'scope'] as const;
type Variant = (typeof VARIANTS)[number];
const LABELS = {
  plain: 'Fastify, no middleware',
  timing: 'Fastify + fastifyProfiler { scope: false }',
  scope: 'Fastify + fastifyProfiler (AsyncLocalStorage scope)',
};
const fixtures = Object.fromEntries(
  await Promise.all(VARIANTS.map(async (variant) => [variant, await startFixture(variant)] as const)),
) as Record<Variant, Fixture>;
const rps = Object.fromEntries(VARIANTS.map((variant) => [variant, [] as number[]])) as Record<Variant, number[]>;
const cpu = Object.fromEntries(VARIANTS.map((variant) => [variant, [] as number[]])) as Record<Variant, number[]>;
for (const variant of VARIANTS) await load(fixtures[variant]); // warm-up
for (let round = 0; round < ROUNDS; round++) {
  for (let i = 0; i < VARIANTS.length; i++) {
    const variant = VARIANTS[(i + round) % VARIANTS.length] as Variant;
    const result = await load(fixtures[variant]);
    rps[variant].push(result.rps);
    cpu[variant].push(result.cpuMicros);
  }
}
console.log('\n## app: request middleware on a minimal Fastify route (autocannon, 10 connections)');
console.log('| server | req/s (median) | vs none | server CPU µs/request (median) | vs none | CPU per round |');
console.log('| --- | ---: | ---: | ---: | ---: | --- |');
for (const variant of VARIANTS) {
  console.log(
    `| ${LABELS[variant]} | ${median(rps[variant]).toFixed(0)} | ${(median(rps[variant]) / median(rps.plain)).toFixed(3)} | ${median(
      cpu[variant],
    ).toFixed(
      1,
    )} | ${(median(cpu[variant]) / median(cpu.plain)).toFixed(3)} | ${cpu[variant].map((v) => v.toFixed(1)).join(', ')} |`,
  );
}
await Promise.all([fixtures.timing.stop(), fixtures.scope.stop()]);
const { ask, dashboardUrl } = fixtures.plain;
const ready = { dashboardUrl };

// 2. Dashboard: event-loop delay of the service with 0 and with 50 connected pages.
function openPages(count: number): { close: () => void; received: () => number } {
  let bytes = 0;
  const requests = Array.from({ length: count }, () => {
    const req = request(`${ready.dashboardUrl}/api/events`, (res) =>
      res.on('data', (chunk) => (bytes += chunk.length)),
    );
    req.on('error', () => undefined);
    req.end();
    return req;
  });
  const close = () => {
    for (const req of requests) req.destroy();
  };
  return { close, received: () => bytes };
}
async function phase(pages: number): Promise<Loop & { bytes: number }> {
  const open = pages > 0 ? openPages(pages) : undefined;
  await new Promise((resolve) => setTimeout(resolve, 500));
  await ask('reset');
  await new Promise((resolve) => setTimeout(resolve, SECONDS * 2000));
  const loop = await ask<Loop>('loop');
  const bytes = open?.received() ?? 0;
  open?.close();
  return { ...loop, bytes };
}
const idle: Array<Loop & { bytes: number }> = [];
const watched: Array<Loop & { bytes: number }> = [];
for (let round = 0; round < ROUNDS; round++) {
  if (round % 2 === 0) {
    idle.push(await phase(0));
    watched.push(await phase(PAGES));
  } else {
    watched.push(await phase(PAGES));
    idle.push(await phase(0));
  }
}
const p99 = (rows: Loop[]) => median(rows.map((row) => row.p99));
console.log(`\n## app: dashboard, service event-loop delay with 0 and ${PAGES} connected pages (SSE, refresh 2 s)`);
console.log('| pages | event-loop p99 ms (median) | p99 per round | max per round | stream bytes per round |');
console.log('| ---: | ---: | --- | --- | --- |');
for (const [pages, rows] of [
  [0, idle],
  [PAGES, watched],
] as const) {
  console.log(
    `| ${pages} | ${p99(rows).toFixed(2)} | ${rows.map((r) => r.p99.toFixed(2)).join(', ')} | ${rows
      .map((r) => r.max.toFixed(1))
      .join(', ')} | ${rows.map((r) => r.bytes).join(', ')} |`,
  );
}
console.log(`p99 raised by ${(p99(watched) - p99(idle)).toFixed(2)} ms (bound: 1 ms)`);
await fixtures.plain.stop();
