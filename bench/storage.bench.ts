/**
 * Storage benchmarks: hotpath's SQLite and PostgreSQL adapters against raw better-sqlite3, raw pg
 * (unnamed and named statements) and Kysely over the same databases, side by side in one process.
 *
 * 1. SQLite putMany of 100,000 small JSON documents in one transaction (vs a raw prepared upsert loop
 *    in `db.transaction`, and Kysely 1,000-row multi-row inserts in a transaction).
 * 2. SQLite get by primary key (vs raw prepared `get` + JSON.parse, Kysely), plus p50/p99 latency.
 *    Also: two connections read alternately — whether anything pool-like helps a synchronous driver.
 * 3. PostgreSQL putMany of 50,000 documents (vs raw multi-row INSERT of 1,000 rows per statement in one
 *    transaction, and raw `jsonb_array_elements` of one JSON array parameter).
 * 4. PostgreSQL get with 32 concurrent callers on a pool of 10 (vs raw pg unnamed, raw pg named, Kysely).
 *
 * 5. SQLite steady writer: 1 MB `putMany` 10 times a second for 6 s, timing each write and the longest
 *    event-loop stall — the periodic checkpoint in its thread (default) against checkpoints on the
 *    adapter's own connection with SQLite's 1,000-page `wal_autocheckpoint` and with 8,192 pages.
 *
 * Every SQLite connection (ours, raw, kysely's) runs with the same pragmas: see SQLITE_PRAGMAS.
 *
 * Run: npm run bench -- storage   (PostgreSQL parts need HOTPATH_PG_URL or a local server)
 *      npm run bench -- storage --ab   (mode: only the putMany A/B runs, ours vs raw, alternating, 10/8 runs)
 *      npm run bench -- storage --checkpoint   (mode: only the steady-writer checkpoint runs)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { PostgresStorage, SqliteStorage } from 'hotpath/storage';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import { sortableId } from '../src/core/ids.js';
import { benchMode, compareOps, compareRuns, percentiles } from './harness.js';

const PG_URL = process.env.HOTPATH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
/** `npm run bench -- storage --ab`: only the two putMany A/B runs (ours vs raw, alternating, 10 and 8 runs). */
const AB = benchMode('ab');
/** `npm run bench -- storage --checkpoint`: only the steady-writer checkpoint comparison. */
const CHECKPOINT = benchMode('checkpoint');

interface DocTable {
  id: string;
  data: string;
  created_at: number;
  updated_at: number;
  version: number;
}
interface BenchDb {
  raw_docs: DocTable;
  kysely_docs: DocTable;
}

function makeDocs(n: number): Array<{ id: string; city: string; tempC: number; at: number; note: string }> {
  return Array.from({ length: n }, (_, i) => ({
    id: sortableId(),
    city: `city${i % 50}`,
    tempC: (i % 60) - 20,
    at: 1_700_000_000_000 + i,
    note: 'small json document',
  }));
}

const CREATE_SQLITE = (table: string) =>
  `CREATE TABLE IF NOT EXISTS ${table} (id TEXT NOT NULL PRIMARY KEY, data TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, version INTEGER NOT NULL DEFAULT 1)`;

// ---- SQLite --------------------------------------------------------------------------------------

const dir = mkdtempSync(join(tmpdir(), 'hp-bench-storage-'));
const file = join(dir, 'bench.db');
const ours = new SqliteStorage({ filename: file, checkpointIntervalMs: 0 });
/**
 * The pragmas SqliteStorage sets (sqlite-storage.ts), given to every raw/kysely contender too, so the rows
 * compare code, not configuration: WAL + NORMAL, 64 MiB page cache, temp tables in memory, 256 MiB mmap.
 */
const SQLITE_PRAGMAS = [
  'journal_mode = WAL',
  'synchronous = NORMAL',
  'busy_timeout = 5000',
  'cache_size = -65536',
  'temp_store = MEMORY',
  'mmap_size = 268435456',
];
const withPragmas = (db: Database.Database, pragmas = SQLITE_PRAGMAS): Database.Database => {
  for (const pragma of pragmas) db.pragma(pragma);
  return db;
};
const raw = withPragmas(new Database(file));
// Read-only: journal_mode cannot be set here (the file is already WAL); the cache/mmap/temp pragmas can.
const rawSecond = withPragmas(
  new Database(file, { readonly: true }),
  SQLITE_PRAGMAS.filter((pragma) => !pragma.startsWith('journal_mode')),
);
const kysely = new Kysely<BenchDb>({ dialect: new SqliteDialect({ database: raw }) });

const SQLITE_BATCH = 100_000;
let round = 0;

