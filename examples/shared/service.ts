/**
 * What the three example services share besides their framework: the one hotpath configuration, the
 * environment they read, the wiring of the forecast job and the quote reader onto the app, and a
 * SIGTERM handler that shuts down in order.
 */
import type { Hotpath, HotpathConfig } from 'hotpath/app';
import type { JobHttpHandlers } from 'hotpath/queue';
import { createForecastHandler } from './forecast.js';
import { createQuoteService, type QuoteService } from './quotes.js';

/**
 * The service's hotpath configuration. The profile comes from `NODE_ENV` (development: a SQLite file under
 * `.hotpath/`, test: memory, production: `HOTPATH_DATABASE_URL` must be PostgreSQL) and every `HOTPATH_*`
 * variable overrides what is here.
 */
export const hotpathConfig = {
  // Quotes move: 15 s fresh, then served stale for up to 30 s more while ONE background refresh runs.
  caches: { quotes: { max: 1_000, ttlMs: 15_000, staleWhileRevalidateMs: 30_000 } },
  // Just under what the provider allows (10 requests per second), so we never spend a request on a 429.
  rateLimiters: { 'quotes-api': { limit: 8, intervalMs: 1_000, maxConcurrent: 4 } },
  // Two forecasts at once per process; SQL backends also poll every 500 ms for jobs other processes enqueued.
  // The submit body is built on the server (forecastSubmission), which sets a dedupe key: allow it.
  queue: { concurrency: 2, pollIntervalMs: 500, http: { clientOptions: { key: { maxLength: 200 } } } },
  // On SIGTERM running forecasts get 5 s to finish; then they are aborted and handed back to the queue.
  shutdownTimeoutMs: 5_000,
} satisfies HotpathConfig;

/** The environment the example services read (besides the `HOTPATH_*` variables createHotpath reads). */
export interface ServiceEnv {
  /** `PORT` (default 3000; 0 picks a free port). */
  port: number;
  /** `QUOTES_API_URL`: the upstream's base URL, e.g. `http://127.0.0.1:8081/v1`. */
  quotesApiUrl: string;
}

/**
 * Reads and validates `PORT` and `QUOTES_API_URL`.
 * @throws Error naming the variable, its value and what is allowed.
 */
export function readServiceEnv(env: Record<string, string | undefined> = process.env): ServiceEnv {
  const rawPort = env.PORT ?? '3000';
  const port = Number(rawPort);
  if (!/^\d+$/.test(rawPort) || port > 65_535) {
    throw new Error(`PORT=${JSON.stringify(rawPort)} is not valid: expected an integer from 0 to 65535`);
  }
  const quotesApiUrl = env.QUOTES_API_URL ?? '';
  if (!/^https?:\/\/.+/.test(quotesApiUrl)) {
    throw new Error(
      `QUOTES_API_URL=${JSON.stringify(quotesApiUrl)} is not valid: expected the quotes API base URL, e.g. http://127.0.0.1:8081/v1 ` +
        '(node --import tsx examples/shared/quotes-upstream.ts starts a local one)',
    );
  }
  return { port, quotesApiUrl };
}

/** The domain side of a service, wired onto a hotpath app. */
export interface ForecastService {
  /** Cached, rate-limited quote reads. */
  readonly quotes: QuoteService;
  /** The queue's framework-agnostic submit / status / cancel handlers (status URLs under `/jobs`). */
  readonly jobs: JobHttpHandlers;
}

/**
 * Registers the `forecast` job, starts the queue's workers and builds the quote reader.
 * @throws Error when the app was built without a queue.
 */
export async function startForecastService(app: Hotpath, env: ServiceEnv): Promise<ForecastService> {
  const queue = app.queue;
  if (queue === undefined) throw new Error('the forecast service needs the job queue (config.queue)');
  const quotes = createQuoteService(app, env.quotesApiUrl);
  // Two attempts: an upstream hiccup while fetching the spot price is worth one retry; a forecast that runs
  // over two minutes is stuck, not slow.
  queue.register('forecast', createForecastHandler(quotes), {
    attempts: 2,
    timeoutMs: 120_000,
  });
  await queue.start();
  return { quotes, jobs: queue.http };
}

/**
 * Runs `shutdown` once on SIGTERM or SIGINT and lets the process exit by itself (exit code 0), or with
 * exit code 1 when shutdown fails or takes longer than `deadlineMs` (default 15 s).
 */
export function onShutdownSignal(app: Hotpath, shutdown: () => Promise<void>, deadlineMs = 15_000): void {
  let started = false;
  const run = (signal: NodeJS.Signals) => {
    if (started) return;
    started = true;
    app.logger.info({ signal }, 'shutting down');
    // A hung shutdown must not outlive the platform's grace period unnoticed; unref: it never keeps us alive.
    setTimeout(() => {
      console.error(`shutdown did not finish within ${deadlineMs} ms`);
      process.exit(1);
    }, deadlineMs).unref();
    shutdown().then(
      () => console.log('stopped cleanly'),
      (error: unknown) => {
        console.error('shutdown failed:', error);
        process.exitCode = 1;
      },
    );
  };
  process.once('SIGTERM', run);
  process.once('SIGINT', run);
}
