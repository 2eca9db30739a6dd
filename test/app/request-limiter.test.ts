/**
 * Inbound rate limiting on Express, Fastify and node:http. Cases ported from express-rate-limit's and
 * @fastify/rate-limit's suites where the behaviour applies (noted per test), plus the trusted-proxy
 * walk, IPv6 grouping and the sliding window that a fixed window does not give.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { fastifyLimiter, limitRequests, type RequestLimiterOptions, requestLimiter } from 'hotpath/app';
import { MemoryRateLimitStore, type RateLimitStore } from 'hotpath/ratelimit';
import { afterEach, describe, expect, it } from 'vitest';

type Kind = 'express' | 'fastify' | 'http';
const KINDS: Kind[] = ['express', 'fastify', 'http'];

interface Served {
  url: string;
  close(): Promise<void>;
}

const open: Served[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((served) => served.close()));
});

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function closeAll(server: Server, limiter: { close(): Promise<void> }): Promise<void> {
  await new Promise((resolve) => server.close(resolve));
  await limiter.close();
}

/** A server of `kind` answering "ok" on every path, with the limiter in front. */
async function serve(kind: Kind, options: RequestLimiterOptions): Promise<Served> {
  let served: Served;
  if (kind === 'express') {
    const app = express();
    const limiter = requestLimiter(options);
    app.use(limiter);
    app.get('/{*path}', (_req, res) => {
      res.send('ok');
    });
    const server = createServer(app);
    const url = await listen(server);
    served = { url, close: () => closeAll(server, limiter) };
  } else if (kind === 'fastify') {
    const app = Fastify();
    await app.register(fastifyLimiter, options);
    app.get('/*', async () => 'ok');
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    served = { url, close: () => app.close() };
  } else {
    const handler = limitRequests((_req, res) => res.end('ok'), options);
    const server = createServer(handler);
    const url = await listen(server);
    served = { url, close: () => closeAll(server, handler) };
  }
  open.push(served);
  return served;
}

async function hit(url: string, headers: Record<string, string> = {}): Promise<Response> {
  const response = await fetch(url, { headers });
  await response.text();
  return response;
}

async function statuses(url: string, count: number, headers: Record<string, string> = {}): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push((await hit(url, headers)).status);
  return out;
}

