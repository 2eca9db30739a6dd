/**
 * The dashboard in a real browser: Debian's chromium driven by playwright-core (never a browser download).
 * Missing chromium → the file skips with one line; under HOTPATH_REQUIRE_SERVICES=1 it fails.
 * A full-page screenshot is written to .tmp/artifacts/dashboard.png (gitignored).
 */
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHotpath, dashboardHandler, type Hotpath } from 'hotpath/app';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireCommand } from './external-tools.js';

const executablePath = requireCommand('chromium', 'chromium');
const HOSTILE = '<img src=x onerror="window.__xss=(window.__xss||0)+1">';

describe.runIf(executablePath)('dashboard in chromium', () => {
  let app: Hotpath<'quotes' | 'charts', 'upstream'>;
  let server: Server;
  let browser: Browser;
  let page: Page;
  let url: string;
  let flakyShouldFail = true;
  let slowAborted = false;
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    app = await createHotpath({
      profile: 'test',
      env: {},
      caches: { quotes: { max: 10, ttlMs: 60_000 }, charts: { max: 5, ttlMs: 60_000 } },
      rateLimiters: { upstream: { limit: 5, intervalMs: 1000 } },
      queue: { concurrency: 4, pollIntervalMs: 10 },
    });
    const queue = app.queue!;
    queue.register('flaky', async () => {
      if (flakyShouldFail) throw new Error('upstream said no');
      return 'ok';
    });
    queue.register('hostile', async () => {
      throw new Error(HOSTILE);
    });
    queue.register('slow', async (_data, job) => {
      job.progress(1, 10, 'warming up');
      await new Promise<void>((resolve) => job.signal.addEventListener('abort', () => resolve(), { once: true }));
      slowAborted = true;
      job.signal.throwIfAborted();
    });
    await queue.start();
    for (const key of ['AAPL', 'MSFT', 'GOOG']) await app.cache('quotes').getOrSet(key, async () => 1);
    app.profiler.record('db.query', 3);

    const dashboard = dashboardHandler(app, { authorize: () => true, refreshMs: 250, historyIntervalMs: 250 });
    server = createServer((req, res) => void dashboard(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/dashboard/`;

    browser = await chromium.launch({
      executablePath: executablePath as string,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    page.on('pageerror', (error) => consoleErrors.push(String(error)));
    await page.goto(url);
    await page.waitForSelector('body[data-rendered-at]');
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await app?.close();
  });

  const rowOf = (id: string) => page.locator(`tr[data-job-id="${id}"]`).first();

  it('loads without console errors and shows every panel', async () => {
    await expect.poll(() => page.locator('#connection').textContent()).toBe('live');
    for (const panel of ['queue', 'caches', 'limiters', 'profiler', 'storage']) {
      expect(await page.locator(`#${panel}-panel .body`).textContent()).not.toBe('');
    }
    expect(await page.locator('tr[data-limiter="upstream"]').count()).toBe(1);
    expect(await page.locator('[data-figure="loop-max"]').textContent()).toContain('event-loop delay max');
    expect(consoleErrors).toEqual([]);
  });

  it('draws the charts with data', async () => {
    await expect
      .poll(async () => Number(await page.locator('[data-keep="chart-loop"]').getAttribute('data-points')), {
        timeout: 10_000,
      })
      .toBeGreaterThan(2);
    const size = await page
      .locator('[data-keep="chart-loop"] canvas')
      .evaluate((canvas) => [
        (canvas as unknown as { width: number }).width,
        (canvas as unknown as { height: number }).height,
      ]);
    expect(size[0]).toBeGreaterThan(100);
    const legend = await page.locator('[data-keep="chart-loop"] .u-legend').textContent();
    expect(legend).toContain('p99');
    expect(legend).toContain('max');
    // The series the chart draws hold numbers, not only gaps.
    const history: { series: Record<string, Array<number | null>> } = await page.evaluate(
      async (base) => ((await (await fetch(`${base}api/state`)).json()) as { history: never }).history,
      url,
    );
    expect(history.series['eventLoop.p99']?.filter((v) => v !== null).length).toBeGreaterThan(1);
    expect(history.series['eventLoop.max']?.filter((v) => v !== null).length).toBeGreaterThan(1);
  });

  it('shows a failing job; Retry re-runs it and its row turns succeeded', async () => {
    const id = await app.queue!.enqueue('flaky', {}, { attempts: 1 });
    await rowOf(id).and(page.locator('[data-status="failed"]')).waitFor({ timeout: 10_000 });
    expect(await rowOf(id).textContent()).toContain('upstream said no');
    flakyShouldFail = false;
    await rowOf(id).locator('button[data-action="retry"]').click();
    await rowOf(id).and(page.locator('[data-status="succeeded"]')).waitFor({ timeout: 10_000 });
    expect((await app.queue!.status(id))?.state).toBe('succeeded');
  });

  it('Cancel stops a running job', async () => {
    const id = await app.queue!.enqueue('slow', {});
    const row = page.locator(`.running-jobs tr[data-job-id="${id}"]`);
    await row.waitFor({ timeout: 10_000 });
    expect(await row.textContent()).toContain('warming up');
    await row.locator('button[data-action="cancel"]').click();
    await expect.poll(async () => (await app.queue!.status(id))?.state, { timeout: 10_000 }).toBe('cancelled');
    expect(slowAborted).toBe(true);
  });

  it('invalidating a cache empties it', async () => {
    expect(app.cache('quotes').stats().size).toBe(3);
    await page.locator('[data-keep="invalidate"] select').selectOption('quotes');
    await page.locator('[data-keep="invalidate"] input').fill('AAPL');
    await page.locator('button[data-action="invalidate-key"]').click();
    await expect.poll(() => app.cache('quotes').stats().size).toBe(2);
    await page.locator('button[data-action="invalidate-all"]').click();
    await expect.poll(() => app.cache('quotes').stats().size).toBe(0);
    await expect.poll(() => page.locator('tr[data-cache="quotes"] .cache-size').textContent()).toBe('0 / 10');
  });

  it('never runs a hostile job payload or error: it is shown as text', async () => {
    const id = await app.queue!.enqueue('hostile', { html: HOSTILE, nested: { note: HOSTILE } }, { attempts: 1 });
    await rowOf(id).and(page.locator('[data-status="failed"]')).waitFor({ timeout: 10_000 });
    await page.waitForTimeout(300);
    expect(await page.evaluate(() => (globalThis as { __xss?: number }).__xss)).toBeUndefined();
    expect(await page.locator('#queue-panel img').count()).toBe(0);
    expect(await rowOf(id).textContent()).toContain('<img src=x onerror=');
    expect(consoleErrors).toEqual([]);
  });

  it('writes a screenshot artifact', async () => {
    mkdirSync('.tmp/artifacts', { recursive: true });
    const buffer = await page.screenshot({ path: '.tmp/artifacts/dashboard.png', fullPage: true });
    expect(buffer.length).toBeGreaterThan(10_000);
  });
});
