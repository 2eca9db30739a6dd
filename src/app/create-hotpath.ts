/**
 * `createHotpath(config)`: builds a Profiler, named caches, rate limiters, a StorageManager and a
 * QueueManager from one object, with environment profiles and `HOTPATH_*` overrides, and returns them
 * with one `close()` that shuts everything down in the right order.
 * @module
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { type Cache, type CacheOptions, CacheRegistry } from '../cache/index.js';
import { systemClock } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import { createConsoleLogger, type Logger, type LogLevel, silentLogger } from '../core/logger.js';
import { validateOptions } from '../core/options.js';
import { Profiler, type ProfilerOptions } from '../profiling/index.js';
import { QueueManager, type QueueManagerOptions } from '../queue/index.js';
import type { RateLimiter, RateLimiterOptions } from '../ratelimit/index.js';
import {
  type CreateStorageOptions,
  createStorage,
  type MemoryStorageOptions,
  type PostgresStorageOptions,
  type SqliteStorageOptions,
  type StorageAdapter,
  StorageManager,
} from '../storage/index.js';
import { defaultDatabaseUrl, type Profile, readEnvironment, unknownEnvironmentVariables } from './config.js';
import { appMetricFamilies } from './metric-families.js';
import { ObservedRateLimiter, RecentActivity } from './recent-activity.js';
import { AppRedis, type RedisHealth } from './redis-wiring.js';
import { RequestCounters } from './request-profiling.js';

/** Options of one named cache in {@link HotpathConfig.caches}. */
export type NamedCacheOptions = Omit<CacheOptions<unknown>, 'name' | 'profiler'> & {
  /** With `redisUrl`: `false` keeps this cache in-process only (no Redis tier, no bus). Default `true`. */
  shared?: boolean;
};

/**
 * Storage options per backend: the backend the database URL selects takes its own entry, so one configuration
 * serves development (SQLite) and production (PostgreSQL).
 */
export interface StorageOptionsByBackend {
  /** Options of `MemoryStorage` (`memory://`). */
  memory?: MemoryStorageOptions;
  /** Options of `SqliteStorage` (`sqlite://…`), except the file name, which comes from the URL. */
  sqlite?: Omit<SqliteStorageOptions, 'filename'>;
  /** Options of `PostgresStorage` (`postgres://…`: `schema`, pool sizes, timeouts), except the connection. */
  postgres?: Omit<PostgresStorageOptions, 'connectionString' | 'pool'>;
}

/** Everything {@link createHotpath} builds, described in one object. */
export interface HotpathConfig {
  /** `development` (SQLite file), `test` (memory) or `production` (PostgreSQL required); default from `NODE_ENV`. */
  profile?: Profile;
  /** Environment to read `HOTPATH_*` overrides from (default `process.env`). */
  env?: Record<string, string | undefined>;
  /** `memory://`, `sqlite://path` or `postgres://…`; `HOTPATH_DATABASE_URL` overrides it. */
  databaseUrl?: string;
  /** A storage adapter built by the app; used instead of `databaseUrl` and closed by `close()`. */
  storage?: StorageAdapter;
  /**
   * Storage options per backend, `{ memory?, sqlite?, postgres? }`: the backend the URL selects takes its own,
   * the others are ignored. The older flat form (the active backend's options alone) still works.
   */
  storageOptions?: StorageOptionsByBackend | CreateStorageOptions;
  /**
   * `true`: an unknown `HOTPATH_*` variable (a misspelling such as `HOTPATH_CACHETTL`) is a `ConfigError` naming
   * the closest known one. Default `false`: each is reported once per process with `process.emitWarning`.
   */
  strictEnv?: boolean;
  /** Your own `HOTPATH_*` variables, so they are not reported as unknown. */
  declaredEnv?: readonly string[];
  /**
   * Profile of each `NODE_ENV` value that is not a profile name, e.g. `{ staging: 'production', qa: 'test' }`.
   * A `NODE_ENV` neither a profile nor listed selects `production`.
   */
  nodeEnvProfiles?: Readonly<Record<string, Profile>>;
  /**
   * Cache documents read through the StorageManager (`{ max, ttlMs }`); writes invalidate them.
   * Omit for no document cache.
   */
  documentCache?: {
    /** Documents held at most. */
    max: number;
    /** How long a cached document is served, in ms. */
    ttlMs: number;
  };
  /**
   * Redis URL (`HOTPATH_REDIS_URL` overrides it). With it, named limiters share their limits across
   * processes (a `RedisRateLimitStore`, keyed by limiter name, unless a limiter has its own `store`), and
   * named caches get a Redis tier and the invalidation bus (`shared: false` opts a cache out). One command
   * and one subscriber connection, closed by `close()`. Without it nothing touches Redis.
   */
  redisUrl?: string;
  /** A pino-compatible logger; default: JSON lines to stderr at `logLevel`. */
  logger?: Logger;
  /** Log level of the default logger (default `info`, `silent` in the test profile); `HOTPATH_LOG_LEVEL` overrides it. */
  logLevel?: LogLevel;
  /** Options of the Profiler every primitive reports into. */
  profiler?: ProfilerOptions;
  /** Named caches, e.g. `{ quotes: { max: 500, ttlMs: 60_000 } }`. */
  caches?: Record<string, NamedCacheOptions>;
  /** The rollback switch: false makes every cache a pass-through; `HOTPATH_CACHE_ENABLED` overrides it. */
  cacheEnabled?: boolean;
  /** Named rate limiters, e.g. `{ upstream: { limit: 50, intervalMs: 1000 } }`. */
  rateLimiters?: Record<string, RateLimiterOptions>;
  /** Job queue options (`concurrency` overridden by `HOTPATH_QUEUE_CONCURRENCY`); `false` for no queue. */
  queue?: Omit<QueueManagerOptions, 'storage' | 'profiler' | 'logger'> | false;
  /**
   * How long `close()` lets running jobs finish before aborting them and handing their leases back, in ms
   * (default 10,000). Keep it under the platform's kill grace (Kubernetes: 30 s) minus the HTTP drain.
   */
  shutdownTimeoutMs?: number;
}

