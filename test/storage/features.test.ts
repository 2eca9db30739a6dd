/**
 * StorageManager (typed collections, read-through cache invalidated by writes), createStorage, the
 * driver loader, Kysely access and migrations, SQLite pragmas and WAL checkpoints, PostgreSQL pool
 * options and statement timeouts.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Cache } from 'hotpath/cache';
import { ManualClock, silentLogger } from 'hotpath/core';
import {
  createStorage,
  type DocumentCache,
  MemoryStorage,
  PostgresStorage,
  SqliteStorage,
  type StorageAdapter,
  StorageManager,
} from 'hotpath/storage';
import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDriver } from '../../src/storage/driver-loader.js';
import { eventually } from '../helpers/async.js';
import { BACKENDS } from '../helpers/backends.js';
import { freshPgSchema, needsPostgres } from '../helpers/services.js';

const hasPostgres = await needsPostgres();
const execFileAsync = promisify(execFile);

/** A Map-backed cache that counts calls, to see what the manager does. */
class CountingCache implements DocumentCache {
  readonly map = new Map<string, object>();
  gets = 0;
  sets = 0;
  deletes = 0;
  get(key: string): unknown {
    this.gets++;
    return this.map.get(key);
  }
  set(key: string, value: object): void {
    this.sets++;
    this.map.set(key, value);
  }
  delete(key: string): void {
    this.deletes++;
    this.map.delete(key);
  }
}

