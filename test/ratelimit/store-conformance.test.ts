import { MemoryRateLimitStore } from 'hotpath/ratelimit';
import { rateLimitStoreConformance } from './store-conformance.js';

rateLimitStoreConformance('memory', async () => ({
  store: new MemoryRateLimitStore(),
  close: async () => {},
}));
