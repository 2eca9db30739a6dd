import { createServer, type IncomingMessage, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHotpath, type DashboardOptions, dashboardHandler, type Hotpath } from 'hotpath/app';
import { ConfigError } from 'hotpath/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SeriesHistory } from '../../src/app/dashboard/history.js';
import { maskCredentials, Redactor } from '../../src/app/dashboard/redact.js';

let app: Hotpath;
const servers: Server[] = [];

beforeAll(async () => {
  app = await createHotpath({
    profile: 'test',
    env: {},
    databaseUrl: 'memory://',
    caches: { quotes: { max: 10, ttlMs: 60_000 } },
    queue: { concurrency: 1, pollIntervalMs: 10 },
  });
  app.queue!.register('fail', async () => {
    throw new Error('cannot reach postgres://svc:s3cr3t@db.internal/app');
  });
  await app.queue!.start();
});
afterAll(async () => {
  for (const server of servers) server.closeAllConnections();
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  await app.close();
});

async function serve(options: DashboardOptions): Promise<string> {
  const handler = dashboardHandler(app, { refreshMs: 250, ...options });
  const server = createServer((req, res) => void handler(req, res));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function tokenOf(base: string): Promise<string> {
  const html = await (await fetch(`${base}/dashboard/`)).text();
  return /name="csrf-token" content="([^"]+)"/.exec(html)?.[1] as string;
}

const post = (url: string, headers: Record<string, string>, body: unknown = {}) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });

