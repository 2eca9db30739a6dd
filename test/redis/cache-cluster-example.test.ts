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
    upstream = await startQuotesUpstream({ latencyMs: 100, limitPerSecond: 100 });
    service = await startExample('cluster', {
      HOTPATH_REDIS_URL: REDIS_URL,
      QUOTES_API_URL: upstream.url,
      CACHE_PREFIX: prefix,
    });
  });

  afterAll(async () => {
    await service?.stop('SIGTERM');
    await upstream?.close();
    const admin = new Redis(REDIS_URL);
    const keys = await admin.keys(`{${prefix}*`);
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
});