/** The resolved settings, for logging and `/health`. Secrets in URLs are masked. */
export interface ResolvedHotpathConfig {
  /** The active profile. */
  profile: Profile;
  /** Database URL with credentials masked. */
  databaseUrl: string;
  /** Storage backend kind. */
  storage: StorageAdapter['kind'];
  /** Redis URL with credentials masked, when configured. */
  redisUrl: string | undefined;
  /** Whether caches are enabled. */
  cacheEnabled: boolean;
  /** Queue concurrency, or 0 when there is no queue. */
  queueConcurrency: number;
  /** Level of the default logger. */
  logLevel: LogLevel;
}

/** Health of everything createHotpath built; `ok` is false when any part is unhealthy. */
export interface HotpathHealth {
  /** True when storage and queue are healthy. */
  ok: boolean;
  /** Storage probe. */
  storage: {
    /** The probe succeeded. */
    ok: boolean;
    /** Round trip of the probe, in ms. */
    latencyMs: number;
    /** Backend kind. */
    kind: StorageAdapter['kind'];
    /** Why the probe failed, when it did. */
    error?: string;
  };
  /** Queue health (undefined when there is no queue). */
  queue: Awaited<ReturnType<QueueManager['health']>> | undefined;
  /**
   * Redis reachability (only with `redisUrl`). Not part of `ok`: caches fall back to L1 and the loader,
   * so a Redis outage should not take every instance out of a load balancer.
   */
  redis?: RedisHealth;
  /** Per-cache size and hit rate. */
  caches: Record<
    string,
    {
      /** Entries held. */
      size: number;
      /** Hits (fresh and stale) over lookups, 0–1. */
      hitRate: number;
      /** False when the rollback switch made it a pass-through. */
      enabled: boolean;
    }
  >;
  /** Process uptime in seconds. */
  uptimeSeconds: number;
}

/**
 * Names of the caches a configuration declares (`keyof caches`, plus `documents` with a `documentCache`), so
 * `app.cache('qoutes')` is a compile error; `string` when the configuration's type does not list them.
 */
export type CacheNames<C extends HotpathConfig> = string extends keyof NonNullable<C['caches']>
  ? string
  :
      | (keyof NonNullable<C['caches']> & string)
      | (C extends Required<Pick<HotpathConfig, 'documentCache'>> ? 'documents' : never);

/** Names of the rate limiters a configuration declares; `string` when its type does not list them. */
export type RateLimiterNames<C extends HotpathConfig> = string extends keyof NonNullable<C['rateLimiters']>
  ? string
  : keyof NonNullable<C['rateLimiters']> & string;

/**
 * The wired-up primitives and their single shutdown. `Caches` and `Limiters` are the configured names
 * (inferred by {@link createHotpath} from the configuration object; `string` by default).
 */
