/**
 * `aggregate`, text search in `where` (`startsWith`, `contains`), and the values every backend refuses
 * (NaN/±Infinity in documents, U+0000 in ids): the same rows and the same errors on memory, SQLite and
 * PostgreSQL.
 */
import { isHotpathError } from 'hotpath/core';
import type { AggregateOptions, StorageAdapter, Where } from 'hotpath/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prefixUpperBound } from '../../src/storage/sql/sql-query.js';
import { BACKENDS } from '../helpers/backends.js';

const STOCKS = [
  { id: 's01', sector: 'tech', name: 'Apple', price: 180, qty: 3 },
  { id: 's02', sector: 'tech', name: 'apricot', price: 20.5, qty: 1 },
  { id: 's03', sector: 'tech', name: 'Banana', price: '99', qty: 2 }, // a string price is not summed
  { id: 's04', sector: 'energy', name: 'Shell', price: 30, qty: 10 },
  { id: 's05', sector: 'energy', name: 'BP', price: -4.5, qty: 0 },
  { id: 's06', sector: 'energy', name: '100%_sure', price: 7 },
  { id: 's07', name: 'no sector', price: 1, qty: 1 },
  { id: 's08', sector: null, name: 'null sector', price: 2 },
  { id: 's09', sector: 10, name: 'numeric ten', price: 3 },
  { id: 's10', sector: '10', name: 'string ten', price: 4 },
  { id: 's11', sector: true, name: 'a\\b back\\slash', price: 5 },
  { id: 's12', sector: 'tech', name: 'Ärger', qty: 4 },
  { id: 's13', sector: { nested: 1 }, name: 'O\'Brien "quoted"', price: 6 },
  { id: 's14', sector: 'fin', name: '😀 smile', price: 1e3 },
  { id: 's15', sector: 'fin', name: 'APPLE pie', price: 0 },
];

