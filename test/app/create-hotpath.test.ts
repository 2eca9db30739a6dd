import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHotpath, healthHandler, metricsHandler, readEnvironment } from 'hotpath/app';
import { ConfigError } from 'hotpath/core';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'hotpath-app-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('readEnvironment', () => {
  it('selects the profile from NODE_ENV and reads overrides', () => {
    const settings = readEnvironment({
      NODE_ENV: 'production',
      HOTPATH_DATABASE_URL: 'postgres://app@db/app',
      HOTPATH_REDIS_URL: 'redis://cache:6379',
      HOTPATH_CACHE_ENABLED: 'false',
      HOTPATH_QUEUE_CONCURRENCY: '8',
      HOTPATH_LOG_LEVEL: 'warn',
    });
    expect(settings).toEqual({
      profile: 'production',
      databaseUrl: 'postgres://app@db/app',
      redisUrl: 'redis://cache:6379',
      cacheEnabled: false,
      queueConcurrency: 8,
      logLevel: 'warn',
    });
  });

  it('HOTPATH_PROFILE wins over NODE_ENV; an empty one counts as unset', () => {
    expect(readEnvironment({ NODE_ENV: 'production', HOTPATH_PROFILE: 'development' }).profile).toBe('development');
    expect(readEnvironment({ NODE_ENV: 'production', HOTPATH_PROFILE: '' }).profile).toBe('production');
    expect(readEnvironment({}).profile).toBe('development');
  });

  it.each([
    ['HOTPATH_PROFILE', 'staging'],
    ['HOTPATH_DATABASE_URL', 'mysql://x'],
    ['HOTPATH_REDIS_URL', 'http://x'],
    ['HOTPATH_CACHE_ENABLED', 'maybe'],
    ['HOTPATH_QUEUE_CONCURRENCY', '0'],
    ['HOTPATH_QUEUE_CONCURRENCY', '1.5'],
    ['HOTPATH_QUEUE_CONCURRENCY', '-3'],
    ['HOTPATH_QUEUE_CONCURRENCY', '100000'],
    ['HOTPATH_LOG_LEVEL', 'loud'],
  ])('%s=%s names the variable, the value and what is allowed', (variable, value) => {
    try {
      readEnvironment({ [variable]: value });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).option).toBe(variable);
      expect((error as Error).message).toContain(variable);
      expect((error as Error).message).toContain(JSON.stringify(value));
      expect((error as Error).message).toMatch(/expected/);
    }
  });
});

