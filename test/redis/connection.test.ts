import { isHotpathError } from 'hotpath/core';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { defineScript, RedisConnection } from '../../src/redis/connection.js';
import { needsRedis, REDIS_URL, uniqueName } from '../helpers/services.js';

const hasRedis = await needsRedis();

describe.runIf(hasRedis)('RedisConnection', () => {
  const prefix = uniqueName('conn');
  const admin = new Redis(REDIS_URL);
  afterAll(async () => {
    await admin.quit();
  });

  it('builds, owns and closes a URL connection', async () => {
    const connection = new RedisConnection({ redis: REDIS_URL, scope: 'T' });
    expect(connection.isOwned).toBe(true);
    expect(await connection.command('PING')).toBe('PONG');
    await connection.close();
    await expect(connection.command('PING')).rejects.toSatisfy((e) => isHotpathError(e, 'ERR_HOTPATH_STORAGE'));
  });

  it('leaves a passed-in client open on close', async () => {
    const client = new Redis(REDIS_URL);
    const connection = new RedisConnection({ redis: client, scope: 'T' });
    expect(connection.isOwned).toBe(false);
    await connection.close();
    expect(await client.ping()).toBe('PONG');
    await client.quit();
  });

  it('runs a script by SHA and reloads it after SCRIPT FLUSH', async () => {
    const connection = new RedisConnection({ redis: REDIS_URL, scope: 'T' });
    const script = defineScript(`return redis.call('INCR', KEYS[1]) .. ':' .. ARGV[1] -- ${prefix}`);
    const key = `${prefix}:{k}`;
    expect(await connection.evalScript(script, [key], ['a b\n*'])).toBe('1:a b\n*');
    expect(await connection.evalScript(script, [key], ['x'])).toBe('2:x');
    await admin.del(key);
    await connection.close();
  });

  it('rejects with a typed error for a bad URL or a timeout', async () => {
    expect(() => new RedisConnection({ redis: 'http://x', scope: 'T' })).toThrow(/redis:\/\//);
    expect(() => new RedisConnection({ redis: REDIS_URL, scope: 'T', commandTimeoutMs: 0 })).toThrow(
      /commandTimeoutMs/,
    );
    const connection = new RedisConnection({ redis: REDIS_URL, scope: 'T', commandTimeoutMs: 50 });
    await expect(connection.command('BLPOP', `${prefix}:never`, '1')).rejects.toSatisfy((e) =>
      isHotpathError(e, 'ERR_HOTPATH_TIMEOUT'),
    );
    await connection.close();
  });
});
