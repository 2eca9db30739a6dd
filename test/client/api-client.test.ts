import { Cache } from 'hotpath/cache';
import { APIClient, type CachedResponse, ResponseParseError } from 'hotpath/client';
import { ClosedError, ConfigError, HttpError, isHotpathError, RateLimitError } from 'hotpath/core';
import { Profiler } from 'hotpath/profiling';
import { afterEach, describe, expect, it } from 'vitest';
import { until } from './drive.js';
import { type Handler, json, type ScriptedServer, startServer, text } from './scripted-server.js';

let s: ScriptedServer;
const clients: APIClient[] = [];
function client(options: Omit<ConstructorParameters<typeof APIClient>[0], 'baseUrl'> & { baseUrl?: string } = {}) {
  const api = new APIClient({ baseUrl: s.url, ...options });
  clients.push(api);
  return api;
}
afterEach(async () => {
  for (const api of clients.splice(0)) await api.close();
  await s?.close();
});

const echo: Handler = (req, res, body) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ method: req.method, url: req.url, body, headers: req.headers }));
};

interface Echo {
  method: string;
  url: string;
  body: string;
  headers: Record<string, string>;
}

describe('requests', () => {
  it('joins the base path, encodes the query and sends JSON both ways', async () => {
    s = await startServer(echo);
    const api = client({ baseUrl: `${s.url}/api/v2/`, headers: { 'X-Client': 'hotpath' } });
    const got = await api.get<Echo>('users/42', { query: { q: 'a b&c', tags: ['x', 'y'], skip: undefined, n: 3 } });
    expect(got.url).toBe('/api/v2/users/42?q=a%20b%26c&tags=x&tags=y&n=3');
    expect(got.headers['x-client']).toBe('hotpath');
    expect(got.headers.accept).toBe('application/json');
    const posted = await api.post<Echo>('/orders?src=test', { json: { qty: 2 }, query: { dry: true } });
    expect(posted).toMatchObject({ method: 'POST', url: '/api/v2/orders?src=test&dry=true', body: '{"qty":2}' });
    expect(posted.headers['content-type']).toBe('application/json');
    const sameOrigin = await api.get<Echo>(`${s.url}/other/path`);
    expect(sameOrigin.url).toBe('/other/path');
  });

  it('offers every verb, raw bodies and the full response from request()', async () => {
    s = await startServer(echo);
    const api = client();
    for (const verb of ['put', 'patch', 'delete'] as const) {
      expect((await api[verb]<Echo>('/r', { json: { v: verb } })).method).toBe(verb.toUpperCase());
    }
    const raw = await api.post<Echo>('/raw', { body: 'a=1', headers: { 'content-type': 'text/plain' } });
    expect(raw).toMatchObject({ body: 'a=1' });
    expect(raw.headers['content-type']).toBe('text/plain');
    const head = await api.request('HEAD', '/h');
    expect(head).toMatchObject({ status: 200, data: undefined });
    const response = await api.request<Echo>('get', '/full');
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toBe('application/json');
    expect(response.data.method).toBe('GET');
  });

  it('reads text, bytes and empty bodies', async () => {
    s = await startServer(text(200, 'plain words'));
    const api = client();
    await expect(api.get('/t', { responseType: 'text' })).resolves.toBe('plain words');
    const bytes = await api.get<Uint8Array>('/b', { responseType: 'bytes' });
    expect(Buffer.from(bytes).toString()).toBe('plain words');
    s.setDefault((_req, res) => {
      res.writeHead(204);
      res.end();
    });
    await expect(api.delete('/gone')).resolves.toBeUndefined();
  });

  it('turns a non-JSON body into a ResponseParseError carrying the raw text', async () => {
    s = await startServer(
      text(200, '<html><body>Bad Gateway from proxy</body></html>', { 'content-type': 'text/html' }),
    );
    const api = client();
    const error = await api.get('/x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ResponseParseError);
    expect(error).toBeInstanceOf(HttpError);
    const parseError = error as ResponseParseError;
    expect(parseError.rawText).toBe('<html><body>Bad Gateway from proxy</body></html>');
    expect(parseError.contentType).toBe('text/html');
    expect(parseError.status).toBe(200);
    expect(parseError.message).toMatch(/expected a JSON body but got text\/html/);
    expect(parseError.message).toContain('<html>');
    expect(isHotpathError(parseError, 'ERR_HOTPATH_HTTP')).toBe(true);
    expect(api.stats()).toMatchObject({ failed: 1, retries: 0 });
  });

  it('refuses a success body larger than maxResponseBytes', async () => {
    s = await startServer(json(200, { blob: 'y'.repeat(10_000) }));
    const api = client({ maxResponseBytes: 1000 });
    const error = await api.get('/big').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ResponseParseError);
    expect((error as Error).message).toContain('exceeded maxResponseBytes 1000');
    await expect(client({ maxResponseBytes: 20_000 }).get('/big')).resolves.toMatchObject({ blob: expect.any(String) });
  });

  it('bounds the error body kept on HttpError', async () => {
    s = await startServer(text(500, 'x'.repeat(200_000)));
    const api = client({ retry: false });
    const error = (await api.get('/x').catch((e: unknown) => e)) as HttpError;
    expect(error.status).toBe(500);
    expect(error.body.length).toBeLessThanOrEqual(2049);
    expect(error.message).toBe(`GET ${s.url}/x failed with HTTP 500`);
  });

  it('rejects bad options and arguments with ConfigError, leaving the client usable', async () => {
    s = await startServer();
    expect(() => new APIClient({} as never)).toThrow(/APIClient.baseUrl is required/);
    expect(() => new APIClient({ baseUrl: 'ftp://x' })).toThrow(ConfigError);
    expect(() => new APIClient({ baseUrl: 'http://user:pw@host' })).toThrow(/credentials/);
    expect(() => new APIClient({ baseUrl: s.url, timeoutMs: -1 })).toThrow(/timeoutMs/);
    expect(() => new APIClient({ baseUrl: s.url, connections: 0 })).toThrow(/connections/);
    expect(() => new APIClient({ baseUrl: s.url, retry: { retries: -1 } })).toThrow(/retries/);
    expect(() => new APIClient({ baseUrl: s.url, retry: { statusCodes: [42] } })).toThrow(/statusCodes/);
    expect(() => new APIClient({ baseUrl: s.url, headers: { 'bad header': 'x' } })).toThrow(/header name/);
    expect(() => new APIClient({ baseUrl: s.url, rateLimiter: {} as never })).toThrow(/acquire/);
    expect(() => new APIClient({ baseUrl: s.url, colour: 'red' } as never)).toThrow(/colour/);
    const api = client();
    await expect(api.get('http://elsewhere.example/x')).rejects.toThrow(/another origin/);
    await expect(api.get('/x', { timeoutMs: 0 })).rejects.toThrow(ConfigError);
    await expect(api.get('/x', { bogus: true } as never)).rejects.toThrow(/bogus/);
    await expect(api.request('NOT A METHOD', '/x')).rejects.toThrow(ConfigError);
    await expect(api.get('/a path with spaces')).rejects.toThrow(/invalid characters/);
    await expect(api.post('/x', { json: {}, body: 'x' })).rejects.toThrow(/either json or body/);
    await expect(api.get('/x')).resolves.toEqual({ ok: true });
    expect(s.seen).toHaveLength(1);
  });

  it('refuses an object query value and a header value with CR/LF with ConfigError, before sending', async () => {
    s = await startServer(echo);
    const api = client();
    const objectQuery = await api.get('/x', { query: { filter: { a: 1 } } as never }).catch((e: unknown) => e);
    expect(objectQuery).toBeInstanceOf(ConfigError);
    expect((objectQuery as ConfigError).message).toMatch(/query\.filter/);
    await expect(api.get('/x', { query: { ids: [1, { a: 1 }] } as never })).rejects.toThrow(/query\.ids/);
    await expect(api.get('/x', { query: { at: new Date(0) } as never })).rejects.toBeInstanceOf(ConfigError);
    const injected = await api.get('/x', { headers: { 'x-trace': 'a\r\nx-admin: yes' } }).catch((e: unknown) => e);
    expect(injected).toBeInstanceOf(ConfigError);
    expect((injected as ConfigError).message).not.toContain('x-admin'); // the value is never echoed
    expect(() => new APIClient({ baseUrl: s.url, headers: { authorization: 'Bearer t\n' } })).toThrow(ConfigError);
    expect(s.seen).toHaveLength(0);
    expect(api.stats()).toMatchObject({ attempts: 0, requests: 0 });
  });

  it('keeps relative paths inside the base path; an absolute same-origin URL leaves it on purpose', async () => {
    s = await startServer(echo);
    const api = client({ baseUrl: `${s.url}/v2/` });
    for (const escapingPath of ['../admin', '/../admin', 'users/../../admin', '%2e%2e/admin', '/.%2E/admin?x=1']) {
      await expect(api.get(escapingPath), escapingPath).rejects.toThrow(/leaves the base path/);
    }
    expect(s.seen).toHaveLength(0);
    expect((await api.get<Echo>('users/../orders/./7')).url).toBe('/v2/orders/7');
    expect((await api.get<Echo>('files/a..b/.hidden?next=../x')).url).toBe('/v2/files/a..b/.hidden?next=../x');
    expect((await api.get<Echo>(`${s.url}/admin`)).url).toBe('/admin');
  });

  it('limits attempts in flight with maxConcurrent', async () => {
    s = await startServer((req, res) => setTimeout(() => json(200, { url: req.url })(req, res, ''), 20));
    const api = client({ maxConcurrent: 2 });
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => api.get(`/n/${i}`)));
    expect(results).toHaveLength(8);
    expect(s.maxActive()).toBe(2);
    const full = client({ maxConcurrent: 1, maxQueued: 1 });
    const calls = [full.get('/a'), full.get('/b'), full.get('/c')];
    const settled = await Promise.allSettled(calls);
    expect(settled.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason)).toEqual([
      expect.any(RateLimitError),
    ]);
  });
});