describe.each(KINDS)('inbound limiter on %s', (kind) => {
  // express-rate-limit "should respond with 429 when the limit is exceeded"; @fastify/rate-limit "Basic".
  it('lets `limit` requests through, then answers 429 with Retry-After and the IETF fields', async () => {
    const { url } = await serve(kind, { limit: 3, intervalMs: 60_000 });
    const allowed = [];
    for (let i = 0; i < 3; i++) allowed.push(await hit(url));
    expect(allowed.map((r) => r.status)).toEqual([200, 200, 200]);
    // Remaining quota on allowed responses (express-rate-limit "RateLimit-Remaining decreases").
    expect(allowed.map((r) => r.headers.get('ratelimit'))).toEqual([
      '"3-in-60s";r=2;t=60',
      '"3-in-60s";r=1;t=60',
      '"3-in-60s";r=0;t=60',
    ]);
    expect(allowed[0]?.headers.get('ratelimit-policy')).toBe('"3-in-60s";q=3;w=60');
    const refused = await hit(url);
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(refused.headers.get('ratelimit')).toMatch(/^"3-in-60s";r=0;t=\d+$/);
    expect(refused.headers.get('x-ratelimit-limit')).toBeNull(); // legacy only on request
  });

  // express-rate-limit legacyHeaders / standardHeaders: false; @fastify/rate-limit x-ratelimit-* headers.
  it('sends legacy X-RateLimit-* fields on request, both, or none', async () => {
    const legacy = await serve(kind, { limit: 2, intervalMs: 10_000, headers: 'legacy' });
    const first = await hit(legacy.url);
    expect(first.headers.get('x-ratelimit-limit')).toBe('2');
    expect(first.headers.get('x-ratelimit-remaining')).toBe('1');
    const reset = Number(first.headers.get('x-ratelimit-reset'));
    expect(reset).toBeGreaterThan(Date.now() / 1000);
    expect(reset).toBeLessThanOrEqual(Date.now() / 1000 + 11);
    expect(first.headers.get('ratelimit')).toBeNull();
    const both = await serve(kind, { limit: 2, intervalMs: 10_000, headers: 'both' });
    const second = await hit(both.url);
    expect(second.headers.get('ratelimit')).not.toBeNull();
    expect(second.headers.get('x-ratelimit-remaining')).toBe('1');
    const none = await serve(kind, { limit: 1, intervalMs: 10_000, headers: 'none' });
    expect((await hit(none.url)).headers.get('ratelimit-policy')).toBeNull();
    const refused = await hit(none.url);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).not.toBeNull(); // a refusal always says when
  });

  // express-rate-limit keyGenerator; @fastify/rate-limit keyGenerator.
  it('keys by a key function (API key) when given', async () => {
    const { url } = await serve(kind, {
      limit: 1,
      intervalMs: 60_000,
      key: (req: IncomingMessage) => req.headers['x-api-key'] as string | undefined,
    });
    expect(await statuses(url, 2, { 'x-api-key': 'a' })).toEqual([200, 429]);
    expect(await statuses(url, 2, { 'x-api-key': 'b' })).toEqual([200, 429]);
    expect(await statuses(url, 1)).toEqual([200]); // no key: the client address
  });

  // The classic bypass: a spoofed, rotating X-Forwarded-For from a client that is not a trusted proxy.
  it('ignores X-Forwarded-For and Forwarded unless the peer is a trusted proxy', async () => {
    const { url } = await serve(kind, { limit: 2, intervalMs: 60_000 });
    const codes = [];
    for (let i = 0; i < 5; i++) {
      codes.push((await hit(url, { 'x-forwarded-for': `203.0.113.${i}`, forwarded: `for=198.51.100.${i}` })).status);
    }
    expect(codes).toEqual([200, 200, 429, 429, 429]);
  });

  it('behind a trusted proxy: walks the chain from the right, so a forged left part gives no fresh bucket', async () => {
    const { url } = await serve(kind, { limit: 2, intervalMs: 60_000, trustedProxies: ['loopback'] });
    // The proxy (127.0.0.1) appended the address it saw (198.51.100.7); the client forged the left part.
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push((await hit(url, { 'x-forwarded-for': `10.9.9.${i}, 198.51.100.7` })).status);
    expect(codes).toEqual([200, 200, 429, 429]);
    // Another real client behind the same proxy has its own bucket.
    expect(await statuses(url, 1, { 'x-forwarded-for': '198.51.100.8' })).toEqual([200]);
    // RFC 7239 Forwarded, with a quoted IPv6 and a port.
    expect(await statuses(url, 3, { forwarded: 'for="[2001:db8:1:1::5]:4711";proto=https' })).toEqual([200, 200, 429]);
  });

  // express-rate-limit 8: ipv6Subnet (default 56).
  it('groups IPv6 clients by /56 (configurable)', async () => {
    const { url } = await serve(kind, { limit: 2, intervalMs: 60_000, trustedProxies: ['loopback'] });
    expect(await statuses(url, 1, { 'x-forwarded-for': '2001:db8:aa:bb01::1' })).toEqual([200]);
    expect(await statuses(url, 1, { 'x-forwarded-for': '2001:db8:aa:bbff:ffff::2' })).toEqual([200]); // same /56
    expect(await statuses(url, 1, { 'x-forwarded-for': '2001:db8:aa:cc00::1' })).toEqual([200]); // other /56
    expect(await statuses(url, 1, { 'x-forwarded-for': '2001:db8:aa:bb42::9' })).toEqual([429]);
    const per64 = await serve(kind, { limit: 1, intervalMs: 60_000, trustedProxies: ['127.0.0.1'], ipv6Prefix: 64 });
    expect(await statuses(per64.url, 1, { 'x-forwarded-for': '2001:db8::1' })).toEqual([200]);
    expect(await statuses(per64.url, 1, { 'x-forwarded-for': '2001:db8:0:1::1' })).toEqual([200]);
  });

  // express-rate-limit skip; @fastify/rate-limit allowList.
  it('does not count skipped requests', async () => {
    const { url } = await serve(kind, { limit: 1, intervalMs: 60_000, skip: (req) => req.url === '/health' });
    expect(await statuses(`${url}/health`, 3)).toEqual([200, 200, 200]);
    expect(await statuses(`${url}/x`, 2)).toEqual([200, 429]);
  });

  // express-rate-limit statusCode / message; @fastify/rate-limit errorResponseBuilder (status only).
  it('answers with the configured status and message', async () => {
    const { url } = await serve(kind, { limit: 1, intervalMs: 60_000, statusCode: 503, message: 'slow down' });
    await hit(url);
    const response = await fetch(url);
    expect(response.status).toBe(503);
    expect(await response.text()).toBe('slow down');
  });

  // express-rate-limit passOnStoreError; @fastify/rate-limit skipOnError.
  it('follows failMode when the store fails: 503 closed (default), through when open', async () => {
    const broken: RateLimitStore = {
      reserve: () => Promise.reject(new Error('store down')),
      release: () => {},
    };
    const closed = await serve(kind, { limit: 5, intervalMs: 1000, store: broken });
    const refused = await hit(closed.url);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    const openToo = await serve(kind, { limit: 5, intervalMs: 1000, store: broken, failMode: 'open' });
    expect(await statuses(openToo.url, 2)).toEqual([200, 200]);
  });

  it('waits instead of refusing when waitMs covers the wait (internal callers)', async () => {
    const { url } = await serve(kind, { limit: 2, intervalMs: 300, waitMs: 2000 });
    expect(await statuses(url, 2)).toEqual([200, 200]);
    const started = Date.now();
    expect((await hit(url)).status).toBe(200);
    expect(Date.now() - started).toBeGreaterThan(50); // it waited for a unit to free
    const short = await serve(kind, { limit: 1, intervalMs: 60_000, waitMs: 100 });
    expect(await statuses(short.url, 2)).toEqual([200, 429]); // a 60 s wait is not taken
  });
});

