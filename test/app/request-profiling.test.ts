import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import Fastify from 'fastify';
import {
  createHotpath,
  fastifyProfiler,
  type Hotpath,
  profileRequests,
  requestProfiler,
  routeOfPath,
} from 'hotpath/app';
import { afterEach, describe, expect, it } from 'vitest';

const SHAPE = 'SELECT * FROM authors WHERE id = ?';

async function makeApp(): Promise<Hotpath> {
  return createHotpath({
    profile: 'test',
    env: {},
    queue: false,
    profiler: { slowThresholdMs: 25, nPlusOneThreshold: 10 },
  });
}

/** What every framework's routes do: an id route, a failing one, a slow one, and an N+1 loop. */
async function nPlusOne(app: Hotpath): Promise<void> {
  for (let i = 0; i < 12; i++) {
    await Promise.resolve();
    app.profiler.noteQuery(SHAPE);
  }
}

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function drive(base: string): Promise<void> {
  await Promise.all([fetch(`${base}/users/42`), fetch(`${base}/users/7`), fetch(`${base}/users/1234`)]);
  await fetch(`${base}/boom`);
  await fetch(`${base}/slow`);
  await Promise.all([fetch(`${base}/n1`), fetch(`${base}/n1`)]);
  await fetch(`${base}/nope/123`);
}

async function expectProfiled(app: Hotpath, prefix = ''): Promise<void> {
  const names = Object.keys(app.profiler.snapshot());
  expect(app.profiler.stats(`http GET ${prefix}/users/:id`)?.count).toBe(3);
  expect(names.some((name) => /\/users\/(42|7|1234)/.test(name))).toBe(false); // never the raw URL
  expect(app.profiler.stats(`http GET ${prefix}/boom`)?.errors).toBe(1);
  expect(app.profiler.stats('http GET (unmatched)')?.count).toBe(1);
  // The slow request is reported with its route.
  expect(app.recent.slowOperations.toArray().map((op) => op.name)).toContain(`http GET ${prefix}/slow`);
  // N+1 per request: two concurrent requests, two reports, each naming the route's scope.
  const reports = app.recent.nPlusOne.toArray();
  expect(reports).toHaveLength(2);
  expect(reports.map((r) => [r.scope, r.shape])).toEqual([
    [`http GET ${prefix}/n1`, SHAPE],
    [`http GET ${prefix}/n1`, SHAPE],
  ]);
  const metrics = await app.metrics();
  expect(metrics).toContain(
    `hotpath_http_responses_total{method="GET",route="${prefix}/users/:id",status_class="2xx"} 3`,
  );
  expect(metrics).toContain(`hotpath_http_responses_total{method="GET",route="${prefix}/boom",status_class="5xx"} 1`);
  expect(metrics).toContain('hotpath_http_responses_total{method="GET",route="(unmatched)",status_class="4xx"} 1');
}

describe('request middleware', () => {
  it('Express: requestProfiler keys by baseUrl + route template, per-request N+1, slow with route', async () => {
    const app = await makeApp();
    const web = express();
    web.use(requestProfiler(app));
    const api = express.Router();
    api.get('/users/:id', (req, res) => void res.json({ id: req.params.id }));
    api.get('/boom', (_req, res) => void res.status(500).end());
    api.get('/slow', async (_req, res) => {
      await sleep(60);
      res.end('ok');
    });
    api.get('/n1', async (_req, res) => {
      await nPlusOne(app);
      res.end('ok');
    });
    web.use('/api', api);
    const server = createServer(web);
    const base = await listen(server);
    close = async () => {
      await new Promise((resolve) => server.close(resolve));
      await app.close();
    };
    await drive(`${base}/api`);
    await expectProfiled(app, '/api');
  });

  it('Fastify: fastifyProfiler keys by routeOptions.url and scopes each request (AsyncLocalStorage)', async () => {
    const app = await makeApp();
    const web = Fastify();
    await web.register(fastifyProfiler, { app });
    web.get('/users/:id', async (request) => ({ id: (request.params as { id: string }).id }));
    web.get('/boom', async (_request, reply) => reply.code(500).send('no'));
    web.get('/slow', async () => {
      await sleep(60);
      return 'ok';
    });
    web.get('/n1', async () => {
      await nPlusOne(app);
      return 'ok';
    });
    const base = await web.listen({ port: 0, host: '127.0.0.1' });
    close = async () => {
      await web.close();
      await app.close();
    };
    await drive(base);
    await expectProfiled(app);
  });

  it('node:http: profileRequests with a route function, and the default id guesser', async () => {
    const app = await makeApp();
    const handler = async (req: IncomingMessage, res: ServerResponse) => {
      const path = (req.url ?? '/').split('?')[0] as string;
      if (path.startsWith('/users/')) return res.end('user');
      if (path === '/boom') {
        res.statusCode = 500;
        return res.end();
      }
      if (path === '/slow') {
        await sleep(60);
        return res.end('ok');
      }
      if (path === '/n1') {
        await nPlusOne(app);
        return res.end('ok');
      }
      res.statusCode = 404;
      res.end();
    };
    const route = (req: IncomingMessage) => {
      const path = (req.url ?? '/').split('?')[0] as string;
      if (path.startsWith('/users/')) return '/users/:id';
      return ['/boom', '/slow', '/n1'].includes(path) ? path : '(unmatched)';
    };
    const server = createServer(profileRequests(handler, app, { route }));
    const base = await listen(server);
    close = async () => {
      await new Promise((resolve) => server.close(resolve));
      await app.close();
    };
    await drive(base);
    await expectProfiled(app);
  });

  it('scope: false only times and counts (no AsyncLocalStorage, so no per-request N+1)', async () => {
    const app = await makeApp();
    const web = Fastify();
    await web.register(fastifyProfiler, { app, scope: false });
    web.get('/users/:id', async () => 'ok');
    web.get('/n1', async () => {
      await nPlusOne(app);
      return 'ok';
    });
    const base = await web.listen({ port: 0, host: '127.0.0.1' });
    close = async () => {
      await web.close();
      await app.close();
    };
    await Promise.all([fetch(`${base}/users/1`), fetch(`${base}/users/2`), fetch(`${base}/n1`)]);
    expect(app.profiler.stats('http GET /users/:id')?.count).toBe(2);
    expect(app.recent.nPlusOne.toArray()).toEqual([]);
    expect(app.profiler.scopeStats('http GET /users/:id')).toBeUndefined();
  });

  it('the default route guess replaces id-like segments and caps distinct routes', async () => {
    expect(routeOfPath('/users/42/orders/0f8c7e9a-1b2c-4d5e-8f90-123456789abc')).toBe('/users/:id/orders/:id');
    expect(routeOfPath('/files/deadbeefdeadbeef1234')).toBe('/files/:id');
    expect(routeOfPath('/search')).toBe('/search');
    const app = await makeApp();
    const server = createServer(profileRequests((_req, res) => void res.end(), app, { maxRoutes: 3 }));
    const base = await listen(server);
    close = async () => {
      await new Promise((resolve) => server.close(resolve));
      await app.close();
    };
    for (const name of ['alice', 'bob', 'carol', 'dave', 'erin']) await fetch(`${base}/people/${name}`);
    const names = Object.keys(app.profiler.snapshot()).filter((name) => name.startsWith('http '));
    expect(names.sort()).toEqual([
      'http GET (other)',
      'http GET /people/alice',
      'http GET /people/bob',
      'http GET /people/carol',
    ]);
  });
});