export interface Hotpath<Caches extends string = string, Limiters extends string = string> extends AsyncDisposable {
  /** Resolved settings (secrets masked). */
  readonly config: ResolvedHotpathConfig;
  /** The logger everything logs to. */
  readonly logger: Logger;
  /** The profiler every primitive records into. */
  readonly profiler: Profiler;
  /** The named caches. */
  readonly caches: CacheRegistry;
  /** The named rate limiters. */
  readonly rateLimiters: ReadonlyMap<string, RateLimiter>;
  /** Typed collections over the configured database. */
  readonly storage: StorageManager;
  /** The job queue facade, or undefined with `queue: false`. */
  readonly queue: QueueManager | undefined;
  /** The last slow operations, N+1 reports, failed jobs and upstream rate-limit reports (bounded rings). */
  readonly recent: RecentActivity;
  /** `max` of each named cache as configured (for "size against max"). */
  readonly cacheLimits: ReadonlyMap<string, number>;
  /** Responses per method, route template and status class, counted by the request middleware. */
  readonly requests: RequestCounters;
  /**
   * The named cache; `V` is the value type you store in it (default `unknown`: give it, as in
   * `app.cache<Quote>('quotes')`, to read values back typed).
   * @throws ConfigError when no cache of that name was configured.
   */
  cache<V = unknown>(name: Caches): Cache<V>;
  /**
   * The named rate limiter.
   * @throws ConfigError when no limiter of that name was configured.
   */
  rateLimiter(name: Limiters): RateLimiter;
  /** Probes storage and queue and reports caches. Never throws. */
  health(): Promise<HotpathHealth>;
  /** Prometheus text: profiler latencies plus cache, limiter, queue and pool gauges. */
  metrics(): Promise<string>;
  /**
   * Stops the queue gracefully (running jobs get `shutdownTimeoutMs` to finish, then are aborted and handed
   * back), then closes storage, then stops rate limiters, caches and the profiler. Idempotent.
   */
  close(): Promise<void>;
}

const CONFIG_SCHEMA = {
  profile: { type: 'string', oneOf: ['development', 'test', 'production'] },
  env: { type: 'object' },
  databaseUrl: { type: 'string', nonEmpty: true },
  storage: { type: 'object' },
  storageOptions: { type: 'object' },
  strictEnv: { type: 'boolean' },
  declaredEnv: { type: 'object' },
  nodeEnvProfiles: { type: 'object' },
  documentCache: { type: 'object' },
  redisUrl: { type: 'string', nonEmpty: true },
  logger: { type: 'object' },
  logLevel: { type: 'string', oneOf: ['debug', 'info', 'warn', 'error', 'silent'] },
  profiler: { type: 'object' },
  caches: { type: 'object' },
  cacheEnabled: { type: 'boolean' },
  rateLimiters: { type: 'object' },
  queue: { type: 'any' },
  shutdownTimeoutMs: { type: 'number', min: 0, max: 3_600_000 },
} as const;

/** Variables reported by `process.emitWarning` in this process: each unknown name once, however many apps start. */
const reportedVariables = new Set<string>();

function checkUnknownVariables(variables: Record<string, string | undefined>, config: HotpathConfig): void {
  const declared = config.declaredEnv ?? [];
  if (!Array.isArray(declared) || declared.some((name) => typeof name !== 'string')) {
    throw new ConfigError('declaredEnv', 'createHotpath: declaredEnv must be an array of variable names');
  }
  for (const { variable, closest } of unknownEnvironmentVariables(variables, declared)) {
    const message = `${variable} is not a hotpath variable and is ignored; did you mean ${closest}?`;
    if (config.strictEnv === true) throw new ConfigError(variable, `${message} (strictEnv: true)`);
    if (reportedVariables.has(variable)) continue;
    reportedVariables.add(variable);
    process.emitWarning(`${message} (declare your own in declaredEnv; strictEnv: true makes this an error)`, {
      type: 'HotpathWarning',
      code: 'HOTPATH_UNKNOWN_VARIABLE',
    });
  }
}

const BACKEND_KEYS = ['memory', 'sqlite', 'postgres'] as const;

