/**
 * The `hotpath` command, as a user runs it: the bin is built with tsup (beforeAll) and spawned with
 * pipes (non-TTY mode), against SQLite (a fresh file per test) and PostgreSQL (a fresh schema per
 * test). The test process plays the producer through the library, in its own process.
 */
import { JobQueue } from 'hotpath/queue';
import { createStorage, type StorageAdapter } from 'hotpath/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshPgSchema, needsPostgres } from '../helpers/services.js';
import { buildBin, cleanEnv, eventually, freePort, RunningBin, type RunResult, runBin, tempDir } from './helpers.js';

const hasPostgres = await needsPostgres();
let bin = '';
let cleanupBin: () => Promise<void> = async () => {};
let files: Awaited<ReturnType<typeof tempDir>>;

/** A worker module: `echo` returns its data; `boom` fails; `slow` waits for its signal when SLOW=1. */
const JOBS_MODULE = `
export default {
  echo: async (data) => ({ echoed: data }),
  boom: { handler: async () => { throw new Error('kaboom'); }, attempts: 1 },
  slow: async (data, job) => {
    if (process.env.SLOW !== '1') return 'done';
    await new Promise((resolve, reject) => job.signal.addEventListener('abort', () => reject(job.signal.reason)));
  },
};
`;
/** A module run in a worker thread: `spin` never yields. */
const SPIN_MODULE = `
export default async function (data) {
  if (data.spin) for (;;) {}
  return data.n + 1;
}
`;
/** A worker module whose `spin` type is sandboxed (hard-killed at 300 ms). */
const SANDBOX_MODULE = `
export default {
  spin: { file: new URL('./spin.mjs', import.meta.url), timeoutMs: 300, attempts: 1 },
};
`;
/** A worker module with a schedule and no handler: it only produces `tick` jobs. */
const SCHEDULE_MODULE = `
export default async (app) => {
  await app.schedule('ticker', { every: 100 }, 'tick', { from: 'schedule' });
};
`;

let jobsModule = '';
let scheduleModule = '';
let sandboxModule = '';

beforeAll(async () => {
  files = await tempDir();
  jobsModule = await files.write('jobs.mjs', JOBS_MODULE);
  scheduleModule = await files.write('schedule.mjs', SCHEDULE_MODULE);
  await files.write('spin.mjs', SPIN_MODULE);
  sandboxModule = await files.write('sandbox.mjs', SANDBOX_MODULE);
  ({ bin, cleanup: cleanupBin } = await buildBin());
}, 180_000);

afterAll(async () => {
  await cleanupBin();
  await files?.remove();
});

interface Backend {
  name: string;
  /** A fresh, empty database URL and its clean-up. */
  fresh: () => Promise<{ url: string; drop: () => Promise<void> }>;
}

let sqliteCount = 0;
const BACKENDS: Backend[] = [
  {
    name: 'sqlite',
    fresh: async () => ({ url: `sqlite://${files.dir}/db-${++sqliteCount}.db`, drop: async () => {} }),
  },
  ...(hasPostgres
    ? [
        {
          name: 'postgres',
          fresh: async () => {
            const own = await freshPgSchema('cli');
            return { url: own.url, drop: own.drop };
          },
        },
      ]
    : []),
];

/** Opens the database in this process (the producer side). */
async function withQueue<T>(url: string, fn: (queue: JobQueue, storage: StorageAdapter) => Promise<T>): Promise<T> {
  const storage = createStorage(url);
  const queue = new JobQueue({ storage });
  try {
    return await fn(queue, storage);
  } finally {
    await queue.close();
    await storage.close();
  }
}

const json = (result: RunResult) => JSON.parse(result.stdout) as Record<string, unknown>;

