/** Durability on SQLite proven with a worker process killed with SIGKILL. */
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { SqliteStorage } from '../../src/storage/index.js';
import { useTempDir } from '../helpers/temp-dir.js';
import { killMidRun } from './fixtures/processes.js';

describe('chaos: sqlite', () => {
  const tempDir = useTempDir('hotpath-queue-chaos-');

  it('a SIGKILLed worker loses no job; a second worker finishes them, re-running only after lease expiry', async () => {
    const filename = join(tempDir(), 'chaos.db');
    const storage = new SqliteStorage({ filename });
    try {
      await killMidRun(storage, { BACKEND: 'sqlite', DB: filename }, join(tempDir(), 'runs.log'));
    } finally {
      await storage.close();
    }
  }, 180_000); // child processes start slowly on a loaded 2-core CI machine
});