/** The options of the backend `url` selects: its entry of the per-backend form, or the flat form as it is. */
function storageOptionsFor(
  url: string,
  options: StorageOptionsByBackend | CreateStorageOptions | undefined,
): CreateStorageOptions {
  if (options === undefined) return {};
  const keys = Object.keys(options);
  const backendKeys = keys.filter((key) => (BACKEND_KEYS as readonly string[]).includes(key));
  if (backendKeys.length === 0) return options as CreateStorageOptions;
  const others = keys.filter((key) => !backendKeys.includes(key));
  if (others.length > 0) {
    throw new ConfigError(
      'storageOptions',
      `storageOptions mixes per-backend entries (${backendKeys.join(', ')}) with flat options (${others.join(', ')}): ` +
        'put each option under memory, sqlite or postgres',
    );
  }
  const kind = url.startsWith('sqlite://') ? 'sqlite' : url.startsWith('memory:') ? 'memory' : 'postgres';
  const chosen = (options as StorageOptionsByBackend)[kind];
  if (chosen !== undefined && (typeof chosen !== 'object' || chosen === null)) {
    throw new ConfigError(`storageOptions.${kind}`, `storageOptions.${kind} must be an object`);
  }
  return { ...chosen } as CreateStorageOptions;
}

function maskUrl(url: string): string {
  return url.replace(
    /\/\/([^/@]*)@/,
    (_match, userInfo: string) => `//${userInfo.includes(':') ? `${userInfo.split(':')[0]}:***` : userInfo}@`,
  );
}

/**
 * Builds the hotpath primitives for a host app from one configuration object.
 *
 * @example
 * ```ts
 * const app = await createHotpath({
 *   caches: { quotes: { max: 500, ttlMs: 60_000 } },
 *   rateLimiters: { upstream: { limit: 50, intervalMs: 1_000 } },
 *   queue: { concurrency: 4 },
 * });
 * app.queue?.register('forecast', async (data) => runForecast(data));
 * await app.queue?.start();
 * // … serve; on shutdown:
 * await app.close();
 * ```
 * @throws ConfigError for invalid options or `HOTPATH_*` variables (naming the variable, value and what is allowed),
 * and in the production profile when no PostgreSQL URL is given.
 */