// Every putMany run writes a fresh database file (opened and closed inside the timing, ~1 ms against
// ~500 ms): one shared, growing file made results depend on which run happened to trigger WAL checkpoints.
function freshRaw(): Database.Database {
  const db = withPragmas(new Database(join(dir, `raw${round++}.db`)));
  db.exec(CREATE_SQLITE('raw_docs'));
  return db;
}

async function sqlitePutMany(): Promise<void> {
  const docs = makeDocs(SQLITE_BATCH);
  const runs = {
    'hotpath SqliteStorage.putMany': async () => {
      const storage = new SqliteStorage({ filename: join(dir, `ours${round++}.db`), checkpointIntervalMs: 0 });
      await storage.putMany('docs', docs);
      await storage.close();
      return SQLITE_BATCH;
    },
    'raw better-sqlite3 prepared upsert in db.transaction': async () => {
      const db = freshRaw();
      const insert = db.prepare(
        'INSERT INTO raw_docs (id, data, created_at, updated_at, version) VALUES (?, ?, ?, ?, 1) ON CONFLICT (id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at, version = version + 1',
      );
      const now = Date.now();
      db.transaction(() => {
        for (const doc of docs) insert.run(doc.id, JSON.stringify(doc), now, now);
      })();
      db.close();
      return SQLITE_BATCH;
    },
    'kysely insert 1,000 rows/statement in a transaction': async () => {
      const db = new Kysely<BenchDb>({ dialect: new SqliteDialect({ database: freshRaw() }) });
      const now = Date.now();
      await db.transaction().execute(async (trx) => {
        for (let i = 0; i < docs.length; i += 1000) {
          const rows = docs.slice(i, i + 1000).map((doc) => ({
            id: doc.id,
            data: JSON.stringify(doc),
            created_at: now,
            updated_at: now,
            version: 1,
          }));
          await trx.insertInto('raw_docs').values(rows).execute();
        }
      });
      await db.destroy();
      return SQLITE_BATCH;
    },
  };
  if (AB) {
    const { 'hotpath SqliteStorage.putMany': a, 'raw better-sqlite3 prepared upsert in db.transaction': b } = runs;
    await compareRuns(
      `A/B: SQLite putMany of ${SQLITE_BATCH.toLocaleString('en')} small documents, ours vs raw, 10 alternating runs, fresh files (rows/s)`,
      { 'hotpath SqliteStorage.putMany': a, 'raw better-sqlite3 prepared upsert in db.transaction': b },
      { rounds: 10 },
    );
    return;
  }
  await compareRuns(`SQLite putMany of ${SQLITE_BATCH.toLocaleString('en')} small documents (rows/s)`, runs, {
    rounds: 7,
  });
}

async function sqliteGet(): Promise<void> {
  const docs = makeDocs(10_000);
  await ours.putMany('reads', docs);
  raw.exec(CREATE_SQLITE('raw_docs'));
  const insert = raw.prepare(
    'INSERT OR REPLACE INTO raw_docs (id, data, created_at, updated_at, version) VALUES (?, ?, 0, 0, 1)',
  );
  raw.transaction(() => {
    for (const doc of docs) insert.run(doc.id, JSON.stringify(doc));
  })();
  const ids = docs.map((d) => d.id);
  const rawGet = raw.prepare('SELECT data FROM raw_docs WHERE id = ?');
  const rawGet2 = rawSecond.prepare('SELECT data FROM raw_docs WHERE id = ?');
  let i = 0;
  const nextId = (): string => ids[i++ % ids.length] as string;
  let flip = false;
  await compareOps('SQLite get by id (ops/s)', {
    'hotpath SqliteStorage.get': async () => {
      await ours.get('reads', nextId());
    },
    'raw better-sqlite3 prepared get + JSON.parse': () => {
      const row = rawGet.get(nextId()) as { data: string } | undefined;
      return row ? JSON.parse(row.data) : undefined;
    },
    'raw better-sqlite3, 2 connections alternating': () => {
      flip = !flip;
      const row = (flip ? rawGet : rawGet2).get(nextId()) as { data: string } | undefined;
      return row ? JSON.parse(row.data) : undefined;
    },
    'kysely selectFrom(...).where(id).executeTakeFirst': async () => {
      const row = await kysely.selectFrom('raw_docs').select('data').where('id', '=', nextId()).executeTakeFirst();
      return row ? JSON.parse(row.data) : undefined;
    },
  });
  // Latency of one awaited get, 50,000 samples.
  const oursMs: number[] = [];
  const rawMs: number[] = [];
  for (let n = 0; n < 50_000; n++) {
    const id = nextId();
    let start = performance.now();
    await ours.get('reads', id);
    oursMs.push(performance.now() - start);
    start = performance.now();
    JSON.parse((rawGet.get(id) as { data: string }).data);
    rawMs.push(performance.now() - start);
  }
  const fmt = (p: { p50: number; p99: number }) =>
    `p50 ${(p.p50 * 1000).toFixed(1)} µs, p99 ${(p.p99 * 1000).toFixed(1)} µs`;
  console.log(`\nSQLite get latency — hotpath: ${fmt(percentiles(oursMs))}; raw: ${fmt(percentiles(rawMs))}`);
}

