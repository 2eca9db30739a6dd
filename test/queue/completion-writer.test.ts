/**
 * The completion writer against each real backend: two outcomes of one claim queued together (a claim
 * lost in a database crash, then the job claimed again with the same token while the first run's
 * outcome waited out the outage) must be reported as applied once, not twice.
 */
import { ManualClock, silentLogger } from 'hotpath/core';
import { describe, expect, it } from 'vitest';
import { createQueueBackend } from '../../src/queue/backends/create-backend.js';
import { CompletionWriter, type PendingCompletion } from '../../src/queue/completion-writer.js';
import { emptyQueueStats, resolveQueueSettings } from '../../src/queue/queue-options.js';
import { BACKENDS } from '../helpers/backends.js';

for (const backend of BACKENDS) {
  describe.runIf(backend.available)(`CompletionWriter: ${backend.name}`, () => {
    it('writes two outcomes of one claim in turn: the first applies, the second is reported as not applied', async () => {
      const { storage, cleanup } = await backend.open({ label: 'hp_queue_completion' });
      try {
        const queueBackend = createQueueBackend(storage, 0);
        await queueBackend.init();
        const now = 1_000;
        const [id] = await queueBackend.insert(
          [
            {
              id: 'job-1',
              type: 'work',
              data: '{}',
              priority: 0,
              runAt: now,
              createdAt: now,
              maxAttempts: 3,
              timeoutMs: null,
              backoff: null,
              key: null,
              keyRetentionMs: 0,
              owner: null,
            },
          ],
          now,
        );
        const [claimed] = await queueBackend.claim({
          types: ['work'],
          limit: 1,
          now,
          leaseUntil: now + 30_000,
          agingMs: 0,
          workerId: 'w',
        });
        expect(claimed?.id).toBe(id);
        const token = claimed?.token as number;

        const written: Array<[string, boolean]> = [];
        const writer = new CompletionWriter({
          backend: queueBackend,
          settings: resolveQueueSettings({ clock: new ManualClock(now), logger: silentLogger }),
          stats: emptyQueueStats(),
          isStarted: () => true,
          onError: (what, error) => {
            throw new Error(`${what}: ${String(error)}`);
          },
          onWritten: (entry: PendingCompletion, applied: boolean) => {
            written.push([(entry.detail as { run: string }).run, applied]);
          },
          isClosed: () => false,
        });
        writer.push({ kind: 'succeeded', id: 'job-1', token, result: '"first"', at: now + 1 }, undefined, {
          run: 'first',
        });
        writer.push({ kind: 'succeeded', id: 'job-1', token, result: '"second"', at: now + 2 }, undefined, {
          run: 'second',
        });
        await writer.flush();
        expect(written).toEqual([
          ['first', true],
          ['second', false],
        ]);
        const row = await queueBackend.get('job-1');
        expect(row?.status).toBe('succeeded');
        expect(row?.result).toBe('"first"');
        expect(writer.isIdle).toBe(true);
      } finally {
        await cleanup();
      }
    });
  });
}
