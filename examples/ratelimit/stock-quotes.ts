/**
 * Fetching quotes for 50 symbols from a provider that allows 20 requests per 200 ms, at most 10 at once:
 * one RateLimiter shared by every caller, a penalty after a (simulated) 429, and per-host limits.
 *
 * Run: node --import tsx examples/ratelimit/stock-quotes.ts
 */
import { isHotpathError } from 'hotpath/core';
import { KeyedRateLimiter, RateLimiter } from 'hotpath/ratelimit';

const symbols = Array.from({ length: 50 }, (_, i) => `SYM${i}`);
const limiter = new RateLimiter({ limit: 20, intervalMs: 200, maxConcurrent: 10, name: 'quotes-api' });

// Stand-in for an HTTP call that takes 5–15 ms.
async function fetchQuote(symbol: string): Promise<{ symbol: string; price: number }> {
  await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 10));
  return { symbol, price: 100 + symbol.length };
}

const starts: number[] = [];
const began = performance.now();
const quotes = await Promise.all(
  symbols.map((symbol, i) =>
    limiter.schedule(
      () => {
        starts.push(performance.now());
        return fetchQuote(symbol);
      },
      // The first five symbols are the user's watch list: they go first.
      { priority: i < 5 ? 1 : 0 },
    ),
  ),
);
const worst = Math.max(...starts.map((t) => starts.filter((s) => s >= t && s - t < 200).length));
console.log(`fetched ${quotes.length} quotes in ${Math.round(performance.now() - began)} ms`);
console.log(`most starts in any 200 ms window: ${worst} (limit 20)`);

// An upstream 429 with Retry-After: 0.3 → every caller sharing the limiter pauses.
limiter.penalize(300);
const pausedAt = performance.now();
await limiter.schedule(() => fetchQuote('AAPL'));
console.log(
  `after penalize(300) the next call started ${performance.now() - pausedAt >= 299 ? '>= 300' : '< 300'} ms later`,
);

// A caller that must not wait: tryAcquire never queues.
const attempt = limiter.tryAcquire();
console.log(`tryAcquire: ok=${attempt.ok}`);
attempt.release();

// A bounded line: with maxQueued 0 a busy limiter refuses at once with a retry hint.
const strict = new RateLimiter({ limit: 1, intervalMs: 1000, maxQueued: 0 });
await strict.schedule(() => 'first');
try {
  await strict.schedule(() => 'second');
} catch (error) {
  if (isHotpathError(error, 'ERR_HOTPATH_RATE_LIMIT'))
    console.log('second call refused: RateLimitError with retryAfterMs');
}

// One limit per host; idle hosts are dropped from memory.
const perHost = new KeyedRateLimiter({ limit: 2, intervalMs: 1000 });
const hosts = ['api.a.example', 'api.a.example', 'api.a.example', 'api.b.example'];
const admitted = hosts.map((host) => `${host}=${perHost.tryAcquire(host).ok}`);
console.log(`per host: ${admitted.join(' ')}`);

const { started, done, penalties, rejected } = limiter.stats();
console.log(`stats: started=${started} done=${done} penalties=${penalties} rejected=${rejected}`);
await Promise.all([limiter.close(), strict.close(), perHost.close()]);
