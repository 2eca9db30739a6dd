/**
 * `ensureIndex` creates an expression index that `find` actually uses (checked with EXPLAIN on the
 * exact statement the adapter ran), and every statement is reported to the profiler.
 */
import type { LatencyRecorder } from 'hotpath/core';
import { type PgPool, PostgresStorage, type SqliteStorage } from 'hotpath/storage';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqlite } from '../helpers/backends.js';
import { freshPgSchema, needsPostgres } from '../helpers/services.js';

const hasPostgres = await needsPostgres();

class RecordingProfiler implements LatencyRecorder {
  samples: Array<{ name: string; ms: number; isError: boolean }> = [];
  shapes: string[] = [];
  record(name: string, ms: number, isError = false): void {
    this.samples.push({ name, ms, isError });
  }
  noteQuery(shape: string): void {
    this.shapes.push(shape);
  }
}

const CITIES = Array.from({ length: 40 }, (_, i) => `city${i}`);
const docs = Array.from({ length: 4000 }, (_, i) => ({ id: `d${i}`, city: CITIES[i % 40], temp: i % 97, note: 'x' }));

describe('SQLite: ensureIndex and the profiler', () => {
  let storage: SqliteStorage;
  let cleanup: () => Promise<void>;
  const profiler = new RecordingProfiler();
  beforeAll(async () => {
    ({ storage, cleanup } = await openSqlite({ label: 'hp-idx', profiler }));
    await storage.putMany('weather', docs);
    await storage.ensureIndex('weather', 'city');
    await storage.ensureIndex('weather', 'temp');
    await storage.ensureIndex('weather', 'temp'); // idempotent
  });
  afterAll(async () => {
    await cleanup?.();
  });

  async function planOf(run: () => Promise<unknown>, prefix = 'SELECT data'): Promise<string> {
    profiler.shapes.length = 0;
    await run();
    const shape = profiler.shapes.find((s) => s.startsWith(prefix));
    if (!shape) throw new Error('find statement not reported');
    // The plan does not depend on the values; bind placeholders to 1.
    const params = Array.from({ length: shape.split('?').length - 1 }, () => 1);
    const rows = await storage.sql?.query<{ detail: string }>(`EXPLAIN QUERY PLAN ${shape}`, params);
    return (rows ?? []).map((r) => r.detail).join(' | ');
  }

  it('find on an indexed field uses the index (equality, range, orderBy + cursor)', async () => {
    expect(await planOf(() => storage.find('weather', { where: { city: 'city7' } }))).toContain(
      'USING INDEX doc_weather__city_idx',
    );
    expect(await planOf(() => storage.find('weather', { where: { temp: { gte: 90 } } }))).toContain(
      'USING INDEX doc_weather__temp_idx',
    );
    const first = await storage.find('weather', { orderBy: { field: 'temp' }, limit: 10 });
    const plan = await planOf(() =>
      storage.find('weather', { orderBy: { field: 'temp' }, limit: 10, cursor: first.nextCursor }),
    );
    expect(plan).toContain('USING INDEX doc_weather__temp_idx');
    expect(plan).not.toContain('TEMP B-TREE');
    // And the results are right.
    expect(await storage.count('weather', { city: 'city7' })).toBe(100);
  });

  it('aggregate groupBy on an indexed field walks the index in group order (no sort for GROUP BY)', async () => {
    const byCity = () => storage.aggregate('weather', { groupBy: 'city', count: true, avg: ['temp'] });
    const plan = await planOf(byCity, 'SELECT (CASE');
    expect(plan).toContain('USING INDEX doc_weather__city_idx');
    expect(plan).not.toContain('TEMP B-TREE FOR GROUP BY');
    const rows = await byCity();
    expect(rows).toHaveLength(40);
    expect(rows.reduce((n, row) => n + (row.count ?? 0), 0)).toBe(4000);
  });

  it('startsWith on an indexed field is a range search on the index', async () => {
    const plan = await planOf(() => storage.find('weather', { where: { city: { startsWith: 'city1' } } }));
    expect(plan).toMatch(/SEARCH .* USING INDEX doc_weather__city_idx/);
    expect(await storage.count('weather', { city: { startsWith: 'city1' } })).toBe(1100);
  });

  it('records every statement as storage.<op> with its shape for N+1 detection', async () => {
    profiler.samples.length = 0;
    profiler.shapes.length = 0;
    await storage.get('weather', 'd1');
    await storage.get('weather', 'd2');
    await storage.put('weather', { id: 'new', city: 'x' });
    await storage.count('weather');
    await storage.get('weather', 'd1').then(() => storage.update('weather', 'd1', { temp: 1 }));
    await storage.delete('weather', 'new');
    await expect(storage.sql?.query('SELECT * FROM missing_table')).rejects.toThrow();
    const names = profiler.samples.map((s) => s.name);
    expect(names).toEqual([
      'storage.get',
      'storage.get',
      'storage.put',
      'storage.count',
      'storage.get',
      'storage.update',
      'storage.delete',
      'storage.query',
    ]);
    expect(profiler.samples.at(-1)?.isError).toBe(true);
    // The same statement shape for every get, whatever the id: that is what N+1 detection counts.
    expect(profiler.shapes[0]).toBe('SELECT data FROM "doc_weather" WHERE id = ?');
    expect(profiler.shapes[1]).toBe(profiler.shapes[0]);
    for (const sample of profiler.samples) expect(sample.ms).toBeGreaterThanOrEqual(0);
  });
});

