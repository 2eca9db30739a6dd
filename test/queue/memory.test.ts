import { conformanceSuite } from './conformance-suite.js';

conformanceSuite({
  name: 'memory',
  async create() {
    return { storage: undefined, async cleanup() {} };
  },
});
