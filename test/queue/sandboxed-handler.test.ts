/**
 * Sandboxed handlers (issue 18 §2): `register(type, { file, exportName?, timeoutMs? })` runs jobs in
 * a worker thread that a deadline or a cancel terminates — tested with a handler stuck in a CPU loop.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, isHotpathError } from 'hotpath/core';
import { JobQueue } from 'hotpath/queue';
import { SqliteStorage } from 'hotpath/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const HANDLERS = `
import { appendFileSync } from 'node:fs';
export default async function (data, job) {
  if (data.spin) {
    // Stuck: ignores every signal, never yields; leaves a heartbeat in a file while it lives.
    let last = 0;
    for (;;) {
      const now = Date.now();
      if (data.beat && now - last >= 10) { appendFileSync(data.beat, '.'); last = now; }
    }
  }
  job.progress(1, 2, 'half');
  await new Promise((resolve) => setTimeout(resolve, 20));
  job.progress(2, 2, 'done');
  return { doubled: data.n * 2, thread: (await import('node:worker_threads')).threadId };
}
export async function fails(data) {
  throw new RangeError('bad input ' + data.n);
}
`;

let dir = '';
let file = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hotpath-sandbox-'));
  file = join(dir, 'handlers.mjs');
  await writeFile(file, HANDLERS, 'utf8');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const backends = [
  { name: 'memory', open: () => ({ storage: undefined, close: async () => {} }) },
  {
    name: 'sqlite',
    open: () => {
      const storage = new SqliteStorage({ filename: join(dir, `q-${Math.random().toString(36).slice(2)}.db`) });
      return { storage, close: () => storage.close() };
    },
  },
];

describe.each(backends)('sandboxed handlers on $name', (backend) => {
  it('a handler stuck in a CPU loop is killed at its deadline (attempt counted) and the next job runs', async () => {
    const { storage, close } = backend.open();
    const queue = new JobQueue({ storage, concurrency: 1, pollIntervalMs: 20 });
    try {
      queue.register('calc', { file, timeoutMs: 300 }, { attempts: 2, backoff: { baseDelayMs: 1, maxDelayMs: 1 } });
      // Its own type, without the tight deadline: a thread's start-up counts against a job's deadline,
      // and on a loaded machine it can take longer than 300 ms.
      queue.register('quick', { file, timeoutMs: 30_000 });
      const beat = join(dir, `beat-${backend.name}.txt`);
      const stuck = await queue.enqueue('calc', { spin: true, beat });
      const next = await queue.enqueue('quick', { n: 21 });
      await queue.start();
      const error = await queue.wait(stuck, { timeoutMs: 20_000 }).catch((caught: unknown) => caught);
      expect(isHotpathError(error, 'ERR_HOTPATH_JOB_FAILED')).toBe(true);
      expect(await queue.get(stuck)).toMatchObject({ status: 'failed', attempts: 2, error: { name: 'TimeoutError' } });
      // One slot: the next job could run only because the stuck thread was terminated.
      const result = (await queue.wait(next, { timeoutMs: 20_000 })) as { doubled: number; thread: number };
      expect(result.doubled).toBe(42);
      // The threads were really terminated: their heartbeat stopped.
      const beats = (await readFile(beat, 'utf8')).length;
      expect(beats).toBeGreaterThan(0);
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect((await readFile(beat, 'utf8')).length).toBe(beats);
      const stats = queue.stats();
      expect(stats, JSON.stringify(stats)).toMatchObject({ timedOut: 2, succeeded: 1 });
    } finally {
      await queue.close();
      await close();
    }
  });

  it('cancel kills a running thread at once; progress crosses from the thread; errors keep name, message and stack', async () => {
    const { storage, close } = backend.open();
    const queue = new JobQueue({ storage, concurrency: 1, pollIntervalMs: 20, progressIntervalMs: 0 });
    try {
      queue.register('calc', { file });
      queue.register('broken', { file, exportName: 'fails' }, { attempts: 1 });
      const progress: Array<{ done: number; stage?: string }> = [];
      queue.on('progress', (_job, report) => progress.push(report));
      await queue.start();
      const stuck = await queue.enqueue('calc', { spin: true });
      await expect.poll(async () => (await queue.get(stuck))?.status, { timeout: 10_000 }).toBe('running');
      expect(await queue.cancel(stuck)).toBe(true);
      await expect(queue.wait(stuck, { timeoutMs: 10_000 })).rejects.toMatchObject({
        code: 'ERR_HOTPATH_JOB_CANCELLED',
      });
      const ok = await queue.enqueue('calc', { n: 5 });
      expect(await queue.wait(ok, { timeoutMs: 10_000 })).toMatchObject({ doubled: 10 });
      expect(progress).toEqual([
        { done: 1, total: 2, stage: 'half' },
        { done: 2, total: 2, stage: 'done' },
      ]);
      const failing = await queue.enqueue('broken', { n: 7 });
      await expect(queue.wait(failing, { timeoutMs: 10_000 })).rejects.toThrow('bad input 7');
      const job = await queue.get(failing);
      expect(job?.error).toMatchObject({ name: 'RangeError', message: 'bad input 7' });
      expect(job?.error?.stack).toContain('handlers.mjs');
    } finally {
      await queue.close();
      await close();
    }
  });
});

describe('sandboxed handler specs', () => {
  it('are checked at register: a ConfigError naming the field, nothing registered', async () => {
    const queue = new JobQueue();
    try {
      expect(() => queue.register('a', { file: 'relative.mjs' })).toThrow(ConfigError);
      expect(() => queue.register('a', { file: new URL('https://example.com/x.mjs') })).toThrow(/file: URL/);
      expect(() => queue.register('a', { file, timeoutMs: -1 })).toThrow(/timeoutMs/);
      expect(() => queue.register('a', { file, exportName: '' })).toThrow(/exportName/);
      expect(() => queue.register('a', { file, nope: 1 } as never)).toThrow(/nope/);
      queue.register('a', { file });
    } finally {
      await queue.close();
    }
  });

  it('a module that does not load fails the attempt with the loader’s error; the queue keeps working', async () => {
    const queue = new JobQueue({ pollIntervalMs: 20 });
    try {
      queue.register('missing', { file: join(dir, 'missing.mjs') }, { attempts: 1 });
      queue.register('calc', { file });
      await queue.start();
      const id = await queue.enqueue('missing', {});
      await expect(queue.wait(id, { timeoutMs: 10_000 })).rejects.toThrow(/Cannot find module/);
      expect(await queue.wait(await queue.enqueue('calc', { n: 1 }), { timeoutMs: 10_000 })).toMatchObject({
        doubled: 2,
      });
    } finally {
      await queue.close();
    }
  });
});
