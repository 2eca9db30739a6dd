/**
 * One conformance suite, run against memory, SQLite and PostgreSQL: the same inputs must give the same
 * outputs, including ordering, pagination, number/string comparisons, unicode, 1 MB documents and
 * empty collections.
 */
import { ManualClock } from 'hotpath/core';
import type { StorageAdapter } from 'hotpath/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../helpers/backends.js';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Documents with mixed types in `v` (null, missing, numbers, strings, booleans, objects). */
const MIXED = [
  { id: 'a', v: 10, kind: 'x' },
  { id: 'b', v: '10', kind: 'y' },
  { id: 'c', v: 9, kind: 'x' },
  { id: 'd', v: '9', kind: 'y' },
  { id: 'e', v: null, kind: 'x' },
  { id: 'f', kind: 'z' },
  { id: 'g', v: true, kind: 'x' },
  { id: 'h', v: false, kind: 'y' },
  { id: 'i', v: 2.5, kind: 'x' },
  { id: 'j', v: -3, kind: 'y' },
  { id: 'k', v: 'abc', kind: 'x' },
  { id: 'l', v: 'Abc', kind: 'y' },
  { id: 'm', v: { nested: 1 }, kind: 'x' },
  { id: 'n', v: [1, 2], kind: 'y' },
  { id: 'o', v: 10, kind: 'z' },
  { id: 'p', v: 1, kind: 1 },
];

async function ids(
  storage: StorageAdapter,
  col: string,
  where: Parameters<StorageAdapter['find']>[1],
): Promise<string[]> {
  const out: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await storage.find(col, { ...where, ...(cursor ? { cursor } : {}) });
    out.push(...page.items.map((d) => d.id));
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}

