/**
 * Named caches in front of a slow "database": concurrent requests share one query per key, a decorator
 * caches a search function, a price update invalidates by tag, and the stats go to a metrics endpoint.
 * Run: node --import tsx examples/cache/stock-quotes.ts
 * Rollback switch: HOTPATH_CACHE_ENABLED=false node --import tsx examples/cache/stock-quotes.ts
 */
import { CacheRegistry } from 'hotpath/cache';

interface Quote {
  symbol: string;
  price: number;
}

let queries = 0;
const prices = new Map([
  ['AAPL', 189],
  ['MSFT', 411],
  ['NVDA', 875],
]);
async function queryQuote(symbol: string): Promise<Quote> {
  queries++;
  await new Promise((resolve) => setTimeout(resolve, 20)); // a slow query
  return { symbol, price: prices.get(symbol) ?? 0 };
}
async function querySearch(text: string): Promise<string[]> {
  queries++;
  await new Promise((resolve) => setTimeout(resolve, 20));
  return [...prices.keys()].filter((symbol) => symbol.includes(text.toUpperCase()));
}

const caches = new CacheRegistry({ enabled: process.env.HOTPATH_CACHE_ENABLED !== 'false' });
const stocks = caches.create<Quote>('stocks', { max: 500, ttlMs: 60_000, staleWhileRevalidateMs: 10_000 });
const search = caches.create<string[]>('search', { max: 1_000, ttlMs: 120_000 });
caches.create<unknown>('charts', { max: 200, ttlMs: 300_000 });
caches.create<unknown>('aggregations', { max: 100, ttlMs: 600_000 });

const getQuote = (symbol: string) =>
  stocks.getOrSet(`quote:${symbol}`, () => queryQuote(symbol), { tags: [`symbol:${symbol}`] });
const searchStocks = search.wrap(querySearch, { key: (text) => `search:${text.toLowerCase()}` });

// 300 concurrent requests for 3 symbols: one query per symbol, not 300.
const symbols = [...prices.keys()];
const requests = Array.from({ length: 300 }, (_, i) => getQuote(symbols[i % symbols.length] as string));
const quotes = await Promise.all(requests);
console.log(`300 concurrent quote requests -> ${queries} database queries`);
console.log(`AAPL = ${quotes[0]?.price}`);
const warm = queries;
await Promise.all(Array.from({ length: 300 }, (_, i) => getQuote(symbols[i % symbols.length] as string)));
console.log(`300 more requests -> ${queries - warm} database queries`);

const before = queries;
await Promise.all([searchStocks('a'), searchStocks('A'), searchStocks('a')]);
console.log(
  `3 searches for "a" -> ${queries - before} database queries, result ${JSON.stringify(await searchStocks('a'))}`,
);

// A price changes: invalidate everything tagged with the symbol, the next read queries again.
prices.set('AAPL', 190);
await stocks.invalidateTags(['symbol:AAPL']);
console.log(`after invalidation AAPL = ${(await getQuote('AAPL')).price}`);

const { caches: byName, total } = caches.stats();
console.log(`stocks: hits=${byName.stocks?.hits} misses=${byName.stocks?.misses} loads=${byName.stocks?.loads}`);
console.log(`total: loads=${total.loads} hitRate=${total.hitRate.toFixed(2)} caches=${caches.names().join(',')}`);
await caches.close();