describe('hotpath: usage', () => {
  it('--help works on every command (exit 0) and bad usage exits 2', async () => {
    for (const args of [
      ['--help'],
      ['worker', '--help'],
      ['migrate', '--help'],
      ['queue', '--help'],
      ['queue', 'stats', '--help'],
      ['queue', 'list', '--help'],
      ['queue', 'show', '--help'],
      ['queue', 'retry', '--help'],
      ['queue', 'cancel', '--help'],
      ['queue', 'purge', '--help'],
      ['doctor', '--help'],
      ['dashboard', '--help'],
    ]) {
      const result = await runBin(bin, args);
      expect(result.code, args.join(' ')).toBe(0);
      expect(result.stdout).toMatch(/^Usage: hotpath/);
    }
    const usage = [
      ['bogus'],
      ['queue'],
      ['queue', 'list', '--database-url', 'sqlite:///tmp/x.db', '--status', 'nope'],
      ['queue', 'stats'], // no database URL
      ['queue', 'purge', '--database-url', 'sqlite:///tmp/x.db', '--status', 'succeeded', '--older-than', 'soon'],
      ['migrate', '--from', 'sqlite:///tmp/a.db'],
      ['worker', jobsModule, '--concurrency', '0', '--database-url', 'sqlite:///tmp/x.db'],
    ];
    for (const args of usage) {
      const result = await runBin(bin, args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr.length).toBeGreaterThan(0);
    }
  });
});