for (const backend of BACKENDS) {
  describe.runIf(backend.available)(`aggregate and text search: ${backend.name}`, () => {
    let storage: StorageAdapter;
    let cleanup: () => Promise<void>;
    const agg = (options: AggregateOptions) => storage.aggregate('stocks', options);
    const ids = async (where: Where) =>
      (await storage.find('stocks', { where, limit: 1000 })).items.map((doc) => doc.id);

    beforeAll(async () => {
      ({ storage, cleanup } = await backend.open({ label: 'hp_agg' }));
      await storage.putMany('stocks', STOCKS);
      await storage.ensureIndex('stocks', 'sector');
      await storage.ensureIndex('stocks', 'name');
    });
    afterAll(async () => {
      await cleanup?.();
    });

    it('groups by type and value, in key order; aggregates read numeric values only', async () => {
      const rows = await agg({
        groupBy: 'sector',
        count: true,
        sum: ['price'],
        avg: ['price'],
        min: ['qty'],
        max: ['price'],
      });
      expect(rows).toEqual([
        // missing and null; then numbers, strings (code point order), booleans, objects/arrays
        {
          group: { sector: null },
          count: 2,
          sum: { price: 3 },
          avg: { price: 1.5 },
          min: { qty: 1 },
          max: { price: 2 },
        },
        {
          group: { sector: 10 },
          count: 1,
          sum: { price: 3 },
          avg: { price: 3 },
          min: { qty: null },
          max: { price: 3 },
        },
        {
          group: { sector: '10' },
          count: 1,
          sum: { price: 4 },
          avg: { price: 4 },
          min: { qty: null },
          max: { price: 4 },
        },
        {
          group: { sector: 'energy' },
          count: 3,
          sum: { price: 32.5 },
          avg: { price: 32.5 / 3 },
          min: { qty: 0 },
          max: { price: 30 },
        },
        {
          group: { sector: 'fin' },
          count: 2,
          sum: { price: 1000 },
          avg: { price: 500 },
          min: { qty: null },
          max: { price: 1000 },
        },
        {
          group: { sector: 'tech' },
          count: 4,
          sum: { price: 200.5 },
          avg: { price: 100.25 },
          min: { qty: 1 },
          max: { price: 180 },
        },
        {
          group: { sector: true },
          count: 1,
          sum: { price: 5 },
          avg: { price: 5 },
          min: { qty: null },
          max: { price: 5 },
        },
        {
          group: { sector: null },
          count: 1,
          sum: { price: 6 },
          avg: { price: 6 },
          min: { qty: null },
          max: { price: 6 },
        },
      ]);
    });

    it('without groupBy: one row, also over nothing', async () => {
      expect(await agg({ count: true, sum: ['qty'] })).toEqual([{ group: {}, count: 15, sum: { qty: 21 } }]);
      expect(await agg({ where: { sector: 'none' }, count: true, sum: ['qty'], max: ['qty'] })).toEqual([
        { group: {}, count: 0, sum: { qty: null }, max: { qty: null } },
      ]);
      expect(await storage.aggregate('no_such_collection', { count: true, avg: ['x'] })).toEqual([
        { group: {}, count: 0, avg: { x: null } },
      ]);
      expect(await storage.aggregate('no_such_collection', { groupBy: 'x', count: true })).toEqual([]);
    });

    it('where, orderBy an aggregate (null first ascending, last descending), ties by group, limit', async () => {
      expect(
        await agg({
          where: { sector: { in: ['tech', 'energy', 'fin'] } },
          groupBy: ['sector'],
          count: true,
          orderBy: { field: 'count', direction: 'desc' },
          limit: 2,
        }),
      ).toEqual([
        { group: { sector: 'tech' }, count: 4 },
        { group: { sector: 'energy' }, count: 3 },
      ]);
      const byMinQty = await agg({ groupBy: 'sector', min: ['qty'], orderBy: { field: 'min.qty' } });
      expect(byMinQty.map((r) => [r.group.sector, r.min?.qty])).toEqual([
        [10, null],
        ['10', null],
        ['fin', null],
        [true, null],
        [null, null], // the object group: ties keep group order
        ['energy', 0],
        [null, 1],
        ['tech', 1],
      ]);
      const desc = await agg({ groupBy: 'sector', min: ['qty'], orderBy: { field: 'min.qty', direction: 'desc' } });
      expect(desc.map((r) => r.min?.qty)).toEqual([1, 1, 0, null, null, null, null, null]);
      const bySectorDesc = await agg({
        groupBy: 'sector',
        count: true,
        orderBy: { field: 'sector', direction: 'desc' },
      });
      expect(bySectorDesc.map((r) => r.group.sector)).toEqual([null, true, 'tech', 'fin', 'energy', '10', 10, null]);
    });

    it('two group fields', async () => {
      await storage.putMany('trades', [
        { id: 't1', side: 'buy', venue: 'x', size: 1 },
        { id: 't2', side: 'buy', venue: 'y', size: 2 },
        { id: 't3', side: 'sell', venue: 'x', size: 3 },
        { id: 't4', side: 'buy', venue: 'x', size: 4 },
      ]);
      expect(await storage.aggregate('trades', { groupBy: ['side', 'venue'], count: true, sum: ['size'] })).toEqual([
        { group: { side: 'buy', venue: 'x' }, count: 2, sum: { size: 5 } },
        { group: { side: 'buy', venue: 'y' }, count: 1, sum: { size: 2 } },
        { group: { side: 'sell', venue: 'x' }, count: 1, sum: { size: 3 } },
      ]);
    });

    it('refuses bad options with ConfigError', async () => {
      const bad: unknown[] = [
        { groupBy: 'a b' },
        { sum: 'price' },
        { sum: ['price; DROP TABLE x'] },
        { count: 1 },
        { orderBy: { field: 'count' } }, // count not asked for
        { sum: ['price'], orderBy: { field: 'avg.price' } },
        { groupBy: 'sector', orderBy: { field: 'sector', direction: 'up' } },
        { limit: 0 },
        { limit: 10_001 },
        { having: {} },
        { groupBy: ['a', 'a'] },
        null,
      ];
      for (const options of bad) {
        const error = await agg(options as AggregateOptions).catch((e: unknown) => e);
        expect(isHotpathError(error, 'ERR_HOTPATH_CONFIG'), JSON.stringify(options)).toBe(true);
      }
    });

    it('startsWith: strings with that prefix, case-sensitive, by code point', async () => {
      expect(await ids({ name: { startsWith: 'Ap' } })).toEqual(['s01']);
      expect(await ids({ name: { startsWith: 'ap' } })).toEqual(['s02']);
      expect(await ids({ name: { startsWith: '' } })).toHaveLength(15);
      expect(await ids({ name: { startsWith: '😀' } })).toEqual(['s14']);
      expect(await ids({ name: { startsWith: 'Ä' } })).toEqual(['s12']);
      expect(await ids({ id: { startsWith: 's0' } })).toHaveLength(9);
      // Wildcards and quotes are plain characters.
      expect(await ids({ name: { startsWith: '100%_' } })).toEqual(['s06']);
      expect(await ids({ name: { startsWith: '1%' } })).toEqual([]);
      expect(await ids({ name: { startsWith: '_' } })).toEqual([]);
      expect(await ids({ name: { startsWith: 'a\\' } })).toEqual(['s11']);
      expect(await ids({ name: { startsWith: "O'" } })).toEqual(['s13']);
      // Only strings match (the number 10 does not start with "1").
      expect(await ids({ sector: { startsWith: '1' } })).toEqual(['s10']);
      // Combined with another condition on the same field.
      expect(await ids({ name: { startsWith: 'A', ne: 'Apple' } })).toEqual(['s15']);
    });

    it('contains, with and without caseInsensitive (ASCII letters fold, others do not)', async () => {
      expect(await ids({ name: { contains: 'pp' } })).toEqual(['s01']);
      expect(await ids({ name: { contains: 'PP' } })).toEqual(['s15']);
      expect(await ids({ name: { contains: 'apple', caseInsensitive: true } })).toEqual(['s01', 's15']);
      expect(await ids({ name: { contains: 'ärger', caseInsensitive: true } })).toEqual([]);
      expect(await ids({ name: { contains: 'Ärger', caseInsensitive: true } })).toEqual(['s12']);
      expect(await ids({ name: { contains: '%' } })).toEqual(['s06']);
      expect(await ids({ name: { contains: '_' } })).toEqual(['s06']);
      expect(await ids({ name: { contains: '\\' } })).toEqual(['s11']);
      expect(await ids({ name: { contains: '"quoted"' } })).toEqual(['s13']);
      expect(await ids({ name: { contains: "'; DROP TABLE doc_stocks; --" } })).toEqual([]);
      expect(await ids({ name: { contains: 'smile' } })).toEqual(['s14']);
      expect(await ids({ id: { contains: '1' } })).toEqual(['s01', 's10', 's11', 's12', 's13', 's14', 's15']);
      expect(await storage.count('stocks', { name: { contains: 'E', caseInsensitive: true } })).toBe(11);
      expect(await storage.count('stocks')).toBe(15);
    });

    it('refuses bad text operands with ConfigError', async () => {
      const bad: unknown[] = [
        { name: { startsWith: 1 } },
        { name: { contains: null } },
        { name: { contains: 'x', caseInsensitive: 'yes' } },
        { name: { startsWith: 'x', caseInsensitive: true } },
        { name: { contains: 'x'.repeat(1001) } },
        { name: { contains: 'a\u0000b' } },
        { name: 'a\u0000b' },
      ];
      for (const where of bad) {
        const error = await storage.find('stocks', { where: where as Where }).catch((e: unknown) => e);
        expect(isHotpathError(error, 'ERR_HOTPATH_CONFIG'), JSON.stringify(where)).toBe(true);
      }
    });

    it('NaN and ±Infinity are refused with ConfigError and nothing is written', async () => {
      const before = await storage.count('stocks');
      for (const value of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
        await expect(storage.put('stocks', { id: 'bad', price: value })).rejects.toMatchObject({
          code: 'ERR_HOTPATH_CONFIG',
        });
        await expect(storage.put('stocks', { id: 'bad', deep: { list: [1, value] } })).rejects.toMatchObject({
          code: 'ERR_HOTPATH_CONFIG',
          message: expect.stringContaining('doc.deep.list[1]'),
        });
        await expect(
          storage.putMany('stocks', [{ id: 'ok1', price: 1 }, { id: 'bad', price: value }, { id: 'ok2' }]),
        ).rejects.toMatchObject({ code: 'ERR_HOTPATH_CONFIG' });
        await expect(storage.update('stocks', 's01', { price: value })).rejects.toMatchObject({
          code: 'ERR_HOTPATH_CONFIG',
        });
      }
      expect(await storage.count('stocks')).toBe(before);
      expect(await storage.get('stocks', 'ok1')).toBeUndefined();
      expect((await storage.get('stocks', 's01'))?.price).toBe(180);
      // Nulls and Dates are still fine.
      await storage.put('scratch', { id: 'n', a: null, when: new Date(0) });
      expect(await storage.get('scratch', 'n')).toEqual({ id: 'n', a: null, when: '1970-01-01T00:00:00.000Z' });
    });

    it('U+0000 in an id (or a stored string) is refused the same way on every backend', async () => {
      const nul = 'a\u0000b';
      const attempts: Array<() => Promise<unknown>> = [
        () => storage.put('stocks', { id: nul }),
        () => storage.put('stocks', { x: 1 }, { id: nul }),
        () => storage.putMany('stocks', [{ id: 'fine' }, { id: nul }]),
        () => storage.get('stocks', nul),
        () => storage.getWithMeta('stocks', nul),
        () => storage.update('stocks', nul, { x: 1 }),
        () => storage.delete('stocks', nul),
        () => storage.find('stocks', { where: { id: nul } }),
        () => storage.put('stocks', { id: 'text', note: nul }),
      ];
      for (const attempt of attempts) {
        const error = await attempt().catch((e: unknown) => e);
        expect(isHotpathError(error, 'ERR_HOTPATH_CONFIG'), String(attempt)).toBe(true);
      }
      expect(await storage.get('stocks', 'fine')).toBeUndefined();
      expect(await storage.count('stocks')).toBe(15);
    });
  });
}

describe('prefixUpperBound', () => {
  it('is the least string above every string with the prefix', () => {
    expect(prefixUpperBound('abc')).toBe('abd');
    expect(prefixUpperBound('')).toBeUndefined();
    expect(prefixUpperBound('a\u{10ffff}')).toBe('b');
    expect(prefixUpperBound('\u{10ffff}')).toBeUndefined();
    expect(prefixUpperBound('\ud7ff')).toBe('\ue000');
    expect(prefixUpperBound('😀')).toBe('😁');
  });
});
