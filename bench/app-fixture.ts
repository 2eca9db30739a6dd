/**
 * Child process for bench/app.bench.ts: the servers under load live here, so the load generator (autocannon,
 * SSE clients) does not share their event loop. `argv[2]` picks the Fastify variant (`plain`, `timing` =
 * fastifyProfiler with scope: false, `scope` = fastifyProfiler) — one per process, since an AsyncLocalStorage
 * taxes every promise of its process. Sends its URLs over IPC; answers IPC messages.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import Fastify from 'fastify';
import { createHotpath, dashboardHandler, fastifyProfiler } from '../src/app/index.js';

const app = await createHotpath({
  profile: 'test',
  env: {},
  logLevel: 'silent',
  caches: Object.fromEntries(
    ['quotes', 'charts', 'users', 'search', 'config'].map((n) => [n, { max: 1000, ttlMs: 60_000 }]),
  ),
  rateLimiters: { upstream: { limit: 100, intervalMs: 1000 }, partner: { limit: 10, intervalMs: 1000 } },
  queue: { concurrency: 4, pollIntervalMs: 50 },
});

// Some state for the dashboard to show: cached entries, 60 operation names, finished and failed jobs.
for (const name of app.caches.names()) {
  for (let i = 0; i < 200; i++) await app.caches.get(name)?.getOrSet(`k${i}`, async () => ({ i, name }));
}
for (let i = 0; i < 60; i++) for (let j = 0; j < 50; j++) app.profiler.record(`db.query.${i}`, Math.random() * 20);
app.queue!.register('work', async (data) => data);
app.queue!.register('fail', async () => {
  throw new Error('upstream said no');
});
await app.queue!.start();
for (let i = 0; i < 200; i++)
  await app.queue!.enqueue(i % 10 === 0 ? 'fail' : 'work', { i, note: 'x'.repeat(200) }, { attempts: 1 });

// A minimal Fastify route, with or without the profiler plugin.
const variant = process.argv[2] ?? 'plain';
const web = Fastify();
if (variant !== 'plain') await web.register(fastifyProfiler, { app, scope: variant === 'scope' });
let served = 0;
web.get('/hello/:name', async () => {
  served++;
  return { hello: 'world' };
});
const routeUrl = await web.listen({ port: 0, host: '127.0.0.1' });

// The dashboard, on its own server, at the default refresh (2 s) and history interval (5 s).
const dashboard = dashboardHandler(app, { authorize: () => true, maxClients: 200 });
const dashboardServer = createServer((req, res) => void dashboard(req, res));
await new Promise<void>((resolve) => dashboardServer.listen(0, '127.0.0.1', resolve));
const dashboardUrl = `http://127.0.0.1:${(dashboardServer.address() as AddressInfo).port}/dashboard`;

// Event-loop delay of this process, read and reset by the bench between phases.
const loop = monitorEventLoopDelay({ resolution: 1 });
loop.enable();
process.on('message', (message: { type: string }) => {
  if (message.type === 'reset') {
    loop.reset();
    process.send?.({ type: 'reset' });
  } else if (message.type === 'loop') {
    process.send?.({
      type: 'loop',
      p50: loop.percentile(50) / 1e6,
      p99: loop.percentile(99) / 1e6,
      max: loop.max / 1e6,
      heapUsed: process.memoryUsage().heapUsed,
    });
  } else if (message.type === 'cpu') {
    const usage = process.cpuUsage();
    process.send?.({ type: 'cpu', micros: usage.user + usage.system, served });
  } else if (message.type === 'stop') {
    void Promise.all([web.close(), new Promise((r) => dashboardServer.close(r))]).then(async () => {
      await app.close();
      process.exit(0);
    });
  }
});
process.send?.({ type: 'ready', routeUrl, dashboardUrl });
dashboardServer.on('connection', (socket) => socket.unref());
