import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { JobQueue } from 'hotpath/queue';
import { SqliteStorage } from 'hotpath/storage';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'hotpath-shutdown-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('closing the app while a job is running and writing progress (SQLite)', () => {
  it('hands the lease back, writes nothing after storage closed, and lets the process exit', async () => {
    const file = join(dir, 'app.db');
    const { stdout, stderr } = await run(
      process.execPath,
      ['--import', 'tsx', 'test/app/fixtures/close-during-job.ts', file],
      {
        timeout: 15_000,
      },
    );
    // Exiting on its own (no timers or handles left) is part of the assertion: execFile would time out otherwise.
    expect(stderr).not.toContain('completion write failed');
    const id = /closed job=(\S+)/.exec(stdout)?.[1];
    expect(id).toBeDefined();
    await using storage = new SqliteStorage({ filename: file });
    await using queue = new JobQueue({ storage });
    const job = await queue.get(id!);
    // The run was aborted by the shutdown and handed back without spending an attempt.
    expect(job?.status).toBe('queued');
    expect(job?.attempts).toBe(0);
  });
});
