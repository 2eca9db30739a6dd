/** The queue conformance suite over every storage backend (one list, test/helpers/backends.ts). */
import { describe } from 'vitest';
import { BACKENDS } from '../helpers/backends.js';
import { conformanceSuite } from './conformance-suite.js';

for (const backend of BACKENDS) {
  describe.runIf(backend.available)(backend.name, () => {
    conformanceSuite({ name: backend.name, create: () => backend.open({ label: 'hp_queue' }) });
  });
}
