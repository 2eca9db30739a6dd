import { describe } from 'vitest';
import { PostgresStorage } from '../../src/storage/index.js';
import { freshPgSchema, needsPostgres } from '../helpers/services.js';
import { conformanceSuite } from './conformance-suite.js';

const hasPostgres = await needsPostgres();

describe.runIf(hasPostgres)('postgres', () => {
  conformanceSuite({
    name: 'postgres',
    async create() {
      const schema = await freshPgSchema('queue');
      const storage = new PostgresStorage({ connectionString: schema.url, max: 4 });
      return {
        storage,
        async cleanup() {
          await storage.close();
          await schema.drop();
        },
      };
    },
  });
});