describe('createHotpath', () => {
  it('builds every primitive on the test profile (memory) and closes them in order', async () => {
    const app = await createHotpath({
      profile: 'test',
      env: {},
      caches: { quotes: { max: 500, ttlMs: 60_000 }, charts: { max: 200, ttlMs: 300_000 } },
      rateLimiters: { upstream: { limit: 10, intervalMs: 1000 } },
      documentCache: { max: 100, ttlMs: 10_000 },
      queue: { concurrency: 2, pollIntervalMs: 10 },
    });
    expect(app.config).toMatchObject({ profile: 'test', storage: 'memory', cacheEnabled: true, queueConcurrency: 2 });
    const quotes = app.cache<number>('quotes');
    expect(await quotes.getOrSet('AAPL', async () => 187)).toBe(187);
    expect(await quotes.getOrSet('AAPL', async () => 0)).toBe(187);
    expect(() => app.cache('nope' as never)).toThrow(ConfigError);
    expect(() => app.rateLimiter('nope' as never)).toThrow(ConfigError);

    const forecasts = app.storage.collection<{ city: string; tempC: number }>('forecasts');
    const id = await forecasts.save({ city: 'Oslo', tempC: 4 });
    expect(await forecasts.get(id)).toMatchObject({ city: 'Oslo', tempC: 4 });

    app.queue?.register('double', async (data) => (data as { n: number }).n * 2);
    await app.queue?.start();
    const jobId = await app.queue!.enqueue('double', { n: 21 });
    expect(await app.queue!.queue.wait(jobId, { timeoutMs: 5000 })).toBe(42);

    const health = await app.health();
    expect(health.ok).toBe(true);
    expect(health.storage.kind).toBe('memory');
    expect(health.caches.quotes).toMatchObject({ size: 1, enabled: true });

    const metrics = await app.metrics();
    expect(metrics).toContain('hotpath_cache_hits_total{cache="quotes"} 1');
    expect(metrics).toContain('hotpath_queue_jobs{status="succeeded"} 1');
    expect(metrics).toContain('hotpath_storage_pool_connections{state="total"}');

    await app.close();
    await app.close();
    await expect(app.queue!.enqueue('double', { n: 1 })).rejects.toMatchObject({ code: 'ERR_HOTPATH_CLOSED' });
  });

  it('close() lets a running job finish before closing storage, and aborts it after shutdownTimeoutMs', async () => {
    const outcomes: string[] = [];
    const run = async (shutdownTimeoutMs: number, jobMs: number) => {
      const app = await createHotpath({ profile: 'test', env: {}, queue: { concurrency: 1 }, shutdownTimeoutMs });
      let started!: () => void;
      const running = new Promise<void>((resolve) => (started = resolve));
      app.queue?.register('work', async (_data, job) => {
        started();
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, jobMs);
          const onAbort = () => {
            clearTimeout(timer);
            resolve();
          };
          job.signal.addEventListener('abort', onAbort, { once: true });
        });
        outcomes.push(job.signal.aborted ? 'aborted' : 'finished');
      });
      await app.queue?.start();
      await app.queue?.enqueue('work', {});
      await running;
      await app.close();
    };
    await run(10_000, 100);
    await run(50, 30_000);
    expect(outcomes).toEqual(['finished', 'aborted']);
  });

  it('HOTPATH_CACHE_ENABLED=false turns every cache into a pass-through', async () => {
    await using app = await createHotpath({
      profile: 'test',
      env: { HOTPATH_CACHE_ENABLED: 'false' },
      caches: { q: { max: 10, ttlMs: 1000 } },
      queue: false,
    });
    let loads = 0;
    await app.cache('q').getOrSet('k', async () => ++loads);
    await app.cache('q').getOrSet('k', async () => ++loads);
    expect(loads).toBe(2);
    expect(app.config.cacheEnabled).toBe(false);
  });

  it('the development profile defaults to a SQLite file; HOTPATH_DATABASE_URL overrides it', async () => {
    const file = join(dir, 'nested', 'dev.db');
    await using app = await createHotpath({
      profile: 'development',
      env: { HOTPATH_DATABASE_URL: `sqlite://${file}`, HOTPATH_LOG_LEVEL: 'silent' },
      queue: false,
    });
    expect(app.config.storage).toBe('sqlite');
    await app.storage.collection<{ a: number }>('x').save({ a: 1 });
    expect(await app.storage.collection('x').count()).toBe(1);
  });

  it('the production profile refuses to start without a PostgreSQL URL', async () => {
    await expect(createHotpath({ profile: 'production', env: {} })).rejects.toThrow(/HOTPATH_DATABASE_URL/);
    await expect(
      createHotpath({ profile: 'production', env: { HOTPATH_DATABASE_URL: 'sqlite://x.db' } }),
    ).rejects.toThrow(ConfigError);
  });

  it('rejects unknown options and bad values', async () => {
    await expect(createHotpath({ profile: 'test', cachez: {} } as never)).rejects.toThrow(ConfigError);
    await expect(createHotpath({ profile: 'test', env: {}, caches: { bad: { max: -1, ttlMs: 10 } } })).rejects.toThrow(
      ConfigError,
    );
  });

  it('serves /health and /metrics through plain node:http handlers', async () => {
    await using app = await createHotpath({
      profile: 'test',
      env: {},
      caches: { q: { max: 10, ttlMs: 1000 } },
      queue: { concurrency: 1 },
    });
    const health = healthHandler(app);
    const metrics = metricsHandler(app);
    const server = createServer((req, res) => void (req.url === '/health' ? health(req, res) : metrics(req, res)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const get = (path: string) =>
      new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
        request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
          let body = '';
          res.on('data', (chunk) => (body += chunk));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }),
          );
        })
          .on('error', reject)
          .end();
      });
    const h = await get('/health');
    expect(h.status).toBe(200);
    expect(JSON.parse(h.body)).toMatchObject({ ok: true, storage: { kind: 'memory' } });
    const m = await get('/metrics');
    expect(m.status).toBe(200);
    expect(m.type).toContain('text/plain; version=0.0.4');
    expect(m.body).toContain('# TYPE hotpath_cache_entries gauge');
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
});
