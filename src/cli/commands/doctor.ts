/**
 * `hotpath doctor`: checks what hotpath needs here — Node, the optional drivers, every configured
 * URL (with latency), SQLite pragmas, the PostgreSQL pool against `max_connections`, the clock
 * against PostgreSQL, Redis — one ✓/✗ line each, with the fix for every ✗; exit 1 when any fails.
 * @module
 */
import { createRequire } from 'node:module';
import net from 'node:net';
import { availableParallelism } from 'node:os';
import type { SqlAccess, StorageAdapter } from '../../storage/index.js';
import { ExitCode, openStorage, shownUrl } from '../common.js';
import type { Output } from '../output.js';

/** Options of `hotpath doctor`, as parsed. */
export interface DoctorCommandOptions {
  databaseUrl?: string;
  redisUrl?: string;
  /** Connections per process in the PostgreSQL pool (default 10, the storage's default). */
  poolSize: number;
  /** Processes that will each open a pool (default: the cores here). */
  processes: number;
  /** Largest tolerated clock difference against PostgreSQL, ms. */
  maxSkewMs: number;
  /** Per-check connect timeout, ms. */
  timeoutMs: number;
}

/** One check's outcome. */
export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
  /** Informational: not counted as a failure (e.g. a driver nobody needs). */
  isInfo?: boolean;
}

const DRIVERS = [
  { name: 'better-sqlite3', scheme: 'sqlite' },
  { name: 'pg', scheme: 'postgres' },
  { name: 'ioredis', scheme: 'redis' },
] as const;

/** Runs every check; resolves with the exit code. */
export async function runDoctor(options: DoctorCommandOptions, output: Output): Promise<number> {
  const checks: Check[] = [];
  const databaseUrl = options.databaseUrl ?? process.env.HOTPATH_DATABASE_URL;
  const redisUrl = options.redisUrl ?? process.env.HOTPATH_REDIS_URL;

  const major = Number(process.versions.node.split('.')[0]);
  checks.push({
    name: 'node',
    ok: major >= 20,
    detail: `v${process.versions.node}`,
    fix: 'install Node.js 20 or later',
  });

  const needed = new Set<string>();
  if (databaseUrl?.startsWith('sqlite:')) needed.add('sqlite');
  if (databaseUrl?.startsWith('postgres')) needed.add('postgres');
  for (const driver of DRIVERS) {
    const version = installedVersion(driver.name);
    const isNeeded = needed.has(driver.scheme);
    checks.push({
      name: `driver ${driver.name}`,
      ok: version !== undefined || !isNeeded,
      isInfo: !isNeeded,
      detail:
        version !== undefined
          ? `installed (${version})`
          : isNeeded
            ? 'missing, and HOTPATH_DATABASE_URL needs it'
            : 'not installed (not needed by the configured URLs)',
      fix: `npm install ${driver.name}`,
    });
  }

  if (databaseUrl === undefined) {
    checks.push({
      name: 'database',
      ok: true,
      isInfo: true,
      detail: 'not configured (HOTPATH_DATABASE_URL or --database-url); jobs and documents stay in memory',
    });
  } else {
    checks.push(...(await checkDatabase(databaseUrl, options)));
  }

  if (redisUrl === undefined) {
    checks.push({ name: 'redis', ok: true, isInfo: true, detail: 'not configured (HOTPATH_REDIS_URL or --redis-url)' });
  } else {
    checks.push(await checkRedis(redisUrl, options.timeoutMs));
  }

  const isOk = checks.every((check) => check.ok);
  if (output.isJson) {
    output.json({ ok: isOk, checks: checks.map(({ fix, ...check }) => (check.ok ? check : { ...check, fix })) });
  } else {
    for (const check of checks) {
      if (check.isInfo && check.ok) output.line(`- ${check.name.padEnd(26)} ${check.detail}`);
      else output.check(check.ok, check.name, check.detail, check.fix);
    }
    output.line(isOk ? 'all checks passed' : `${checks.filter((c) => !c.ok).length} check(s) failed`);
  }
  return isOk ? ExitCode.ok : ExitCode.failure;
}

/** The version of an installed package, resolved from the working directory (the app) or hotpath itself. */
function installedVersion(name: string): string | undefined {
  for (const base of [`${process.cwd()}/`, import.meta.url]) {
    try {
      const require = createRequire(base);
      return (require(`${name}/package.json`) as { version: string }).version;
    } catch {
      // not resolvable from here
    }
  }
  return undefined;
}

async function checkDatabase(url: string, options: DoctorCommandOptions): Promise<Check[]> {
  const shown = shownUrl(url);
  let storage: StorageAdapter;
  try {
    storage = openStorage(url);
  } catch (error) {
    return [
      {
        name: 'database',
        ok: false,
        detail: `${shown}: ${messageOf(error)}`,
        fix: 'fix the URL or install its driver',
      },
    ];
  }
  const checks: Check[] = [];
  try {
    const health = await withTimeout(storage.health(), options.timeoutMs);
    if (health === undefined || !health.ok) {
      const why = health === undefined ? `no answer within ${options.timeoutMs} ms` : (health.error ?? 'unreachable');
      checks.push({
        name: 'database reachable',
        ok: false,
        detail: `${shown}: ${why}`,
        fix:
          storage.kind === 'postgres'
            ? 'start PostgreSQL or fix host/port/credentials in HOTPATH_DATABASE_URL'
            : 'check the SQLite path exists and is writable',
      });
      return checks;
    }
    checks.push({ name: 'database reachable', ok: true, detail: `${shown} (${health.latencyMs.toFixed(1)} ms)` });
    const sql = storage.sql;
    if (storage.kind === 'sqlite' && sql !== undefined) checks.push(...(await sqlitePragmas(sql)));
    if (storage.kind === 'postgres' && sql !== undefined) checks.push(...(await postgresChecks(sql, options)));
  } catch (error) {
    checks.push({
      name: 'database reachable',
      ok: false,
      detail: `${shown}: ${messageOf(error)}`,
      fix: 'check the URL',
    });
  } finally {
    await storage.close().catch(() => {});
  }
  return checks;
}

