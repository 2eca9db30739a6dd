/**
 * The backends every conformance test runs against (kysely style: one suite, `for (const backend of BACKENDS)`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Clock, LatencyRecorder } from 'hotpath/core';
import { MemoryStorage, PostgresStorage, SqliteStorage, type StorageAdapter } from 'hotpath/storage';
import { freshPgSchema, needsPostgres } from '../helpers/services.js';

const hasPostgres = await needsPostgres();

export interface BackendOptions {
  clock?: Clock;
  profiler?: LatencyRecorder;
}

export interface Backend {
  name: 'memory' | 'sqlite' | 'postgres';
  available: boolean;
  /** Opens a fresh, empty storage; `cleanup` closes it and removes its files/schema. */
  open(options?: BackendOptions): Promise<{ storage: StorageAdapter; cleanup: () => Promise<void> }>;
}

export const BACKENDS: Backend[] = [
  {
    name: 'memory',
    available: true,
    async open(options = {}) {
      const storage = new MemoryStorage(options);
      return { storage, cleanup: () => storage.close() };
    },
  },
  {
    name: 'sqlite',
    available: true,
    async open(options = {}) {
      const dir = mkdtempSync(join(tmpdir(), 'hp-storage-'));
      const storage = new SqliteStorage({ filename: join(dir, 'db.sqlite'), ...options });
      return {
        storage,
        cleanup: async () => {
          await storage.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 'postgres',
    available: hasPostgres,
    async open(options = {}) {
      const schema = await freshPgSchema('hp_conf');
      const storage = new PostgresStorage({ connectionString: schema.url, max: 4, ...options });
      return {
        storage,
        cleanup: async () => {
          await storage.close();
          await schema.drop();
        },
      };
    },
  },
];
