/**
 * Drives examples/cluster/server.ts (node:cluster, 4 workers) over HTTP against the stand-in quotes API:
 * one cache shared by every worker through Redis.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type QuotesUpstream, startQuotesUpstream } from '../../examples/shared/quotes-upstream.js';
import { call, type RunningExample, startExample } from '../examples/helpers.js';
import { needsRedis, REDIS_URL, uniqueName } from '../helpers/services.js';

const hasRedis = await needsRedis();

describe.runIf(hasRedis)('examples/cluster/server.ts', () => {
  const prefix = uniqueName('hp_cluster_example');
  let upstream: QuotesUpstream;
  let service: RunningExample;
  const quoteRequests = (symbol: string) => upstream.requests.get(`/v1/quotes/${symbol}`) ?? 0;

  beforeAll(async () => {
    // 100 ms per answer, so that concurrent requests on different workers really overlap one load.
    // The upstream allows 10 calls per second; the service's shared limiter 5.
    upstream = await startQuotesUpstream({ latencyMs: 100, limitPerSecond: 10 });
    service = await startExample('cluster', {
      HOTPATH_REDIS_URL: REDIS_URL,
      QUOTES_API_URL: upstream.url,
      SERVICE_NAME: prefix,
    });
  });

  afterAll(async () => {
    await service?.stop('SIGTERM');
    await upstream?.close();
    const admin = new Redis(REDIS_URL);
    const keys = [...(await admin.keys(`{hotpath:cache:${prefix}*`)), ...(await admin.keys(`*${prefix}-api*`))];
    if (keys.length > 0) await admin.unlink(...keys);
    await admin.quit();
  });

  it('loads a cold symbol once for all 4 workers, however many requests arrive at once', async () => {
    const answers = await Promise.all(Array.from({ length: 200 }, () => call('GET', `${service.url}/quotes/AAPL`)));
    expect(answers.every((answer) => answer.status === 200)).toBe(true);
    expect(new Set(answers.map((answer) => answer.text)).size).toBe(1);
    expect(new Set(answers.map((answer) => answer.headers.get('x-worker'))).size).toBe(4);
    expect(quoteRequests('AAPL')).toBe(1);
  });

  it('a refresh on one worker drops the symbol on every worker', async () => {
    const before = await call('GET', `${service.url}/quotes/MSFT`);
    // Warm every worker's L1 with it.
    await Promise.all(Array.from({ length: 40 }, () => call('GET', `${service.url}/quotes/MSFT`)));
    expect(quoteRequests('MSFT')).toBe(1);
    expect((await call('POST', `${service.url}/quotes/MSFT/refresh`)).status).toBe(202);
    let after = before;
    for (let i = 0; i < 100 && after.json.asOf === before.json.asOf; i++) {
      after = await call('GET', `${service.url}/quotes/MSFT`);
    }
    expect(after.json.asOf).not.toBe(before.json.asOf);
    // Every worker answers with the new value (none kept the old one), fetched once more in total.
    const answers = await Promise.all(Array.from({ length: 40 }, () => call('GET', `${service.url}/quotes/MSFT`)));
    expect(new Set(answers.map((answer) => answer.json.asOf))).toEqual(new Set([after.json.asOf]));
    expect(quoteRequests('MSFT')).toBe(2);
  });

  it('keeps the 4 workers together under the upstream limit (one shared limiter)', async () => {
    // 20 distinct symbols at once, spread over the workers: 4 private limiters of 5/s would send
    // ~20 in the first second against an upstream allowing 10; the shared one sends 5.
    const symbols = [
      ...['NVDA', 'AMZN', 'GOOG', 'META', 'TSLA', 'ORCL', 'SAP', 'ASML', 'SHOP', 'UBER'],
      ...Array.from({ length: 10 }, (_, n) => `X${n}`),
    ];
    const answers = await Promise.all(symbols.map((symbol) => call('GET', `${service.url}/quotes/${symbol}`)));
    expect(answers.slice(0, 10).every((answer) => answer.status === 200)).toBe(true);
    expect(answers.slice(10).every((answer) => answer.status === 502)).toBe(true); // unknown symbols: 404 upstream
    expect(new Set(answers.map((answer) => answer.headers.get('x-worker'))).size).toBeGreaterThan(1);
    expect(upstream.rejected()).toBe(0);
  });
});
