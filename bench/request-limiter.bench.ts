/**
 * `npm run bench -- request-limiter` (Redis rows need Redis at HOTPATH_REDIS_URL)
 *
 * 1. Overhead on a minimal route, loopback load (undici, 32 connections, server in this process): req/s
 *    with no limiter, with ours and with the framework's usual limiter — express-rate-limit on Express,
 *    @fastify/rate-limit on Fastify — in memory and on Redis (rate-limit-redis; @fastify/rate-limit's
 *    ioredis store). Limits never bind. Overhead = per-request time above the bare route; target:
 *    ours ≤ 1.1× theirs.
 * 2. Accuracy: 4 processes behind one port (node:cluster) share "100 per 10 s" per client on Redis. The
 *    client sends 1 request, then 150 at 9.7 s and 150 at 10.2 s; workers answer with their admission time.
 *    We report the most admissions in any 10 s window (the limit is 100) — ours against express-rate-limit
 *    with rate-limit-redis (fixed window: a burst on each side of its edge gets 2× through).
 */
import { fork } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import rateLimitFastify from '@fastify/rate-limit';
import express from 'express';
import { rateLimit } from 'express-rate-limit';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { RedisStore } from 'rate-limit-redis';
import { Pool } from 'undici';
import { fastifyLimiter, requestLimiter } from '../src/app/index.js';
import { RedisRateLimitStore } from '../src/redis/index.js';
import { compareOps, compareRuns, type Row, type RunFn } from './harness.js';

const REDIS_URL = process.env.HOTPATH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const PREFIX = `bench:req:${process.pid}:`;
const REQUESTS = 10_000;
const CONNECTIONS = 32;
const LIMIT = 1e9;
const INTERVAL_MS = 10_000;

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Sends `REQUESTS` GETs over `CONNECTIONS` keep-alive connections; returns the number sent. */
async function load(origin: string): Promise<number> {
  const pool = new Pool(origin, { connections: CONNECTIONS });
  let left = REQUESTS;
  const lane = async (): Promise<void> => {
    while (left-- > 0) {
      const { statusCode, body } = await pool.request({ path: '/', method: 'GET' });
      await body.dump();
      if (statusCode !== 200) throw new Error(`status ${statusCode}`);
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, lane));
  await pool.close();
  return REQUESTS;
}

const redis = new Redis(REDIS_URL);
const store = new RedisRateLimitStore({ redis, prefix: PREFIX });

type Framework = 'express' | 'fastify';