export async function createHotpath<C extends HotpathConfig = HotpathConfig>(
  config: C = {} as C,
): Promise<Hotpath<CacheNames<C>, RateLimiterNames<C>>> {
  validateOptions('createHotpath', config, CONFIG_SCHEMA);
  const variables = config.env ?? process.env;
  checkUnknownVariables(variables, config);
  const env = readEnvironment(variables, config.profile, { nodeEnvProfiles: config.nodeEnvProfiles });
  const profile = env.profile;
  // When an unmapped NODE_ENV picked production, say so where production's demands fail.
  const nodeEnv = variables.NODE_ENV;
  const profileReason =
    config.profile === undefined && !variables.HOTPATH_PROFILE && nodeEnv && nodeEnv !== profile
      ? ` (NODE_ENV=${JSON.stringify(nodeEnv)} selects the ${profile} profile; map it with nodeEnvProfiles: { ${JSON.stringify(nodeEnv)}: 'development' } or set HOTPATH_PROFILE)`
      : '';

  const logLevel: LogLevel = env.logLevel ?? config.logLevel ?? (profile === 'test' ? 'silent' : 'info');
  const logger = config.logger ?? (logLevel === 'silent' ? silentLogger : createConsoleLogger(logLevel));
  const cacheEnabled = env.cacheEnabled ?? config.cacheEnabled ?? true;
  const databaseUrl = config.storage
    ? `${config.storage.kind}://(provided)`
    : (env.databaseUrl ?? config.databaseUrl ?? defaultDatabaseUrl(profile));
  if (databaseUrl === undefined) {
    throw new ConfigError(
      'HOTPATH_DATABASE_URL',
      `the production profile needs a PostgreSQL database: set HOTPATH_DATABASE_URL=postgres://… (or config.databaseUrl)${profileReason}`,
    );
  }
  if (profile === 'production' && !config.storage && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError(
      'HOTPATH_DATABASE_URL',
      `the production profile needs a PostgreSQL URL, got ${JSON.stringify(maskUrl(databaseUrl))}${profileReason}`,
    );
  }
  const queueConfig = config.queue === false ? false : { ...(config.queue ?? {}) };
  if (queueConfig && env.queueConcurrency !== undefined) queueConfig.concurrency = env.queueConcurrency;

  // Build in dependency order; on any failure close what was already built.
  const built: Array<() => Promise<void> | void> = [];
  const closeBuilt = async () => {
    for (const close of built.reverse()) await close();
  };
  try {
    const recent = new RecentActivity();
    const userOnSlow = config.profiler?.onSlow;
    const userOnNPlusOne = config.profiler?.onNPlusOne;
    const profiler = new Profiler({
      logger,
      ...config.profiler,
      onSlow: (event) => {
        recent.slowOperations.push({ ...event, at: systemClock.now() });
        userOnSlow?.(event);
      },
      onNPlusOne: (event) => {
        recent.nPlusOne.push({ ...event, at: systemClock.now() });
        userOnNPlusOne?.(event);
      },
    });
    built.push(() => profiler.close());

    // Closed after the caches and limiters that use it (built closes in reverse).
    const redisUrl = env.redisUrl ?? config.redisUrl;
    const redis = redisUrl === undefined ? undefined : new AppRedis(redisUrl, logger, profiler);
    if (redis) built.push(() => redis.close());
    const sharedParts = (name: string, enabled: boolean) =>
      redis && enabled ? { tier: redis.tierFor(name), bus: redis.bus } : {};

    const caches = new CacheRegistry();
    built.push(() => caches.close());
    const cacheMax = new Map<string, number>();
    for (const [name, { shared, ...options }] of Object.entries(config.caches ?? {})) {
      if (options.max !== undefined) cacheMax.set(name, options.max);
      const enabled = cacheEnabled && options.enabled !== false;
      caches.create(name, { ...options, ...sharedParts(name, enabled && shared !== false), enabled, profiler, logger });
    }

    const rateLimiters = new Map<string, RateLimiter>();
    built.push(async () => {
      await Promise.all([...rateLimiters.values()].map((limiter) => limiter.close()));
    });
    for (const [name, options] of Object.entries(config.rateLimiters ?? {})) {
      // The config key names the limiter in its errors and logs (penalties, store failures), unless set.
      const store = redis && options.store === undefined ? { store: redis.store, key: options.key ?? name } : {};
      const limiter = new ObservedRateLimiter(
        { name, profiler, logger, ...store, ...options },
        (remaining, resetInMs) => {
          const at = systemClock.now();
          recent.noteUpstream(name, { remaining, resetAt: at + resetInMs, at });
        },
      );
      rateLimiters.set(name, limiter);
    }

    let adapter = config.storage;
    if (!adapter) {
      if (databaseUrl.startsWith('sqlite://')) {
        const file = decodeURIComponent(databaseUrl.slice('sqlite://'.length));
        if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
      }
      adapter = createStorage(databaseUrl, { profiler, ...storageOptionsFor(databaseUrl, config.storageOptions) });
    }
    const storageAdapter = adapter;
    built.push(() => storageAdapter.close());

    let documentCache: Cache<unknown> | undefined;
    if (config.documentCache) {
      documentCache = caches.create('documents', {
        ...config.documentCache,
        ...sharedParts('documents', cacheEnabled),
        enabled: cacheEnabled,
        profiler,
        logger,
      });
      cacheMax.set('documents', config.documentCache.max);
    }
    const storage = new StorageManager(
      storageAdapter,
      documentCache ? { cache: documentCache, profiler } : { profiler },
    );

    let queue: QueueManager | undefined;
    if (queueConfig) {
      queue = new QueueManager({ ...queueConfig, storage: storageAdapter, profiler, logger });
      const queueManager = queue;
      const events = queueManager.queue;
      events.on('failed', (job) => {
        recent.failedJobIds.push(job.id);
        recent.runningHere.delete(job.id);
      });
      events.on('progress', (job) => recent.noteRunningHere(job.id));
      events.on('completed', (job) => recent.runningHere.delete(job.id));
      events.on('cancelled', (job) => recent.runningHere.delete(job.id));
      const shutdownTimeoutMs = config.shutdownTimeoutMs ?? 10_000;
      // QueueManager.close() alone aborts running jobs at once; a graceful stop first lets them finish.
      built.push(async () => {
        await queueManager.stop({ graceful: true, timeoutMs: shutdownTimeoutMs });
        await queueManager.close();
      });
    }

    const resolved: ResolvedHotpathConfig = {
      profile,
      databaseUrl: maskUrl(databaseUrl),
      storage: storageAdapter.kind,
      redisUrl:
        (env.redisUrl ?? config.redisUrl) === undefined
          ? undefined
          : maskUrl((env.redisUrl ?? config.redisUrl) as string),
      cacheEnabled,
      queueConcurrency: queueConfig ? (queueConfig.concurrency ?? 1) : 0,
      logLevel,
    };
    await redis?.ready(logger);
    return new HotpathApp({
      redis,
      config: resolved,
      logger,
      profiler,
      caches,
      rateLimiters,
      storage,
      queue,
      closeAll: closeBuilt,
      cacheLimits: cacheMax,
      recent,
    });
  } catch (error) {
    await closeBuilt();
    throw error;
  }
}

