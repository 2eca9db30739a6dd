/**
 * Calling a flaky, rate-limited upstream with one APIClient: a 429 with Retry-After is waited out
 * (never retried early), a 503 is retried with backoff, identical GETs in flight share one request,
 * responses are cached per Cache-Control, and latencies are recorded per route template.
 * Run: node --import tsx examples/client/resilient-upstream.ts
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Cache } from 'hotpath/cache';
import { APIClient, type CachedResponse } from 'hotpath/client';
import { RateLimiter } from 'hotpath/ratelimit';

// A stand-in upstream: the first quote request is throttled, the second hits a 503, then it behaves.
let quoteCalls = 0;
const upstream = createServer((req, res) => {
  if (req.url?.startsWith('/v1/quotes/')) {
    quoteCalls++;
    if (quoteCalls === 1) {
      res.writeHead(429, { 'retry-after': '1', 'content-type': 'application/json' });
      return res.end('{"error":"slow down"}');
    }
    if (quoteCalls === 2) {
      res.writeHead(503, { 'content-type': 'application/json' });
      return res.end('{"error":"try again"}');
    }
  }
  const symbol = req.url?.split('/').pop()?.split('?')[0];
  setTimeout(() => {
    res.writeHead(200, {
      'content-type': 'application/json',
      'cache-control': 'max-age=5',
      ratelimit: '"per-minute";r=57;t=42',
      'ratelimit-policy': '"per-minute";q=60;w=60',
    });
    res.end(JSON.stringify({ symbol, price: 101.5 }));
  }, 20);
});
await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
const { port } = upstream.address() as AddressInfo;

// GET responses are cached for as long as the upstream's Cache-Control allows (here max-age=5).
await using cache = new Cache<CachedResponse>({ max: 1_000, ttlMs: 60_000 });

// Latencies per route template (hotpath's Profiler fits `record`).
const latencies = new Map<string, number>();
const profiler = { record: (name: string) => void latencies.set(name, (latencies.get(name) ?? 0) + 1) };

// Every attempt, retries included, takes a slot; the 429 pauses it for everyone who shares it.
await using rateLimiter = new RateLimiter({ limit: 60, intervalMs: 60_000, maxConcurrent: 10 });

await using api = new APIClient({
  baseUrl: `http://127.0.0.1:${port}/v1`,
  headers: { authorization: 'Bearer example-token' },
  timeoutMs: 10_000,
  attemptTimeoutMs: 2_000,
  retry: { retries: 3, baseDelayMs: 50, maxDelayMs: 1_000 },
  rateLimiter,
  circuitBreaker: { failureThreshold: 5, halfOpenAfterMs: 10_000 },
  dedupe: true,
  cache,
  profiler,
});

const started = performance.now();
const quote = await api.get<{ symbol: string; price: number }>('/quotes/AAPL', { route: '/quotes/:symbol' });
const waitedMs = performance.now() - started;
console.log(`quote ${quote.symbol} = ${quote.price} after ${api.stats().attempts} attempts`);
console.log(
  `waited ${Math.floor(waitedMs)} ms (the server asked for 1 s); limiter penalties: ${rateLimiter.stats().penalties}; slots taken: ${rateLimiter.stats().started}`,
);

const burst = await Promise.all(Array.from({ length: 10 }, () => api.get('/symbols/MSFT')));
console.log(`10 identical GETs -> ${burst.length} answers, ${api.stats().deduped} shared an in-flight request`);

await api.get('/symbols/MSFT');
console.log(`cache hits: ${api.stats().cacheHits} (Cache stats: ${cache.stats().hits} hit)`);
console.log(`profiled routes: ${[...latencies.keys()].sort().join(', ')}`);

upstream.close();
