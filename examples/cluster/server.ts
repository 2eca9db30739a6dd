/**
 * A quotes service on node:cluster: 4 worker processes behind one port share ONE cache through Redis
 * (a RedisCacheTier as L2 and a RedisInvalidationBus keeping every worker's L1 coherent).
 *   GET  /quotes/:symbol           cached read; a cold symbol is fetched from the quotes API once for ALL workers
 *   POST /quotes/:symbol/refresh   drops the symbol in every worker's cache (the next read fetches it again)
 * Every answer names the worker that served it (`x-worker`).
 *
 * Run (the first command starts a stand-in quotes API on port 8081):
 *   node --import tsx examples/shared/quotes-upstream.ts &
 *   HOTPATH_REDIS_URL=redis://127.0.0.1:6379 QUOTES_API_URL=http://127.0.0.1:8081/v1 PORT=3000 \
 *     node --import tsx examples/cluster/server.ts
 */
import cluster from 'node:cluster';
import { createServer, type ServerResponse } from 'node:http';
import { Cache } from 'hotpath/cache';
import { RedisCacheTier, RedisInvalidationBus } from 'hotpath/redis';

const WORKERS = Number(process.env.WORKERS ?? 4);
const redisUrl = process.env.HOTPATH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const quotesApi = process.env.QUOTES_API_URL ?? 'http://127.0.0.1:8081/v1';
// One deployment = one prefix and one bus channel; tests give each run its own.
const prefix = process.env.CACHE_PREFIX ?? 'quotes-service';

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
  const tier = new RedisCacheTier<Quote>({ redis: redisUrl, prefix: `${prefix}:cache:quotes`, leaseMs: 5_000 });
  const bus = new RedisInvalidationBus({ redis: redisUrl, channel: `${prefix}:cache:bus` });
  const quotes = new Cache<Quote>({ name: 'quotes', max: 1_000, ttlMs: 60_000, tier, bus });

  async function fetchQuote(symbol: string, signal: AbortSignal): Promise<Quote> {
    const response = await fetch(`${quotesApi}/quotes/${encodeURIComponent(symbol)}`, { signal });
    if (!response.ok) throw new Error(`quotes API answered ${response.status}`);
    return (await response.json()) as Quote;
  }

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
  await bus.ready();
  server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1');

  process.once('SIGTERM', () => {
    server.close();
    void (async () => {
      await quotes.close();
      await bus.close();
      await tier.close();
      process.exit(0);
    })();
  });
}
