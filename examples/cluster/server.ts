/**
 * A quotes service on node:cluster: 4 worker processes behind one port share ONE cache and ONE rate
 * limit through Redis, wired by `createHotpath({ redisUrl })` in each worker:
 *   - the cache `quotes` gets a Redis tier and the invalidation bus: a cold symbol is fetched from the
 *     quotes API once for ALL workers, and a refresh on one worker drops it on every worker;
 *   - the limiter `quotes-api` (5 calls/s) counts every worker's calls in one window on Redis, so the
 *     upstream's 10/s is not exceeded however requests spread over the workers. The limiter counts
 *     starts and the upstream counts arrivals: half the quota leaves room for arrival jitter across 4
 *     busy processes (at 8/s a loaded machine saw arrivals of two windows touch).
 *   GET  /quotes/:symbol           cached read
 *   POST /quotes/:symbol/refresh   drops the symbol in every worker's cache
 * Every answer names the worker that served it (`x-worker`).
 *
 * Run (the first command starts a stand-in quotes API on port 8081):
 *   node --import tsx examples/shared/quotes-upstream.ts &
 *   HOTPATH_REDIS_URL=redis://127.0.0.1:6379 QUOTES_API_URL=http://127.0.0.1:8081/v1 PORT=3000 \
 *     node --import tsx examples/cluster/server.ts
 */
import cluster from 'node:cluster';
import { createServer, type ServerResponse } from 'node:http';
import { createHotpath } from 'hotpath/app';

const WORKERS = Number(process.env.WORKERS ?? 4);
const quotesApi = process.env.QUOTES_API_URL ?? 'http://127.0.0.1:8081/v1';
// Names of the shared cache and limiter: every process of one deployment must use the same (tests give
// each run its own).
const service = process.env.SERVICE_NAME ?? 'quotes';

if (cluster.isPrimary) {
  let listening = 0;
  cluster.on('listening', (_worker, address) => {
    // Workers share the primary's socket: the same port for all of them.
    if (++listening === WORKERS) console.log(`listening on http://127.0.0.1:${address.port} (${WORKERS} workers)`);
  });
  for (let i = 0; i < WORKERS; i++) cluster.fork();
  const stop = () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill('SIGTERM');
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
} else {
  interface Quote {
    symbol: string;
    price: number;
    asOf: string;
  }
  // HOTPATH_REDIS_URL is read by createHotpath; without it each worker would have its own cache and limit.
  const app = await createHotpath({
    profile: 'test',
    queue: false,
    caches: { [`${service}-cache`]: { max: 1_000, ttlMs: 60_000 } },
    rateLimiters: { [`${service}-api`]: { limit: 5, intervalMs: 1_000 } },
  });
  const quotes = app.cache<Quote>(`${service}-cache`);
  const upstream = app.rateLimiter(`${service}-api`);

  const fetchQuote = (symbol: string, signal: AbortSignal) =>
    upstream.schedule(async () => {
      const response = await fetch(`${quotesApi}/quotes/${encodeURIComponent(symbol)}`, { signal });
      if (!response.ok) throw new Error(`quotes API answered ${response.status}`);
      return (await response.json()) as Quote;
    });

  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json', 'x-worker': String(process.pid) });
    res.end(JSON.stringify(body));
  };

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] as string;
    const symbol = /^\/quotes\/([A-Za-z0-9.]{1,10})(\/refresh)?$/.exec(path);
    if (symbol === null) return send(res, 404, { error: 'not found' });
    const key = (symbol[1] as string).toUpperCase();
    if (symbol[2] !== undefined && req.method === 'POST') {
      quotes.delete(key); // this worker now, the others through the bus
      return send(res, 202, { refreshed: key });
    }
    quotes
      .getOrSet(key, ({ signal }) => fetchQuote(key, signal))
      .then(
        (quote) => send(res, 200, quote),
        (error: unknown) => send(res, 502, { error: String(error) }),
      );
  });
  server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1');

  process.once('SIGTERM', () => {
    server.close();
    void app.close().then(() => process.exit(0));
  });
}