async function sqlitePragmas(sql: SqlAccess): Promise<Check[]> {
  const pragma = async (name: string): Promise<unknown> => {
    const rows = await sql.query<Record<string, unknown>>(`PRAGMA ${name}`);
    return rows[0] === undefined ? undefined : Object.values(rows[0])[0];
  };
  const journal = String(await pragma('journal_mode')).toLowerCase();
  const synchronous = Number(await pragma('synchronous'));
  const busy = Number(await pragma('busy_timeout'));
  const syncNames = ['OFF', 'NORMAL', 'FULL', 'EXTRA'];
  return [
    {
      name: 'sqlite journal_mode',
      ok: journal === 'wal',
      detail: journal,
      fix: 'use a file database (WAL is set by hotpath on open); :memory: cannot share between processes',
    },
    {
      name: 'sqlite synchronous',
      ok: synchronous >= 1,
      detail: syncNames[synchronous] ?? String(synchronous),
      fix: 'use NORMAL (default) or FULL; OFF can lose committed jobs on a crash',
    },
    {
      name: 'sqlite busy_timeout',
      ok: busy > 0,
      detail: `${busy} ms`,
      fix: 'set busyTimeoutMs > 0 so processes sharing the file wait for the write lock instead of failing',
    },
  ];
}

async function postgresChecks(sql: SqlAccess, options: DoctorCommandOptions): Promise<Check[]> {
  const checks: Check[] = [];
  const [settings] = await sql.query<{ max: string; reserved: string; used: string }>(
    `SELECT current_setting('max_connections') AS max,
            current_setting('superuser_reserved_connections') AS reserved,
            (SELECT count(*) FROM pg_stat_activity)::text AS used`,
  );
  const max = Number(settings?.max);
  const available = max - Number(settings?.reserved ?? 0);
  const wanted = options.poolSize * options.processes;
  checks.push({
    name: 'postgres connections',
    ok: wanted <= available,
    detail: `pool ${options.poolSize} × ${options.processes} processes = ${wanted} of max_connections ${max} (${settings?.used} in use now)`,
    fix: `lower the pool size (PostgresStorage max) or the process count, raise max_connections, or put PgBouncer in front`,
  });
  const before = Date.now();
  const [row] = await sql.query<{ now: string }>(`SELECT (extract(epoch from clock_timestamp()) * 1000)::text AS now`);
  const after = Date.now();
  const skewMs = Number(row?.now) - (before + after) / 2;
  checks.push({
    name: 'clock skew vs postgres',
    ok: Math.abs(skewMs) <= options.maxSkewMs,
    detail: `${skewMs >= 0 ? '+' : ''}${skewMs.toFixed(0)} ms (round trip ${after - before} ms, limit ±${options.maxSkewMs} ms)`,
    fix: 'sync this host’s clock (chrony/ntpd): job leases and run times compare clocks across machines',
  });
  return checks;
}

/** Redis PING over a plain socket (AUTH first when the URL has credentials), so ioredis is not needed here. */
async function checkRedis(url: string, timeoutMs: number): Promise<Check> {
  const shown = shownUrl(url);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { name: 'redis reachable', ok: false, detail: `${shown}: not a URL`, fix: 'use redis://host:6379' };
  }
  const host = parsed.hostname || '127.0.0.1';
  const port = Number(parsed.port || 6379);
  const start = performance.now();
  const answer = await new Promise<string>((resolve) => {
    const socket = net.connect({ host, port });
    let buffer = '';
    const done = (text: string) => {
      socket.destroy();
      resolve(text);
    };
    socket.setTimeout(timeoutMs, () => done(`no answer within ${timeoutMs} ms`));
    socket.once('error', (error) => done(error.message));
    socket.once('connect', () => {
      const auth = parsed.password
        ? parsed.username
          ? resp(['AUTH', decodeURIComponent(parsed.username), decodeURIComponent(parsed.password)])
          : resp(['AUTH', decodeURIComponent(parsed.password)])
        : '';
      socket.write(`${auth}${resp(['PING'])}`);
    });
    socket.on('data', (chunk) => {
      buffer += chunk.toString('utf8');
      if (buffer.includes('+PONG')) done('+PONG');
      else if (buffer.startsWith('-') && buffer.includes('\r\n')) done(buffer.trim());
    });
  });
  const latencyMs = performance.now() - start;
  return answer === '+PONG'
    ? { name: 'redis reachable', ok: true, detail: `${shown} (${latencyMs.toFixed(1)} ms)` }
    : {
        name: 'redis reachable',
        ok: false,
        detail: `${shown}: ${answer}`,
        fix: 'start Redis or fix HOTPATH_REDIS_URL (host, port, password)',
      };
}

function resp(parts: string[]): string {
  return `*${parts.length}\r\n${parts.map((part) => `$${Buffer.byteLength(part)}\r\n${part}\r\n`).join('')}`;
}

async function withTimeout<T>(promise: Promise<T>, timeoutMs: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Default process count for the connection check: the cores of this machine. */
export function defaultProcesses(): number {
  return availableParallelism();
}