interface Forecast {
  city: string;
  tempC: number;
  tags?: string[];
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hp-features-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

for (const backend of BACKENDS) {
  describe.runIf(backend.available)(`StorageManager over ${backend.name}`, () => {
    let storage: StorageAdapter;
    let cleanup: () => Promise<void>;
    beforeAll(async () => {
      ({ storage, cleanup } = await backend.open());
    });
    afterAll(async () => {
      await cleanup?.();
    });

    it('collection() without a type argument takes any plain object (generic defaults)', async () => {
      const manager = new StorageManager(storage);
      const notes = manager.collection('untyped_notes');
      const id = await notes.save({ a: 1, tags: ['x'] });
      const doc = await notes.get(id);
      expect(doc?.a).toBe(1);
      expect((await notes.aggregate({ count: true, sum: ['a'] }))[0]).toEqual({ group: {}, count: 1, sum: { a: 1 } });
    });

    it('typed collections with indexes; get reads through the cache; every write invalidates it', async () => {
      const cache = new CountingCache();
      const manager = new StorageManager(storage, { cache });
      const forecasts = manager.collection<Forecast>('forecasts', { indexes: ['city', 'tempC'] });
      expect(manager.collection<Forecast>('forecasts')).toBe(forecasts);
      const id = await forecasts.save({ city: 'Oslo', tempC: 4 });
      expect(await storage.collections()).toContain('forecasts');

      const first = await forecasts.get(id);
      expect(first).toEqual({ id, city: 'Oslo', tempC: 4 });
      expect(cache.sets).toBe(1);
      const second = await forecasts.get(id);
      expect(second).toEqual(first);
      expect(cache.sets).toBe(1); // served from the cache
      // Results are copies: mutating one does not change the cache.
      (second as Forecast).tempC = 99;
      expect((await forecasts.get(id))?.tempC).toBe(4);

      await forecasts.update(id, { tempC: 5 });
      expect((await forecasts.get(id))?.tempC).toBe(5);
      await forecasts.save({ id, city: 'Oslo', tempC: 6 } as Forecast & { id: string });
      expect((await forecasts.get(id))?.tempC).toBe(6);
      await forecasts.saveMany([
        { id, city: 'Oslo', tempC: 7 } as Forecast & { id: string },
        { city: 'Rome', tempC: 20 },
      ]);
      expect((await forecasts.get(id))?.tempC).toBe(7);
      expect(await forecasts.delete(id)).toBe(true);
      expect(await forecasts.get(id)).toBeUndefined();

      expect(await forecasts.count({ city: 'Rome' })).toBe(1);
      expect((await forecasts.find({ where: { tempC: { gte: 10 } } })).items.map((f) => f.city)).toEqual(['Rome']);
      expect(() => manager.collection('bad name')).toThrow(expect.objectContaining({ code: 'ERR_HOTPATH_CONFIG' }));
      expect(() => manager.collection('ok', { indexes: ['bad field'] })).toThrow(
        expect.objectContaining({ code: 'ERR_HOTPATH_CONFIG' }),
      );
    });

    it('a read that raced a write does not put a stale value in the cache', async () => {
      // The adapter's next get reads the old document, then waits until the test lets it return — after the
      // write has finished: the read's result is stale by then and must not be cached.
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      let readOld!: () => void;
      const oldRead = new Promise<void>((resolve) => {
        readOld = resolve;
      });
      let gateNextGet = false;
      const gated = new Proxy(storage, {
        get(target, property) {
          if (property === 'get' && gateNextGet) {
            gateNextGet = false;
            return async (collection: string, id: string) => {
              const doc = await target.get(collection, id);
              readOld();
              await gate;
              return doc;
            };
          }
          const value = Reflect.get(target, property, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      const cache = new CountingCache();
      const manager = new StorageManager(gated, { cache });
      const items = manager.collection<{ v: number }>('race_items');
      await items.save({ id: 'r', v: 1 } as { v: number; id: string });
      gateNextGet = true;
      const read = items.get('r');
      await oldRead;
      await items.update('r', { v: 2 });
      release();
      expect((await read)?.v).toBe(1); // the race happened: the read saw the old document
      expect(cache.map.has('race_items:r')).toBe(false);
      expect((await items.get('r'))?.v).toBe(2);
    });

    it("works with hotpath's Cache", async () => {
      const cache = new Cache<object>({ max: 100, ttlMs: 60_000 });
      const manager = new StorageManager(storage, { cache });
      const items = manager.collection<{ v: number }>('with_cache');
      const id = await items.save({ v: 1 });
      expect(await items.get(id)).toEqual({ id, v: 1 });
      expect(cache.has(`with_cache:${id}`)).toBe(true);
      await items.update(id, { v: 2 });
      expect(cache.has(`with_cache:${id}`)).toBe(false);
      expect(await items.get(id)).toEqual({ id, v: 2 });
      await cache.close();
    });
  });
}

describe('createStorage and driver loading', () => {
  it('picks the backend from the URL', async () => {
    const memory = createStorage('memory://');
    expect(memory.kind).toBe('memory');
    await memory.close();
    const sqlite = createStorage(`sqlite://${join(dir, 'url.db')}`, { busyTimeoutMs: 100 });
    expect(sqlite.kind).toBe('sqlite');
    await sqlite.put('x', { id: 'a' });
    await sqlite.close();
    expect(statSync(join(dir, 'url.db')).size).toBeGreaterThan(0);
    const inMemory = createStorage('sqlite://:memory:');
    expect(inMemory.kind).toBe('sqlite');
    await inMemory.close();
    expect(() => createStorage('mysql://localhost/db')).toThrow(
      expect.objectContaining({ code: 'ERR_HOTPATH_CONFIG' }),
    );
    expect(() => createStorage('sqlite://')).toThrow(expect.objectContaining({ code: 'ERR_HOTPATH_CONFIG' }));
    expect(() => createStorage('memory://', { bogus: 1 } as never)).toThrow(
      expect.objectContaining({ code: 'ERR_HOTPATH_CONFIG' }),
    );
  });

  it('a missing driver names the package to install', () => {
    expect(() => loadDriver('hotpath-no-such-driver', 'SqliteStorage')).toThrow(
      /SqliteStorage needs the "hotpath-no-such-driver" package: run `npm install hotpath-no-such-driver`/,
    );
    expect(loadDriver<{ name?: string }>('better-sqlite3', 'SqliteStorage')).toBeTypeOf('function');
  });

  it('options are validated at construction', () => {
    const bad: Array<() => unknown> = [
      () => new SqliteStorage({} as never),
      () => new SqliteStorage({ filename: join(dir, 'x.db'), busyTimeoutMs: -1 }),
      () => new SqliteStorage({ filename: join(dir, 'x.db'), synchronous: 'OFF' as never }),
      () => new SqliteStorage({ filename: join(dir, 'x.db'), tablePrefix: 'bad-prefix' }),
      () => new SqliteStorage({ filename: join(dir, 'x.db'), unknown: 1 } as never),
      () => new SqliteStorage({ filename: join(dir, 'x.db'), walAutocheckpointPages: Number.NaN }),
      () => new SqliteStorage({ filename: join(dir, 'x.db'), walAutocheckpointPages: -1 }),
      () => new SqliteStorage({ filename: join(dir, 'x.db'), walAutocheckpointPages: 1.5 }),
      () => new SqliteStorage({ filename: join(dir, 'x.db'), walAutocheckpointPages: '100' as never }),
      () => new SqliteStorage({ filename: join(dir, 'x.db'), checkpointThread: 'yes' as never }),
      () => new MemoryStorage({ maxDocuments: 0 }),
      () => new PostgresStorage({}),
      () => new PostgresStorage({ connectionString: 'postgres://x', max: 0 }),
      () => new PostgresStorage({ connectionString: 'postgres://x', statementTimeoutMs: -5 }),
      () => new PostgresStorage({ connectionString: 'postgres://x', schema: 'a;b' }),
      () => new StorageManager(new MemoryStorage(), { cache: {} as never }),
    ];
    for (const make of bad) expect(make).toThrow(expect.objectContaining({ code: 'ERR_HOTPATH_CONFIG' }));
  });

  it('MemoryStorage refuses writes beyond maxDocuments and leaves the data unchanged', async () => {
    const storage = new MemoryStorage({ maxDocuments: 3 });
    await storage.putMany('a', [{ id: '1' }, { id: '2' }]);
    await expect(storage.putMany('a', [{ id: '3' }, { id: '4' }])).rejects.toMatchObject({
      code: 'ERR_HOTPATH_STORAGE',
    });
    expect(await storage.count('a')).toBe(2);
    await storage.put('a', { id: '1', replaced: true }); // replacing does not grow
    await storage.put('a', { id: '3' });
    await expect(storage.put('a', { id: '5' })).rejects.toMatchObject({ code: 'ERR_HOTPATH_STORAGE' });
    expect(storage.stats().documents).toBe(3);
  });
});

describe('SqliteStorage specifics', () => {
  it('applies the pragmas and checkpoints the WAL on its (unref) timer', async () => {
    const clock = new ManualClock();
    const storage = new SqliteStorage({
      filename: join(dir, 'pragmas.db'),
      clock,
      checkpointIntervalMs: 1000,
      checkpointThread: false,
    });
    const pragma = async (name: string) => (await storage.sql?.query(`PRAGMA ${name}`))?.[0];
    expect(await pragma('journal_mode')).toEqual({ journal_mode: 'wal' });
    expect(await pragma('synchronous')).toEqual({ synchronous: 1 }); // NORMAL
    expect(await pragma('busy_timeout')).toEqual({ timeout: 5000 });
    expect(await pragma('temp_store')).toEqual({ temp_store: 2 }); // MEMORY
    expect(await pragma('cache_size')).toEqual({ cache_size: -65536 });
    expect(await pragma('wal_autocheckpoint')).toEqual({ wal_autocheckpoint: 8192 });
    await storage.putMany(
      'wal',
      Array.from({ length: 100 }, (_, i) => ({ i })),
    );
    expect(storage.stats().checkpoints).toBe(0);
    await clock.advance(1000);
    expect(storage.stats().checkpoints).toBe(1);
    await clock.advance(3000);
    expect(storage.stats().checkpoints).toBe(4);
    await storage.close();
  });

  it('checkpoints in a worker thread while the event loop is blocked; the WAL is gone after close', async () => {
    const clock = new ManualClock();
    const filename = join(dir, 'thread-checkpoint.db');
    const storage = new SqliteStorage({ filename, clock, checkpointIntervalMs: 1000 });
    // ~2 MB of rows: under wal_autocheckpoint (32 MiB), so they stay in the WAL until a checkpoint.
    await storage.putMany(
      'wal',
      Array.from({ length: 2000 }, (_, i) => ({ i, pad: 'x'.repeat(1000) })),
    );
    const before = statSync(filename).size;
    expect(statSync(`${filename}-wal`).size).toBeGreaterThan(2_000_000);
    await clock.advance(1000); // posts the checkpoint to the thread (which is only starting now)
    expect(statSync(filename).size).toBeLessThan(before + 2_000_000); // nothing copied on this thread
    // Block this thread: only another thread can copy the pages into the database file meanwhile.
    const deadline = Date.now() + 15_000;
    while (statSync(filename).size <= before + 2_000_000 && Date.now() < deadline) {
      /* busy wait */
    }
    expect(statSync(filename).size).toBeGreaterThan(before + 2_000_000);
    await eventually(() => storage.stats().checkpoints === 1);
    expect(storage.stats().checkpointErrors).toBe(0);
    expect(await storage.count('wal')).toBe(2000);
    await storage.close();
    expect(existsSync(`${filename}-wal`)).toBe(false); // the adapter's connection closed last
  });

  it('the checkpoint thread does not keep a process alive that never closes its storage', async () => {
    const child = join(import.meta.dirname, 'fixtures', 'checkpoint-thread-child.ts');
    const { stdout } = await execFileAsync(process.execPath, ['--import', 'tsx', child, join(dir, 'exits.db')], {
      timeout: 60_000,
    });
    expect(stdout).toMatch(/^checkpointed \d+\n$/);
  }, 90_000);

  it('a script whose last step is `await storage.close()` runs to its end', async () => {
    const child = join(import.meta.dirname, 'fixtures', 'checkpoint-thread-child.ts');
    const filename = join(dir, 'closes.db');
    const { stdout } = await execFileAsync(process.execPath, ['--import', 'tsx', child, filename, 'close'], {
      timeout: 60_000,
    });
    expect(stdout).toMatch(/^checkpointed \d+\nclosed\n$/);
    expect(existsSync(`${filename}-wal`)).toBe(false);
  }, 90_000);

  it('falls back to checkpoints on its own connection, with one warning, when the thread cannot open the file', async () => {
    const clock = new ManualClock();
    const filename = join(dir, 'fallback.db');
    const warnings: string[] = [];
    const logger = { ...silentLogger, warn: (_fields: unknown, message?: string) => warnings.push(String(message)) };
    const storage = new SqliteStorage({ filename, clock, checkpointIntervalMs: 1000, logger });
    await storage.put('a', { id: '1' });
    // The adapter keeps its open file; the thread, opening by name with fileMustExist, fails.
    renameSync(filename, `${filename}.moved`);
    await clock.advance(1000);
    await eventually(() => warnings.length === 1);
    expect(warnings[0]).toMatch(/checkpoint thread is unavailable/);
    expect(storage.stats().checkpointErrors).toBe(1);
    await clock.advance(1000); // inline now: counted before advance returns
    expect(storage.stats().checkpoints).toBe(1);
    await clock.advance(1000);
    expect(storage.stats().checkpoints).toBe(2);
    expect(warnings).toHaveLength(1);
    expect(await storage.get('a', '1')).toMatchObject({ id: '1' });
    await storage.close();
  });

  it('walAutocheckpointPages sets the in-commit checkpoint threshold', async () => {
    const storage = new SqliteStorage({ filename: join(dir, 'autockpt.db'), walAutocheckpointPages: 250 });
    expect(await storage.sql?.query('PRAGMA wal_autocheckpoint')).toEqual([{ wal_autocheckpoint: 250 }]);
    await storage.close();
  });

  it('adapter.db (Kysely) and migrate() share the connection and its write lock', async () => {
    const storage = new SqliteStorage({ filename: join(dir, 'kysely.db') });
    const migrations = {
      '001_users': {
        async up(db: Kysely<unknown>) {
          await db.schema
            .createTable('users')
            .addColumn('id', 'integer', (c) => c.primaryKey())
            .addColumn('name', 'text')
            .execute();
        },
      },
    };
    const results = await storage.migrate(migrations);
    expect(results.map((r) => [r.migrationName, r.status])).toEqual([['001_users', 'Success']]);
    expect(await storage.migrate(migrations)).toEqual([]);
    await storage.db.insertInto('users').values({ id: 1, name: 'ada' }).execute();
    expect(await storage.db.selectFrom('users').selectAll().execute()).toEqual([{ id: 1, name: 'ada' }]);

    // A Kysely query issued while an adapter transaction is open waits for it instead of joining it.
    const events: string[] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const tx = storage
      .transaction(async (t) => {
        await (t as SqliteStorage).db.insertInto('users').values({ id: 2, name: 'rolled back' }).execute();
        await gate;
        events.push('tx-end');
        throw new Error('undo');
      })
      .catch(() => undefined);
    const outside = storage.db
      .insertInto('users')
      .values({ id: 3, name: 'outside' })
      .execute()
      .then(() => events.push('outside'));
    await new Promise((r) => setTimeout(r, 10));
    release();
    await Promise.all([tx, outside]);
    expect(events).toEqual(['tx-end', 'outside']);
    const names = await sql<{ name: string }>`select name from users order by id`.execute(storage.db);
    expect(names.rows.map((r) => r.name)).toEqual(['ada', 'outside']);

    await expect(
      storage.migrate({
        ...migrations,
        '002_broken': {
          async up(db: Kysely<unknown>) {
            await sql`this is not sql`.execute(db);
          },
        },
      }),
    ).rejects.toMatchObject({ code: 'ERR_HOTPATH_STORAGE' });
    await storage.close();
  });
});

describe.runIf(hasPostgres)('PostgresStorage specifics', () => {
  let schema: Awaited<ReturnType<typeof freshPgSchema>>;
  beforeAll(async () => {
    schema = await freshPgSchema('hp_feat');
  });
  afterAll(async () => {
    await schema?.drop();
  });

  it('statementTimeoutMs cancels slow statements with StorageError; the pool keeps working', async () => {
    const storage = new PostgresStorage({ connectionString: schema.url, max: 2, statementTimeoutMs: 100 });
    const error = await storage.sql?.query('SELECT pg_sleep(2)').catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_HOTPATH_STORAGE' });
    expect(((error as Error).cause as { code?: string }).code).toBe('57014');
    expect((await storage.health()).ok).toBe(true);
    await storage.close();
  });

  it('stats report the pool; the pool never exceeds max; waiting callers are counted', async () => {
    const storage = new PostgresStorage({ connectionString: schema.url, max: 3, idleTimeoutMs: 1000 });
    await storage.put('pool', { id: 'a' });
    let peakTotal = 0;
    let peakWaiting = 0;
    const calls = Array.from({ length: 30 }, () =>
      storage.sql?.query('SELECT pg_sleep(0.02)').then(() => {
        const s = storage.stats();
        peakTotal = Math.max(peakTotal, s.total);
        peakWaiting = Math.max(peakWaiting, s.waiting);
      }),
    );
    const during = storage.stats();
    await Promise.all(calls);
    expect(during.waiting).toBeGreaterThan(0);
    expect(peakTotal).toBeLessThanOrEqual(3);
    expect(peakWaiting).toBeGreaterThan(0);
    const after = storage.stats();
    expect(after.waiting).toBe(0);
    expect(after.total).toBeLessThanOrEqual(3);
    await storage.close();
    await storage.close();
  });

  it('maxLifetimeMs recycles connections', async () => {
    const storage = new PostgresStorage({ connectionString: schema.url, max: 1, maxLifetimeMs: 1000 });
    const pid = async () => (await storage.sql?.query<{ pid: number }>('SELECT pg_backend_pid() AS pid'))?.[0]?.pid;
    const first = await pid();
    expect(await pid()).toBe(first);
    await new Promise((r) => setTimeout(r, 1300));
    expect(await pid()).not.toBe(first);
    await storage.close();
  });

  it('LISTEN survives its connection being terminated: it reconnects and notifications resume', async () => {
    const applicationName = `hp_listen_${process.pid}`;
    const storage = new PostgresStorage({ connectionString: schema.url, max: 2, applicationName });
    const sql = storage.sql as NonNullable<StorageAdapter['sql']>;
    const received: string[] = [];
    const unsubscribe = await sql.listen?.('hp_feat_channel', (payload) => received.push(payload));
    const waitFor = async (check: () => boolean) => {
      for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
    };
    await sql.query("SELECT pg_notify('hp_feat_channel', 'one')");
    await waitFor(() => received.length === 1);
    // Terminate every connection of this adapter, the LISTEN one included.
    await sql.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()',
      [applicationName],
    );
    await waitFor(() => (storage.stats().listenReconnects ?? 0) >= 1);
    expect(storage.stats().listenReconnects).toBe(1);
    await sql.query("SELECT pg_notify('hp_feat_channel', 'two')");
    await waitFor(() => received.length === 2);
    expect(received).toEqual(['one', 'two']);
    await unsubscribe?.();
    await storage.close();
  });

  it('schema option qualifies tables; db and migrate work on the same pool', async () => {
    const storage = new PostgresStorage({ connectionString: schema.url, schema: schema.schema, tablePrefix: 'app_' });
    await storage.put('things', { id: 't' });
    const rows = await storage.sql?.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2',
      [schema.schema, 'app_things'],
    );
    expect(rows).toEqual([{ n: 1 }]);
    expect(await storage.collections()).toEqual(['things']);
    await storage.migrate({
      '001': {
        async up(db: Kysely<unknown>) {
          await db.schema
            .createTable('accounts')
            .addColumn('id', 'serial', (c) => c.primaryKey())
            .execute();
        },
      },
    });
    await storage.db.insertInto('accounts').defaultValues().execute();
    expect(await storage.db.selectFrom('accounts').selectAll().execute()).toEqual([{ id: 1 }]);
    await storage.close();
  });
});

describe('imports without the drivers installed', () => {
  it('hotpath/storage loads, MemoryStorage works, SQL backends name the package to install', async () => {
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const { stdout } = await promisify(execFile)(process.execPath, [
      '--import',
      'tsx',
      'test/storage/fixtures/no-drivers.ts',
    ]);
    expect(stdout.trim().split('\n')).toEqual([
      'better-sqlite3: esm blocked, cjs blocked',
      'pg: esm blocked, cjs blocked',
      'memory ok {"id":"x"}',
      'ERR_HOTPATH_CONFIG SqliteStorage needs the "better-sqlite3" package: run `npm install better-sqlite3`',
      'ERR_HOTPATH_CONFIG PostgresStorage needs the "pg" package: run `npm install pg`',
    ]);
  });
});