describe('dedupe and cache', () => {
  it('identical in-flight GETs share one request; different ones do not', async () => {
    let release: (() => void) | undefined;
    s = await startServer((req, res) => {
      release = () => json(200, { url: req.url })(req, res, '');
    });
    const api = client({ dedupe: true });
    const calls = Array.from({ length: 5 }, () => api.get('/same', { query: { a: 1 } }));
    await until(() => release !== undefined, 'the request');
    release?.();
    const results = await Promise.all(calls);
    expect(results.every((r) => (r as { url: string }).url === '/same?a=1')).toBe(true);
    expect(s.seen).toHaveLength(1);
    expect(api.stats()).toMatchObject({ requests: 1, deduped: 4 });
    s.setDefault(json(200, {}));
    await Promise.all([api.get('/one'), api.get('/two'), api.get('/one', { headers: { 'x-user': 'b' } })]);
    expect(s.seen).toHaveLength(4);
  });

  it('one caller aborting leaves the shared request to the others; the last one cancels it', async () => {
    let release: (() => void) | undefined;
    s = await startServer((req, res) => {
      release = () => json(200, { ok: 1 })(req, res, '');
    });
    const api = client({ dedupe: true });
    const first = new AbortController();
    const second = new AbortController();
    const a = api.get('/s', { signal: first.signal });
    const b = api.get('/s', { signal: second.signal });
    await until(() => release !== undefined, 'the request');
    first.abort(new Error('a left'));
    await expect(a).rejects.toThrow('a left');
    release?.();
    await expect(b).resolves.toEqual({ ok: 1 });

    release = undefined;
    const c1 = new AbortController();
    const c2 = new AbortController();
    const c = api.get('/t', { signal: c1.signal });
    const d = api.get('/t', { signal: c2.signal });
    await until(() => release !== undefined, 'the second request');
    c1.abort(new Error('c left'));
    c2.abort(new Error('d left'));
    await expect(c).rejects.toThrow('c left');
    await expect(d).rejects.toThrow('d left');
    await s.waitForSocketClose(1); // nobody wanted it any more: the socket was aborted
  });

  it('caches GET responses, honouring no-store, no-cache and max-age', async () => {
    s = await startServer(json(200, { n: 1 }, { 'cache-control': 'max-age=30' }));
    const store = new Map<string, { value: CachedResponse; ttlMs: number }>();
    const cache = {
      get: (key: string) => store.get(key)?.value,
      set: (key: string, value: CachedResponse, options: { ttlMs: number }) => {
        store.set(key, { value, ttlMs: options.ttlMs });
      },
    };
    const api = client({ cache, cacheTtlMs: 60_000 });
    await expect(api.get('/c')).resolves.toEqual({ n: 1 });
    await expect(api.get('/c')).resolves.toEqual({ n: 1 });
    expect(s.seen).toHaveLength(1);
    expect([...store.values()][0]?.ttlMs).toBe(30_000);
    await api.get('/c', { cache: false });
    expect(s.seen).toHaveLength(2);

    for (const control of ['no-store', 'no-cache', 'max-age=0', 'private, no-store']) {
      s.setDefault(json(200, { control }, { 'cache-control': control }));
      await api.get(`/nc/${encodeURIComponent(control)}`);
      await api.get(`/nc/${encodeURIComponent(control)}`);
    }
    expect(s.seen).toHaveLength(10);
    s.setDefault(json(200, {}, { 'cache-control': 'max-age=600', age: '590' }));
    await api.get('/aged');
    expect(store.get('/aged')?.ttlMs).toBe(10_000);
    s.setDefault(json(200, {}));
    await api.get('/plain');
    expect(store.get('/plain')?.ttlMs).toBe(60_000);
    s.setDefault(json(500, {}));
    await expect(api.get('/err', { retry: false })).rejects.toBeInstanceOf(HttpError);
    expect(store.has('/err')).toBe(false);
    expect(api.stats()).toMatchObject({ cacheHits: 1 });
  });

  it('works with hotpath Cache as the response cache', async () => {
    s = await startServer(json(200, { fresh: true }, { 'cache-control': 'max-age=60' }));
    const cache = new Cache<CachedResponse>({ max: 100, ttlMs: 300_000 });
    const api = client({ cache });
    await api.get('/c', { query: { id: 1 } });
    const response = await api.request('GET', '/c', { query: { id: 1 } });
    expect(response).toMatchObject({ status: 200, data: { fresh: true } });
    expect(s.seen).toHaveLength(1);
    expect(cache.stats()).toMatchObject({ hits: 1 });
    await cache.close();
  });

  it('a cache that throws is counted and bypassed', async () => {
    s = await startServer(json(200, { fine: true }));
    const lines: string[] = [];
    const logger = {
      debug: () => {},
      info: () => {},
      warn: (_obj: object, msg?: string) => lines.push(msg ?? ''),
      error: () => {},
    };
    const broken = {
      get: async () => {
        throw new Error('redis down');
      },
      set: () => {
        throw new Error('redis down');
      },
    };
    const api = client({ cache: broken, logger });
    await expect(api.get('/x')).resolves.toEqual({ fine: true });
    expect(api.stats().cacheErrors).toBe(2);
    expect(lines).toHaveLength(2);
  });
});

