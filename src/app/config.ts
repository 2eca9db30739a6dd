/**
 * Environment profiles and overrides for {@link createHotpath}: one place that reads `NODE_ENV` and the
 * `HOTPATH_*` variables, validates them up front, and names the variable, the value and what is allowed
 * when something is wrong.
 * @module
 */
import { ConfigError } from '../core/errors.js';
import type { LogLevel } from '../core/logger.js';

/** Deployment profile; selects defaults. */
export type Profile = 'development' | 'test' | 'production';

/** Values read from the environment (all optional). */
export interface EnvironmentSettings {
  /** `development` | `test` | `production`, from `HOTPATH_PROFILE` or `NODE_ENV`. */
  profile: Profile;
  /** `HOTPATH_DATABASE_URL`: `memory://`, `sqlite://path` or `postgres://…`. */
  databaseUrl?: string;
  /** `HOTPATH_REDIS_URL`: `redis://…` or `rediss://…`. */
  redisUrl?: string;
  /** `HOTPATH_CACHE_ENABLED`: the cache rollback switch. */
  cacheEnabled?: boolean;
  /** `HOTPATH_QUEUE_CONCURRENCY`: jobs run at once per process. */
  queueConcurrency?: number;
  /** `HOTPATH_LOG_LEVEL`. */
  logLevel?: LogLevel;
}

const PROFILES: readonly Profile[] = ['development', 'test', 'production'];
const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

function bad(variable: string, value: string, allowed: string): never {
  throw new ConfigError(variable, `${variable}=${JSON.stringify(value)} is not valid: expected ${allowed}`);
}

/** The default database of each profile: a SQLite file for development, memory for tests, none for production. */
export function defaultDatabaseUrl(profile: Profile): string | undefined {
  if (profile === 'development') return 'sqlite://.hotpath/dev.db';
  if (profile === 'test') return 'memory://';
  return undefined;
}

/**
 * Reads and validates the hotpath environment variables.
 * @param env - the environment (default `process.env`).
 * @param profile - overrides `HOTPATH_PROFILE` / `NODE_ENV`.
 * @throws ConfigError naming the variable, its value and what is allowed.
 */
export function readEnvironment(
  env: Record<string, string | undefined> = process.env,
  profile?: Profile,
): EnvironmentSettings {
  const settings: EnvironmentSettings = { profile: profile ?? 'development' };
  if (profile === undefined) {
    // An empty HOTPATH_PROFILE (`HOTPATH_PROFILE=` in a compose file) counts as unset, so NODE_ENV still applies.
    const hasProfileVariable = env.HOTPATH_PROFILE !== undefined && env.HOTPATH_PROFILE !== '';
    const fromEnv = hasProfileVariable ? env.HOTPATH_PROFILE : env.NODE_ENV;
    if (fromEnv !== undefined && fromEnv !== '') {
      const variable = hasProfileVariable ? 'HOTPATH_PROFILE' : 'NODE_ENV';
      if (!PROFILES.includes(fromEnv as Profile)) bad(variable, fromEnv, PROFILES.join(' | '));
      settings.profile = fromEnv as Profile;
    }
  } else if (!PROFILES.includes(profile)) {
    throw new ConfigError('profile', `profile must be one of ${PROFILES.join(', ')}, got ${JSON.stringify(profile)}`);
  }

  const databaseUrl = env.HOTPATH_DATABASE_URL;
  if (databaseUrl !== undefined && databaseUrl !== '') {
    if (!/^(memory:\/\/|sqlite:\/\/.+|postgres(ql)?:\/\/.+)$/.test(databaseUrl)) {
      bad('HOTPATH_DATABASE_URL', databaseUrl, 'memory://, sqlite://<path> or postgres://<user>@<host>/<db>');
    }
    settings.databaseUrl = databaseUrl;
  }

  const redisUrl = env.HOTPATH_REDIS_URL;
  if (redisUrl !== undefined && redisUrl !== '') {
    if (!/^rediss?:\/\/.+/.test(redisUrl)) bad('HOTPATH_REDIS_URL', redisUrl, 'redis://<host>:<port> or rediss://…');
    settings.redisUrl = redisUrl;
  }

  const cacheEnabled = env.HOTPATH_CACHE_ENABLED;
  if (cacheEnabled !== undefined && cacheEnabled !== '') {
    const normalized = cacheEnabled.trim().toLowerCase();
    if (['true', '1', 'yes', 'on'].includes(normalized)) settings.cacheEnabled = true;
    else if (['false', '0', 'no', 'off'].includes(normalized)) settings.cacheEnabled = false;
    else bad('HOTPATH_CACHE_ENABLED', cacheEnabled, 'true or false (also 1/0, yes/no, on/off)');
  }

  const concurrency = env.HOTPATH_QUEUE_CONCURRENCY;
  if (concurrency !== undefined && concurrency !== '') {
    const value = Number(concurrency);
    if (!/^\d+$/.test(concurrency.trim()) || !Number.isInteger(value) || value < 1 || value > 1000) {
      bad('HOTPATH_QUEUE_CONCURRENCY', concurrency, 'an integer from 1 to 1000');
    }
    settings.queueConcurrency = value;
  }

  const logLevel = env.HOTPATH_LOG_LEVEL;
  if (logLevel !== undefined && logLevel !== '') {
    if (!LOG_LEVELS.includes(logLevel as LogLevel)) bad('HOTPATH_LOG_LEVEL', logLevel, LOG_LEVELS.join(' | '));
    settings.logLevel = logLevel as LogLevel;
  }
  return settings;
}
