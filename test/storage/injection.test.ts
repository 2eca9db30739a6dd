/**
 * Hostile names, ids, keys, field names and values: names are refused with ConfigError before any SQL
 * is built, values are bound, and the tables are unchanged afterwards. Invalid inputs → typed errors.
 */
import type { StorageAdapter } from 'hotpath/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../helpers/backends.js';

const HOSTILE_NAMES = [
  'users; DROP TABLE doc_victims; --',
  'a"b',
  "a'b",
  'a b',
  '',
  '1abc',
  'x'.repeat(49),
  'doc_victims--',
  'ta\u0000ble',
  'é',
  '$.a',
  'a.b',
];
const HOSTILE_VALUES = [
  "'; DROP TABLE doc_victims; --",
  '" OR 1=1 --',
  "') OR ('1'='1",
  '\\',
  '$.data',
  '%_%',
  '*/ SELECT 1 /*',
  'Robert"); DROP TABLE Students;--',
];

for (const backend of BACKENDS) {
  describe.runIf(backend.available)(`injection and invalid input: ${backend.name}`, () => {
    let storage: StorageAdapter;
    let cleanup: () => Promise<void>;
    const snapshot = async () => (await storage.find('victims', { limit: 1000 })).items;
    let before: unknown[];

    beforeAll(async () => {
      ({ storage, cleanup } = await backend.open());
      await storage.putMany('victims', [
        { id: 'v1', name: 'alice', score: 1 },
        { id: 'v2', name: 'bob', score: 2 },
      ]);
      await storage.ensureIndex('victims', 'name');
      before = await snapshot();
    });
    afterAll(async () => {
      await cleanup?.();
    });

    it('hostile collection names are refused with ConfigError by every method', async () => {
      for (const name of HOSTILE_NAMES) {
        const calls: Array<() => Promise<unknown>> = [
          () => storage.get(name, 'v1'),
          () => storage.getWithMeta(name, 'v1'),
          () => storage.put(name, { a: 1 }),
          () => storage.putMany(name, [{ a: 1 }]),
          () => storage.update(name, 'v1', { a: 1 }),
          () => storage.delete(name, 'v1'),
          () => storage.find(name),
          () => storage.count(name),
          () => storage.ensureIndex(name, 'a'),
        ];
        for (const call of calls) await expect(call()).rejects.toMatchObject({ code: 'ERR_HOTPATH_CONFIG' });
      }
      expect(await snapshot()).toEqual(before);
      expect(await storage.collections()).toEqual(['victims']);
    });

    it('hostile field names in where, orderBy and ensureIndex are refused', async () => {
      // 49 characters is too long for a collection but fine for a field.
      for (const field of [...HOSTILE_NAMES.filter((n) => n.length !== 49), 'x'.repeat(64)]) {
        await expect(storage.find('victims', { where: { [field]: 1 } })).rejects.toMatchObject({
          code: 'ERR_HOTPATH_CONFIG',
        });
        await expect(storage.count('victims', { [field]: 'x' })).rejects.toMatchObject({ code: 'ERR_HOTPATH_CONFIG' });
        await expect(storage.find('victims', { orderBy: { field } })).rejects.toMatchObject({
          code: 'ERR_HOTPATH_CONFIG',
        });
        await expect(storage.ensureIndex('victims', field)).rejects.toMatchObject({ code: 'ERR_HOTPATH_CONFIG' });
      }
      expect(await snapshot()).toEqual(before);
    });

    it('hostile ids, keys and values are stored verbatim and match only themselves', async () => {
      const docs = HOSTILE_VALUES.map((value, i) => ({ id: value, [value]: value, name: value, n: i }));
      const ids = await storage.putMany('hostile', docs);
      expect(ids).toEqual(HOSTILE_VALUES);
      for (const doc of docs) {
        expect(await storage.get('hostile', doc.id)).toEqual(doc);
        expect((await storage.find('hostile', { where: { name: doc.name } })).items).toEqual([doc]);
        expect(await storage.count('hostile', { name: { in: [doc.name] } })).toBe(1);
        expect(await storage.update('hostile', doc.id, { [doc.id]: 'patched' })).toMatchObject({ [doc.id]: 'patched' });
      }
      expect(await storage.count('hostile')).toBe(HOSTILE_VALUES.length);
      expect(await storage.count('hostile', { name: { gt: "'" } })).toBeGreaterThan(0);
      for (const doc of docs) expect(await storage.delete('hostile', doc.id)).toBe(true);
      expect(await storage.count('hostile')).toBe(0);
      expect(await snapshot()).toEqual(before);
    });

    it('invalid inputs give typed errors and change nothing', async () => {
      const config = { code: 'ERR_HOTPATH_CONFIG' };
      await expect(storage.put('victims', null as never)).rejects.toMatchObject(config);
      await expect(storage.put('victims', [1, 2] as never)).rejects.toMatchObject(config);
      await expect(storage.put('victims', 'text' as never)).rejects.toMatchObject(config);
      await expect(storage.put('victims', { id: 5 } as never)).rejects.toMatchObject(config);
      await expect(storage.put('victims', { id: '' })).rejects.toMatchObject(config);
      await expect(storage.put('victims', { id: 'x'.repeat(513) })).rejects.toMatchObject(config);
      await expect(storage.put('victims', { big: 10n } as never)).rejects.toMatchObject(config);
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      await expect(storage.put('victims', cyclic)).rejects.toMatchObject(config);
      await expect(storage.putMany('victims', 'nope' as never)).rejects.toMatchObject(config);
      await expect(storage.get('victims', 42 as never)).rejects.toMatchObject(config);
      await expect(storage.get('victims', '')).rejects.toMatchObject(config);
      await expect(storage.update('victims', 'v1', null as never)).rejects.toMatchObject(config);
      await expect(storage.update('victims', 'v1', { a: 1 }, { expectedVersion: -1 })).rejects.toMatchObject(config);
      await expect(storage.update('victims', 'v1', { a: 1 }, { expectedVersion: 1.5 })).rejects.toMatchObject(config);
      await expect(storage.find('victims', { limit: 0 })).rejects.toMatchObject(config);
      await expect(storage.find('victims', { limit: 10_001 })).rejects.toMatchObject(config);
      await expect(storage.find('victims', { limit: 1.5 })).rejects.toMatchObject(config);
      await expect(storage.find('victims', { cursor: 'garbage' })).rejects.toMatchObject(config);
      await expect(storage.find('victims', { bogus: 1 } as never)).rejects.toMatchObject(config);
      await expect(storage.find('victims', { where: { score: { between: [1, 2] } } as never })).rejects.toMatchObject(
        config,
      );
      await expect(storage.find('victims', { where: { score: { gt: true } } as never })).rejects.toMatchObject(config);
      await expect(storage.find('victims', { where: { score: { gt: null } } as never })).rejects.toMatchObject(config);
      await expect(storage.find('victims', { where: { score: Number.NaN } })).rejects.toMatchObject(config);
      await expect(storage.find('victims', { where: { score: { lt: Infinity } } })).rejects.toMatchObject(config);
      await expect(storage.find('victims', { where: { score: {} } })).rejects.toMatchObject(config);
      await expect(storage.find('victims', { where: { score: [1] } as never })).rejects.toMatchObject(config);
      await expect(storage.find('victims', { where: { score: { in: 'a' } } as never })).rejects.toMatchObject(config);
      await expect(storage.find('victims', { where: { score: { in: [{}] } } as never })).rejects.toMatchObject(config);
      await expect(storage.find('victims', { where: { id: 5 } })).rejects.toMatchObject(config);
      await expect(
        storage.find('victims', { orderBy: { field: 'score', direction: 'up' } } as never),
      ).rejects.toMatchObject(config);
      // A cursor from a query with another ordering is refused rather than silently misapplied.
      await storage.putMany('victims_pages', [{ id: 'p1' }, { id: 'p2' }, { id: 'p3' }]);
      const page = await storage.find('victims_pages', { limit: 1 });
      await expect(
        storage.find('victims_pages', {
          limit: 1,
          orderBy: { field: 'id', direction: 'desc' },
          cursor: page.nextCursor,
        }),
      ).rejects.toMatchObject(config);
      expect(await snapshot()).toEqual(before);
    });

    it('after close every call fails with ClosedError; close is idempotent', async () => {
      const { storage: other, cleanup: done } = await backend.open();
      await other.put('c', { id: 'x' });
      await other.close();
      await other.close();
      await expect(other.get('c', 'x')).rejects.toMatchObject({ code: 'ERR_HOTPATH_CLOSED' });
      await expect(other.put('c', { id: 'y' })).rejects.toMatchObject({ code: 'ERR_HOTPATH_CLOSED' });
      expect((await other.health()).ok).toBe(false);
      await done();
    });
  });
}
