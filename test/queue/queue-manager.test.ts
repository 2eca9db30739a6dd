/** QueueManager over real HTTP on 127.0.0.1: submit → 202 → poll → result, cancel, errors, health, stats. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { ConfigError } from 'hotpath/core';
import { QueueManager } from 'hotpath/queue';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryStorage } from '../../src/storage/index.js';
import { deferred, eventually } from '../helpers/async.js';

describe('QueueManager', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function serve(manager: QueueManager): Promise<string> {
    const server: Server = createServer(async (req, res) => {
      if (!(await manager.http.handle(req, res))) {
        res.statusCode = 404;
        res.end('not ours');
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  function manager(options: ConstructorParameters<typeof QueueManager>[0] = {}): QueueManager {
    const made = new QueueManager({ concurrency: 2, ...options });
    cleanups.push(() => made.close());
    return made;
  }

  it('serves submit → 202 + status URL → polling with progress → result', async () => {
    const jobs = manager({
      storage: new MemoryStorage(),
      progressIntervalMs: 0,
      http: { clientOptions: { priority: { min: 0, max: 10 } } },
    });
    const gate = deferred();
    jobs.register('forecast', async (data: unknown, job) => {
      job.progress(1, 4, 'loading');
      await gate.promise;
      job.progress(4, 4, 'done');
      return { city: (data as { city: string }).city, tempC: 4 };
    });
    await jobs.start();
    const base = await serve(jobs);
    const submitted = await fetch(`${base}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'forecast', data: { city: 'Oslo' }, priority: 5 }),
    });
    expect(submitted.status).toBe(202);
    const body = (await submitted.json()) as { id: string; statusUrl: string; state: string };
    expect(body.state).toBe('queued');
    expect(submitted.headers.get('location')).toBe(body.statusUrl);
    expect(body.statusUrl).toBe(`/jobs/${body.id}`);

    const running = await eventually(async () => {
      const response = await fetch(`${base}${body.statusUrl}`);
      const payload = (await response.json()) as Record<string, unknown>;
      return payload.state === 'running' && payload.progress === 1 ? { response, payload } : undefined;
    });
    expect(running.response.headers.get('retry-after')).toBe('1');
    expect(running.payload).toMatchObject({ id: body.id, type: 'forecast', total: 4, stage: 'loading', attempts: 1 });
    gate.resolve();
    const done = await eventually(async () => {
      const payload = (await (await fetch(`${base}${body.statusUrl}`)).json()) as Record<string, unknown>;
      return payload.state === 'succeeded' ? payload : undefined;
    });
    expect(done).toMatchObject({ progress: 4, total: 4, stage: 'done', result: { city: 'Oslo', tempC: 4 } });
    expect(done.error).toBeUndefined();
  });

  it('cancels over HTTP and answers errors with the right status codes', async () => {
    const jobs = manager();
    jobs.register('sim', async (_data, job) => {
      await new Promise((_, reject) => job.signal.addEventListener('abort', () => reject(job.signal.reason)));
    });
    jobs.register(
      'fails',
      async () => {
        throw new RangeError('bad input');
      },
      { attempts: 1 },
    );
    await jobs.start();
    const base = await serve(jobs);
    const post = (body: unknown) =>
      fetch(`${base}/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });

    const { id } = (await (await post({ type: 'sim', data: {} })).json()) as { id: string };
    await eventually(async () => (await jobs.status(id))?.state === 'running');
    const cancelled = await fetch(`${base}/jobs/${id}`, { method: 'DELETE' });
    expect(cancelled.status).toBe(202);
    expect(await cancelled.json()).toMatchObject({ id, cancelled: true });
    await eventually(async () => (await jobs.status(id))?.state === 'cancelled');
    const again = await fetch(`${base}/jobs/${id}/cancel`, { method: 'POST' });
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({ cancelled: false, state: 'cancelled' });

    const failed = (await (await post({ type: 'fails', data: 1 })).json()) as { id: string };
    const payload = await eventually(async () => {
      const status = await jobs.status(failed.id);
      return status?.state === 'failed' ? status : undefined;
    });
    expect(payload.error).toEqual({ name: 'RangeError', message: 'bad input' }); // no stack over the wire

    expect((await post({ type: 'unknown', data: 1 })).status).toBe(400);
    expect((await post({ type: 'sim', data: 1, evil: true })).status).toBe(400);
    expect((await post({ type: 'sim', data: 1, priority: 5000 })).status).toBe(400);
    expect((await post([1, 2])).status).toBe(400);
    const notJson = await fetch(`${base}/jobs`, { method: 'POST', body: '{nope' });
    expect(notJson.status).toBe(400);
    const huge = await fetch(`${base}/jobs`, {
      method: 'POST',
      body: JSON.stringify({ type: 'sim', data: 'x'.repeat(2_000_000) }),
    });
    expect(huge.status).toBe(413);
    expect((await fetch(`${base}/jobs/0190aaaa-0000-7000-8000-000000000000`)).status).toBe(404);
    expect((await fetch(`${base}/jobs/bad%20id`)).status).toBe(400);
    expect((await fetch(`${base}/jobs`)).status).toBe(405);
    expect((await fetch(`${base}/elsewhere`)).status).toBe(404); // not ours: the app's router answers
  });

  it('reports health and stats with wait and run time percentiles', async () => {
    const seen: string[] = [];
    const jobs = manager({
      concurrency: 4,
      submitTypes: ['quick'],
      profiler: { record: (name) => seen.push(name) },
    });
    jobs.register('quick', async (data: unknown) => data);
    await jobs.start();
    for (let i = 0; i < 20; i++) await jobs.wait(await jobs.enqueue('quick', i));
    const stats = await jobs.stats();
    expect(stats.counts.succeeded).toBe(20);
    expect(stats.finishedLastMinute).toBe(20);
    expect(stats.throughputPerSec).toBeCloseTo(20 / 60);
    expect(stats.runMs.count).toBe(20);
    expect(stats.waitMs.count).toBe(20);
    expect(stats.runMs.p99).toBeGreaterThanOrEqual(stats.runMs.p50);
    expect(stats.queue.succeeded).toBe(20);
    expect(seen).toContain('queue.job.quick');
    expect(seen).toContain('queue.wait');
    const health = await jobs.health();
    expect(health).toMatchObject({ ok: true, backend: 'memory', workerRunning: true, oldestQueuedAgeMs: 0 });
    expect(() => new QueueManager({ submitTypes: 'quick' as never })).toThrow(ConfigError);
    expect(() => new QueueManager({ http: { basePath: 'no-slash' } }).http).toThrow(ConfigError);
  });

  it('registers a sandboxed { file, exportName, timeoutMs } handler that runs in a worker thread', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hotpath-manager-sandbox-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'handlers.mjs');
    await writeFile(
      file,
      `import { threadId } from 'node:worker_threads';
export async function triple(data) { return { tripled: data.n * 3, threadId }; }`,
      'utf8',
    );
    const jobs = manager();
    jobs.register('triple', { file, exportName: 'triple', timeoutMs: 30_000 });
    expect(() => jobs.register('bad', { file: 42 } as never)).toThrow(ConfigError);
    await jobs.start();
    const result = (await jobs.wait(await jobs.enqueue('triple', { n: 4 }))) as { tripled: number; threadId: number };
    expect(result.tripled).toBe(12);
    expect(result.threadId).not.toBe(threadId); // ran in another thread, not inline
  });
});
