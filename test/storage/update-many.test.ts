/**
 * `updateMany` on every backend (shallow merge, versions, one statement on SQL, nothing written on bad
 * input), and what `StorageManager` adds: find pages cached by query and dropped by writes (cache tags),
 * `updateMany` dropping cached documents, and `ClosedError` for every call once the adapter is closed.
 */
import { Cache } from 'hotpath/cache';
import { isHotpathError, type LatencyRecorder, ManualClock } from 'hotpath/core';
import { type StorageAdapter, StorageManager } from 'hotpath/storage';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BACKENDS } from '../helpers/backends.js';

class RecordingProfiler implements LatencyRecorder {
  names: string[] = [];
  shapes: string[] = [];
  record(name: string): void {
    this.names.push(name);
  }
  noteQuery(shape: string): void {
    this.shapes.push(shape);
  }
}

const ORDERS = [
  { id: 'o1', status: 'open', total: 10, meta: { a: 1, b: 2 } },
  { id: 'o2', status: 'open', total: 20 },
  { id: 'o3', status: 'shipped', total: 30 },
  { id: 'o4', status: 'OPEN', total: 40 },
];

for (const backend of BACKENDS) {
  describe.runIf(backend.available)(`updateMany: ${backend.name}`, () => {
    let storage: StorageAdapter;
    let cleanup: () => Promise<void>;
    const clock = new ManualClock(1_000);
    const profiler = new RecordingProfiler();

    beforeAll(async () => {
      ({ storage, cleanup } = await backend.open({ clock, profiler, label: 'hp_upd' }));
    });
    afterAll(async () => {
      await cleanup?.();
    });
    beforeEach(async () => {
      await storage.putMany('orders', ORDERS);
      await storage.updateMany('orders', {}, { shippedBy: null }); // every document at version 2
      await storage.putMany('orders', ORDERS); // and back to the originals, version 3
    });

    it('shallow-merges the patch into every matching document, bumps versions, returns the count', async () => {
      clock.set(5_000);
      const n = await storage.updateMany('orders', { status: 'open' }, { status: 'paid', meta: { c: 3 }, note: null });
      expect(n).toBe(2);
      expect(await storage.get('orders', 'o1')).toEqual({
        id: 'o1',
        status: 'paid',
        total: 10,
        meta: { c: 3 },
        note: null,
      });
      expect(await storage.get('orders', 'o2')).toEqual({
        id: 'o2',
        status: 'paid',
        total: 20,
        meta: { c: 3 },
        note: null,
      });
      const meta = await storage.getWithMeta('orders', 'o1');
      expect(meta?.version).toBe(4);
      expect(meta?.updatedAt).toBe(5_000);
      // Untouched: other statuses (case-sensitive), their versions too.
      expect(await storage.get('orders', 'o4')).toEqual(ORDERS[3]);
      expect((await storage.getWithMeta('orders', 'o3'))?.version).toBe(3);
      expect(await storage.count('orders', { status: 'paid' })).toBe(2);
    });

    it('where of any kind; an empty where updates everything; nothing matching is 0', async () => {
      expect(await storage.updateMany('orders', { total: { gte: 30 } }, { big: true })).toBe(2);
      expect(
        await storage.updateMany('orders', { status: { contains: 'open', caseInsensitive: true } }, { o: 1 }),
      ).toBe(3);
      expect(await storage.updateMany('orders', {}, { seen: 'yes' })).toBe(4);
      expect(await storage.updateMany('orders', { status: 'none' }, { seen: 'no' })).toBe(0);
      expect(await storage.updateMany('no_such_collection', {}, { x: 1 })).toBe(0);
      expect(await storage.count('orders', { seen: 'yes' })).toBe(4);
      expect(await storage.count('orders', { big: true })).toBe(2);
      // The patch may change the field the where selected on.
      expect(await storage.updateMany('orders', { total: 10 }, { total: 11 })).toBe(1);
      expect((await storage.get('orders', 'o1'))?.total).toBe(11);
    });

    it('is one statement on the SQL backends', async () => {
      profiler.names.length = 0;
      profiler.shapes.length = 0;
      await storage.updateMany('orders', { status: { in: ['open', 'shipped'] } }, { flagged: true, by: "x'); --" });
      if (backend.name === 'memory') return;
      expect(profiler.names).toEqual(['storage.updateMany']);
      expect(profiler.shapes).toHaveLength(1);
      expect(profiler.shapes[0]).toMatch(/UPDATE "doc_orders" SET data = /);
      expect(await storage.count('orders', { by: "x'); --" })).toBe(3);
    });

    it('refuses a bad patch or where with ConfigError and writes nothing', async () => {
      const bad: Array<[unknown, unknown]> = [
        [{}, { id: 'other' }],
        [{}, { 'a.b': 1 }],
        [{}, { "a'); DROP TABLE doc_orders; --": 1 }],
        [{}, { total: Number.NaN }],
        [{}, { deep: { x: Number.POSITIVE_INFINITY } }],
        [{}, { note: 'a\u0000b' }],
        [{}, null],
        [{}, [1]],
        [{ 'bad field': 1 }, { x: 1 }],
        [{ total: { nope: 1 } }, { x: 1 }],
      ];
      for (const [where, patch] of bad) {
        const error = await storage.updateMany('orders', where as never, patch as never).catch((e: unknown) => e);
        expect(isHotpathError(error, 'ERR_HOTPATH_CONFIG'), JSON.stringify([where, patch])).toBe(true);
      }
      expect((await storage.find('orders')).items).toEqual(ORDERS);
    });

    it('inside a transaction it commits and rolls back with it', async () => {
      await storage
        .transaction(async (tx) => {
          expect(await tx.updateMany('orders', {}, { rolled: true })).toBe(4);
          throw new Error('undo');
        })
        .catch(() => undefined);
      expect(await storage.count('orders', { rolled: true })).toBe(0);
      await storage.transaction(async (tx) => {
        await tx.updateMany('orders', { status: 'shipped' }, { committed: true });
      });
      expect(await storage.count('orders', { committed: true })).toBe(1);
    });
  });

  describe.runIf(backend.available)(`StorageManager caching and close: ${backend.name}`, () => {
    it('find pages are cached by query and dropped by every write to the collection', async () => {
      const profiler = new RecordingProfiler();
      const { storage, cleanup } = await backend.open({ profiler, label: 'hp_mgr' });
      const cache = new Cache<unknown>({ max: 1000, ttlMs: 60_000 });
      try {
        const manager = new StorageManager(storage, { cache });
        const signals = manager.collection<{ kind: string; value: number }>('signals', { indexes: ['kind'] });
        await signals.saveMany(
          Array.from({ length: 30 }, (_, i) => ({ id: `s${i}`, kind: i % 2 ? 'odd' : 'even', value: i })),
        );
        const query = { where: { kind: 'odd' }, limit: 10 };
        const finds = () => profiler.names.filter((name) => name === 'storage.find').length;

        const first = await signals.find(query);
        const before = finds();
        const second = await signals.find(query);
        expect(second).toEqual(first);
        expect(finds()).toBe(before); // from the cache
        (second.items[0] as { value: number }).value = -1; // a caller's copy: the cache is not changed
        expect((await signals.find(query)).items[0]?.value).toBe(1);
        await signals.find({ ...query, limit: 11 }); // another query: another entry
        expect(finds()).toBe(before + 1);

        // Each kind of write drops the pages.
        const writes: Array<() => Promise<unknown>> = [
          () => signals.save({ id: 's1', kind: 'odd', value: 100 }),
          () => signals.update('s1', { value: 101 }),
          () => signals.saveMany([{ id: 's1', kind: 'odd', value: 102 }]),
          () => signals.updateMany({ kind: 'odd' }, { value: 103 }),
          () => signals.delete('s1'),
        ];
        const expected = [
          ['s1', 100],
          ['s1', 101],
          ['s1', 102],
          ['s1', 103],
          ['s11', 103],
        ];
        for (let i = 0; i < writes.length; i++) {
          await signals.find(query); // cached
          await (writes[i] as () => Promise<unknown>)();
          const n = finds();
          const top = (await signals.find(query)).items[0];
          expect([top?.id, top?.value]).toEqual(expected[i]);
          expect(finds()).toBe(n + 1);
        }
        // The next page through the cursor is cached too (its own key).
        const page1 = await signals.find(query);
        const page2 = await signals.find({ ...query, cursor: page1.nextCursor });
        const n = finds();
        expect(await signals.find({ ...query, cursor: page1.nextCursor })).toEqual(page2);
        expect(finds()).toBe(n);
      } finally {
        await cleanup();
        await cache.close();
      }
    });

    it('updateMany drops cached documents, with a tag-capable cache and with a plain Map', async () => {
      for (const cache of [new Cache<unknown>({ max: 100, ttlMs: 60_000 }), new Map<string, unknown>()]) {
        const { storage, cleanup } = await backend.open({ label: 'hp_mgr' });
        try {
          const items = new StorageManager(storage, { cache }).collection('items');
          await items.saveMany([
            { id: 'a', n: 1 },
            { id: 'b', n: 2 },
          ]);
          expect(await items.get('a')).toEqual({ id: 'a', n: 1 }); // now cached
          expect(await items.updateMany({}, { n: 9 })).toBe(2);
          expect(await items.get('a')).toEqual({ id: 'a', n: 9 });
          expect(await items.get('b')).toEqual({ id: 'b', n: 9 });
        } finally {
          await cleanup();
          if (cache instanceof Cache) await cache.close();
        }
      }
    });

    it('after the adapter is closed every call is ClosedError, cached documents included', async () => {
      const { storage, cleanup } = await backend.open({ label: 'hp_mgr' });
      const cache = new Cache<unknown>({ max: 100, ttlMs: 60_000 });
      try {
        const manager = new StorageManager(storage, { cache });
        const items = manager.collection('items');
        await items.save({ id: 'a', n: 1 });
        expect(await items.get('a')).toEqual({ id: 'a', n: 1 });
        expect((await items.find()).items).toHaveLength(1);
        expect(manager.isClosed).toBe(false);
        await manager.close();
        expect(manager.isClosed).toBe(true);
        const calls: Array<() => Promise<unknown>> = [
          () => items.get('a'),
          () => items.get('a'),
          () => items.find(),
          () => items.count(),
          () => items.save({ id: 'b' }),
          () => items.updateMany({}, { n: 2 }),
          () => manager.collection('other').get('x'),
        ];
        for (const call of calls) {
          const error = await call().catch((e: unknown) => e);
          expect(isHotpathError(error, 'ERR_HOTPATH_CLOSED'), String(call)).toBe(true);
        }
        await manager.close(); // idempotent
      } finally {
        await cleanup();
        await cache.close();
      }
    });
  });
}
