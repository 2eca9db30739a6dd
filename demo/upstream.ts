/**
 * A local stand-in for a third-party market-data API, the kind the seeds call: a strict rate limit
 * (429 + Retry-After + RateLimit headers beyond it), variable latency and occasional 503s.
 * Runs on 127.0.0.1 on a free port. Everything it does is counted so the demo can report it.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface UpstreamOptions {
  /** Requests allowed per window (sliding), per the whole server. */
  limit: number;
  /** Window length in ms. */
  windowMs: number;
  /** Fraction of requests answered 503 (0–1). */
  failureRate: number;
  /** Latency range in ms. */
  minLatencyMs: number;
  maxLatencyMs: number;
  /** Seed for the pseudo-random latency and failures, so runs are comparable. */
  seed?: number;
}

export interface UpstreamCounts {
  requests: number;
  ok: number;
  rateLimited: number;
  unavailable: number;
}

export interface Upstream {
  url: string;
  counts: UpstreamCounts;
  close(): Promise<void>;
}

/** Mulberry32: a tiny seeded PRNG, so the demo's failures are reproducible. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function quote(symbol: string) {
  let hash = 0;
  for (const char of symbol) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  const base = 20 + (hash % 480);
  const history = Array.from(
    { length: 30 },
    (_, day) => Math.round((base + Math.sin(day / 3 + hash) * base * 0.05) * 100) / 100,
  );
  return { symbol, price: history.at(-1), currency: 'USD', history };
}

export async function startUpstream(options: UpstreamOptions): Promise<Upstream> {
  const random = prng(options.seed ?? 42);
  const starts: number[] = [];
  const counts: UpstreamCounts = { requests: 0, ok: 0, rateLimited: 0, unavailable: 0 };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    counts.requests++;
    const now = Date.now();
    while (starts.length > 0 && (starts[0] as number) <= now - options.windowMs) starts.shift();
    const remaining = Math.max(0, options.limit - starts.length);
    const resetS =
      starts.length > 0 ? Math.max(1, Math.ceil(((starts[0] as number) + options.windowMs - now) / 1000)) : 1;
    res.setHeader('RateLimit-Policy', `"default";q=${options.limit};w=${Math.ceil(options.windowMs / 1000)}`);
    if (remaining === 0) {
      counts.rateLimited++;
      res.writeHead(429, {
        'content-type': 'application/json',
        'retry-after': String(resetS),
        RateLimit: `"default";r=0;t=${resetS}`,
      });
      res.end(JSON.stringify({ error: 'rate limited' }));
      return;
    }
    starts.push(now);
    res.setHeader('RateLimit', `"default";r=${remaining - 1};t=${resetS}`);
    const latency = options.minLatencyMs + random() * (options.maxLatencyMs - options.minLatencyMs);
    const fails = random() < options.failureRate;
    setTimeout(() => {
      if (fails) {
        counts.unavailable++;
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'temporarily unavailable' }));
        return;
      }
      const match = /^\/v1\/quotes\/([A-Z0-9.]{1,12})$/.exec(req.url ?? '');
      if (!match) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'not found' }));
        return;
      }
      counts.ok++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(quote(match[1] as string)));
    }, latency);
  };

  const server = createServer(handle);
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    counts,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
