/**
 * Differential property test (fast-check): random sequences of put / putMany / update (with and without
 * expected versions) / updateMany / delete / find (where with comparisons, startsWith and contains; orderBy;
 * every cursor page) / count / aggregate give identical answers on
 * memory, SQLite and PostgreSQL — memory is the model. Errors compare by their code.
 * Seeded; `PROPERTY_RUNS=200` runs a longer search.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { isHotpathError } from 'hotpath/core';
import {
  type FindOptions,
  MemoryStorage,
  PostgresStorage,
  SqliteStorage,
  type StorageAdapter,
  type Where,
} from 'hotpath/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshPgSchema, needsPostgres } from '../helpers/services.js';

const hasPostgres = await needsPostgres();

const RUNS = Number(process.env.PROPERTY_RUNS ?? 120);
const IDS = ['a', 'b', 'c', 'd', 'e', 'f'];
const WORDS = ['apple', 'banana', 'cherry', 'date'];

const docArb = fc.record(
  {
    n: fc.integer({ min: -3, max: 3 }),
    s: fc.constantFrom(...WORDS),
    flag: fc.boolean(),
  },
  { requiredKeys: ['s'] },
);
const conditionArb = fc.oneof(
  fc.record({ field: fc.constant('n'), value: fc.integer({ min: -3, max: 3 }) }),
  fc.record({ field: fc.constant('s'), value: fc.constantFrom(...WORDS) }),
  fc.record({ field: fc.constant('flag'), value: fc.boolean() }),
  fc.record({
    field: fc.constant('n'),
    value: fc.oneof(
      fc.record({ gt: fc.integer({ min: -3, max: 3 }) }),
      fc.record({ gte: fc.integer({ min: -3, max: 3 }) }),
      fc.record({ lt: fc.integer({ min: -3, max: 3 }) }),
      fc.record({ lte: fc.integer({ min: -3, max: 3 }) }),
      fc.record({ ne: fc.integer({ min: -3, max: 3 }) }),
      fc.record({ in: fc.array(fc.integer({ min: -3, max: 3 }), { minLength: 1, maxLength: 3 }) }),
    ),
  }),
  fc.record({
    field: fc.constant('s'),
    value: fc.oneof(
      fc.record({ gte: fc.constantFrom(...WORDS) }),
      fc.record({ in: fc.array(fc.constantFrom(...WORDS), { minLength: 1, maxLength: 2 }) }),
      fc.record({ startsWith: fc.constantFrom('a', 'b', 'ch', 'Da', '') }),
      fc.record({ contains: fc.constantFrom('an', 'A', 'rr', 'e'), caseInsensitive: fc.boolean() }),
    ),
  }),
);
const whereArb = fc.option(fc.array(conditionArb, { maxLength: 2 }), { nil: undefined }).map((conditions) => {
  if (conditions === undefined) return undefined;
  const where: Where = {};
  for (const { field, value } of conditions) where[field] = value as Where[string];
  return where;
});
const aggregateArb = fc.record(
  {
    where: whereArb,
    groupBy: fc.constantFrom('s', 'flag', ['s', 'flag']),
    count: fc.constant(true as const),
    sum: fc.constant(['n']),
    min: fc.constant(['n']),
    max: fc.constant(['n']),
    orderBy: fc.record({
      field: fc.constantFrom('count', 'sum.n', 'min.n'),
      direction: fc.constantFrom('asc' as const, 'desc' as const),
    }),
    limit: fc.integer({ min: 1, max: 5 }),
  },
  { requiredKeys: ['groupBy', 'count'] },
);
const findArb = fc.record(
  {
    where: whereArb,
    orderBy: fc.record({
      field: fc.constantFrom('id', 's', 'n'),
      direction: fc.constantFrom('asc' as const, 'desc' as const),
    }),
    limit: fc.integer({ min: 1, max: 4 }),
  },
  { requiredKeys: ['limit'] },
);

const opArb = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('put' as const), id: fc.constantFrom(...IDS), doc: docArb }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('putMany' as const),
      docs: fc.uniqueArray(fc.record({ id: fc.constantFrom(...IDS), doc: docArb }), {
        selector: (entry) => entry.id,
        maxLength: 4,
      }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('update' as const),
      id: fc.constantFrom(...IDS),
      patch: docArb,
      expectedVersion: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), id: fc.constantFrom(...IDS) }) },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('updateMany' as const), where: whereArb, patch: docArb }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('aggregate' as const), options: aggregateArb }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('find' as const), options: findArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('count' as const), where: whereArb }) },
);
type Op = typeof opArb extends fc.Arbitrary<infer O> ? O : never;

/** Runs one operation; the answer (or the error's code) is what the backends must agree on. */
async function apply(storage: StorageAdapter, collection: string, op: Op): Promise<unknown> {
  try {
    switch (op.op) {
      case 'put':
        return await storage.put(collection, { ...op.doc, id: op.id });
      case 'putMany':
        return await storage.putMany(
          collection,
          op.docs.map((entry) => ({ ...entry.doc, id: entry.id })),
        );
      case 'update': {
        const options = op.expectedVersion === undefined ? undefined : { expectedVersion: op.expectedVersion };
        return await storage.update(collection, op.id, op.patch, options);
      }
      case 'delete':
        return await storage.delete(collection, op.id);
      case 'updateMany':
        return await storage.updateMany(collection, op.where ?? {}, op.patch);
      case 'aggregate':
        return await storage.aggregate(collection, op.options);
      case 'find': {
        // Every page, following the cursor to the end.
        const pages: unknown[] = [];
        let cursor: string | undefined;
        for (let page = 0; page < 20; page++) {
          const options: FindOptions = { ...op.options };
          if (cursor !== undefined) options.cursor = cursor;
          const result = await storage.find(collection, options);
          pages.push(result.items);
          cursor = result.nextCursor;
          if (cursor === undefined) break;
        }
        return pages;
      }
      case 'count':
        return await storage.count(collection, op.where);
    }
  } catch (error) {
    return { error: isHotpathError(error) ? error.code : String(error) };
  }
}