describe.each(BACKENDS)('hotpath on $name', (backend) => {
  it('queue stats | list | show | retry | cancel | purge: plain lines and --json', async () => {
    const { url, drop } = await backend.fresh();
    try {
      const ids = await withQueue(url, async (queue) => {
        queue.register('echo', async (data) => data);
        queue.register(
          'boom',
          async () => {
            throw new Error('kaboom');
          },
          { attempts: 1 },
        );
        const ok = await queue.enqueue('echo', { n: 1 });
        const failed = await queue.enqueue('boom', {});
        await queue.start();
        await queue.wait(ok, { timeoutMs: 20_000 });
        await expect(queue.wait(failed, { timeoutMs: 20_000 })).rejects.toThrow('kaboom');
        await queue.stop();
        const waiting = await queue.enqueue('echo', { n: 2 }, { delayMs: 3_600_000 });
        return { ok, failed, waiting };
      });
      const env = cleanEnv({ HOTPATH_DATABASE_URL: url });

      const stats = await runBin(bin, ['queue', 'stats'], env);
      expect(stats.code).toBe(0);
      expect(stats.stdout).toMatch(/^succeeded\s+1$/m);
      expect(stats.stdout).toMatch(/^failed\s+1$/m);
      expect(stats.stdout).toMatch(/^queued\s+1$/m);
      expect(stats.stdout).not.toContain('\u001b['); // no colours or bars on a pipe
      const statsJson = json(await runBin(bin, ['queue', 'stats', '--json'], env));
      expect(statsJson).toMatchObject({ counts: { succeeded: 1, failed: 1, queued: 1, running: 0, cancelled: 0 } });

      const list = await runBin(bin, ['queue', 'list', '--status', 'failed'], env);
      expect(list.code).toBe(0);
      expect(list.stdout).toContain(ids.failed);
      expect(list.stdout).not.toContain(ids.ok);
      const listJson = json(await runBin(bin, ['--json', 'queue', 'list', '--type', 'echo', '--limit', '1'], env));
      expect((listJson.items as Array<{ id: string }>).map((job) => job.id)).toEqual([ids.ok]);
      expect(listJson.nextCursor).not.toBeNull();

      const show = await runBin(bin, ['queue', 'show', ids.failed], env);
      expect(show.stdout).toMatch(/^status\s+failed$/m);
      expect(show.stdout).toContain('kaboom');
      const showJson = json(await runBin(bin, ['queue', 'show', ids.ok, '--json'], env));
      expect(showJson).toMatchObject({ id: ids.ok, status: 'succeeded', result: { n: 1 } });
      const missing = await runBin(bin, ['queue', 'show', '01a00000-0000-7000-8000-000000000000'], env);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain('no job');

      const cancel = await runBin(bin, ['queue', 'cancel', ids.waiting, '--json'], env);
      expect(json(cancel)).toMatchObject({ id: ids.waiting, cancelled: true, status: 'cancelled' });
      const cancelAgain = await runBin(bin, ['queue', 'cancel', ids.waiting], env);
      expect(cancelAgain.code).toBe(1);

      const retryOne = await runBin(bin, ['queue', 'retry', ids.waiting], env);
      expect(retryOne.code).toBe(0);
      expect(retryOne.stdout).toContain(`retried ${ids.waiting}`);
      const retryAll = await runBin(bin, ['queue', 'retry', '--status', 'failed', '--json'], env);
      expect(json(retryAll)).toMatchObject({ status: 'failed', matched: 1, retried: 1 });
      await withQueue(url, async (queue) => {
        expect((await queue.get(ids.failed))?.status).toBe('queued');
        expect((await queue.get(ids.waiting))?.status).toBe('queued');
      });

      const dryPurge = await runBin(
        bin,
        ['queue', 'purge', '--status', 'succeeded', '--older-than', '0s', '--dry-run'],
        env,
      );
      expect(dryPurge.stdout).toContain('would delete 1 succeeded');
      const keep = await runBin(bin, ['queue', 'purge', '--status', 'succeeded', '--older-than', '7d', '--json'], env);
      expect(json(keep)).toMatchObject({ matched: 0, deleted: 0 });
      const purge = await runBin(bin, ['queue', 'purge', '--status', 'succeeded', '--older-than', '0s'], env);
      expect(purge.code).toBe(0);
      expect(purge.stdout).toContain('deleted 1 succeeded');
      await withQueue(url, async (queue) => expect(await queue.get(ids.ok)).toBeUndefined());
    } finally {
      await drop();
    }
  });

  it('worker: an idle worker runs jobs enqueued by another process; one info line per state change', async () => {
    const { url, drop } = await backend.fresh();
    try {
      for (const mode of ['plain', 'json'] as const) {
        const args = ['worker', jobsModule, '--concurrency', '2', ...(mode === 'json' ? ['--json'] : [])];
        const worker = new RunningBin(bin, args, cleanEnv({ HOTPATH_DATABASE_URL: url }));
        await worker.waitFor(/worker started/);
        // Idle now, and it stays up (a SQLite worker used to exit here: nothing held the event loop).
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(worker.child.exitCode).toBeNull();
        const [ok, failed] = await withQueue(url, async (queue) => [
          await queue.enqueue('echo', { mode }),
          await queue.enqueue('boom', {}),
        ]);
        await worker.waitFor((line) => line.includes(ok as string) && line.includes('job succeeded'));
        await worker.waitFor((line) => line.includes(failed as string) && /job failed\b/.test(line));
        expect(await worker.terminate()).toBe(0);
        const mine = worker.lines.filter((line) => line.includes(ok as string));
        expect(mine.map((line) => /job (running|succeeded)/.exec(line)?.[0])).toEqual(['job running', 'job succeeded']);
        expect(worker.lines.filter((line) => line.includes(failed as string))).toHaveLength(2);
        if (mode === 'json') {
          const events = worker.lines.map((line) => JSON.parse(line) as { level: string; msg: string; id?: string });
          expect(events.filter((event) => event.id === ok)).toEqual([
            expect.objectContaining({ level: 'info', msg: 'job running' }),
            expect.objectContaining({ level: 'info', msg: 'job succeeded' }),
          ]);
          expect(events.map((event) => event.msg)).toContain('worker stopped');
        } else {
          expect(mine[0]).toMatch(/^\S+Z info +job running id=\S+ type=echo attempt=1/);
        }
      }
    } finally {
      await drop();
    }
  });

  it('worker: SIGTERM mid-job hands the lease back (no attempt spent) and the next worker finishes the job', async () => {
    const { url, drop } = await backend.fresh();
    try {
      const id = await withQueue(url, (queue) => queue.enqueue('slow', {}, { attempts: 1 }));
      const first = new RunningBin(
        bin,
        ['worker', jobsModule, '--types', 'slow', '--shutdown-timeout', '200ms'],
        cleanEnv({ HOTPATH_DATABASE_URL: url, SLOW: '1' }),
      );
      await first.waitFor((line) => line.includes(id) && line.includes('job running'));
      expect(await first.terminate()).toBe(0);
      expect(first.lines.join('\n')).toMatch(/worker stopped released=1/);
      await withQueue(url, async (queue) => {
        expect(await queue.get(id)).toMatchObject({ status: 'queued', attempts: 0 });
      });
      // With attempts: 1, a spent attempt would have failed the job; the next worker runs it.
      const second = new RunningBin(bin, ['worker', jobsModule], cleanEnv({ HOTPATH_DATABASE_URL: url }));
      await second.waitFor((line) => line.includes(id) && line.includes('job succeeded'));
      expect(await second.terminate()).toBe(0);
      await withQueue(url, async (queue) => {
        expect(await queue.get(id)).toMatchObject({ status: 'succeeded', attempts: 1, result: 'done' });
      });
    } finally {
      await drop();
    }
  });

  it('worker: a sandboxed handler stuck in a CPU loop is killed at its deadline and the next job runs', async () => {
    const { url, drop } = await backend.fresh();
    try {
      const worker = new RunningBin(bin, ['worker', sandboxModule], cleanEnv({ HOTPATH_DATABASE_URL: url }));
      await worker.waitFor(/worker started/);
      const [stuck, next] = await withQueue(url, async (queue) => [
        await queue.enqueue('spin', { spin: true }),
        await queue.enqueue('spin', { n: 41 }, { timeoutMs: 30_000 }),
      ]);
      await worker.waitFor((line) => line.includes(stuck as string) && /job failed .*error=.*timed out/i.test(line));
      await worker.waitFor((line) => line.includes(next as string) && line.includes('job succeeded'));
      expect(await worker.terminate()).toBe(0);
      await withQueue(url, async (queue) => {
        expect(await queue.get(stuck as string)).toMatchObject({
          status: 'failed',
          attempts: 1,
          error: { name: 'TimeoutError' },
        });
        expect(await queue.get(next as string)).toMatchObject({ status: 'succeeded', result: 42 });
      });
    } finally {
      await drop();
    }
  });

  it('worker: a module with only a schedule stays up and its schedule fires', async () => {
    const { url, drop } = await backend.fresh();
    try {
      const worker = new RunningBin(bin, ['worker', scheduleModule], cleanEnv({ HOTPATH_DATABASE_URL: url }));
      await worker.waitFor(/worker started .*schedules=ticker/);
      const ticks = await eventually(() =>
        withQueue(url, async (queue) => {
          const page = await queue.list({ type: 'tick' });
          return page.items.length >= 2 ? page.items : undefined;
        }),
      );
      expect(ticks[0]).toMatchObject({ type: 'tick', data: { from: 'schedule' }, status: 'queued' });
      expect(await worker.terminate()).toBe(0);
    } finally {
      await drop();
    }
  });

  it('migrate from SQLite: counts, verification, --json; a dry run writes nothing', async () => {
    const { url, drop } = await backend.fresh();
    const source = `sqlite://${files.dir}/source-${backend.name}.db`;
    try {
      const seed = createStorage(source);
      await seed.putMany(
        'users',
        Array.from({ length: 1200 }, (_, i) => ({ id: `u${i}`, name: `user ${i}`, n: i })),
      );
      await seed.putMany('orders', [{ id: 'o1', total: 12.5, lines: [{ sku: 'a', qty: 2 }] }]);
      await seed.close();

      const dry = await runBin(bin, ['migrate', '--from', source, '--to', url, '--dry-run']);
      expect(dry.code).toBe(0);
      expect(dry.stdout).toMatch(/^users\s+1200\s+1200\s+0\s+-$/m);
      const target = createStorage(url);
      try {
        expect(await target.count('users')).toBe(0);
      } finally {
        await target.close();
      }

      const run = await runBin(bin, ['migrate', '--from', source, '--to', url, '--batch-size', '500']);
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/^users\s+1200\s+1200\s+1200\s+ok$/m);
      expect(run.stdout).toMatch(/^orders\s+1\s+1\s+1\s+ok$/m);
      expect(run.stdout).toMatch(/^users 1200\/1200$/m); // plain progress lines, no bar
      const again = json(
        await runBin(bin, ['migrate', '--from', source, '--to', url, '--collections', 'orders', '--json']),
      );
      expect(again).toMatchObject({
        ok: true,
        dryRun: false,
        collections: [{ collection: 'orders', sourceCount: 1, copied: 1, targetCount: 1, mismatched: 0 }],
      });
    } finally {
      await drop();
    }
  });
});

