/** Behaviour only durable backends have: transactional enqueue and fencing between two workers. */
import { ManualClock } from 'hotpath/core';
import { JobQueue } from 'hotpath/queue';
import { describe, expect, it } from 'vitest';
import type { StorageAdapter } from '../../src/storage/types.js';
import { deferred, eventually } from '../helpers/async.js';
import { DURABLE_BACKENDS } from '../helpers/backends.js';

for (const backend of DURABLE_BACKENDS) {
  describe.runIf(backend.available)(`durable queue: ${backend.name}`, () => {
    it('enqueue({ tx }) exists if and only if the transaction commits', async () => {
      const { storage, cleanup } = await backend.open({ label: 'hp_queue_durable' });
      const queue = new JobQueue({ storage, pollIntervalMs: 20 });
      try {
        // The first call of this queue is inside a transaction: the tables are created in it.
        const rolledBack = await storage
          .transaction(async (tx) => {
            await tx.put('orders', { id: 'o-1', total: 5 });
            await queue.enqueue('ship', { order: 'o-1' }, { tx });
            throw new Error('payment declined');
          })
          .catch((error: unknown) => error);
        expect((rolledBack as Error).message).toBe('payment declined');
        expect((await queue.list()).items).toEqual([]);
        expect(await storage.get('orders', 'o-1')).toBeUndefined();

        const shipped: unknown[] = [];
        queue.register('ship', async (data: unknown) => {
          shipped.push(data);
        });
        await queue.start();
        const id = await storage.transaction(async (tx) => {
          await tx.put('orders', { id: 'o-2', total: 7 });
          const [jobId] = await queue.enqueueMany([{ type: 'ship', data: { order: 'o-2' } }], { tx });
          return jobId as string;
        });
        await queue.wait(id, { timeoutMs: 10_000 });
        expect(shipped).toEqual([{ order: 'o-2' }]);
        await expect(queue.enqueue('ship', {}, { tx: {} as StorageAdapter })).rejects.toThrow(/transaction/);
      } finally {
        await queue.close();
        await cleanup();
      }
    });

    it('fences out a worker whose lease was taken over: its late outcome and progress are discarded', async () => {
      const { storage, cleanup } = await backend.open({ label: 'hp_queue_durable' });
      const start = 1_700_000_000_000;
      // Worker A's clock stands still (it is hung); worker B lives 10 s later, past A's lease.
      const fastClock = new ManualClock(start + 10_000);
      const slow = new JobQueue({ storage, clock: new ManualClock(start), leaseMs: 1_000, workerId: 'A' });
      const fast = new JobQueue({ storage, clock: fastClock, leaseMs: 1_000, workerId: 'B' });
      try {
        const release = deferred();
        let slowSignal: AbortSignal | undefined;
        const slowCompleted: string[] = [];
        slow.on('completed', (job) => slowCompleted.push(job.id));
        slow.register('report', async (_data, job) => {
          slowSignal = job.signal;
          await release.promise;
          job.progress(99, 100, 'late');
          return 'from A';
        });
        fast.register('report', async (_data, job) => {
          job.progress(100, 100, 'B done');
          return 'from B';
        });
        const id = await slow.enqueue('report', null);
        await slow.start();
        await eventually(() => slowSignal !== undefined);
        await fast.start();
        await fastClock.advance(0); // its reaper finds A's lease expired, then B claims and finishes the job
        expect(await fast.wait(id, { timeoutMs: 10_000 })).toBe('from B');
        expect(fast.stats().reaped).toBe(1);
        release.resolve();
        await eventually(() => slow.stats().leasesLost === 1);
        const job = await fast.get(id);
        expect(job).toMatchObject({ status: 'succeeded', result: 'from B', attempts: 2 });
        expect(job?.progress).toEqual({ done: 100, total: 100, stage: 'B done' });
        expect(slowCompleted).toEqual([]);
      } finally {
        await slow.close();
        await fast.close();
        await cleanup();
      }
    });

    it('a job handed out again to the process still running it (its claim lost in a crash) aborts the older run', async () => {
      const { storage, cleanup } = await backend.open({ label: 'hp_queue_durable' });
      const queue = new JobQueue({ storage, concurrency: 2, pollIntervalMs: 20 });
      try {
        const runs: AbortSignal[] = [];
        const release = deferred();
        const completed: unknown[] = [];
        queue.on('completed', (_job, result) => completed.push(result));
        queue.register('crashy', async (_data, job) => {
          const run = runs.push(job.signal);
          if (run === 1) await release.promise;
          return `run ${run}`;
        });
        const id = await queue.enqueue('crashy', null);
        await queue.start();
        await eventually(() => runs.length === 1);
        // What a crash that lost the (asynchronously committed) claim leaves: the job queued with its old token.
        await storage.sql?.query(
          `UPDATE hotpath_jobs SET status = 'queued', token = token - 1, attempts = attempts - 1 WHERE id = ${backend.name === 'postgres' ? '$1' : '?'}`,
          [id],
        );
        expect(await queue.wait(id, { timeoutMs: 10_000 })).toBe('run 2');
        expect(runs[0]?.aborted).toBe(true);
        expect(runs[0]?.reason).toMatchObject({ message: `lease of job ${id} was lost` });
        release.resolve();
        await eventually(() => queue.stats().running === 0);
        expect(completed).toEqual(['run 2']);
        expect(await queue.get(id)).toMatchObject({ status: 'succeeded', result: 'run 2', attempts: 1 });
      } finally {
        await queue.close();
        await cleanup();
      }
    });

    it('adds the owner column to a jobs table made by an older version, keeping its jobs', async () => {
      const { storage, cleanup } = await backend.open({ label: 'hp_queue_upgrade' });
      try {
        const old = new JobQueue({ storage });
        const before = await old.enqueue('legacy', { n: 1 });
        await old.close();
        await storage.sql?.query('ALTER TABLE hotpath_jobs DROP COLUMN owner'); // the table as 0.1 made it
        // PostgreSQL marks its tables with the digest of the DDL that made them; 0.1 left no mark.
        if (backend.name === 'postgres') await storage.sql?.query('COMMENT ON TABLE hotpath_jobs IS NULL');
        const upgraded = new JobQueue({ storage });
        try {
          const id = await upgraded.enqueue('report', {}, { owner: 'alice' });
          expect((await upgraded.get(id))?.owner).toBe('alice');
          expect(await upgraded.get(before)).toMatchObject({ type: 'legacy', data: { n: 1 }, owner: undefined });
        } finally {
          await upgraded.close();
        }
      } finally {
        await cleanup();
      }
    });
  });
}
