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
  /** `development` | `test` | `production`, from `HOTPATH_PROFILE` or `NODE_ENV` (mapped, see `nodeEnvProfiles`). */
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

/** Options of {@link readEnvironment}. */
export interface ReadEnvironmentOptions {
  /**
   * Profile of each `NODE_ENV` value that is not a profile name, e.g. `{ staging: 'production', qa: 'test' }`.
   * A `NODE_ENV` that is neither a profile nor listed here selects `production` (see docs/app.md, "Profiles").
   */
  nodeEnvProfiles?: Readonly<Record<string, Profile>> | undefined;
}

const PROFILES: readonly Profile[] = ['development', 'test', 'production'];

/**
 * Profile of a `NODE_ENV` that names none: `production`. Such values (`staging`, `preview`, `qa`, `prod`) are
 * nearly always deployed environments, which need production's guarantees (PostgreSQL, not a SQLite file in a
 * container); without a PostgreSQL URL startup then fails loudly, naming `nodeEnvProfiles`.
 */
export const UNKNOWN_NODE_ENV_PROFILE: Profile = 'production';

/** The `HOTPATH_*` variables hotpath reads. */
export const HOTPATH_VARIABLES: readonly string[] = [
  'HOTPATH_PROFILE',
  'HOTPATH_DATABASE_URL',
  'HOTPATH_REDIS_URL',
  'HOTPATH_CACHE_ENABLED',
  'HOTPATH_QUEUE_CONCURRENCY',
  'HOTPATH_LOG_LEVEL',
];

/**
 * `HOTPATH_*` variables of hotpath's own test suite, CI and tooling (the PostgreSQL/Redis URLs of the services,
 * the switch that makes a missing service fail, and the mutation runner's scoping); declared so a developer's
 * shell that exports them draws no warning.
 */
const SUITE_VARIABLES: readonly string[] = [
  'HOTPATH_PG_URL',
  'HOTPATH_SUITE_REDIS_URL',
  'HOTPATH_REQUIRE_SERVICES',
  'HOTPATH_TEST_DIR',
  'HOTPATH_MUTATION',
];

/** An unknown `HOTPATH_*` variable and the known one it most resembles. */
export interface UnknownVariable {
  /** The variable as set. */
  variable: string;
  /** The closest known variable (edit distance over the part after `HOTPATH_`). */
  closest: string;
}

/** Levenshtein distance; names are short, so the two-row table is plenty. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min(
        (previous[j] as number) + 1,
        (current[j - 1] as number) + 1,
        (previous[j - 1] as number) + cost,
      );
    }
    previous = current;
  }
  return previous[b.length] as number;
}

/**
 * Every `HOTPATH_*` variable in `env` that hotpath does not read (nor the app declared in `declared`), with the
 * closest known name, sorted by name. `HOTPATH_CACHETTL` → `{ variable: 'HOTPATH_CACHETTL', closest: … }`.
 */
export function unknownEnvironmentVariables(
  env: Record<string, string | undefined>,
  declared: readonly string[] = [],
): UnknownVariable[] {
  const known = new Set([...HOTPATH_VARIABLES, ...SUITE_VARIABLES, ...declared]);
  const unknown: UnknownVariable[] = [];
  for (const variable of Object.keys(env).sort()) {
    if (!variable.startsWith('HOTPATH_') || known.has(variable) || env[variable] === undefined) continue;
    const suffix = variable.slice('HOTPATH_'.length).toUpperCase();
    let closest = HOTPATH_VARIABLES[0] as string;
    let best = Number.POSITIVE_INFINITY;
    for (const candidate of HOTPATH_VARIABLES) {
      const distance = editDistance(suffix, candidate.slice('HOTPATH_'.length));
      if (distance < best) [best, closest] = [distance, candidate];
    }
    unknown.push({ variable, closest });
  }
  return unknown;
}
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
  options: ReadEnvironmentOptions = {},
): EnvironmentSettings {
  const settings: EnvironmentSettings = { profile: profile ?? 'development' };
  const nodeEnvProfiles = options.nodeEnvProfiles ?? {};
  for (const [nodeEnv, mapped] of Object.entries(nodeEnvProfiles)) {
    if (!PROFILES.includes(mapped)) {
      throw new ConfigError(
        'nodeEnvProfiles',
        `nodeEnvProfiles.${nodeEnv} must be one of ${PROFILES.join(', ')}, got ${JSON.stringify(mapped)}`,
      );
    }
  }
  if (profile === undefined) {
    // An empty HOTPATH_PROFILE (`HOTPATH_PROFILE=` in a compose file) counts as unset, so NODE_ENV still applies.
    const fromProfileVariable = env.HOTPATH_PROFILE;
    const nodeEnv = env.NODE_ENV;
    if (fromProfileVariable !== undefined && fromProfileVariable !== '') {
      // HOTPATH_PROFILE is hotpath's own variable: only the three profile names.
      if (!PROFILES.includes(fromProfileVariable as Profile)) {
        bad('HOTPATH_PROFILE', fromProfileVariable, PROFILES.join(' | '));
      }
      settings.profile = fromProfileVariable as Profile;
    } else if (nodeEnv !== undefined && nodeEnv !== '') {
      // NODE_ENV belongs to every framework: any value is accepted and mapped.
      settings.profile = PROFILES.includes(nodeEnv as Profile)
        ? (nodeEnv as Profile)
        : ((Object.hasOwn(nodeEnvProfiles, nodeEnv) ? nodeEnvProfiles[nodeEnv] : undefined) ??
          UNKNOWN_NODE_ENV_PROFILE);
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
