import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStorage } from '../../src/storage/index.js';
import { conformanceSuite } from './conformance-suite.js';

conformanceSuite({
  name: 'sqlite',
  async create() {
    const dir = mkdtempSync(join(tmpdir(), 'hotpath-queue-'));
    const storage = new SqliteStorage({ filename: join(dir, 'queue.db') });
    return {
      storage,
      async cleanup() {
        await storage.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
});
