/**
 * The cached, rate-limited read path of the example services: a quote is served from the app's `quotes`
 * cache; on a miss ONE loader call (however many requests wait for it) fetches it from the upstream
 * through an APIClient that takes every attempt from the app's `quotes-api` rate limiter.
 */
import type { Hotpath } from 'hotpath/app';
import { APIClient } from 'hotpath/client';
import { HttpError } from 'hotpath/core';
import { InputError, NotFoundError } from './http-errors.js';

/** A quote as the upstream sends it and the services serve it. */
export interface Quote {
  symbol: string;
  currency: string;
  /** Last price. */
  price: number;
  /** Annualised volatility, e.g. 0.24 for 24 %. */
  volatility: number;
  /** When the upstream priced it (ISO 8601). */
  asOf: string;
}

/** Reads quotes through the cache. */
export interface QuoteService {
  /**
   * The quote of `symbol` (case-insensitive), from the cache or the upstream.
   * @throws InputError for a malformed symbol, NotFoundError for an unknown one, and the client's errors
   * (RateLimitError, TimeoutError, HttpError) when the upstream cannot answer.
   */
  get(symbol: string): Promise<Quote>;
  /** Closes the HTTP client (its keep-alive sockets). Call after `app.close()`: jobs may still use it until then. */
  close(): Promise<void>;
}

/** Ticker symbols: 1–10 letters, digits or dots, starting with a letter. */
const SYMBOL = /^[A-Z][A-Z0-9.]{0,9}$/;

/**
 * Validates and normalises a ticker symbol.
 * @throws InputError when it is not one.
 */
export function parseSymbol(raw: unknown): string {
  const symbol = typeof raw === 'string' ? raw.trim().toUpperCase() : '';
  if (!SYMBOL.test(symbol)) {
    throw new InputError(`symbol must be 1-10 letters, digits or dots, got ${JSON.stringify(raw)?.slice(0, 40)}`);
  }
  return symbol;
}

/**
 * Builds the quote reader over the app's `quotes` cache and `quotes-api` limiter.
 * @param baseUrl - the upstream's base URL, e.g. `https://quotes.example.com/v1`.
 */
export function createQuoteService(app: Hotpath, baseUrl: string): QuoteService {
  const cache = app.cache<Quote>('quotes');
  const client = new APIClient({
    baseUrl,
    // Every attempt, retries included, takes a slot; an upstream 429 pauses the limiter for every caller.
    rateLimiter: app.rateLimiter('quotes-api'),
    retry: { retries: 3, baseDelayMs: 100, maxDelayMs: 2_000 },
    attemptTimeoutMs: 2_000,
    timeoutMs: 8_000,
    profiler: app.profiler,
    logger: app.logger,
  });
  return {
    async get(raw) {
      const symbol = parseSymbol(raw);
      // The loader's own signal (not the caller's): one impatient caller must not abort the load the others share.
      return cache.getOrSet(symbol, async ({ signal }) => {
        try {
          return await client.get<Quote>(`/quotes/${symbol}`, { signal, route: '/quotes/:symbol' });
        } catch (error) {
          if (error instanceof HttpError && error.status === 404) {
            throw new NotFoundError(`unknown symbol ${symbol}`);
          }
          throw error;
        }
      });
    },
    close: () => client.close(),
  };
}
