import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchProcessor, WorkerPool } from 'hotpath/batch';
import { ClosedError, ConfigError, RateLimitError } from 'hotpath/core';
import { afterEach, describe, expect, it } from 'vitest';
import { caught } from '../helpers/errors.js';
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
    const error = await pool.run('bad input', { name: 'fail' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(ConfigError);
    expect((error as Error).message).toBe('bad input');
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
    // Refused before it reached a thread: not counted as a failed task.
    expect(pool.stats()).toMatchObject({ failed: 1, completed: 1 });
  });

  it('bounds its queue: one task more than maxQueue is refused with RateLimitError', async () => {
    const pool = makePool<number, number>({ maxThreads: 1, minThreads: 1, maxQueue: 1, name: 'spin' });
    await pool.run(0); // the thread is up
    const controller = new AbortController();
    const running = pool.run(60_000, { signal: controller.signal });
    const queued = pool.run(0, { signal: controller.signal });
    const refused = await pool.run(0).catch((caught: unknown) => caught);
    expect(refused).toBeInstanceOf(RateLimitError);
    expect((refused as Error).message).toBe('WorkerPool queue is full (1 tasks waiting)');
    expect(pool.stats()).toMatchObject({ rejected: 1, failed: 1, pending: 2 });
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
        expect((error as Error).message.startsWith(`WorkerPool: ${filename} does not load in a worker thread: `)).toBe(
          true,
        );
        expect((error as Error).cause).toBeInstanceOf(Error);
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
    expect((error as Error).message).toMatch(
      /^WorkerPool\.run: a task's data and result must survive a structured clone \(no functions, class instances lose their prototype\): ./,
    );
    expect(await pool.run(6, { name: 'square' })).toBe(36);
  });

  it('ClosedError reads "WorkerPool is closed" (said once)', async () => {
    const pool = makePool();
    await pool.close();
    await expect(pool.run(1)).rejects.toThrow(/^WorkerPool is closed$/);
  });

  it('a module that ends its thread or throws later while loading is a ConfigError too, with the cause’s stack', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hotpath-pool-'));
    const exits = join(dir, 'exits.mjs');
    const late = join(dir, 'late.mjs');
    const throwing = join(dir, 'throws-here.mjs');
    await writeFile(exits, 'process.exit(3);\nexport default (x) => x;', 'utf8');
    await writeFile(
      late,
      'setTimeout(() => { throw new Error("late boom"); }, 1);\nawait new Promise(() => {});\nexport default (x) => x;',
      'utf8',
    );
    await writeFile(throwing, 'throw new Error("boom at load");\nexport default (x) => x;', 'utf8');
    const messages: string[] = [];
    for (const filename of [exits, late, throwing]) {
      const pool = makePool<number, number>({ filename, maxThreads: 1 });
      const error = await pool.run(1).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ConfigError);
      messages.push(
        (error as Error).message.slice(`WorkerPool: ${filename} does not load in a worker thread: `.length),
      );
      if (filename === throwing) expect(((error as Error).cause as Error).stack).toContain('throws-here.mjs');
      await pool.close();
    }
    expect(messages).toEqual(['the probe thread exited before loading it', 'late boom', 'boom at load']);
    await rm(dir, { recursive: true, force: true });
  });

  it('names every filename mistake exactly, and takes file: strings and drive-letter paths', async () => {
    const message = (filename: unknown) => (caught(() => new WorkerPool({ filename } as never)) as Error).message;
    expect(message('relative/task.mjs')).toBe(
      'WorkerPool.filename must be absolute (workers resolve relative paths from their own cwd), got "relative/task.mjs"',
    );
    expect(message('')).toBe('WorkerPool.filename must be an absolute path or a file: URL');
    expect(message(undefined)).toMatch(/WorkerPool\.filename/);
    expect(message(new URL('https://example.com/x.mjs'))).toBe('WorkerPool.filename must be a file: URL, got https:');
    expect(message('xC:/task.mjs')).toMatch(/must be absolute/);
    expect(message('C:task.mjs')).toMatch(/must be absolute/);
    for (const wrong of ['relative/task.mjs', '', 5, new URL('https://example.com/x.mjs')]) {
      expect((caught(() => new WorkerPool({ filename: wrong } as never)) as ConfigError).option).toBe(
        'WorkerPool.filename',
      );
    }
    for (const windows of ['C:/tasks/x.mjs', 'c:\\tasks\\x.mjs']) {
      const pool = new WorkerPool({ filename: windows });
      await pool.close({ force: true });
    }
    const fromString = makePool<number, number>({ filename: fixture.href as never, name: 'square', maxThreads: 1 });
    expect(await fromString.run(7)).toBe(49);
  });

  it('defaults maxThreads to one less than the cores (at least 1): minThreads above it is refused', () => {
    const defaultMax = Math.max(1, availableParallelism() - 1);
    const error = caught(() => new WorkerPool({ filename: fixture, minThreads: defaultMax + 1 }));
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).option).toBe('WorkerPool.minThreads');
    expect((error as Error).message).toBe(
      `WorkerPool.minThreads (${defaultMax + 1}) must be <= maxThreads (${defaultMax})`,
    );
    makePool({ minThreads: defaultMax });
  });

  it('records each task’s duration (never more than the call took), ok and failed, as batch.worker', async () => {
    const records: unknown[][] = [];
    const profiler = { record: (...args: unknown[]) => void records.push(args) };
    const pool = makePool<number, number>({ maxThreads: 1, profiler });
    const before = performance.now();
    await pool.run(3, { name: 'square' });
    await pool.run(3 as never, { name: 'fail' }).catch(() => {});
    const took = performance.now() - before;
    expect(records.map(([name, , failed]) => [name, failed])).toEqual([
      ['batch.worker', undefined],
      ['batch.worker', true],
    ]);
    for (const [, ms] of records) {
      expect(ms).toBeGreaterThanOrEqual(0);
      expect(ms).toBeLessThanOrEqual(took);
    }
  });

  it('moves buffers in transferList instead of copying them', async () => {
    const pool = makePool<ArrayBuffer, number>({ maxThreads: 1, name: 'byteLength' });
    const copied = new ArrayBuffer(16);
    expect(await pool.run(copied)).toBe(16);
    expect(copied.byteLength).toBe(16);
    const moved = new ArrayBuffer(16);
    expect(await pool.run(moved, { transferList: [moved] })).toBe(16);
    expect(moved.byteLength).toBe(0);
  });

  it('keeps an idle thread for idleTimeoutMs (30 s by default)', async () => {
    const pool = makePool<number, number>({ maxThreads: 1, name: 'square' });
    await pool.run(2);
    await sleepMs(200);
    expect(pool.stats().threads).toBe(1);
  });

  it('close({ force: true }) ends a running task at once; await using closes', async () => {
    const pool = makePool<number, number>({ maxThreads: 1, name: 'spin' });
    const running = pool.run(60_000).catch((caught: unknown) => caught);
    await sleepMs(50);
    await pool.close({ force: true });
    expect(await running).toBeInstanceOf(Error);
    let scoped: WorkerPool | undefined;
    {
      await using inner = new WorkerPool({ filename: fixture, maxThreads: 1 });
      scoped = inner;
    }
    await expect(scoped.run(1)).rejects.toBeInstanceOf(ClosedError);
  });
});