describe('dashboardHandler', () => {
  it('serves the page with a strict CSP, its assets from the package, and 404 outside basePath', async () => {
    const base = await serve({});
    const page = await fetch(`${base}/dashboard/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await page.text();
    expect(html).not.toMatch(/https?:\/\//); // no CDN
    for (const asset of ['uplot.js', 'uplot.css', 'dashboard.js', 'dashboard.css']) {
      const response = await fetch(`${base}/dashboard/assets/${asset}`);
      expect(response.status, asset).toBe(200);
      expect((await response.text()).length).toBeGreaterThan(500);
    }
    expect((await fetch(`${base}/dashboard/assets/../../package.json`)).status).toBe(404);
    expect((await fetch(`${base}/elsewhere`)).status).toBe(404);
    expect((await fetch(`${base}/dashboard`, { redirect: 'manual' })).headers.get('location')).toBe('/dashboard/');
  });

  it('is read-only without authorize: actions are refused even with a valid token', async () => {
    const base = await serve({});
    const id = await app.queue!.enqueue('fail', {}, { attempts: 1 });
    await app.queue!.queue.wait(id, { timeoutMs: 5000 }).catch(() => undefined);
    const token = await tokenOf(base);
    const response = await post(`${base}/dashboard/api/jobs/${id}/retry`, { 'x-csrf-token': token });
    expect(response.status).toBe(403);
    expect((await app.queue!.status(id))?.state).toBe('failed');
    const state = (await (await fetch(`${base}/dashboard/api/state`)).json()) as { readOnly: boolean };
    expect(state.readOnly).toBe(true);
  });

  it('asks authorize for every request, and readOnly wins over it', async () => {
    const asked: string[] = [];
    const authorize = (req: IncomingMessage, action: string) => {
      asked.push(action);
      return req.headers['x-user'] === 'admin';
    };
    const base = await serve({ authorize });
    expect((await fetch(`${base}/dashboard/`)).status).toBe(403);
    expect((await fetch(`${base}/dashboard/`, { headers: { 'x-user': 'admin' } })).status).toBe(200);
    expect(asked).toContain('view');
    const readOnly = await serve({ authorize: () => true, readOnly: true });
    const token = await tokenOf(readOnly);
    expect(
      (await post(`${readOnly}/dashboard/api/caches/quotes/invalidate`, { 'x-csrf-token': token }, { all: true }))
        .status,
    ).toBe(403);
  });

  it('actions need the page’s CSRF token, JSON, and the same origin', async () => {
    const base = await serve({ authorize: () => true });
    await app.cache('quotes').getOrSet('A', async () => 1);
    const url = `${base}/dashboard/api/caches/quotes/invalidate`;
    expect((await post(url, {}, { all: true })).status).toBe(403);
    expect((await post(url, { 'x-csrf-token': 'forged.token.value' }, { all: true })).status).toBe(403);
    const token = await tokenOf(base);
    const tampered = `${token.slice(0, -2)}xx`;
    expect((await post(url, { 'x-csrf-token': tampered }, { all: true })).status).toBe(403);
    const form = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-csrf-token': token },
      body: 'all=true',
    });
    expect(form.status).toBe(415);
    expect((await post(url, { 'x-csrf-token': token, origin: 'https://evil.example' }, { all: true })).status).toBe(
      403,
    );
    expect(app.cache('quotes').stats().size).toBe(1);
    // A token from another dashboard instance (another secret) is not accepted here.
    const other = await tokenOf(await serve({ authorize: () => true }));
    expect((await post(url, { 'x-csrf-token': other }, { all: true })).status).toBe(403);
    const ok = await post(url, { 'x-csrf-token': token }, { all: true });
    expect(ok.status).toBe(200);
    expect(app.cache('quotes').stats().size).toBe(0);
  });

  it('masks credentials in URLs and error texts, and redacts job data by field name', async () => {
    const base = await serve({ redactFields: ['apiKey', 'customer_ssn'], maxValueChars: 200 });
    const id = await app.queue!.enqueue(
      'fail',
      {
        password: 'kept-by-config',
        apiKey: 'k-123',
        nested: { 'Customer-SSN': '078-05-1120' },
        long: 'x'.repeat(1000),
      },
      { attempts: 1 },
    );
    await app.queue!.queue.wait(id, { timeoutMs: 5000 }).catch(() => undefined);
    const text = await (await fetch(`${base}/dashboard/api/state`)).text();
    expect(text).not.toContain('s3cr3t');
    expect(text).toContain('postgres://svc:***@db.internal/app');
    expect(text).not.toContain('k-123');
    expect(text).not.toContain('078-05-1120');
    expect(text).toContain('kept-by-config'); // the list is the configured one, not the default
    const state = JSON.parse(text);
    const row = [...state.queue.failed, ...state.queue.recentlyFailed].find((job: { id: string }) => job.id === id);
    expect(row.data.length).toBeLessThan(260);
    expect(row.data).toMatch(/… \(\d+ characters\)$/);
  });

  it('streams snapshots over SSE and refuses pages past maxClients', async () => {
    const base = await serve({ maxClients: 2 });
    const open = () =>
      new Promise<{ status: number; first: Promise<string>; close: () => void }>((resolve, reject) => {
        const req = request(`${base}/dashboard/api/events`, (res) => {
          let buffer = '';
          const first = new Promise<string>((got) => {
            res.on('data', (chunk) => {
              buffer += chunk;
              if (buffer.includes('event: snapshot')) got(buffer);
            });
          });
          resolve({ status: res.statusCode ?? 0, first, close: () => req.destroy() });
        });
        req.on('error', reject);
        req.end();
      });
    const a = await open();
    const b = await open();
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(await a.first).toContain('"storage"');
    const c = await open();
    expect(c.status).toBe(503);
    a.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const d = await open();
    expect(d.status).toBe(200);
    for (const stream of [b, c, d]) stream.close();
  });

  it('refuses bad options', () => {
    expect(() => dashboardHandler(app, { basePath: '/a"><script>' })).toThrow(ConfigError);
    expect(() => dashboardHandler(app, { refreshMs: 1 })).toThrow(ConfigError);
    expect(() => dashboardHandler(app, { nope: 1 } as never)).toThrow(ConfigError);
  });
});

describe('dashboard helpers', () => {
  it('the chart history is a fixed ring: memory does not grow with samples or series names', () => {
    const history = new SeriesHistory(10, 3);
    for (let i = 0; i < 1000; i++) history.push(i * 1000, new Map([[`s${i % 5}`, i]]));
    expect(history.length).toBe(10);
    expect(history.bytes).toBe((3 + 1) * 10 * 8);
    const json = history.toJSON();
    expect(json.t).toHaveLength(10);
    expect(json.t[9]).toBe(999);
    expect(Object.keys(json.series)).toEqual(['s0', 's1', 's2']);
    // The live stream sends only the rows after what a page has.
    const tail = history.toJSON(998);
    expect(tail).toMatchObject({ seq: 1000, isTail: true, t: [998, 999] });
    expect(history.toJSON(1000).t).toEqual([]);
    expect(history.toJSON(0).t).toHaveLength(10);
  });

  it('masks and redacts', () => {
    expect(maskCredentials('redis://:pw@h:6379 and https://u:p@x.y/z')).toBe(
      'redis://:***@h:6379 and https://u:***@x.y/z',
    );
    const redactor = new Redactor(['token'], 100);
    expect(redactor.show({ Token: 'a', list: [{ TOKEN: 'b' }], ok: 1 })).toBe(
      '{"Token":"[redacted]","list":[{"TOKEN":"[redacted]"}],"ok":1}',
    );
  });
});
