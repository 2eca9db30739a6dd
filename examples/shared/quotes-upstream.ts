/**
 * A stand-in for a third-party market-data API, so the example services run without an account:
 * `GET /v1/quotes/:symbol` answers after a little latency, 404 for unknown symbols, and enforces a strict
 * sliding-window rate limit with `429 + Retry-After` beyond it, as paid quote APIs do.
 *
 * Run on its own (prints its base URL, for `QUOTES_API_URL`):
 *   node --import tsx examples/shared/quotes-upstream.ts
 * The example tests start it in-process and count the requests it saw.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';

/** Spot price and annualised volatility of the symbols the stand-in knows. */
const MARKET: Readonly<Record<string, { price: number; volatility: number }>> = {
  AAPL: { price: 187.4, volatility: 0.24 },
  MSFT: { price: 415.1, volatility: 0.22 },
  NVDA: { price: 121.8, volatility: 0.48 },
  AMZN: { price: 182.3, volatility: 0.3 },
  GOOG: { price: 171.9, volatility: 0.27 },
  META: { price: 496.2, volatility: 0.36 },
  TSLA: { price: 248.5, volatility: 0.58 },
  ORCL: { price: 139.7, volatility: 0.29 },
  SAP: { price: 197.6, volatility: 0.21 },
  ASML: { price: 912.4, volatility: 0.35 },
  SHOP: { price: 78.2, volatility: 0.52 },
  UBER: { price: 71.6, volatility: 0.39 },
};

/** Options of {@link startQuotesUpstream}. */
export interface QuotesUpstreamOptions {
  /** Port on 127.0.0.1 (default 0: a free port). */
  port?: number;
  /** Latency of every answer, in ms (default 40), so that concurrent callers really overlap. */
  latencyMs?: number;
  /** Requests allowed in any sliding window of one second; more get 429 (default 10). */
  limitPerSecond?: number;
}

/** A running stand-in upstream. */
export interface QuotesUpstream {
  /** Base URL to give the services as `QUOTES_API_URL`, e.g. `http://127.0.0.1:41234/v1`. */
  readonly url: string;
  /** Requests received per path, e.g. `/v1/quotes/AAPL`, 429s included. */
  readonly requests: ReadonlyMap<string, number>;
  /** Requests answered with 429. */
  readonly rejected: () => number;
  /** Stops listening and drops keep-alive sockets. */
  close(): Promise<void>;
}

/** Starts the stand-in market-data API on 127.0.0.1. */
export async function startQuotesUpstream(options: QuotesUpstreamOptions = {}): Promise<QuotesUpstream> {
  const latencyMs = options.latencyMs ?? 40;
  const limit = options.limitPerSecond ?? 10;
  const requests = new Map<string, number>();
  const recent: number[] = [];
  let rejected = 0;

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] as string;
    requests.set(path, (requests.get(path) ?? 0) + 1);
    const now = performance.now();
    while (recent.length > 0 && now - (recent[0] as number) >= 1000) recent.shift();
    if (recent.length >= limit) {
      rejected++;
      const retryAfterS = Math.max(1, Math.ceil((1000 - (now - (recent[0] as number))) / 1000));
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': String(retryAfterS) });
      res.end('{"error":"rate limit exceeded"}');
      return;
    }
    recent.push(now);
    const symbol = /^\/v1\/quotes\/([A-Z0-9.]{1,10})$/.exec(path)?.[1];
    const quote = symbol === undefined ? undefined : MARKET[symbol];
    setTimeout(() => {
      if (req.method !== 'GET' || symbol === undefined || quote === undefined) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"error":"unknown symbol"}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ symbol, currency: 'USD', ...quote, asOf: new Date().toISOString() }));
    }, latencyMs);
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    rejected: () => rejected,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const upstream = await startQuotesUpstream({ port: Number(process.env.UPSTREAM_PORT ?? 8081) });
  console.log(`quotes API on ${upstream.url} (try ${upstream.url}/quotes/AAPL)`);
  process.once('SIGINT', () => void upstream.close());
  process.once('SIGTERM', () => void upstream.close());
}
