import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchProcessor, WorkerPool } from 'hotpath/batch';
import { ClosedError, ConfigError, RateLimitError } from 'hotpath/core';
import { afterEach, describe, expect, it } from 'vitest';
// The same module the workers load, for running the task on the main thread.
import estimatePi from './fixtures/cpu-task.mjs';

const fixture = new URL('./fixtures/cpu-task.mjs', import.meta.url);
const sleepMs = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const pools: WorkerPool[] = [];

function makePool<In, Out>(options: Partial<ConstructorParameters<typeof WorkerPool>[0]> = {}) {
  const pool = new WorkerPool<In, Out>({ filename: fixture, ...options });
  pools.push(pool as WorkerPool);
  return pool;
}

afterEach(async () => {
  await Promise.all(pools.splice(0).map((pool) => pool.close({ force: true })));
});

describe('WorkerPool', () => {
  it('runs the default export or a named export in a worker thread', async () => {
    const pool = makePool<unknown, number>({ maxThreads: 2 });
    expect(await pool.run({ samples: 10_000 })).toBe(estimatePi({ samples: 10_000 }));
    expect(await pool.run(12, { name: 'square' })).toBe(144);
    const named = makePool<number, number>({ name: 'square', maxThreads: 1 });
    expect(await named.run(5)).toBe(25);
    expect(pool.stats()).toMatchObject({ completed: 2, failed: 0, pending: 0 });
  });

  it('rejects with the worker’s error and keeps working', async () => {
    const pool = makePool<string, never>({ maxThreads: 1 });
    await expect(pool.run('bad input', { name: 'fail' })).rejects.toThrow('bad input');
    expect(await pool.run(3 as never, { name: 'square' })).toBe(9);
    expect(pool.stats().failed).toBe(1);
  });

  it('aborting a running task rejects with the signal’s reason and frees its thread', async () => {
    const pool = makePool<number, number>({ maxThreads: 1, name: 'spin' });
    const controller = new AbortController();
    const running = pool.run(60_000, { signal: controller.signal });
    await sleepMs(50);
    const reason = new Error('no longer needed');
    controller.abort(reason);
    await expect(running).rejects.toBe(reason);
    expect(await pool.run(4, { name: 'square' })).toBe(16);
    await expect(pool.run(1, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
  });

  it('bounds its queue: one task more than maxQueue is refused with RateLimitError', async () => {
    const pool = makePool<number, number>({ maxThreads: 1, minThreads: 1, maxQueue: 1, name: 'spin' });
    await pool.run(0); // the thread is up
    const controller = new AbortController();
    const running = pool.run(60_000, { signal: controller.signal });
    const queued = pool.run(0, { signal: controller.signal });
    await expect(pool.run(0)).rejects.toBeInstanceOf(RateLimitError);
    expect(pool.stats()).toMatchObject({ rejected: 1, pending: 2 });
    controller.abort(new Error('done'));
    await expect(running).rejects.toThrow('done');
    await expect(queued).rejects.toThrow('done');
  });

  it('serves as a BatchProcessor handler', async () => {
    const pool = makePool<number, number>({ maxThreads: 2, name: 'square' });
    const processor = new BatchProcessor({ concurrency: 4 });
    const results = await processor.map([1, 2, 3, 4, 5, 6], (n, { signal }) => pool.run(n, { signal }));
    expect(results.map((r) => (r.ok ? r.value : -1))).toEqual([1, 4, 9, 16, 25, 36]);
  });

  it('close() lets queued work finish, is idempotent, and refuses new tasks', async () => {
    const pool = new WorkerPool<number, number>({ filename: fixture, maxThreads: 1, name: 'square' });
    const tasks = [pool.run(2), pool.run(3), pool.run(4)];
    const closing = pool.close();
    await expect(pool.run(5)).rejects.toBeInstanceOf(ClosedError);
    expect(await Promise.all(tasks)).toEqual([4, 9, 16]);
    await closing;
    await pool.close();
    expect(pool.stats().threads).toBe(0);
  });

  it('validates its options', () => {
    expect(() => new WorkerPool({ filename: 'relative/task.mjs' })).toThrow(ConfigError);
    expect(() => new WorkerPool({} as never)).toThrow(/WorkerPool.filename/);
    expect(() => new WorkerPool({ filename: fixture, maxThreads: 0 })).toThrow(/WorkerPool.maxThreads/);
    expect(() => new WorkerPool({ filename: fixture, maxThreads: 1, minThreads: 2 })).toThrow(/minThreads/);
    expect(() => new WorkerPool({ filename: fixture, maxQueue: -1 })).toThrow(/WorkerPool.maxQueue/);
    expect(() => new WorkerPool({ filename: new URL('https://example.com/x.mjs') })).toThrow(ConfigError);
  });

  it('keeps the event loop turning while a CPU-bound task runs in the pool, unlike on the main thread', async () => {
    // Behaviour only: the main thread keeps running other callbacks while the pool computes, and none while
    // the same task runs inline. How much event-loop delay each costs is speed: `npm run bench -- batch`.
    const pool = makePool<{ samples: number }, number>({ maxThreads: 1, minThreads: 1 });
    const task = { samples: 2_000_000 };
    await pool.run({ samples: 1000 }); // thread started before measuring
    let turns = 0;
    let spinning = true;
    const spin = (): void => {
      turns++;
      if (spinning) setImmediate(spin);
    };
    try {
      setImmediate(spin);
      const inPool = await pool.run(task);
      const turnsDuringPool = turns;
      turns = 0;
      const onMain = estimatePi(task);
      const turnsDuringMain = turns;
      expect(inPool).toBe(onMain);
      expect(turnsDuringPool).toBeGreaterThan(10);
      expect(turnsDuringMain).toBe(0);
    } finally {
      spinning = false;
    }
  });

  it('a module that is missing or fails to load: run() rejects promptly with a ConfigError naming filename', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hotpath-pool-'));
    const broken = join(dir, 'broken.mjs');
    const throwing = join(dir, 'throws.mjs');
    await writeFile(broken, 'export default (x) => { this is not javascript', 'utf8');
    await writeFile(throwing, 'throw new Error("boom at load");\nexport default (x) => x;', 'utf8');
    for (const [filename, cause] of [
      [join(dir, 'missing.mjs'), /Cannot find module/],
      [broken, /Unexpected/],
      [throwing, /boom at load/],
    ] as const) {
      for (const minThreads of [0, 1]) {
        const pool = makePool<number, number>({ filename, maxThreads: 1, minThreads });
        const error = await pool.run(1).catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(ConfigError);
        expect((error as ConfigError).option).toBe('WorkerPool.filename');
        expect((error as Error).message).toMatch(cause);
        // Later runs fail the same way at once, and close() does not hang on the stuck task.
        await expect(pool.run(2)).rejects.toBe(error);
        expect(pool.stats().pending).toBe(0);
        await pool.close();
      }
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('input that cannot be cloned is a ConfigError naming the data, and the pool keeps working', async () => {
    const pool = makePool<unknown, number>({ maxThreads: 1 });
    const error = await pool.run({ callback: () => 1 }, { name: 'square' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).option).toBe('WorkerPool.run.data');
    expect((error as Error).cause).toMatchObject({ name: 'DataCloneError' });
    expect(await pool.run(6, { name: 'square' })).toBe(36);
  });

  it('ClosedError reads "WorkerPool is closed" (said once)', async () => {
    const pool = makePool();
    await pool.close();
    await expect(pool.run(1)).rejects.toThrow(/^WorkerPool is closed$/);
  });
});
