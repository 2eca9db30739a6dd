/**
 * Issues 18 and 20, in real child processes: a started queue keeps its process alive until stopped
 * (every backend, including a worker whose only work is a schedule), a pending `wait()` keeps a
 * producer alive until its result or timeout, and `handleShutdownSignals` stops a worker on SIGTERM
 * mid-job — lease handed back without spending the attempt, exit code 0.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { JobQueue } from 'hotpath/queue';
import { describe, expect, it } from 'vitest';
import { SqliteStorage } from '../../src/storage/index.js';
import { eventually } from '../helpers/async.js';
import { freshPgSchema, needsPostgres } from '../helpers/services.js';
import { useTempDir } from '../helpers/temp-dir.js';

const CHILD = join(import.meta.dirname, 'fixtures', 'lifecycle-child.ts');
const hasPostgres = await needsPostgres();
// Child processes start slowly on a loaded 2-core machine.
const SLOW = 120_000;

interface Child {
  process: ChildProcess;
  lines: string[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function spawnChild(env: Record<string, string>): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  let rest = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    const parts = (rest + chunk.toString()).split('\n');
    rest = parts.pop() ?? '';
    lines.push(...parts);
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { process: child, lines, exit };
}

/** Resolves with the first line starting with `prefix`; fails if the child exits first. */
async function line(child: Child, prefix: string, timeoutMs = 60_000): Promise<string> {
  let exited = false;
  void child.exit.then(() => {
    exited = true;
  });
  return eventually(() => {
    const found = child.lines.find((l) => l.startsWith(prefix));
    if (found !== undefined) return found;
    if (exited) throw new Error(`child exited (lines: ${child.lines.join(' | ')}) before printing "${prefix}"`);
    return undefined;
  }, timeoutMs);
}

describe('queue processes: keep-alive and signals', () => {
  const tempDir = useTempDir('hp-queue-lifecycle-');

  it(
    'a memory producer awaiting wait() gets its TimeoutError instead of exiting with code 13',
    async () => {
      const child = spawnChild({ MODE: 'wait', BACKEND: 'memory', WAIT_MS: '300' });
      expect(await child.exit).toEqual({ code: 0, signal: null });
      expect(child.lines).toContain('timeout');
    },
    SLOW,
  );

  it(
    'a SQLite producer awaiting wait() stays alive until another process ran the job',
    async () => {
      const filename = join(tempDir(), 'wait.db');
      const storage = new SqliteStorage({ filename });
      const worker = new JobQueue({ storage, pollIntervalMs: 20 });
      try {
        const child = spawnChild({ MODE: 'wait', BACKEND: 'sqlite', DB: filename });
        await line(child, 'enqueued ');
        worker.register('echo', async (data) => ({ echoed: data }));
        await worker.start();
        expect(await child.exit).toEqual({ code: 0, signal: null });
        const result = child.lines.find((l) => l.startsWith('result '));
        expect(JSON.parse((result ?? 'result null').slice('result '.length))).toEqual({
          echoed: { from: child.process.pid },
        });
      } finally {
        await worker.close();
        await storage.close();
      }
    },
    SLOW,
  );

  it(
    'a started memory worker stays alive for its delayed job, and SIGTERM exits 0',
    async () => {
      const child = spawnChild({ MODE: 'worker', BACKEND: 'memory', SELF_DELAY_MS: '300' });
      await line(child, 'ready');
      await line(child, 'ran ');
      child.process.kill('SIGTERM');
      expect(await child.exit).toEqual({ code: 0, signal: null });
    },
    SLOW,
  );

  it(
    'an idle SQLite worker stays up and runs a job another process enqueues',
    async () => {
      const filename = join(tempDir(), 'idle.db');
      const storage = new SqliteStorage({ filename });
      const producer = new JobQueue({ storage });
      try {
        await producer.enqueue('warm-up', null); // creates the tables before the child opens the file
        const child = spawnChild({ MODE: 'worker', BACKEND: 'sqlite', DB: filename });
        await line(child, 'ready');
        const id = await producer.enqueue('echo', 'from the test');
        expect(await line(child, 'ran ')).toBe(`ran ${id}`);
        expect(await producer.wait(id, { timeoutMs: 30_000 })).toBe('from the test');
        child.process.kill('SIGTERM');
        expect(await child.exit).toEqual({ code: 0, signal: null });
      } finally {
        await producer.close();
        await storage.close();
      }
    },
    SLOW,
  );

  it(
    'a SQLite worker whose only work is a schedule stays alive and the schedule fires',
    async () => {
      const child = spawnChild({
        MODE: 'worker',
        BACKEND: 'sqlite',
        DB: join(tempDir(), 'schedule.db'),
        SCHEDULE_MS: '100',
      });
      await line(child, 'ready');
      await eventually(() => child.lines.filter((l) => l === 'tick').length >= 2, 60_000);
      child.process.kill('SIGTERM');
      expect(await child.exit).toEqual({ code: 0, signal: null });
    },
    SLOW,
  );

  it(
    'SIGTERM mid-job: the lease is handed back without spending the attempt, exit 0, the next worker finishes it',
    async () => {
      const filename = join(tempDir(), 'sigterm.db');
      const storage = new SqliteStorage({ filename });
      const queue = new JobQueue({ storage, pollIntervalMs: 20 });
      try {
        const id = await queue.enqueue('long', null);
        const child = spawnChild({ MODE: 'worker', BACKEND: 'sqlite', DB: filename });
        expect(await line(child, 'started ')).toBe(`started ${id}`);
        expect((await queue.get(id))?.status).toBe('running');
        child.process.kill('SIGTERM');
        expect(await child.exit).toEqual({ code: 0, signal: null });
        expect(await queue.get(id)).toMatchObject({ status: 'queued', attempts: 0 });
        queue.register('long', async () => 'finished here');
        await queue.start();
        expect(await queue.wait(id, { timeoutMs: 30_000 })).toBe('finished here');
        expect((await queue.get(id))?.attempts).toBe(1);
      } finally {
        await queue.close();
        await storage.close();
      }
    },
    SLOW,
  );

  it.runIf(hasPostgres)(
    'an idle PostgreSQL worker stays up and runs a job another process enqueues',
    async () => {
      const schema = await freshPgSchema('hp_queue_lifecycle');
      const { PostgresStorage } = await import('../../src/storage/index.js');
      const storage = new PostgresStorage({ connectionString: schema.url, max: 2 });
      const producer = new JobQueue({ storage });
      try {
        await producer.enqueue('warm-up', null);
        const child = spawnChild({ MODE: 'worker', BACKEND: 'postgres', DB: schema.url });
        await line(child, 'ready');
        const id = await producer.enqueue('echo', 'pg');
        expect(await line(child, 'ran ')).toBe(`ran ${id}`);
        child.process.kill('SIGTERM');
        expect(await child.exit).toEqual({ code: 0, signal: null });
      } finally {
        await producer.close();
        await storage.close();
        await schema.drop();
      }
    },
    SLOW,
  );
});
