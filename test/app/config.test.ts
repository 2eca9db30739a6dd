import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHotpath, type Hotpath, readEnvironment, unknownEnvironmentVariables } from 'hotpath/app';
import { ConfigError } from 'hotpath/core';
import { afterAll, afterEach, beforeEach, describe, expect, expectTypeOf, it, vi } from 'vitest';
import { needsPostgres, PG_URL, uniqueName } from '../helpers/services.js';

const hasPostgres = await needsPostgres();

const dir = mkdtempSync(join(tmpdir(), 'hotpath-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('unknown HOTPATH_* variables', () => {
  let warnings: Array<{ message: string; code: string | undefined }>;
  beforeEach(() => {
    warnings = [];
    vi.spyOn(process, 'emitWarning').mockImplementation(((message: string, options?: { code?: string }) => {
      warnings.push({ message: String(message), code: options?.code });
    }) as typeof process.emitWarning);
  });
  afterEach(() => vi.restoreAllMocks());

  it('names the closest known variable', () => {
    expect(unknownEnvironmentVariables({ HOTPATH_CACHETTL: '5', HOTPATH_DATABSE_URL: 'x', PATH: '/bin' })).toEqual([
      { variable: 'HOTPATH_CACHETTL', closest: 'HOTPATH_CACHE_ENABLED' },
      { variable: 'HOTPATH_DATABSE_URL', closest: 'HOTPATH_DATABASE_URL' },
    ]);
    expect(unknownEnvironmentVariables({ HOTPATH_LOGLEVEL: 'x' })[0]?.closest).toBe('HOTPATH_LOG_LEVEL');
  });

  it('reports each unknown variable once per process through process.emitWarning', async () => {
    const env = { HOTPATH_QUEUE_CONCURENCY: '4' };
    await (await createHotpath({ profile: 'test', env, queue: false })).close();
    await (await createHotpath({ profile: 'test', env, queue: false })).close();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.code).toBe('HOTPATH_UNKNOWN_VARIABLE');
    expect(warnings[0]?.message).toContain('HOTPATH_QUEUE_CONCURENCY');
    expect(warnings[0]?.message).toContain('did you mean HOTPATH_QUEUE_CONCURRENCY');
  });

  it('stays quiet for known, declared and the test suite’s own variables', async () => {
    // HOTPATH_REDIS_URL is known too, but setting it here would make createHotpath connect to Redis.
    expect(unknownEnvironmentVariables({ HOTPATH_REDIS_URL: 'redis://y:6379' })).toEqual([]);
    const env = {
      HOTPATH_PG_URL: 'postgres://x@y/z',
      HOTPATH_REQUIRE_SERVICES: '1',
      HOTPATH_LOG_LEVEL: 'silent',
      HOTPATH_MY_FEATURE: 'on',
    };
    await (await createHotpath({ profile: 'test', env, declaredEnv: ['HOTPATH_MY_FEATURE'], queue: false })).close();
    expect(warnings).toEqual([]);
  });

  it('strictEnv: true makes an unknown variable a ConfigError naming it and the closest one', async () => {
    const attempt = createHotpath({ profile: 'test', env: { HOTPATH_CACHETTL: '60' }, strictEnv: true });
    await expect(attempt).rejects.toBeInstanceOf(ConfigError);
    await expect(attempt).rejects.toMatchObject({
      option: 'HOTPATH_CACHETTL',
      message: expect.stringContaining('HOTPATH_CACHE_ENABLED'),
    });
    expect(warnings).toEqual([]);
  });
});

describe('profiles from NODE_ENV', () => {
  it('accepts any NODE_ENV: an unknown one selects production unless nodeEnvProfiles maps it', () => {
    expect(readEnvironment({ NODE_ENV: 'staging' }).profile).toBe('production');
    expect(readEnvironment({ NODE_ENV: 'staging' }, undefined, { nodeEnvProfiles: { staging: 'test' } }).profile).toBe(
      'test',
    );
    expect(
      readEnvironment({ NODE_ENV: 'test' }, undefined, { nodeEnvProfiles: { staging: 'development' } }).profile,
    ).toBe('test');
    expect(readEnvironment({ NODE_ENV: 'constructor' }).profile).toBe('production');
  });

  it('HOTPATH_PROFILE stays strict (it is hotpath’s own variable), and a bad mapping is refused', () => {
    expect(() => readEnvironment({ HOTPATH_PROFILE: 'staging' })).toThrow(ConfigError);
    expect(() => readEnvironment({}, undefined, { nodeEnvProfiles: { staging: 'prod' as never } })).toThrow(
      /nodeEnvProfiles\.staging/,
    );
  });

  it('NODE_ENV=staging without a PostgreSQL URL fails and says how to map it', async () => {
    await expect(createHotpath({ env: { NODE_ENV: 'staging' } })).rejects.toThrow(
      /NODE_ENV="staging" selects the production profile; map it with nodeEnvProfiles/,
    );
    const file = join(dir, 'staging.db');
    await using app = await createHotpath({
      env: { NODE_ENV: 'staging', HOTPATH_DATABASE_URL: `sqlite://${file}`, HOTPATH_LOG_LEVEL: 'silent' },
      nodeEnvProfiles: { staging: 'development' },
      queue: false,
    });
    expect(app.config.profile).toBe('development');
  });
});