/** The parts {@link createHotpath} built, handed to the app object in one piece. */
type HotpathParts = Pick<
  Hotpath,
  'config' | 'logger' | 'profiler' | 'caches' | 'rateLimiters' | 'storage' | 'queue' | 'recent'
> & { closeAll: () => Promise<void>; cacheLimits: ReadonlyMap<string, number>; redis: AppRedis | undefined };

class HotpathApp implements Hotpath {
  readonly config: ResolvedHotpathConfig;
  readonly logger: Logger;
  readonly profiler: Profiler;
  readonly caches: CacheRegistry;
  readonly rateLimiters: ReadonlyMap<string, RateLimiter>;
  readonly storage: StorageManager;
  readonly queue: QueueManager | undefined;
  readonly recent: RecentActivity;
  readonly #closeAll: () => Promise<void>;
  readonly cacheLimits: ReadonlyMap<string, number>;
  readonly requests = new RequestCounters();
  readonly #redis: AppRedis | undefined;
  #closing: Promise<void> | undefined;

  constructor(parts: HotpathParts) {
    ({
      config: this.config,
      logger: this.logger,
      profiler: this.profiler,
      caches: this.caches,
      rateLimiters: this.rateLimiters,
      storage: this.storage,
      queue: this.queue,
      recent: this.recent,
    } = parts);
    this.#closeAll = parts.closeAll;
    this.cacheLimits = parts.cacheLimits;
    this.#redis = parts.redis;
  }

  cache<V = unknown>(name: string): Cache<V> {
    const cache = this.caches.get<V>(name);
    if (!cache)
      throw new ConfigError(
        'cache',
        `no cache named ${JSON.stringify(name)} (configured: ${this.caches.names().join(', ') || 'none'})`,
      );
    return cache;
  }

  rateLimiter(name: string): RateLimiter {
    const limiter = this.rateLimiters.get(name);
    if (!limiter) {
      throw new ConfigError(
        'rateLimiter',
        `no rate limiter named ${JSON.stringify(name)} (configured: ${[...this.rateLimiters.keys()].join(', ') || 'none'})`,
      );
    }
    return limiter;
  }

  async health(): Promise<HotpathHealth> {
    const [storageHealth, queueHealth, redisHealth] = await Promise.all([
      this.storage.adapter.health(),
      this.queue
        ? this.queue.health().then(
            (health) => health,
            () => 'unreachable' as const,
          )
        : undefined,
      this.#redis?.probe(),
    ]);
    // Null prototype: a cache named "__proto__" is a plain key here too.
    const caches: HotpathHealth['caches'] = Object.create(null) as HotpathHealth['caches'];
    const stats = this.caches.stats().caches;
    for (const name of this.caches.names()) {
      const cacheStats = stats[name];
      caches[name] = {
        size: cacheStats?.size ?? 0,
        hitRate: cacheStats?.hitRate ?? 0,
        enabled: this.config.cacheEnabled,
      };
    }
    const storage: HotpathHealth['storage'] = {
      ok: storageHealth.ok,
      latencyMs: storageHealth.latencyMs,
      kind: this.storage.adapter.kind,
    };
    if (storageHealth.error !== undefined) storage.error = storageHealth.error;
    const queue = queueHealth === 'unreachable' ? undefined : queueHealth;
    return {
      ok: storage.ok && queueHealth !== 'unreachable' && (queue === undefined || queue.ok),
      storage,
      queue,
      ...(redisHealth === undefined ? {} : { redis: redisHealth }),
      caches,
      uptimeSeconds: Math.round(process.uptime()),
    };
  }

  async metrics(): Promise<string> {
    // Probed first, so this scrape's round trip is in the profiler's histogram below.
    const redisFamilies = (await this.#redis?.metricFamilies(this.caches.stats().caches)) ?? [];
    const queue = this.queue ? await this.queue.stats().catch(() => undefined) : undefined;
    const families = appMetricFamilies({
      caches: this.caches,
      cacheMax: this.cacheLimits,
      requests: this.requests,
      rateLimiters: this.rateLimiters,
      pool: this.storage.adapter.stats(),
      queue,
      memory: this.profiler.memory(),
    });
    return this.profiler.toPrometheus({ families: [...redisFamilies, ...families] });
  }

  close(): Promise<void> {
    this.#closing ??= this.#closeAll();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
