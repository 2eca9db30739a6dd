/**
 * Gate for tests that need PostgreSQL or Redis. Reads HOTPATH_PG_URL / HOTPATH_REDIS_URL (localhost
 * defaults). Probing is lazy and per service: a file that needs PostgreSQL calls
 * `const hasPostgres = await needsPostgres();` (Redis: `needsRedis()`), so importing this module probes nothing
 * and a PostgreSQL-only file never depends on Redis. When the server is unreachable the call prints one line
 * saying which tests are skipped and returns false (use with `describe.runIf`/`it.runIf`); the file's other tests
 * (memory, SQLite) still run. Under HOTPATH_REQUIRE_SERVICES=1 (set by .ci/run) it throws instead, so the file fails.
 *
 * Each test file gets its own PostgreSQL schema (`freshPgSchema`) or Redis key prefix, so files run in parallel.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';

export const PG_URL = process.env.HOTPATH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
/** The suite's Redis: `HOTPATH_REDIS_URL` as given to `vitest` (vitest.config.ts moves it to HOTPATH_SUITE_REDIS_URL). */
export const REDIS_URL =
  process.env.HOTPATH_SUITE_REDIS_URL ?? process.env.HOTPATH_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const SERVICES_REQUIRED = process.env.HOTPATH_REQUIRE_SERVICES === '1';

function probe(url: string, defaultPort: number): Promise<boolean> {
  const parsed = new URL(url);
  const host = parsed.hostname || '127.0.0.1';
  const port = Number(parsed.port || defaultPort);
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1500, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

async function gate(name: string, url: string, port: number, variable: string): Promise<boolean> {
  const reachable = await probe(url, port);
  if (reachable) return true;
  const line = `${name} is not reachable at ${url} (set ${variable})`;
  if (SERVICES_REQUIRED) throw new Error(`${line}; HOTPATH_REQUIRE_SERVICES=1 makes this a failure`);
  console.warn(`[skip] ${line}: skipping this file's ${name} tests`);
  return false;
}

const probes = new Map<string, Promise<boolean>>();
function once(name: string, url: string, port: number, variable: string): Promise<boolean> {
  let probed = probes.get(name);
  if (!probed) {
    probed = gate(name, url, port, variable);
    probes.set(name, probed);
  }
  return probed;
}

/**
 * Probes PostgreSQL (once per file): true when it answers; false plus a "[skip]" line when it does not; throws
 * under HOTPATH_REQUIRE_SERVICES=1 when it does not. `const hasPostgres = await needsPostgres();`
 */
export function needsPostgres(): Promise<boolean> {
  return once('PostgreSQL', PG_URL, 5432, 'HOTPATH_PG_URL');
}

/** Probes Redis (once per file); same contract as {@link needsPostgres}. `const hasRedis = await needsRedis();` */
export function needsRedis(): Promise<boolean> {
  return once('Redis', REDIS_URL, 6379, 'HOTPATH_REDIS_URL');
}

/** A unique, valid identifier for a schema/prefix owned by one test file. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`.toLowerCase();
}

/**
 * Creates a fresh PostgreSQL schema and returns a connection string whose connections use it
 * (via the `options=-c search_path=…` parameter), plus a `drop()` to remove it.
 */
export async function freshPgSchema(prefix = 't'): Promise<{ url: string; schema: string; drop: () => Promise<void> }> {
  const pg = await import('pg');
  const schema = uniqueName(prefix);
  const admin = new pg.default.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA "${schema}"`);
  await admin.end();
  const url = new URL(PG_URL);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return {
    url: url.toString(),
    schema,
    async drop() {
      const client = new pg.default.Client({ connectionString: PG_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await client.end();
    },
  };
}

/** Runs `fn` with the URL of a schema of its own, dropped afterwards (one test's isolated queue or store). */
export async function withFreshPgSchema(prefix: string, fn: (url: string) => Promise<void>): Promise<void> {
  const own = await freshPgSchema(prefix);
  try {
    await fn(own.url);
  } finally {
    await own.drop();
  }
}
