/**
 * The `adapter.sql` contract the job queue builds on: bound queries returning rows, transactions that
 * commit/roll back, `adapter.transaction(tx => tx.sql…)` bound to the transaction, and LISTEN on PostgreSQL.
 */
import type { PostgresStorage, SqliteStorage, StorageAdapter } from 'hotpath/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgres, openSqlite } from '../helpers/backends.js';
import { needsPostgres } from '../helpers/services.js';

const hasPostgres = await needsPostgres();

describe('SqliteStorage.sql', () => {
  let storage: SqliteStorage;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ storage, cleanup } = await openSqlite({ label: 'hp-sql' }));
  });
  afterAll(async () => {
    await cleanup?.();
  });

  it('runs bound statements and returns rows, including RETURNING rows', async () => {
    const sql = storage.sql;
    if (!sql) throw new Error('sql missing');
    expect(sql.dialect).toBe('sqlite');
    await sql.query('CREATE TABLE jobs (id INTEGER PRIMARY KEY, name TEXT, done INTEGER)');
    const inserted = await sql.query<{ id: number }>('INSERT INTO jobs (name, done) VALUES (?, ?) RETURNING id', [
      "x'); DROP TABLE jobs; --",
      false,
    ]);
    expect(inserted).toEqual([{ id: 1 }]);
    const rows = await sql.query('SELECT name, done FROM jobs WHERE id = ?', [1]);
    expect(rows).toEqual([{ name: "x'); DROP TABLE jobs; --", done: 0 }]);
  });

  it('sql.transaction commits on return and rolls back on throw', async () => {
    const sql = storage.sql as NonNullable<StorageAdapter['sql']>;
    await sql.transaction(async (tx) => {
      await tx.query('INSERT INTO jobs (name, done) VALUES (?, ?)', ['committed', 1]);
    });
    await expect(
      sql.transaction(async (tx) => {
        await tx.query('INSERT INTO jobs (name, done) VALUES (?, ?)', ['rolled back', 1]);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    const names = await sql.query<{ name: string }>('SELECT name FROM jobs ORDER BY id');
    expect(names.map((r) => r.name)).toEqual(["x'); DROP TABLE jobs; --", 'committed']);
  });

  it('adapter.transaction exposes tx.sql bound to the transaction', async () => {
    await expect(
      storage.transaction(async (tx) => {
        await tx.sql?.query('INSERT INTO jobs (name, done) VALUES (?, ?)', ['inside', 0]);
        await tx.put('docs', { a: 1 }, { id: 'd1' });
        expect(await tx.sql?.query('SELECT count(*) AS n FROM jobs WHERE name = ?', ['inside'])).toEqual([{ n: 1 }]);
        throw new Error('undo');
      }),
    ).rejects.toThrow('undo');
    expect(await storage.sql?.query('SELECT count(*) AS n FROM jobs WHERE name = ?', ['inside'])).toEqual([{ n: 0 }]);
    expect(await storage.get('docs', 'd1')).toBeUndefined();
  });

  it('wraps driver errors in StorageError with the cause kept', async () => {
    const error = await storage.sql?.query('SELECT * FROM no_such_table').catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_HOTPATH_STORAGE' });
    expect((error as Error).cause).toBeInstanceOf(Error);
  });
});

describe.runIf(hasPostgres)('PostgresStorage.sql', () => {
  let storage: PostgresStorage;
  let schema: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ storage, schema, cleanup } = await openPostgres({ label: 'hp_sql' }));
  });
  afterAll(async () => {
    await cleanup?.();
  });

  it('runs bound and named statements in the schema of the connection', async () => {
    const sql = storage.sql as NonNullable<StorageAdapter['sql']>;
    expect(sql.dialect).toBe('postgres');
    await sql.query('CREATE TABLE jobs (id serial PRIMARY KEY, name text, done boolean)');
    const inserted = await sql.query<{ id: number }>('INSERT INTO jobs (name, done) VALUES ($1, $2) RETURNING id', [
      "x'); DROP TABLE jobs; --",
      false,
    ]);
    expect(inserted).toEqual([{ id: 1 }]);
    for (let i = 0; i < 3; i++) {
      const rows = await sql.query('SELECT name, done FROM jobs WHERE id = $1', [1], { name: 'jobs_by_id' });
      expect(rows).toEqual([{ name: "x'); DROP TABLE jobs; --", done: false }]);
    }
    const where = await sql.query<{ schemaname: string }>(
      "SELECT schemaname FROM pg_tables WHERE tablename = 'jobs' AND schemaname = current_schema()",
    );
    expect(where).toEqual([{ schemaname: schema }]);
  });

  it('sql.transaction commits on return and rolls back on throw; tx.sql is bound to the transaction', async () => {
    const sql = storage.sql as NonNullable<StorageAdapter['sql']>;
    await sql.transaction(async (tx) => {
      await tx.query('INSERT INTO jobs (name, done) VALUES ($1, $2)', ['committed', true]);
    });
    await expect(
      storage.transaction(async (tx) => {
        await tx.sql?.query('INSERT INTO jobs (name, done) VALUES ($1, $2)', ['rolled back', true]);
        // Invisible from outside until commit.
        expect(await sql.query('SELECT count(*)::int AS n FROM jobs WHERE name = $1', ['rolled back'])).toEqual([
          { n: 0 },
        ]);
        expect(await tx.sql?.query('SELECT count(*)::int AS n FROM jobs WHERE name = $1', ['rolled back'])).toEqual([
          { n: 1 },
        ]);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    const names = await sql.query<{ name: string }>('SELECT name FROM jobs ORDER BY id');
    expect(names.map((r) => r.name)).toEqual(["x'); DROP TABLE jobs; --", 'committed']);
  });

  it('listen receives NOTIFY payloads until unsubscribed', async () => {
    const sql = storage.sql as NonNullable<StorageAdapter['sql']>;
    const received: string[] = [];
    let resolve: () => void = () => {};
    const got = new Promise<void>((r) => {
      resolve = r;
    });
    const unsubscribe = await sql.listen?.('hp_jobs', (payload) => {
      received.push(payload);
      resolve();
    });
    await sql.query("SELECT pg_notify('hp_jobs', $1)", ['hello']);
    await got;
    expect(received).toEqual(['hello']);
    await unsubscribe?.();
    await expect(sql.listen?.('bad channel"; --', () => {})).rejects.toMatchObject({ code: 'ERR_HOTPATH_CONFIG' });
  });
});
