/** Durability on SQLite proven with a worker process killed with SIGKILL. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { SqliteStorage } from '../../src/storage/index.js';
import { killMidRun } from './fixtures/processes.js';

describe('chaos: sqlite', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'hotpath-queue-chaos-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a SIGKILLed worker loses no job; a second worker finishes them, re-running only after lease expiry', async () => {
    const filename = join(dir, 'chaos.db');
    const storage = new SqliteStorage({ filename });
    try {
      await killMidRun(storage, { BACKEND: 'sqlite', DB: filename }, join(dir, 'runs.log'));
    } finally {
      await storage.close();
    }
  }, 180_000); // child processes start slowly on a loaded 2-core CI machine
});