describe.runIf(hasPostgres)('PostgreSQL: ensureIndex and the profiler', () => {
  let schema: Awaited<ReturnType<typeof freshPgSchema>>;
  let realPool: pg.Pool;
  let storage: PostgresStorage;
  const statements: Array<{ text: string; values?: unknown[] }> = [];
  const profiler = new RecordingProfiler();

  beforeAll(async () => {
    schema = await freshPgSchema('hp_idx');
    realPool = new pg.Pool({ connectionString: schema.url, max: 3 });
    // A user-supplied pool that records the statements the adapter sends (text and bound values).
    const recording: PgPool = {
      query: (config) => {
        statements.push(config);
        return realPool.query(config as pg.QueryConfig) as never;
      },
      connect: (callback) => realPool.connect(callback as never),
      end: () => realPool.end(),
      on: (event, listener) => realPool.on(event, listener),
      get totalCount() {
        return realPool.totalCount;
      },
      get idleCount() {
        return realPool.idleCount;
      },
      get waitingCount() {
        return realPool.waitingCount;
      },
    };
    storage = new PostgresStorage({ pool: recording, profiler });
    await storage.putMany('weather', docs);
    await storage.ensureIndex('weather', 'city');
    await storage.ensureIndex('weather', 'temp');
    await storage.ensureIndex('weather', 'temp');
    await storage.sql?.query('ANALYZE doc_weather');
  });
  afterAll(async () => {
    await storage?.close();
    await realPool?.end();
    await schema?.drop();
  });

  async function planOf(run: () => Promise<unknown>, prefix = 'SELECT data'): Promise<string> {
    statements.length = 0;
    await run();
    const statement = statements.find((s) => s.text.startsWith(prefix));
    if (!statement) throw new Error('find statement not seen');
    const client = await realPool.connect();
    try {
      await client.query('BEGIN');
      // Only to make the check independent of table statistics: a usable index is then always chosen.
      await client.query('SET LOCAL enable_seqscan = off');
      const plan = await client.query(`EXPLAIN ${statement.text}`, statement.values);
      await client.query('ROLLBACK');
      return plan.rows.map((r: Record<string, string>) => r['QUERY PLAN']).join(' | ');
    } finally {
      client.release();
    }
  }

  it('find on an indexed field uses the index (equality, range, orderBy + cursor)', async () => {
    expect(await planOf(() => storage.find('weather', { where: { city: 'city7' } }))).toContain(
      'doc_weather__city_idx',
    );
    expect(await planOf(() => storage.find('weather', { where: { temp: { gte: 90 } } }))).toContain(
      'doc_weather__temp_idx',
    );
    const first = await storage.find('weather', { orderBy: { field: 'temp' }, limit: 10 });
    const plan = await planOf(() =>
      storage.find('weather', { orderBy: { field: 'temp' }, limit: 10, cursor: first.nextCursor }),
    );
    expect(plan).toContain('Index Scan using doc_weather__temp_idx');
    expect(plan).not.toContain('Sort');
    expect(await storage.count('weather', { city: 'city7' })).toBe(100);
  });

  it('aggregate groupBy on an indexed field aggregates in index order (no sort, no hash)', async () => {
    const byCity = () => storage.aggregate('weather', { groupBy: 'city', count: true, avg: ['temp'] });
    const plan = await planOf(byCity, 'SELECT (CASE');
    expect(plan).toContain('GroupAggregate');
    expect(plan).toContain('Index Scan using doc_weather__city_idx');
    expect(plan).not.toContain('Sort');
    const rows = await byCity();
    expect(rows).toHaveLength(40);
    expect(rows.reduce((n, row) => n + (row.count ?? 0), 0)).toBe(4000);
  });

  it('startsWith on an indexed field is an index range condition', async () => {
    // A selective prefix (100 of 4,000 rows): for a wide one the planner rightly prefers the id order of the primary key.
    const plan = await planOf(() => storage.find('weather', { where: { city: { startsWith: 'city17' } } }));
    expect(plan).toMatch(/Index Scan (using|on) doc_weather__city_idx/);
    expect(plan).toMatch(/Index Cond: .*>= 'city17'.*< 'city18'/);
    expect(await storage.count('weather', { city: { startsWith: 'city1' } })).toBe(1100);
  });

  it('get runs as a named prepared statement and is reported to the profiler', async () => {
    statements.length = 0;
    profiler.samples.length = 0;
    profiler.shapes.length = 0;
    await storage.get('weather', 'd1');
    await storage.get('weather', 'd2');
    expect(statements[0]?.text).toBe('SELECT data FROM "doc_weather" WHERE id = $1');
    expect((statements[0] as { name?: string }).name).toMatch(/^hp_get_/);
    expect(profiler.samples.map((s) => s.name)).toEqual(['storage.get', 'storage.get']);
    expect(profiler.shapes).toEqual([statements[0]?.text, statements[0]?.text]);
  });
});
