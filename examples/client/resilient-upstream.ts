/**
 * Calling a flaky, rate-limited upstream with one APIClient: a 429 with Retry-After is waited out
 * (never retried early), a 503 is retried with backoff, identical GETs in flight share one request,
 * responses are cached per Cache-Control, and latencies are recorded per route template.
 * Run: node --import tsx examples/client/resilient-upstream.ts
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { APIClient } from 'hotpath/client';

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

// A tiny response cache (hotpath's Cache fits the same two methods).
const store = new Map<string, unknown>();
const cache = {
  get: (key: string) => store.get(key),
  set: (key: string, value: unknown) => void store.set(key, value),
};

// Latencies per route template (hotpath's Profiler fits `record`).
const latencies = new Map<string, number>();
const profiler = { record: (name: string) => void latencies.set(name, (latencies.get(name) ?? 0) + 1) };

// The limiter every attempt goes through; it hears about the 429 and the RateLimit fields.
let pausedMs = 0;
let lastRemaining: number | undefined;
const rateLimiter = {
  acquire: async () => () => {},
  penalize: (ms: number) => void (pausedMs += ms),
  updateRemaining: (remaining: number) => void (lastRemaining = remaining),
};

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
  `waited about ${Math.round(waitedMs / 1000)} s as the server asked; limiter paused for ${pausedMs} ms; remaining quota ${lastRemaining}`,
);

const burst = await Promise.all(Array.from({ length: 10 }, () => api.get('/symbols/MSFT')));
console.log(`10 identical GETs -> ${burst.length} answers, ${api.stats().deduped} shared an in-flight request`);

await api.get('/symbols/MSFT');
console.log(`cache hits: ${api.stats().cacheHits}`);
console.log(`profiled routes: ${[...latencies.keys()].sort().join(', ')}`);

upstream.close();