describe.runIf(hasPostgres)('hotpath migrate --dry-run checks the target', () => {
  it('a PostgreSQL schema that does not exist fails the dry run (exit 1) with the reason', async () => {
    const source = `sqlite://${files.dir}/dry-source.db`;
    const seed = createStorage(source);
    await seed.put('users', { name: 'a' });
    await seed.close();
    const own = await freshPgSchema('cli_gone');
    await own.drop(); // the URL now names a schema that does not exist
    const result = await runBin(bin, ['migrate', '--from', source, '--to', own.url, '--dry-run', '--json']);
    expect(result.code).toBe(1);
    expect(json(result)).toMatchObject({ ok: false, dryRun: true });
    expect(String(json(result).problem)).toMatch(/schema/);
  });
});

describe('hotpath dashboard', () => {
  it('serves the page and the queue state read-only for a database, and stops on SIGTERM', async () => {
    const url = `sqlite://${files.dir}/dashboard.db`;
    await withQueue(url, (queue) => queue.enqueue('report', { n: 1 }));
    const dashboard = new RunningBin(bin, ['dashboard', '--port', '0'], cleanEnv({ HOTPATH_DATABASE_URL: url }));
    try {
      const line = await dashboard.waitFor(/^dashboard: http:/);
      expect(line).toMatch(/read-only/);
      const base = (line.match(/http:\/\/\S+\//) as RegExpMatchArray)[0];
      const page = await fetch(base);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/text\/html/);
      const state = (await (await fetch(`${base}api/state`)).json()) as { queue?: { counts?: { queued?: number } } };
      expect(state.queue?.counts?.queued).toBe(1); // read from the database, by a process that claims nothing
      const refused = await fetch(`${base}api/queue/purge`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      expect(refused.status).toBe(403);
      expect(await dashboard.terminate()).toBe(0);
    } finally {
      if (dashboard.child.exitCode === null) dashboard.child.kill('SIGKILL');
    }
  });
});

describe('hotpath doctor', () => {
  it('passes against a healthy SQLite database (plain and --json)', async () => {
    const url = `sqlite://${files.dir}/doctor.db`;
    const plain = await runBin(bin, ['doctor', '--database-url', url]);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/^✓ node/m);
    expect(plain.stdout).toMatch(/^✓ database reachable .*\(\d+\.\d ms\)$/m);
    expect(plain.stdout).toMatch(/^✓ sqlite journal_mode\s+wal$/m);
    expect(plain.stdout).toMatch(/^✓ sqlite busy_timeout\s+\d+ ms$/m);
    const report = json(await runBin(bin, ['doctor', '--json'], cleanEnv({ HOTPATH_DATABASE_URL: url })));
    expect(report.ok).toBe(true);
    expect((report.checks as Array<{ name: string }>).map((check) => check.name)).toContain('sqlite synchronous');
  });

  it.runIf(hasPostgres)('checks PostgreSQL connections and clock skew', async () => {
    const own = await freshPgSchema('cli_doc');
    try {
      const result = await runBin(bin, ['doctor', '--database-url', own.url, '--processes', '2']);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^✓ postgres connections\s+pool 10 × 2 processes = 20 of max_connections \d+/m);
      expect(result.stdout).toMatch(/^✓ clock skew vs postgres/m);
      const tooMany = await runBin(bin, ['doctor', '--database-url', own.url, '--processes', '10000', '--json']);
      expect(tooMany.code).toBe(1);
      expect(json(tooMany).checks).toContainEqual(
        expect.objectContaining({ name: 'postgres connections', ok: false, fix: expect.stringContaining('pool') }),
      );
    } finally {
      await own.drop();
    }
  });

  it('reports ✗ with a fix and exits 1 when the servers are down (a private free port)', async () => {
    const port = await freePort();
    const result = await runBin(bin, [
      'doctor',
      '--database-url',
      `postgres://postgres@127.0.0.1:${port}/test`,
      '--redis-url',
      `redis://127.0.0.1:${port}`,
    ]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^✗ database reachable .*ECONNREFUSED/m);
    expect(result.stdout).toMatch(/^✗ redis reachable .*ECONNREFUSED/m);
    expect(result.stdout).toMatch(/^ {4}fix: start PostgreSQL/m);
    const report = json(
      await runBin(bin, ['doctor', '--json', '--database-url', `postgres://postgres@127.0.0.1:${port}/test`]),
    );
    expect(report.ok).toBe(false);
  });
});