describe('metrics and lifecycle', () => {
  it('records client.request per method and route template, with bounded names', async () => {
    s = await startServer();
    const samples: Array<{ name: string; ms: number; isError: boolean | undefined }> = [];
    const profiler = { record: (name: string, ms: number, isError?: boolean) => samples.push({ name, ms, isError }) };
    const api = client({ profiler, retry: false });
    await api.get('/users/42/orders?page=2');
    await api.get('/users/7d0f6a2e-0f4c-4c57-9d43-2b1a4d2c9e11');
    await api.get('/users/alice', { route: '/users/:name' });
    s.setDefault(json(500, {}));
    await api.post('/users/42').catch(() => {});
    expect(samples.map((x) => x.name)).toEqual([
      'client.request GET /users/:id/orders',
      'client.request GET /users/:id',
      'client.request GET /users/:name',
      'client.request POST /users/:id',
    ]);
    expect(samples.map((x) => x.isError)).toEqual([false, false, false, true]);
    expect(samples.every((x) => x.ms >= 0)).toBe(true);
    s.setDefault(json(200, {}));
    const word = (i: number) => String.fromCharCode(97 + (i % 26), 97 + Math.floor(i / 26));
    for (let i = 0; i < 300; i++) await api.get(`/${word(i)}`);
    const names = new Set(samples.map((x) => x.name));
    expect(names.size).toBeLessThanOrEqual(257);
    expect(names.has('client.request GET (other)')).toBe(true);
  });

  it('feeds a hotpath Profiler', async () => {
    s = await startServer();
    const profiler = new Profiler();
    const api = client({ profiler });
    for (let i = 0; i < 3; i++) await api.get(`/orders/${1000 + i}`);
    expect(profiler.stats('client.request GET /orders/:id')).toMatchObject({ count: 3, errors: 0 });
    expect(Object.keys(profiler.snapshot()).filter((name) => name.startsWith('client.request'))).toEqual([
      'client.request GET /orders/:id',
    ]);
  });

  it('close() is idempotent, rejects later calls with ClosedError and works with await using', async () => {
    s = await startServer();
    const api = new APIClient({ baseUrl: s.url });
    await api.get('/x');
    await Promise.all([api.close(), api.close()]);
    await expect(api.get('/x')).rejects.toBeInstanceOf(ClosedError);
    {
      await using scoped = new APIClient({ baseUrl: s.url });
      await scoped.get('/y');
    }
    await s.waitForSocketClose(2);
  });

  it('close() wakes a call sleeping before its retry with ClosedError', async () => {
    s = await startServer(json(503, {}, { 'retry-after': '30' }));
    const api = new APIClient({ baseUrl: s.url, timeoutMs: 60_000 });
    const outcome = api.get('/x').catch((e: unknown) => e);
    await until(() => api.stats().retries === 1, 'the retry to be scheduled');
    await api.close();
    expect(await outcome).toBeInstanceOf(ClosedError);
    expect(s.seen).toHaveLength(1);
  });

  it('close() lets a request in flight finish', async () => {
    let release: (() => void) | undefined;
    s = await startServer((req, res) => {
      release = () => json(200, { late: true })(req, res, '');
    });
    const api = new APIClient({ baseUrl: s.url });
    const pending = api.get('/slow');
    await until(() => release !== undefined, 'the request');
    const closing = api.close();
    release?.();
    await expect(pending).resolves.toEqual({ late: true });
    await closing;
  });
});