describe('storageOptions per backend', () => {
  it('one configuration serves development (SQLite) and test (memory): each backend takes its own entry', async () => {
    const storageOptions = {
      sqlite: { busyTimeoutMs: 2_000 },
      postgres: { schema: 'app_a', max: 4 },
      memory: {},
    };
    const file = join(dir, 'dev.db');
    await using dev = await createHotpath({
      profile: 'development',
      env: { HOTPATH_DATABASE_URL: `sqlite://${file}`, HOTPATH_LOG_LEVEL: 'silent' },
      storageOptions,
      queue: false,
    });
    expect(dev.config.storage).toBe('sqlite');
    await dev.storage.collection<{ a: number }>('x').save({ a: 1 });
    await using test = await createHotpath({ profile: 'test', env: {}, storageOptions, queue: false });
    expect(test.config.storage).toBe('memory');
  });

  it('the documented flat form still works, a bad entry is still refused, and mixing the forms is refused', async () => {
    const file = join(dir, 'flat.db');
    await using flat = await createHotpath({
      profile: 'development',
      env: { HOTPATH_DATABASE_URL: `sqlite://${file}`, HOTPATH_LOG_LEVEL: 'silent' },
      storageOptions: { busyTimeoutMs: 1_000 },
      queue: false,
    });
    expect(flat.config.storage).toBe('sqlite');
    await expect(
      createHotpath({
        profile: 'development',
        env: { HOTPATH_DATABASE_URL: `sqlite://${join(dir, 'bad.db')}`, HOTPATH_LOG_LEVEL: 'silent' },
        storageOptions: { sqlite: { schema: 'x' } as never },
        queue: false,
      }),
    ).rejects.toThrow(ConfigError);
    await expect(
      createHotpath({
        profile: 'test',
        env: {},
        storageOptions: { sqlite: {}, busyTimeoutMs: 5 } as never,
        queue: false,
      }),
    ).rejects.toThrow(/mixes per-backend entries/);
  });

  it.runIf(hasPostgres)('the PostgreSQL profile takes postgres.schema', async () => {
    const schema = uniqueName('app_cfg');
    const pg = await import('pg');
    const admin = new pg.default.Client({ connectionString: PG_URL });
    await admin.connect();
    try {
      await admin.query(`CREATE SCHEMA "${schema}"`);
      {
        await using app = await createHotpath({
          profile: 'production',
          env: { HOTPATH_DATABASE_URL: PG_URL, HOTPATH_LOG_LEVEL: 'silent' },
          storageOptions: { postgres: { schema, max: 2 }, sqlite: { busyTimeoutMs: 10 } },
          queue: false,
        });
        await app.storage.collection<{ a: number }>('things').save({ a: 1 });
      }
      const tables = await admin.query(
        'SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = $1',
        [schema],
      );
      expect(tables.rows[0].n).toBeGreaterThan(0);
    } finally {
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await admin.end();
    }
  });
});

describe('createHotpath typing', () => {
  it('types cache and limiter names from the configuration; values default to unknown', async () => {
    await using app = await createHotpath({
      profile: 'test',
      env: {},
      caches: { quotes: { max: 10, ttlMs: 1000 } },
      rateLimiters: { upstream: { limit: 1, intervalMs: 1000 } },
      queue: false,
    });
    expectTypeOf(app.cache<{ price: number }>('quotes').get('x')).toEqualTypeOf<{ price: number } | undefined>();
    expectTypeOf(app.cache('quotes').get('x')).toEqualTypeOf<unknown>();
    // @ts-expect-error — a misspelled cache name does not compile
    expect(() => app.cache('qoutes')).toThrow(ConfigError);
    // @ts-expect-error — nor does a misspelled limiter name
    expect(() => app.rateLimiter('upstraem')).toThrow(ConfigError);
    const untyped: Hotpath = app;
    expect(() => untyped.cache('anything')).toThrow(ConfigError);
  });
});
