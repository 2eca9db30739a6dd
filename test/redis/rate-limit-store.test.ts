import { RedisRateLimitStore } from 'hotpath/redis';
import { Redis } from 'ioredis';
import { afterAll, describe } from 'vitest';
import { needsRedis, REDIS_URL, uniqueName } from '../helpers/services.js';

const hasRedis = await needsRedis();

import { rateLimitStoreConformance } from '../ratelimit/store-conformance.js';

describe.runIf(hasRedis)('RedisRateLimitStore', () => {
  const prefix = `${uniqueName('rl')}:`;
  const admin = new Redis(REDIS_URL);
  afterAll(async () => {
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length > 0) await admin.del(...keys);
    await admin.quit();
  });

  rateLimitStoreConformance('redis', async () => {
    const store = new RedisRateLimitStore({ redis: REDIS_URL, prefix });
    return { store, close: () => store.close() };
  });
});