// ---- PostgreSQL ----------------------------------------------------------------------------------

function reachable(url: string): Promise<boolean> {
  const parsed = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: parsed.hostname || '127.0.0.1', port: Number(parsed.port || 5432) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1500, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

const CREATE_PG = (table: string) =>
  `CREATE TABLE IF NOT EXISTS ${table} (id text COLLATE "C" NOT NULL PRIMARY KEY, data jsonb NOT NULL, created_at bigint NOT NULL, updated_at bigint NOT NULL, version integer NOT NULL DEFAULT 1)`;

async function postgres(): Promise<void> {
  if (!(await reachable(PG_URL))) {
    console.log(`\nPostgreSQL not reachable at ${PG_URL}: skipping the PostgreSQL benchmarks`);
    return;
  }
  const schema = `hp_bench_${process.pid}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  const url = new URL(PG_URL);
  url.searchParams.set('options', `-c search_path=${schema}`);
  const storage = new PostgresStorage({ connectionString: url.toString(), max: 10 });
  const pool = new pg.Pool({ connectionString: url.toString(), max: 10 });
  const kyselyPg = new Kysely<BenchDb>({ dialect: new PostgresDialect({ pool }) });
  try {
    const PG_BATCH = 50_000;
    const docs = makeDocs(PG_BATCH);
    let pgRound = 0;
    /** A fresh table, one transaction around `insert`, the connection released: the raw contenders' frame. */
    const rawPgBatch = async (
      table: string,
      insert: (client: pg.PoolClient, table: string, now: number) => Promise<void>,
    ): Promise<number> => {
      await pool.query(CREATE_PG(table));
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await insert(client, table, Date.now());
        await client.query('COMMIT');
      } finally {
        client.release();
      }
      return PG_BATCH;
    };
    const putManyRuns = {
      'hotpath PostgresStorage.putMany': async () => {
        await storage.putMany(`batch${pgRound++}`, docs);
        return PG_BATCH;
      },
      'raw pg multi-row INSERT, 1,000 rows/statement, one transaction': () =>
        rawPgBatch(`raw_batch${pgRound++}`, async (client, table, now) => {
          for (let i = 0; i < docs.length; i += 1000) {
            const chunk = docs.slice(i, i + 1000);
            const values: unknown[] = [];
            const tuples = chunk.map((doc, k) => {
              values.push(doc.id, JSON.stringify(doc));
              return `($${2 * k + 1}, $${2 * k + 2}::jsonb, ${now}, ${now}, 1)`;
            });
            await client.query(
              `INSERT INTO ${table} (id, data, created_at, updated_at, version) VALUES ${tuples.join(', ')} ON CONFLICT (id) DO UPDATE SET data = excluded.data`,
              values,
            );
          }
        }),
      'raw pg jsonb_array_elements, 1,000 docs/statement, one transaction': () =>
        rawPgBatch(`raw_jsonb${pgRound++}`, async (client, table, now) => {
          for (let i = 0; i < docs.length; i += 1000) {
            const json = `[${docs
              .slice(i, i + 1000)
              .map((doc) => JSON.stringify(doc))
              .join(',')}]`;
            await client.query(
              `INSERT INTO ${table} (id, data, created_at, updated_at, version) SELECT e ->> 'id', e, $2, $2, 1 FROM jsonb_array_elements($1::jsonb) e ON CONFLICT (id) DO UPDATE SET data = excluded.data`,
              [json, now],
            );
          }
        }),
    };
    if (AB) {
      const {
        'hotpath PostgresStorage.putMany': a,
        'raw pg jsonb_array_elements, 1,000 docs/statement, one transaction': b,
      } = putManyRuns;
      await compareRuns(
        `A/B: PostgreSQL putMany of ${PG_BATCH.toLocaleString('en')} small documents, ours vs the same statement shape raw, 8 alternating runs, fresh tables (rows/s)`,
        {
          'hotpath PostgresStorage.putMany': a,
          'raw pg jsonb_array_elements, 1,000 docs/statement, one transaction': b,
        },
        { rounds: 8 },
      );
      return;
    }
    await compareRuns(`PostgreSQL putMany of ${PG_BATCH.toLocaleString('en')} small documents (rows/s)`, putManyRuns, {
      rounds: 3,
    });

    // Point gets: 32 concurrent callers, pool of 10.
    const readDocs = makeDocs(10_000);
    await storage.putMany('reads', readDocs);
    await pool.query(CREATE_PG('raw_docs'));
    await pool.query(
      `INSERT INTO raw_docs (id, data, created_at, updated_at, version) SELECT e ->> 'id', e, 0, 0, 1 FROM jsonb_array_elements($1::jsonb) e`,
      [JSON.stringify(readDocs)],
    );
    const ids = readDocs.map((d) => d.id);
    const GETS = 20_000;
    const CALLERS = 32;
    const concurrent = async (get: (id: string) => Promise<unknown>): Promise<number> => {
      let next = 0;
      await Promise.all(
        Array.from({ length: CALLERS }, async () => {
          while (next < GETS) {
            const id = ids[next++ % ids.length] as string;
            await get(id);
          }
        }),
      );
      return GETS;
    };
    await compareRuns(
      `PostgreSQL get by id, ${CALLERS} concurrent callers, pool of 10 (ops/s)`,
      {
        'hotpath PostgresStorage.get': () => concurrent((id) => storage.get('reads', id)),
        'raw pg unnamed': () =>
          concurrent(async (id) => (await pool.query('SELECT data FROM raw_docs WHERE id = $1', [id])).rows[0]),
        'raw pg named prepared': () =>
          concurrent(
            async (id) =>
              (await pool.query({ name: 'raw_get', text: 'SELECT data FROM raw_docs WHERE id = $1', values: [id] }))
                .rows[0],
          ),
        'kysely selectFrom(...).where(id)': () =>
          concurrent((id) => kyselyPg.selectFrom('raw_docs').select('data').where('id', '=', id).executeTakeFirst()),
      },
      { rounds: 5 },
    );
  } finally {
    await storage.close();
    await kyselyPg.destroy(); // ends `pool`
    await admin.query(`DROP SCHEMA ${schema} CASCADE`);
    await admin.end();
  }
}

/**
 * A steady writer (1 MB `putMany` every 100 ms for 6 s) against three checkpoint set-ups, interleaved,
 * 3 rounds each: per write latency and the longest gap of a 1 ms interval timer (the event-loop stall).
 */
async function sqliteCheckpointStalls(): Promise<void> {
  const setups: Array<[string, Partial<ConstructorParameters<typeof SqliteStorage>[0]>]> = [
    ['checkpoint thread, every 1 s (default)', {}],
    [
      'own connection, every 30 s, wal_autocheckpoint 1,000 (SQLite default)',
      { checkpointThread: false, walAutocheckpointPages: 1000 },
    ],
    ['own connection, every 30 s, wal_autocheckpoint 8,192', { checkpointThread: false }],
  ];
  const writes = setups.map((): number[] => []);
  const stalls = setups.map((): number[] => []);
  const rows = Array.from({ length: 1000 }, (_, i) => ({ i, pad: 'x'.repeat(1000) }));
  for (let round = 0; round < 3; round++) {
    for (const [at, [, options]] of setups.entries()) {
      const storage = new SqliteStorage({ filename: join(dir, `checkpoint-${round}-${at}.db`), ...options });
      let last = performance.now();
      let longest = 0;
      const timer = setInterval(() => {
        const now = performance.now();
        longest = Math.max(longest, now - last);
        last = now;
      }, 1);
      for (let i = 0; i < 60; i++) {
        const start = performance.now();
        await storage.putMany('steady', rows);
        writes[at]?.push(performance.now() - start);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      clearInterval(timer);
      stalls[at]?.push(longest);
      await storage.close();
    }
  }
  console.log('\n## SQLite steady writer: 1 MB putMany every 100 ms for 6 s, 3 interleaved rounds (ms)');
  console.log('| checkpoint | write p50 | write p95 | write max | longest event-loop stall per round |');
  console.log('| --- | ---: | ---: | ---: | --- |');
  for (const [at, [name]] of setups.entries()) {
    const p = percentiles(writes[at] ?? []);
    const max = Math.max(...(writes[at] ?? []));
    const perRound = (stalls[at] ?? []).map((ms) => ms.toFixed(1)).join(', ');
    console.log(`| ${name} | ${p.p50.toFixed(1)} | ${p.p95.toFixed(1)} | ${max.toFixed(1)} | ${perRound} |`);
  }
}

try {
  if (CHECKPOINT) {
    await sqliteCheckpointStalls();
  } else {
    await sqlitePutMany();
    if (!AB) await sqliteGet();
    await postgres();
    if (!AB) await sqliteCheckpointStalls();
  }
} finally {
  await ours.close();
  await kysely.destroy(); // closes `raw`
  rawSecond.close();
  rmSync(dir, { recursive: true, force: true });
}