for (const backend of BACKENDS) {
  describe.runIf(backend.available)(`conformance: ${backend.name}`, () => {
    let storage: StorageAdapter;
    let cleanup: () => Promise<void>;
    const clock = new ManualClock(1_700_000_000_000);

    beforeAll(async () => {
      ({ storage, cleanup } = await backend.open({ clock }));
      await storage.putMany('mixed', MIXED);
    });
    afterAll(async () => {
      await cleanup?.();
    });

    it('put without id generates a sortable UUIDv7; get returns the document with its id', async () => {
      const first = await storage.put('basics', { name: 'first', n: 1 });
      const second = await storage.put('basics', { name: 'second', n: 2 });
      expect(first).toMatch(UUID_V7);
      expect(second > first).toBe(true);
      expect(await storage.get('basics', first)).toEqual({ id: first, name: 'first', n: 1 });
      expect(await storage.get('basics', 'missing')).toBeUndefined();
      expect(await storage.get('no_such_collection', 'x')).toBeUndefined();
    });

    it('put uses options.id over doc.id, replaces, bumps version and keeps createdAt', async () => {
      expect(await storage.put('basics', { id: 'own', a: 1 })).toBe('own');
      expect(await storage.put('basics', { id: 'ignored', a: 2 }, { id: 'explicit' })).toBe('explicit');
      expect(await storage.get('basics', 'explicit')).toEqual({ id: 'explicit', a: 2 });
      const before = await storage.getWithMeta('basics', 'own');
      expect(before).toMatchObject({ version: 1, createdAt: clock.now(), updatedAt: clock.now() });
      await clock.advance(1000);
      await storage.put('basics', { id: 'own', b: 3 });
      const after = await storage.getWithMeta('basics', 'own');
      expect(after).toEqual({
        doc: { id: 'own', b: 3 },
        version: 2,
        createdAt: before?.createdAt,
        updatedAt: (before?.createdAt ?? 0) + 1000,
      });
    });

    it('the caller keeps no reference into the store', async () => {
      const doc = { id: 'alias', list: [1] };
      await storage.put('basics', doc);
      doc.list.push(2);
      const read = await storage.get<{ list: number[] }>('basics', 'alias');
      read?.list.push(3);
      expect(await storage.get('basics', 'alias')).toEqual({ id: 'alias', list: [1] });
    });

    it('putMany returns ids in input order, applies duplicates in order, accepts an empty array', async () => {
      const result = await storage.putMany('batch', [{ id: 'x', n: 1 }, { n: 2 }, { id: 'x', n: 3 }]);
      expect(result[0]).toBe('x');
      expect(result[2]).toBe('x');
      expect(result[1]).toMatch(UUID_V7);
      expect(await storage.get('batch', 'x')).toEqual({ id: 'x', n: 3 });
      // As if put one after the other: two writes of 'x'.
      expect((await storage.getWithMeta('batch', 'x'))?.version).toBe(2);
      expect(await storage.count('batch')).toBe(2);
      expect(await storage.putMany('batch', [])).toEqual([]);
    });

    it('putMany is all-or-nothing: an invalid document writes none', async () => {
      await expect(storage.putMany('batch_atomic', [{ id: 'ok' }, { id: 42 } as never])).rejects.toMatchObject({
        code: 'ERR_HOTPATH_CONFIG',
      });
      expect(await storage.count('batch_atomic')).toBe(0);
      expect(await storage.collections()).not.toContain('batch_atomic');
      await storage.put('batch_atomic', { id: 'keep' });
      await expect(
        storage.putMany('batch_atomic', [{ id: 'new1' }, { id: 'new2', bad: 1n } as never]),
      ).rejects.toMatchObject({
        code: 'ERR_HOTPATH_CONFIG',
      });
      expect((await storage.find('batch_atomic')).items).toEqual([{ id: 'keep' }]);
    });

    it('update shallow-merges, bumps version, honours expectedVersion', async () => {
      await storage.put('upd', { id: 'u1', a: 1, nested: { x: 1, y: 2 }, keep: true });
      const updated = await storage.update('upd', 'u1', { a: 2, nested: { x: 9 }, extra: null });
      const expected = { id: 'u1', a: 2, nested: { x: 9 }, keep: true, extra: null };
      expect(updated).toEqual(expected);
      expect(await storage.get('upd', 'u1')).toEqual(expected);
      expect((await storage.getWithMeta('upd', 'u1'))?.version).toBe(2);
      expect(await storage.update('upd', 'u1', { a: 3 }, { expectedVersion: 2 })).toMatchObject({ a: 3 });
      const conflict = await storage.update('upd', 'u1', { a: 4 }, { expectedVersion: 2 }).catch((e: unknown) => e);
      expect(conflict).toMatchObject({ code: 'ERR_HOTPATH_CONFLICT', expectedVersion: 2, actualVersion: 3 });
      expect(await storage.get('upd', 'u1')).toMatchObject({ a: 3 });
      expect(await storage.update('upd', 'missing', { a: 1 })).toBeUndefined();
      expect(await storage.update('upd', 'missing', { a: 1 }, { expectedVersion: 1 })).toBeUndefined();
      expect(await storage.update('no_such_collection', 'u1', { a: 1 })).toBeUndefined();
      await expect(storage.update('upd', 'u1', { id: 'other' } as never)).rejects.toMatchObject({
        code: 'ERR_HOTPATH_CONFIG',
      });
    });

    it('concurrent updates with the same expectedVersion: exactly one wins', async () => {
      await storage.put('upd', { id: 'race', n: 0 });
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) => storage.update('upd', 'race', { n: i + 1 }, { expectedVersion: 1 })),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(results.filter((r) => r.status === 'rejected')).toHaveLength(7);
      expect((await storage.getWithMeta('upd', 'race'))?.version).toBe(2);
    });

    it('concurrent first writes to a new collection all succeed (table creation races)', async () => {
      const ids = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          i % 2 ? storage.put('fresh_race', { i }) : storage.putMany('fresh_race', [{ i }]).then((r) => r[0]),
        ),
      );
      expect(new Set(ids).size).toBe(20);
      expect(await storage.count('fresh_race')).toBe(20);
      await Promise.all([storage.ensureIndex('fresh_race', 'i'), storage.ensureIndex('fresh_race', 'i')]);
    });

    it('delete reports whether the document existed', async () => {
      await storage.put('del', { id: 'd1' });
      expect(await storage.delete('del', 'd1')).toBe(true);
      expect(await storage.delete('del', 'd1')).toBe(false);
      expect(await storage.delete('no_such_collection', 'd1')).toBe(false);
      expect(await storage.get('del', 'd1')).toBeUndefined();
    });

    it('equality: numbers equal numbers, strings equal strings, null matches null and missing', async () => {
      expect(await ids(storage, 'mixed', { where: { v: 10 } })).toEqual(['a', 'o']);
      expect(await ids(storage, 'mixed', { where: { v: '10' } })).toEqual(['b']);
      expect(await ids(storage, 'mixed', { where: { v: null } })).toEqual(['e', 'f']);
      expect(await ids(storage, 'mixed', { where: { v: true } })).toEqual(['g']);
      expect(await ids(storage, 'mixed', { where: { v: false } })).toEqual(['h']);
      expect(await ids(storage, 'mixed', { where: { v: 1 } })).toEqual(['p']);
      expect(await ids(storage, 'mixed', { where: { v: 10, kind: 'z' } })).toEqual(['o']);
      expect(await ids(storage, 'mixed', { where: { kind: 1 } })).toEqual(['p']);
      expect(await ids(storage, 'mixed', { where: { id: 'c' } })).toEqual(['c']);
    });

    it('ranges compare numbers numerically and strings by code point, never across types', async () => {
      expect(await ids(storage, 'mixed', { where: { v: { gt: 2.5 } } })).toEqual(['a', 'c', 'o']);
      expect(await ids(storage, 'mixed', { where: { v: { gte: 2.5, lt: 10 } } })).toEqual(['c', 'i']);
      expect(await ids(storage, 'mixed', { where: { v: { lte: 1 } } })).toEqual(['j', 'p']);
      // '10' < '9' as strings; 'Abc' < 'abc' (uppercase first by code point).
      expect(await ids(storage, 'mixed', { where: { v: { gt: '1' } } })).toEqual(['b', 'd', 'k', 'l']);
      expect(await ids(storage, 'mixed', { where: { v: { lt: '9' } } })).toEqual(['b']);
      expect(await ids(storage, 'mixed', { where: { v: { gte: 'B' } } })).toEqual(['k']);
      expect(await ids(storage, 'mixed', { where: { id: { gte: 'n' } } })).toEqual(['n', 'o', 'p']);
    });

    it('in and ne', async () => {
      expect(await ids(storage, 'mixed', { where: { v: { in: [10, '9', true] } } })).toEqual(['a', 'd', 'g', 'o']);
      expect(await ids(storage, 'mixed', { where: { v: { in: [] } } })).toEqual([]);
      expect(await ids(storage, 'mixed', { where: { kind: { ne: 'x' } } })).toEqual([
        'b',
        'd',
        'f',
        'h',
        'j',
        'l',
        'n',
        'o',
        'p',
      ]);
      // ne matches documents where the field is missing too.
      expect(await ids(storage, 'mixed', { where: { v: { ne: 10 }, kind: 'z' } })).toEqual(['f']);
      expect(await ids(storage, 'mixed', { where: { v: { ne: null }, kind: 'z' } })).toEqual(['o']);
      expect(await ids(storage, 'mixed', { where: { id: { in: ['a', 'p', 'zz'] } } })).toEqual(['a', 'p']);
      expect(await ids(storage, 'mixed', { where: { id: { ne: 'a' } } })).toHaveLength(MIXED.length - 1);
    });

    it('orderBy sorts null/missing < numbers < strings < booleans < objects, ties by id, both directions', async () => {
      const asc = ['e', 'f', 'j', 'p', 'i', 'c', 'a', 'o', 'b', 'd', 'l', 'k', 'h', 'g', 'm', 'n'];
      expect(await ids(storage, 'mixed', { orderBy: { field: 'v' } })).toEqual(asc);
      expect(await ids(storage, 'mixed', { orderBy: { field: 'v', direction: 'desc' } })).toEqual([...asc].reverse());
      expect(await ids(storage, 'mixed', { orderBy: { field: 'v' }, limit: 3 })).toEqual(asc);
      expect(await ids(storage, 'mixed', { orderBy: { field: 'v', direction: 'desc' }, limit: 4 })).toEqual(
        [...asc].reverse(),
      );
      expect(await ids(storage, 'mixed', { orderBy: { field: 'id', direction: 'desc' }, limit: 5 })).toEqual(
        MIXED.map((d) => d.id).reverse(),
      );
      const page = await storage.find('mixed', { where: { kind: 'x' }, orderBy: { field: 'v' }, limit: 2 });
      expect(page.items.map((d) => d.id)).toEqual(['e', 'i']);
      expect(page.nextCursor).toBeTypeOf('string');
    });

    it('the last page has no cursor; an empty collection gives an empty page and count 0', async () => {
      const all = await storage.find('mixed', { limit: MIXED.length });
      expect(all.items).toHaveLength(MIXED.length);
      expect(all.nextCursor).toBeUndefined();
      expect(await storage.find('never_written')).toEqual({ items: [], nextCursor: undefined });
      expect(await storage.count('never_written')).toBe(0);
      expect(await storage.count('never_written', { a: 1 })).toBe(0);
      await storage.ensureIndex('empty_but_created', 'a');
      expect(await storage.find('empty_but_created', { where: { a: 1 } })).toEqual({
        items: [],
        nextCursor: undefined,
      });
      expect(await storage.collections()).toContain('empty_but_created');
      expect(await storage.collections()).not.toContain('never_written');
    });

    it('count with and without where', async () => {
      expect(await storage.count('mixed')).toBe(MIXED.length);
      expect(await storage.count('mixed', { kind: 'x' })).toBe(7);
      expect(await storage.count('mixed', { v: { gte: 2.5 } })).toBe(4);
    });

    it('keyset pagination is stable under concurrent inserts: no duplicates, no skipped rows', async () => {
      const docs = Array.from({ length: 30 }, (_, i) => ({ id: `k${String(i).padStart(3, '0')}`, rank: i % 7 }));
      await storage.putMany('pages', docs);
      const seen: string[] = [];
      let cursor: string | undefined;
      let round = 0;
      do {
        const page = await storage.find('pages', {
          orderBy: { field: 'rank' },
          limit: 4,
          ...(cursor ? { cursor } : {}),
        });
        seen.push(...page.items.map((d) => d.id));
        // Insert rows before and after the current position while paging.
        await storage.put('pages', { id: `new${round}`, rank: round % 2 === 0 ? -1 : 100 });
        round++;
        cursor = page.nextCursor;
      } while (cursor);
      expect(new Set(seen).size).toBe(seen.length);
      for (const doc of docs) expect(seen).toContain(doc.id);
      // Rows inserted ahead of the cursor (rank 100) are picked up; those behind it (rank -1) are not.
      expect(seen.filter((id) => id.startsWith('new')).every((id) => Number(id.slice(3)) % 2 === 1)).toBe(true);
    });

    it('unicode round-trips and sorts by code point', async () => {
      const values = ['ä', 'z', 'Z', '日本語', '😀', '\uFFFD', 'e\u0301', 'ﬁ', 'a"b\'c\\d', '\t\n'];
      await storage.putMany(
        'uni',
        values.map((s, i) => ({ id: `u${i}-🔑`, s, ['ключ']: s })),
      );
      for (let i = 0; i < values.length; i++) {
        expect(await storage.get('uni', `u${i}-🔑`)).toEqual({ id: `u${i}-🔑`, s: values[i], ['ключ']: values[i] });
      }
      const sorted = [...values].sort((a, b) => {
        const x = [...a].map((c) => c.codePointAt(0) as number);
        const y = [...b].map((c) => c.codePointAt(0) as number);
        for (let k = 0; k < Math.min(x.length, y.length); k++)
          if (x[k] !== y[k]) return (x[k] as number) - (y[k] as number);
        return x.length - y.length;
      });
      const page = await storage.find<{ s: string }>('uni', { orderBy: { field: 's' }, limit: 3 });
      const all = [...page.items];
      let cursor = page.nextCursor;
      while (cursor) {
        const next = await storage.find<{ s: string }>('uni', { orderBy: { field: 's' }, limit: 3, cursor });
        all.push(...next.items);
        cursor = next.nextCursor;
      }
      expect(all.map((d) => d.s)).toEqual(sorted);
      expect(await ids(storage, 'uni', { where: { s: '😀' } })).toEqual(['u4-🔑']);
      expect(await ids(storage, 'uni', { where: { s: { gt: '\uFFFD' } } })).toEqual(['u4-🔑']);
    });

    it('stores and reads a 1 MB document', async () => {
      const big = { id: 'big', text: 'x'.repeat(1024 * 1024), list: Array.from({ length: 1000 }, (_, i) => i) };
      await storage.put('large', big);
      expect(await storage.get('large', 'big')).toEqual(big);
      expect(await storage.find('large', { where: { id: 'big' } })).toMatchObject({ items: [big] });
    });

    it('numbers keep their value: integers, floats, negatives, large values', async () => {
      const nums = [0, -0.5, 1e-7, 123456789.125, 2 ** 52, -(2 ** 31), 1.7976931348623157e308];
      await storage.putMany(
        'nums',
        nums.map((n, i) => ({ id: `n${i}`, n })),
      );
      for (let i = 0; i < nums.length; i++) expect((await storage.get('nums', `n${i}`))?.n).toBe(nums[i]);
      expect(await ids(storage, 'nums', { where: { n: 123456789.125 } })).toEqual(['n3']);
      expect(await ids(storage, 'nums', { orderBy: { field: 'n' } })).toEqual([
        'n5',
        'n1',
        'n0',
        'n2',
        'n3',
        'n4',
        'n6',
      ]);
    });

    it('transaction commits on return and rolls back on throw', async () => {
      const result = await storage.transaction(async (tx) => {
        await tx.put('tx', { id: 't1', v: 1 });
        await tx.putMany('tx', [{ id: 't2' }, { id: 't3' }]);
        await tx.update('tx', 't1', { v: 2 });
        expect(await tx.get('tx', 't1')).toEqual({ id: 't1', v: 2 });
        return 'done';
      });
      expect(result).toBe('done');
      expect(await storage.count('tx')).toBe(3);
      await expect(
        storage.transaction(async (tx) => {
          await tx.put('tx', { id: 't4' });
          await tx.delete('tx', 't1');
          await tx.update('tx', 't2', { changed: true });
          await tx.put('tx_new_collection', { id: 'z' });
          throw new Error('rollback please');
        }),
      ).rejects.toThrow('rollback please');
      expect(await ids(storage, 'tx', {})).toEqual(['t1', 't2', 't3']);
      expect(await storage.get('tx', 't2')).toEqual({ id: 't2' });
      expect(await storage.get('tx_new_collection', 'z')).toBeUndefined();
      // The cached table statements must not outlive a rolled-back CREATE TABLE.
      await storage.put('tx_new_collection', { id: 'after' });
      expect(await storage.get('tx_new_collection', 'after')).toEqual({ id: 'after' });
    });

    it('nested transactions roll back only the inner part', async () => {
      await storage.transaction(async (tx) => {
        await tx.put('nested', { id: 'outer' });
        await expect(
          tx.transaction(async (inner) => {
            await inner.put('nested', { id: 'inner' });
            throw new Error('inner fails');
          }),
        ).rejects.toThrow('inner fails');
        await tx.put('nested', { id: 'outer2' });
      });
      expect(await ids(storage, 'nested', {})).toEqual(['outer', 'outer2']);
    });

    it('a call from outside an open transaction neither joins it nor sees its writes', async () => {
      await storage.put('iso', { id: 'base', v: 0 });
      let release: () => void = () => {};
      const gate = new Promise<void>((r) => {
        release = r;
      });
      let insideWrote: () => void = () => {};
      const wrote = new Promise<void>((r) => {
        insideWrote = r;
      });
      const events: string[] = [];
      const tx = storage
        .transaction(async (t) => {
          await t.put('iso', { id: 'inside', v: 1 });
          await t.update('iso', 'base', { v: 1 });
          insideWrote();
          await gate;
          events.push('tx-end');
          throw new Error('abort tx');
        })
        .catch((e: Error) => e.message);
      await wrote;
      // Issued while the transaction is open, from outside it.
      const outsidePut = storage.put('iso', { id: 'outside', v: 2 }).then((id) => {
        events.push('outside-put');
        return id;
      });
      const outsideGet = storage.get('iso', 'inside').then((doc) => {
        events.push('outside-get');
        return doc;
      });
      const outsideBase = storage.get<{ v: number }>('iso', 'base');
      await new Promise((r) => setTimeout(r, 20));
      release();
      expect(await tx).toBe('abort tx');
      expect(await outsidePut).toBe('outside');
      // The outside read saw either the state before the transaction or after its rollback.
      expect(await outsideGet).toBeUndefined();
      expect((await outsideBase)?.v).toBe(0);
      // The outside write was not rolled back with the transaction.
      expect(await storage.get('iso', 'outside')).toEqual({ id: 'outside', v: 2 });
      expect(await storage.get('iso', 'inside')).toBeUndefined();
      if (backend.name !== 'postgres') {
        // Single-connection backends: outside calls waited for the transaction to end.
        expect(events[0]).toBe('tx-end');
      }
    });

    it('using a transaction object after it finished fails', async () => {
      let leaked: StorageAdapter | undefined;
      await storage.transaction(async (tx) => {
        leaked = tx;
      });
      await expect(leaked?.get('tx', 't1')).rejects.toMatchObject({ code: 'ERR_HOTPATH_STORAGE' });
    });

    it('health round-trips; stats are plain numbers', async () => {
      const health = await storage.health();
      expect(health.ok).toBe(true);
      // memory answers without a round trip (0 ms); SQLite and PostgreSQL time a real query.
      if (backend.name === 'memory') expect(health.latencyMs).toBe(0);
      else expect(health.latencyMs).toBeGreaterThan(0);
      const stats = storage.stats();
      for (const value of Object.values(stats)) expect(Number.isInteger(value)).toBe(true);
      // Open and idle: at least the connection the probe used, none in use, nobody waiting.
      expect(stats.total).toBeGreaterThanOrEqual(1);
      expect(stats.idle).toBe(stats.total);
      expect(stats.waiting).toBe(0);
    });
  });
}

for (const backend of BACKENDS.filter((b) => b.name !== 'postgres')) {
  describe(`single-connection rules: ${backend.name}`, () => {
    it('using the adapter itself inside its own transaction fails fast instead of waiting forever', async () => {
      const { storage, cleanup } = await backend.open();
      try {
        await expect(
          storage.transaction(async (tx) => {
            await tx.put('self', { id: 'a' });
            await storage.get('self', 'a');
          }),
        ).rejects.toMatchObject({ code: 'ERR_HOTPATH_STORAGE', message: expect.stringContaining('use the `tx`') });
        // Rolled back; the adapter works normally afterwards, including from a task started in a finished transaction.
        let late: Promise<unknown> = Promise.resolve();
        await storage.transaction(async () => {
          late = new Promise((r) => setTimeout(r, 5)).then(() => storage.put('self', { id: 'late' }));
        });
        const other = storage.transaction(async (tx) => {
          await new Promise((r) => setTimeout(r, 20));
          await tx.put('self', { id: 'other' });
        });
        await late;
        await other;
        expect((await storage.find('self')).items.map((d) => d.id)).toEqual(['late', 'other']);
      } finally {
        await cleanup();
      }
    });
  });
}
