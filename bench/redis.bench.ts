/**
 * Redis benchmarks (`npm run bench -- redis`): the shared rate-limit store and the shared cache, each
 * against its anchor on the same Redis, interleaved in one process. Each part lives in its own file.
 *
 * Run: npm run bench -- redis
 */
import { benchRedisCache } from './redis-cache.js';

await benchRedisCache();