async function expressServer(
  middleware?: express.RequestHandler,
): Promise<{ origin: string; close: () => Promise<void> }> {
  const app = express();
  if (middleware) app.use(middleware);
  app.get('/', (_req, res) => {
    res.send('ok');
  });
  const server = createServer(app);
  const origin = await listen(server);
  return { origin, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

async function fastifyServer(
  register?: (app: ReturnType<typeof Fastify>) => Promise<unknown>,
): Promise<{ origin: string; close: () => Promise<void> }> {
  const app = Fastify();
  if (register) await register(app);
  app.get('/', async () => 'ok');
  const origin = await app.listen({ port: 0, host: '127.0.0.1' });
  return { origin, close: () => app.close() };
}

function run(start: () => Promise<{ origin: string; close: () => Promise<void> }>): RunFn {
  return async () => {
    const server = await start();
    try {
      return await load(server.origin);
    } finally {
      await server.close();
    }
  };
}

const rows: Record<Framework, Record<string, RunFn>> = {
  express: {
    'Express, no limiter': run(() => expressServer()),
    'Express + hotpath requestLimiter (memory)': run(() =>
      expressServer(requestLimiter({ limit: LIMIT, intervalMs: INTERVAL_MS }) as unknown as express.RequestHandler),
    ),
    'Express + express-rate-limit (memory)': run(() =>
      expressServer(
        rateLimit({ windowMs: INTERVAL_MS, limit: LIMIT, standardHeaders: 'draft-8', legacyHeaders: false }),
      ),
    ),
    'Express + hotpath requestLimiter (Redis)': run(() =>
      expressServer(
        requestLimiter({
          limit: LIMIT,
          intervalMs: INTERVAL_MS,
          store,
          keyPrefix: 'e:',
        }) as unknown as express.RequestHandler,
      ),
    ),
    'Express + express-rate-limit + rate-limit-redis': run(() =>
      expressServer(
        rateLimit({
          windowMs: INTERVAL_MS,
          limit: LIMIT,
          standardHeaders: 'draft-8',
          legacyHeaders: false,
          store: new RedisStore({
            prefix: `${PREFIX}erl:`,
            sendCommand: (command: string, ...args: string[]) => redis.call(command, ...args) as never,
          }),
        }),
      ),
    ),
  },
  fastify: {
    'Fastify, no limiter': run(() => fastifyServer()),
    'Fastify + hotpath fastifyLimiter (memory)': run(() =>
      fastifyServer((app) => app.register(fastifyLimiter as never, { limit: LIMIT, intervalMs: INTERVAL_MS })),
    ),
    'Fastify + @fastify/rate-limit (memory)': run(() =>
      fastifyServer((app) => app.register(rateLimitFastify, { max: LIMIT, timeWindow: INTERVAL_MS })),
    ),
    'Fastify + hotpath fastifyLimiter (Redis)': run(() =>
      fastifyServer((app) =>
        app.register(fastifyLimiter as never, { limit: LIMIT, intervalMs: INTERVAL_MS, store, keyPrefix: 'f:' }),
      ),
    ),
    'Fastify + @fastify/rate-limit (Redis)': run(() =>
      fastifyServer((app) =>
        app.register(rateLimitFastify, { max: LIMIT, timeWindow: INTERVAL_MS, redis, nameSpace: `${PREFIX}frl:` }),
      ),
    ),
  },
};

for (const framework of ['express', 'fastify'] as const) {
  const results = await compareRuns(
    `Inbound limiter on ${framework}: req/s on a minimal route (loopback, ${CONNECTIONS} connections)`,
    rows[framework],
    { rounds: 3, ours: Object.keys(rows[framework])[1] },
  );
  const perRequestUs = (name: string) => 1e6 / (results.find((row) => row.name === name)?.opsPerSec ?? Number.NaN);
  const names = Object.keys(rows[framework]);
  const bare = perRequestUs(names[0] as string);
  for (const [ours, theirs] of [
    [names[1], names[2]],
    [names[3], names[4]],
  ] as [string, string][]) {
    const oursUs = perRequestUs(ours) - bare;
    const theirsUs = perRequestUs(theirs) - bare;
    console.log(
      `overhead per request: ${ours} ${oursUs.toFixed(1)} µs, ${theirs} ${theirsUs.toFixed(1)} µs → ours/theirs ${(oursUs / theirsUs).toFixed(2)}×`,
    );
  }
}

// In-process cost (no sockets, so the load generator does not compete with the server): the middleware
// called directly (Express) and `app.inject` (Fastify, framework included); per-call µs above the bare call.
{
  const fakeReq = () =>
    ({
      ip: '198.51.100.1',
      headers: {},
      socket: { remoteAddress: '198.51.100.1' },
      method: 'GET',
      url: '/',
      app: { get: () => false },
    }) as never;
  const fakeRes = () => {
    const headers = new Map<string, unknown>();
    return {
      statusCode: 200,
      headersSent: false,
      setHeader: (name: string, value: unknown) => headers.set(name.toLowerCase(), value),
      getHeader: (name: string) => headers.get(name.toLowerCase()),
      append: (name: string, value: unknown) => headers.set(name.toLowerCase(), value),
      on: () => {},
      end: () => {},
    } as never;
  };
  const call = (middleware: (req: never, res: never, next: (error?: unknown) => void) => unknown) => () =>
    new Promise<void>((resolve, reject) => {
      void middleware(fakeReq(), fakeRes(), (error?: unknown) => (error ? reject(error) : resolve()));
    });
  const oursMemory = requestLimiter({ limit: LIMIT, intervalMs: INTERVAL_MS });
  const oursRedis = requestLimiter({ limit: LIMIT, intervalMs: INTERVAL_MS, store, keyPrefix: 'm:' });
  const theirsMemory = rateLimit({
    windowMs: INTERVAL_MS,
    limit: LIMIT,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    validate: false,
  });
  const theirsRedis = rateLimit({
    windowMs: INTERVAL_MS,
    limit: LIMIT,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    validate: false,
    store: new RedisStore({
      prefix: `${PREFIX}erl2:`,
      sendCommand: (command: string, ...args: string[]) => redis.call(command, ...args) as never,
    }),
  });
  const bare = () => Promise.resolve();
  const expressRows = await compareOps(
    'Express middleware called in process (calls/s)',
    {
      'hotpath requestLimiter (memory)': call(oursMemory as never),
      'express-rate-limit (memory)': call(theirsMemory as never),
      'hotpath requestLimiter (Redis)': call(oursRedis as never),
      'express-rate-limit + rate-limit-redis': call(theirsRedis as never),
      'no limiter (a resolved promise)': bare,
    },
    { rounds: 5, timeMs: 500 },
  );
  overheads(
    expressRows,
    [
      ['hotpath requestLimiter (memory)', 'express-rate-limit (memory)'],
      ['hotpath requestLimiter (Redis)', 'express-rate-limit + rate-limit-redis'],
    ],
    'no limiter (a resolved promise)',
  );

  const fastifyApp = async (register?: (app: ReturnType<typeof Fastify>) => Promise<unknown>) => {
    const app = Fastify();
    if (register) await register(app);
    app.get('/', async () => 'ok');
    await app.ready();
    return app;
  };
  const apps = {
    'Fastify + hotpath fastifyLimiter (memory)': await fastifyApp((app) =>
      app.register(fastifyLimiter as never, { limit: LIMIT, intervalMs: INTERVAL_MS }),
    ),
    'Fastify + @fastify/rate-limit (memory)': await fastifyApp((app) =>
      app.register(rateLimitFastify, { max: LIMIT, timeWindow: INTERVAL_MS }),
    ),
    'Fastify + hotpath fastifyLimiter (Redis)': await fastifyApp((app) =>
      app.register(fastifyLimiter as never, { limit: LIMIT, intervalMs: INTERVAL_MS, store, keyPrefix: 'fi:' }),
    ),
    'Fastify + @fastify/rate-limit (Redis)': await fastifyApp((app) =>
      app.register(rateLimitFastify, { max: LIMIT, timeWindow: INTERVAL_MS, redis, nameSpace: `${PREFIX}frl2:` }),
    ),
    'Fastify, no limiter': await fastifyApp(),
  };
  const fastifyRows = await compareOps(
    'Fastify app.inject on a minimal route (requests/s)',
    Object.fromEntries(
      Object.entries(apps).map(([name, app]) => [
        name,
        async () => {
          const response = await app.inject({ method: 'GET', url: '/', remoteAddress: '198.51.100.1' });
          if (response.statusCode !== 200) throw new Error(`status ${response.statusCode}`);
        },
      ]),
    ),
    { rounds: 5, timeMs: 500 },
  );
  overheads(
    fastifyRows,
    [
      ['Fastify + hotpath fastifyLimiter (memory)', 'Fastify + @fastify/rate-limit (memory)'],
      ['Fastify + hotpath fastifyLimiter (Redis)', 'Fastify + @fastify/rate-limit (Redis)'],
    ],
    'Fastify, no limiter',
  );
  for (const app of Object.values(apps)) await app.close();
  await oursMemory.close();
  await oursRedis.close();
}

function overheads(rows: Row[], pairs: [string, string][], bareName: string): void {
  const perCallUs = (name: string) => 1e6 / (rows.find((row) => row.name === name)?.opsPerSec ?? Number.NaN);
  const bare = perCallUs(bareName);
  for (const [ours, theirs] of pairs) {
    const oursUs = perCallUs(ours) - bare;
    const theirsUs = perCallUs(theirs) - bare;
    console.log(
      `overhead per request: ${ours} ${oursUs.toFixed(1)} µs, ${theirs} ${theirsUs.toFixed(1)} µs → ours/theirs ${(oursUs / theirsUs).toFixed(2)}×`,
    );
  }
}

// Accuracy across 4 processes on Redis.
const WORKER = join(import.meta.dirname, 'request-limiter-cluster.ts');

async function accuracy(kind: 'hotpath' | 'express-rate-limit'): Promise<{ most: number; admitted: number }> {
  const child = fork(WORKER, [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, KIND: kind, REDIS_URL, PREFIX: `${PREFIX}acc:${kind}:` },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve) => child.once('message', (message) => resolve(Number(message))));
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 16 });
  const admitted: number[] = [];
  const send = async (): Promise<void> => {
    const { statusCode, body } = await pool.request({ path: '/', method: 'GET' });
    const text = await body.text();
    if (statusCode === 200) admitted.push(Number(text));
  };
  const start = Date.now();
  await send();
  const burst = async (atMs: number) => {
    await new Promise((resolve) => setTimeout(resolve, start + atMs - Date.now()));
    await Promise.all(Array.from({ length: 150 }, send));
  };
  await burst(9700);
  await burst(10_200);
  await pool.close();
  child.kill('SIGTERM');
  admitted.sort((a, b) => a - b);
  let most = 0;
  for (let head = 0, tail = 0; head < admitted.length; head++) {
    while ((admitted[tail] as number) <= (admitted[head] as number) - INTERVAL_MS) tail++;
    most = Math.max(most, head - tail + 1);
  }
  return { most, admitted: admitted.length };
}

console.log('\n## Accuracy: 4 processes behind one port, "100 per 10 s" per client on Redis');
console.log('| limiter | admitted (of 301) | most in any 10 s window (limit 100) |');
console.log('| --- | ---: | ---: |');
for (const kind of ['hotpath', 'express-rate-limit'] as const) {
  const { most, admitted } = await accuracy(kind);
  console.log(
    `| ${kind === 'hotpath' ? 'hotpath limitRequests + RedisRateLimitStore' : 'express-rate-limit + rate-limit-redis'} | ${admitted} | ${most} |`,
  );
}

await store.close();
const keys = await redis.keys(`${PREFIX}*`);
if (keys.length > 0) await redis.del(...keys);
await redis.quit();
