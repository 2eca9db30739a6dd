/**
 * Opening the PostgreSQL pool: options, pool settings (size, idle timeout, recycling, statement timeout,
 * application name), the idle-connection error handler, and the state the adapter shares with the views
 * bound to its transactions.
 * @module
 */
import type { Kysely } from 'kysely';
import { type Clock, systemClock } from '../../core/clock.js';
import { ConfigError } from '../../core/errors.js';
import { type Logger, silentLogger } from '../../core/logger.js';
import { validateOptions } from '../../core/options.js';
import type { LatencyRecorder } from '../../core/recorder.js';
import { COMMON_SCHEMA, DEFAULT_TABLE_PREFIX, type StorageCommonOptions } from '../common-options.js';
import { loadDriver } from '../driver-loader.js';
import type { UntypedDatabase } from '../types.js';
import type { PgConnectionConfig, PgModule, PgPool, PgPoolConfig } from './postgres-driver-types.js';
import type { PgListener } from './postgres-listener.js';

/** Options of {@link PostgresStorage}. Give `connectionString` or an existing `pool`. */
export interface PostgresStorageOptions extends StorageCommonOptions {
  /** `postgres://user:pass@host:port/db?options=…` */
  connectionString?: string;
  /** An existing pg Pool to use (its settings apply; `close()` does not end it). */
  pool?: PgPool;
  /** Schema of the collection tables (default: the connection's `search_path`). */
  schema?: string;
  /** Most connections (default 10; the seeds run 20–30 concurrent operations well on 10). */
  max?: number;
  /** Idle connections are closed after this long, ms (default 10,000). */
  idleTimeoutMs?: number;
  /** Waiting for a connection fails after this long, ms (default 10,000; 0 = wait forever). */
  connectionTimeoutMs?: number;
  /** Connections are recycled after this age, ms (default 1,800,000 = 30 min; 0 = never). Rounded up to seconds. */
  maxLifetimeMs?: number;
  /**
   * Server-side `statement_timeout`, ms (default 0 = none). When set, a query that gets no reply at all (a
   * stalled network) is also given up on the client side 1 s later, and its connection discarded.
   */
  statementTimeoutMs?: number;
  /** Documents per `putMany` statement (default 1,000). */
  batchSize?: number;
  /** `application_name` of the connections, shown in `pg_stat_activity` (default `hotpath`). */
  applicationName?: string;
}

const SCHEMA = {
  ...COMMON_SCHEMA,
  connectionString: { type: 'string', nonEmpty: true },
  pool: { type: 'object' },
  schema: { type: 'string', pattern: /^[A-Za-z_][A-Za-z0-9_]{0,62}$/ },
  max: { type: 'number', min: 1, max: 10_000, integer: true },
  idleTimeoutMs: { type: 'number', min: 0, max: 86_400_000, integer: true },
  connectionTimeoutMs: { type: 'number', min: 0, max: 3_600_000, integer: true },
  maxLifetimeMs: { type: 'number', min: 0, max: 604_800_000, integer: true },
  statementTimeoutMs: { type: 'number', min: 0, max: 86_400_000, integer: true },
  batchSize: { type: 'number', min: 1, max: 100_000, integer: true },
  applicationName: { type: 'string', maxLength: 63 },
} as const;

/** How long after `statementTimeoutMs` a query with no reply at all is given up on the client side, ms. */
const STALLED_REPLY_GRACE_MS = 1_000;

/** State shared by the adapter and the views bound to its transactions. */
export interface PgShared {
  pool: PgPool;
  ownsPool: boolean;
  pg: PgModule;
  connection: PgConnectionConfig;
  schema: string | undefined;
  clock: Clock;
  profiler: LatencyRecorder | undefined;
  logger: Logger;
  prefix: string;
  batchSize: number;
  tables: Map<string, PgTableStatements>;
  closed: boolean;
  listener: PgListener | undefined;
  kysely: Kysely<UntypedDatabase> | undefined;
  counters: {
    connectionErrors: number;
    discarded: number;
    transactions: number;
    rollbacks: number;
    /** Reads run again after their pooled connection had died. */
    readRetries: number;
    /** Statements cancelled on the server because their call was aborted. */
    cancelled: number;
  };
  savepointSeq: number;
}

/** Statement texts and prepared-statement names of one collection's table. */
export interface PgTableStatements {
  table: string;
  names: { get: string; upsert: string; upsertMany: string; remove: string; update: string };
  shapes: {
    get: string;
    getMeta: string;
    upsert: string;
    upsertMany: string;
    remove: string;
    update: string;
    updateIf: string;
  };
}

/** Validates the options and opens (or adopts) the pool.
 * @throws ConfigError on invalid options or a missing driver. */
export function openShared(options: PostgresStorageOptions): PgShared {
  validateOptions('PostgresStorage', options, SCHEMA);
  if ((options.pool === undefined) === (options.connectionString === undefined)) {
    throw new ConfigError(
      'PostgresStorage.connectionString',
      'PostgresStorage needs exactly one of connectionString or pool',
    );
  }
  const pg = loadDriver<PgModule>('pg', 'PostgresStorage');
  const logger = options.logger ?? silentLogger;
  const connection: PgConnectionConfig = {
    connectionString: options.connectionString,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 10_000,
    application_name: options.applicationName ?? 'hotpath',
  };
  if (options.statementTimeoutMs) {
    connection.statement_timeout = options.statementTimeoutMs;
    // The server's statement_timeout reply never arrives over a stalled network (a partition, a blackholed
    // socket), so the call would wait forever. A client-side deadline a little later ends it there; the
    // driver's timeout error counts as a dead connection, so the pool discards that client instead of reusing it.
    connection.query_timeout = options.statementTimeoutMs + STALLED_REPLY_GRACE_MS;
  }
  const counters = { connectionErrors: 0, discarded: 0, transactions: 0, rollbacks: 0, readRetries: 0, cancelled: 0 };
  let pool: PgPool;
  if (options.pool) {
    pool = options.pool;
  } else {
    const config: PgPoolConfig = {
      ...connection,
      max: options.max ?? 10,
      idleTimeoutMillis: options.idleTimeoutMs ?? 10_000,
      maxLifetimeSeconds: Math.ceil((options.maxLifetimeMs ?? 1_800_000) / 1000),
    };
    pool = new pg.Pool(config);
  }
  // Idle connections that die (server restart, pg_terminate_backend) emit 'error'; pg-pool drops them
  // and opens fresh ones on demand. Without a listener the error would crash the process.
  pool.on('error', (error) => {
    counters.connectionErrors++;
    counters.discarded++;
    logger.warn({ err: error }, 'storage: idle PostgreSQL connection failed and was discarded');
  });
  return {
    pool,
    ownsPool: options.pool === undefined,
    pg,
    connection: options.connectionString ? connection : {},
    schema: options.schema,
    clock: options.clock ?? systemClock,
    profiler: options.profiler,
    logger,
    prefix: options.tablePrefix ?? DEFAULT_TABLE_PREFIX,
    batchSize: options.batchSize ?? 1000,
    tables: new Map(),
    closed: false,
    listener: undefined,
    kysely: undefined,
    counters,
    savepointSeq: 0,
  };
}