describe('inbound limiter semantics', () => {
  const request = (address: string, headers: Record<string, string> = {}): IncomingMessage =>
    ({ headers, socket: { remoteAddress: address }, url: '/' }) as unknown as IncomingMessage;

  // Not ported: express-rate-limit's default fixed window admits 2× the limit around a window edge.
  it('is a sliding window: no interval ever admits more than the limit, also across its edge', async () => {
    const handler = limitRequests(() => {}, { limit: 5, intervalMs: 400 });
    const admitted: number[] = [];
    const deadline = Date.now() + 1300;
    while (Date.now() < deadline) {
      if ((await handler.engine.check(request('198.51.100.1'))).allowed) admitted.push(Date.now());
      await new Promise((resolve) => setTimeout(resolve, 7));
    }
    for (let i = 5; i < admitted.length; i++) {
      expect((admitted[i] as number) - (admitted[i - 5] as number)).toBeGreaterThanOrEqual(400);
    }
    expect(admitted.length).toBeGreaterThanOrEqual(10);
    await handler.close();
  });

  it('keeps memory bounded for 1,000,000 distinct clients (idle per-client limiters dropped, windows capped)', async () => {
    const store = new MemoryRateLimitStore({ maxKeys: 200_000 });
    const handler = limitRequests(() => {}, { limit: 10, intervalMs: 60_000, store });
    for (let i = 0; i < 1_000_000; i++) {
      const address = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      const decision = await handler.engine.check(request(`${address === '10.0.0.0' ? '10.255.255.255' : address}`));
      if (!decision.allowed) throw new Error(`client ${i} refused`);
    }
    expect(handler.engine.stats().allowed).toBe(1_000_000);
    expect(handler.engine.stats().clients).toBeLessThan(1000); // per-client limiters are dropped when idle
    expect(store.stats().keys).toBeLessThanOrEqual(200_000); // windows capped at maxKeys
    await handler.close();
  }, 120_000);

  it('rejects bad options with ConfigError naming the option', () => {
    expect(() => requestLimiter({ limit: 0, intervalMs: 1000 })).toThrow(/limit/);
    expect(() => requestLimiter({ limit: 1, intervalMs: 1000, headers: 'draft-7' as never })).toThrow(/headers/);
    expect(() => requestLimiter({ limit: 1, intervalMs: 1000, ipv6Prefix: 129 })).toThrow(/ipv6Prefix/);
    expect(() => requestLimiter({ limit: 1, intervalMs: 1000, trustedProxies: ['not-an-ip'] })).toThrow(
      /trustedProxies/,
    );
    expect(() => requestLimiter({ limit: 1, intervalMs: 1000, trustedProxies: ['10.0.0.0/33'] })).toThrow(
      /trustedProxies/,
    );
    expect(() => requestLimiter({ limit: 1, intervalMs: 1000, windowMs: 5 } as never)).toThrow(/windowMs/);
  });

  it('bounds the work on hostile forwarding headers', async () => {
    const handler = limitRequests(() => {}, { limit: 1, intervalMs: 60_000, trustedProxies: ['loopback'] });
    const huge = `${'1.1.1.1, '.repeat(100_000)}198.51.100.9`;
    expect((await handler.engine.check(request('127.0.0.1', { 'x-forwarded-for': huge }))).allowed).toBe(true);
    const again = await handler.engine.check(request('127.0.0.1', { 'x-forwarded-for': 'x, 198.51.100.9' }));
    expect(again.allowed).toBe(false); // the same client: 198.51.100.9
    await handler.close();
    // Trusting every hop: an entry that is not an address ends the walk at the last address vouched for.
    const trusting = limitRequests(() => {}, { limit: 1, intervalMs: 60_000, trustedProxies: () => true });
    const forged = (left: string) => request('127.0.0.1', { 'x-forwarded-for': `${left}, garbage, 203.0.113.5` });
    expect((await trusting.engine.check(forged('1.1.1.1'))).allowed).toBe(true);
    expect((await trusting.engine.check(forged('2.2.2.2'))).allowed).toBe(false);
    await trusting.close();
  });
});

describe('fastifyLimiter per route group', () => {
  // @fastify/rate-limit "route-rate-limit" / "group-rate-limit": a limit on one group leaves others alone.
  it('applies only to the routes of the context it is registered in', async () => {
    const app = Fastify();
    await app.register(
      async (api) => {
        await api.register(fastifyLimiter, { limit: 1, intervalMs: 60_000 });
        api.get('/a', async () => 'a');
      },
      { prefix: '/api' },
    );
    app.get('/free', async () => 'free');
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    open.push({ url, close: () => app.close() });
    expect(await statuses(`${url}/api/a`, 2)).toEqual([200, 429]);
    expect(await statuses(`${url}/free`, 3)).toEqual([200, 200, 200]);
  });
});