describe('storage differential: memory is the model for SQLite and PostgreSQL', () => {
  const opened: { name: string; storage: StorageAdapter; cleanup: () => Promise<void> }[] = [];

  beforeAll(async () => {
    opened.push({ name: 'memory', storage: new MemoryStorage(), cleanup: async () => {} });
    const dir = mkdtempSync(join(tmpdir(), 'hp-differential-'));
    const sqlite = new SqliteStorage({ filename: join(dir, 'db.sqlite') });
    opened.push({
      name: 'sqlite',
      storage: sqlite,
      cleanup: async () => rmSync(dir, { recursive: true, force: true }),
    });
    if (hasPostgres) {
      const schema = await freshPgSchema('hp_diff');
      const postgres = new PostgresStorage({ connectionString: schema.url, max: 2 });
      opened.push({ name: 'postgres', storage: postgres, cleanup: () => schema.drop() });
    }
  });

  afterAll(async () => {
    for (const { storage, cleanup } of opened) {
      await storage.close();
      await cleanup();
    }
  });

  it('random operation sequences answer identically on every backend', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25, size: 'max' }), async (ops) => {
        // Each run writes its own collection, so runs (and shrinking) never see each other's documents.
        const collection = `diff_${run++}`;
        for (const [index, op] of ops.entries()) {
          const answers = [];
          for (const { storage } of opened) answers.push(await apply(storage, collection, op));
          const [model, ...others] = answers;
          for (const [i, answer] of others.entries()) {
            expect(answer, `step ${index} ${JSON.stringify(op)} on ${opened[i + 1]?.name}`).toEqual(model);
          }
        }
      }),
      { numRuns: RUNS, seed: 20261201 },
    );
  });
});
