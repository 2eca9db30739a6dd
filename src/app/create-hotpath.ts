/**
 * `createHotpath(config)`: builds a Profiler, named caches, rate limiters, a StorageManager and a
 * QueueManager from one object, with environment profiles and `HOTPATH_*` overrides, and returns them
 * with one `close()` that shuts everything down in the right order.
 * @module
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { type Cache, type CacheOptions, CacheRegistry } from '../cache/index.js';
import { ConfigError } from '../core/errors.js';
import { createConsoleLogger, type Logger, type LogLevel, silentLogger } from '../core/logger.js';
import { validateOptions } from '../core/options.js';
import { Profiler, type ProfilerOptions } from '../profiling/index.js';
import { QueueManager, type QueueManagerOptions } from '../queue/index.js';
import { RateLimiter, type RateLimiterOptions } from '../ratelimit/index.js';
import { type CreateStorageOptions, createStorage, type StorageAdapter, StorageManager } from '../storage/index.js';
import { defaultDatabaseUrl, type Profile, readEnvironment } from './config.js';
import { appMetricFamilies } from './metric-families.js';

/** Options of one named cache in {@link HotpathConfig.caches}. */
export type NamedCacheOptions = Omit<CacheOptions<unknown>, 'name' | 'profiler'>;

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
  /** Options passed to `createStorage` (pool sizes, pragmas, …). */
  storageOptions?: CreateStorageOptions;
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
  /** Redis URL for shared tiers; `HOTPATH_REDIS_URL` overrides it. Recorded in `config` for the app. */
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

/** The wired-up primitives and their single shutdown. */
export interface Hotpath extends AsyncDisposable {
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
  /**
   * The named cache.
   * @throws ConfigError when no cache of that name was configured.
   */
  cache<V>(name: string): Cache<V>;
  /**
   * The named rate limiter.
   * @throws ConfigError when no limiter of that name was configured.
   */
  rateLimiter(name: string): RateLimiter;
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
export async function createHotpath(config: HotpathConfig = {}): Promise<Hotpath> {
  validateOptions('createHotpath', config, CONFIG_SCHEMA);
  const env = readEnvironment(config.env ?? process.env, config.profile);
  const profile = env.profile;

  const logLevel: LogLevel = env.logLevel ?? config.logLevel ?? (profile === 'test' ? 'silent' : 'info');
  const logger = config.logger ?? (logLevel === 'silent' ? silentLogger : createConsoleLogger(logLevel));
  const cacheEnabled = env.cacheEnabled ?? config.cacheEnabled ?? true;
  const databaseUrl = config.storage
    ? `${config.storage.kind}://(provided)`
    : (env.databaseUrl ?? config.databaseUrl ?? defaultDatabaseUrl(profile));
  if (databaseUrl === undefined) {
    throw new ConfigError(
      'HOTPATH_DATABASE_URL',
      'the production profile needs a PostgreSQL database: set HOTPATH_DATABASE_URL=postgres://… (or config.databaseUrl)',
    );
  }
  if (profile === 'production' && !config.storage && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError(
      'HOTPATH_DATABASE_URL',
      `the production profile needs a PostgreSQL URL, got ${JSON.stringify(maskUrl(databaseUrl))}`,
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
    const profiler = new Profiler({ logger, ...config.profiler });
    built.push(() => profiler.close());

    const caches = new CacheRegistry();
    built.push(() => caches.close());
    const cacheMax = new Map<string, number>();
    for (const [name, options] of Object.entries(config.caches ?? {})) {
      if (options.max !== undefined) cacheMax.set(name, options.max);
      caches.create(name, { ...options, enabled: cacheEnabled && options.enabled !== false, profiler, logger });
    }

    const rateLimiters = new Map<string, RateLimiter>();
    built.push(async () => {
      await Promise.all([...rateLimiters.values()].map((limiter) => limiter.close()));
    });
    for (const [name, options] of Object.entries(config.rateLimiters ?? {})) {
      // The config key names the limiter in its errors and logs (penalties, store failures), unless set.
      rateLimiters.set(name, new RateLimiter({ name, profiler, logger, ...options }));
    }

    let adapter = config.storage;
    if (!adapter) {
      if (databaseUrl.startsWith('sqlite://')) {
        const file = decodeURIComponent(databaseUrl.slice('sqlite://'.length));
        if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
      }
      adapter = createStorage(databaseUrl, { profiler, ...config.storageOptions });
    }
    const storageAdapter = adapter;
    built.push(() => storageAdapter.close());

    let documentCache: Cache<unknown> | undefined;
    if (config.documentCache) {
      documentCache = caches.create('documents', { ...config.documentCache, enabled: cacheEnabled, profiler, logger });
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
    return new HotpathApp({
      config: resolved,
      logger,
      profiler,
      caches,
      rateLimiters,
      storage,
      queue,
      closeAll: closeBuilt,
      cacheMax,
    });
  } catch (error) {
    await closeBuilt();
    throw error;
  }
}

/** The parts {@link createHotpath} built, handed to the app object in one piece. */
type HotpathParts = Pick<
  Hotpath,
  'config' | 'logger' | 'profiler' | 'caches' | 'rateLimiters' | 'storage' | 'queue'
> & { closeAll: () => Promise<void>; cacheMax: ReadonlyMap<string, number> };

class HotpathApp implements Hotpath {
  readonly config: ResolvedHotpathConfig;
  readonly logger: Logger;
  readonly profiler: Profiler;
  readonly caches: CacheRegistry;
  readonly rateLimiters: ReadonlyMap<string, RateLimiter>;
  readonly storage: StorageManager;
  readonly queue: QueueManager | undefined;
  readonly #closeAll: () => Promise<void>;
  readonly #cacheMax: ReadonlyMap<string, number>;
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
    } = parts);
    this.#closeAll = parts.closeAll;
    this.#cacheMax = parts.cacheMax;
  }

  cache<V>(name: string): Cache<V> {
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
    const [storageHealth, queueHealth] = await Promise.all([
      this.storage.adapter.health(),
      this.queue
        ? this.queue.health().then(
            (health) => health,
            () => 'unreachable' as const,
          )
        : undefined,
    ]);
    const caches: HotpathHealth['caches'] = {};
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
      caches,
      uptimeSeconds: Math.round(process.uptime()),
    };
  }

  async metrics(): Promise<string> {
    const queue = this.queue ? await this.queue.stats().catch(() => undefined) : undefined;
    const families = appMetricFamilies({
      caches: this.caches,
      cacheMax: this.#cacheMax,
      rateLimiters: this.rateLimiters,
      pool: this.storage.adapter.stats(),
      queue,
      memory: this.profiler.memory(),
    });
    return this.profiler.toPrometheus({ families });
  }

  close(): Promise<void> {
    this.#closing ??= this.#closeAll();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
