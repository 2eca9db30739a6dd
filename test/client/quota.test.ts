/**
 * Issue 14, "limits at the quota": a limiter set exactly to an upstream's quota (20 per 1,000 ms,
 * counted by *arrival* time at a loopback node:http upstream in its own process) must cause no 429 at
 * all while still using ≥ 95% of the quota. Without `marginMs` (marginMs: 0) the same run gets refusals:
 * arrivals jitter by a few ms (tens on a loaded machine; the first burst also pays connection setup), so
 * two windows touch. 15 s here; bench/client.bench.ts runs the 60 s figure.
 */
import { APIClient } from 'hotpath/client';
import { RateLimiter } from 'hotpath/ratelimit';
import { afterEach, describe, expect, it } from 'vitest';
import { type QuotaUpstream, startQuotaUpstream } from './quota-upstream.js';

const LIMIT = 20;
const WINDOW_MS = 1000;
const RUN_MS = 15_000;

let upstream: QuotaUpstream | undefined;
let api: APIClient | undefined;
let limiter: RateLimiter | undefined;
afterEach(async () => {
  await api?.close();
  await limiter?.close();
  await upstream?.close();
});

describe('APIClient + RateLimiter at an upstream quota counted by arrival', () => {
  it(`no 429 in ${RUN_MS / 1000} s at 20 per 1,000 ms, using ≥ 95% of the quota (default marginMs)`, async () => {
    upstream = await startQuotaUpstream(LIMIT, WINDOW_MS);
    limiter = new RateLimiter({ limit: LIMIT, intervalMs: WINDOW_MS });
    api = new APIClient({ baseUrl: upstream.url, rateLimiter: limiter, retry: false, timeoutMs: 60_000 });
    const client = api;
    const end = performance.now() + RUN_MS + WINDOW_MS;
    let failures = 0;
    // 30 callers keep the limiter saturated: every start it allows is taken at once.
    await Promise.all(
      Array.from({ length: 30 }, async () => {
        while (performance.now() < end) await client.get('/quote').catch(() => failures++);
      }),
    );
    const stats = await upstream.stats();
    expect(stats.refused).toBe(0);
    expect(failures).toBe(0);
    const inRun = stats.acceptedAt.filter((at) => at < RUN_MS).length;
    expect(inRun / ((LIMIT * RUN_MS) / WINDOW_MS)).toBeGreaterThanOrEqual(0.95);
  });
});
