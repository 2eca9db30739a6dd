/**
 * One conformance suite for every queue backend: the same behaviour on memory, SQLite and PostgreSQL.
 * Each test gets fresh storage from the backend's factory.
 */
import {
  ConfigError,
  isHotpathError,
  JobCancelledError,
  JobFailedError,
  ManualClock,
  TimeoutError,
} from 'hotpath/core';
import { type JobEventInfo, JobQueue, type JobQueueOptions } from 'hotpath/queue';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StorageAdapter } from '../../src/storage/types.js';
import { deferred, eventually } from '../helpers/async.js';

/** Makes fresh storage for one test. */
export interface BackendFactory {
  name: string;
  create(): Promise<{ storage: StorageAdapter | undefined; cleanup(): Promise<void> }>;
}

const untilAborted = (signal: AbortSignal): Promise<never> =>
  new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });

export function conformanceSuite(factory: BackendFactory): void {
  describe(`JobQueue conformance: ${factory.name}`, () => {
    let storage: StorageAdapter | undefined;
    let cleanup: () => Promise<void>;
    let clock: ManualClock;
    const queues: JobQueue[] = [];

    const make = (options: JobQueueOptions = {}): JobQueue => {
      const queue = new JobQueue({ storage, clock, pollIntervalMs: 50, ...options });
      queues.push(queue);
      return queue;
    };
    const status = async (queue: JobQueue, id: string) => (await queue.get(id))?.status;
    // The manual clock fires timers without waiting for the database round trips they start, so
    // time moves in poll-sized steps with a real pause between them (network backends need it).
    const walk = async (ms: number, stepMs = 50): Promise<void> => {
      for (let left = ms; left > 0; left -= stepMs) {
        await clock.advance(Math.min(stepMs, left));
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    };
    const advanceUntil = async (check: () => boolean | Promise<boolean>, stepMs = 50): Promise<void> => {
      await eventually(async () => {
        if (await check()) return true;
        await clock.advance(stepMs);
        return false;
      });
    };

    beforeEach(async () => {
      const created = await factory.create();
      storage = created.storage;
      cleanup = created.cleanup;
      clock = new ManualClock();
    });

    afterEach(async () => {
      for (const queue of queues.splice(0)) await queue.close();
      await cleanup();
    });

    it('runs a job and keeps its result, attempts and times', async () => {
      const queue = make();
      queue.register('add', async (data: unknown) => {
        const { a, b } = data as { a: number; b: number };
        return { sum: a + b };
      });
      await queue.start();
      const id = await queue.enqueue('add', { a: 2, b: 3 });
      expect(await queue.wait(id, { timeoutMs: 60_000 })).toEqual({ sum: 5 });
      const job = await queue.get(id);
      expect(job).toMatchObject({
        id,
        type: 'add',
        data: { a: 2, b: 3 },
        status: 'succeeded',
        priority: 0,
        result: { sum: 5 },
        attempts: 1,
        error: undefined,
        createdAt: clock.now(),
        startedAt: clock.now(),
        finishedAt: clock.now(),
      });
      expect(queue.stats()).toMatchObject({ enqueued: 1, claimed: 1, succeeded: 1, running: 0 });
      expect(await queue.get('no-such-job')).toBeUndefined();
    });

    it('events carry the wait and run time of the attempt', async () => {
      const queue = make();
      const events: JobEventInfo[] = [];
      queue.on('completed', (job) => events.push(job));
      queue.on('failed', (job) => events.push(job));
      queue.register(
        'timed',
        async (data: unknown) => {
          if (data === 'fail') throw new Error('no');
        },
        { attempts: 1 },
      );
      const late = await queue.enqueue('timed', 'ok');
      await walk(120);
      await queue.start();
      await queue.wait(late, { timeoutMs: 60_000 });
      const failing = await queue.enqueue('timed', 'fail');
      await expect(queue.wait(failing, { timeoutMs: 60_000 })).rejects.toThrow(/no/);
      expect(events).toHaveLength(2);
      // The first job was due 120 ms (queue clock) before the worker started.
      expect(events[0]).toMatchObject({ id: late, waitMs: 120, runMs: expect.any(Number) });
      expect(events[1]).toMatchObject({ id: failing, waitMs: 0, runMs: expect.any(Number) });
    });

    it('runs higher priority first, FIFO by runAt then id within a priority', async () => {
      const queue = make({ concurrency: 1 });
      const order: string[] = [];
      queue.register('p', async (data: unknown) => {
        order.push(data as string);
      });
      await queue.enqueue('p', 'low-1', { priority: -5 });
      await queue.enqueue('p', 'mid-1');
      await queue.enqueue('p', 'high-1', { priority: 10 });
      await queue.enqueue('p', 'mid-2');
      await queue.enqueue('p', 'high-2', { priority: 10 });
      await queue.enqueueMany([
        { type: 'p', data: 'mid-3' },
        { type: 'p', data: 'high-3', priority: 10 },
        { type: 'p', data: 'low-2', priority: -5 },
      ]);
      await queue.start();
      await eventually(() => order.length === 8);
      expect(order).toEqual(['high-1', 'high-2', 'high-3', 'mid-1', 'mid-2', 'mid-3', 'low-1', 'low-2']);
    });

    it('ages priorities so a low-priority job is not starved', async () => {
      const queue = make({ concurrency: 1, priorityAgingMs: 1_000 });
      const order: string[] = [];
      queue.register('a', async (data: unknown) => {
        order.push(data as string);
      });
      await queue.enqueue('a', 'old-low', { priority: 0 });
      await clock.advance(10_000); // waited 10 s = 10 levels
      for (let i = 0; i < 5; i++) await queue.enqueue('a', `new-p5-${i}`, { priority: 5 });
      await queue.enqueue('a', 'new-p20', { priority: 20 });
      await queue.start();
      await eventually(() => order.length === 7);
      expect(order[0]).toBe('new-p20');
      expect(order[1]).toBe('old-low');

      // Without aging the same line starves it until the end.
      const plain = make({ concurrency: 1 });
      const plainOrder: string[] = [];
      plain.register('b', async (data: unknown) => {
        plainOrder.push(data as string);
      });
      await plain.enqueue('b', 'old-low');
      await clock.advance(10_000);
      for (let i = 0; i < 3; i++) await plain.enqueue('b', `p5-${i}`, { priority: 5 });
      await plain.start();
      await eventually(() => plainOrder.length === 4);
      expect(plainOrder[3]).toBe('old-low');
    });

    it('holds delayed jobs until delayMs / runAt', async () => {
      const queue = make();
      const ran: string[] = [];
      queue.register('d', async (data: unknown) => {
        ran.push(data as string);
      });
      await queue.start();
      const a = await queue.enqueue('d', 'in-1s', { delayMs: 1_000 });
      const b = await queue.enqueue('d', 'at-3s', { runAt: new Date(clock.now() + 3_000) });
      await clock.advance(500);
      expect(ran).toEqual([]);
      expect(await status(queue, a)).toBe('queued');
      await advanceUntil(() => ran.length === 1);
      expect(ran).toEqual(['in-1s']);
      await advanceUntil(() => ran.length === 2);
      expect(await queue.wait(b)).toBeNull();
    });

    it('retries with the backoff policy, then succeeds', async () => {
      const queue = make({
        defaults: { attempts: 3, backoff: { baseDelayMs: 1_000, maxDelayMs: 10_000, jitter: false } },
      });
      const attempts: number[] = [];
      const failures: boolean[] = [];
      queue.on('failed', (_job, _error, willRetry) => failures.push(willRetry));
      queue.register('flaky', async (_data, job) => {
        attempts.push(job.attempt);
        if (job.attempt < 3) throw new Error(`boom ${job.attempt}`);
        return 'ok';
      });
      await queue.start();
      const id = await queue.enqueue('flaky', null);
      await eventually(() => attempts.length === 1 && failures.length === 1);
      const afterFirst = await queue.get(id);
      expect(afterFirst).toMatchObject({ status: 'queued', attempts: 1, runAt: clock.now() + 1_000 });
      expect(afterFirst?.error?.message).toBe('boom 1');
      await clock.advance(999);
      expect(attempts).toEqual([1]);
      await advanceUntil(() => failures.length === 2);
      const afterSecond = await queue.get(id);
      const gap = (afterSecond?.runAt ?? 0) - (afterSecond?.startedAt ?? 0);
      expect(gap).toBeGreaterThanOrEqual(2_000); // doubled (plus the steps the clock took while the claim ran)
      expect(gap).toBeLessThan(2_500);
      await advanceUntil(() => attempts.length === 3);
      expect(await queue.wait(id, { timeoutMs: 60_000 })).toBe('ok');
      expect(attempts).toEqual([1, 2, 3]);
      expect(failures).toEqual([true, true]);
      expect(queue.stats()).toMatchObject({ retried: 2, failedAttempts: 2, succeeded: 1 });
    });

    it('dead-letters a job after its last attempt and redrives it with retry(id)', async () => {
      const queue = make({ defaults: { backoff: { baseDelayMs: 0, maxDelayMs: 0 } } });
      let healthy = false;
      queue.register(
        'fragile',
        async () => {
          if (!healthy) throw new TypeError('upstream said no');
          return 'fixed';
        },
        { attempts: 2 },
      );
      await queue.start();
      const id = await queue.enqueue('fragile', { n: 1 });
      const failure = await queue.wait(id).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(JobFailedError);
      expect(isHotpathError(failure, 'ERR_HOTPATH_JOB_FAILED')).toBe(true);
      expect((failure as JobFailedError).attempts).toBe(2);
      const job = await queue.get(id);
      expect(job).toMatchObject({ status: 'failed', attempts: 2, maxAttempts: undefined });
      expect(job?.error).toMatchObject({ name: 'TypeError', message: 'upstream said no' });
      expect(job?.error?.stack).toContain('upstream said no');
      const dead = await queue.list({ status: 'failed' });
      expect(dead.items.map((item) => item.id)).toEqual([id]);
      expect(await queue.retry('missing')).toBe(false);
      healthy = true;
      expect(await queue.retry(id)).toBe(true);
      expect(await queue.wait(id)).toBe('fixed');
      expect(await queue.get(id)).toMatchObject({ status: 'succeeded', attempts: 1, error: undefined });
      expect(await queue.retry(id)).toBe(false); // succeeded jobs are not redriven
    });

    it('aborts job.signal on timeout and fails the attempt with TimeoutError', async () => {
      const queue = make({ defaults: { attempts: 1 } });
      let reason: unknown;
      queue.register(
        'slow',
        async (_data, job) => {
          try {
            await untilAborted(job.signal);
          } catch (error) {
            reason = error;
            throw error;
          }
        },
        { timeoutMs: 1_000 },
      );
      await queue.start();
      const id = await queue.enqueue('slow', null);
      await eventually(async () => (await status(queue, id)) === 'running');
      await clock.advance(1_000);
      const failure = await queue.wait(id).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(JobFailedError);
      expect(reason).toBeInstanceOf(TimeoutError);
      expect((await queue.get(id))?.error).toMatchObject({ name: 'TimeoutError', code: 'ERR_HOTPATH_TIMEOUT' });
      expect(queue.stats().timedOut).toBe(1);
    });

    it('keeps the slot of a handler that ignores its signal and reports it stalled; its late result is fenced out', async () => {
      const queue = make({
        concurrency: 1,
        stallGraceMs: 2_000,
        defaults: { backoff: { baseDelayMs: 0, maxDelayMs: 0 } },
      });
      const stuck = deferred<string>();
      const stalled: string[] = [];
      queue.on('stalled', (job) => stalled.push(job.id));
      const runs: number[] = [];
      queue.register(
        'hang',
        async (_data, job) => {
          runs.push(job.attempt);
          if (job.attempt === 1) return stuck.promise; // ignores the signal
          return 'second run';
        },
        { timeoutMs: 1_000, attempts: 2 },
      );
      await queue.start();
      const id = await queue.enqueue('hang', null);
      await eventually(() => runs.length === 1);
      await clock.advance(1_000);
      // The attempt failed and the job is queued again, but the one slot is still taken.
      await eventually(async () => (await queue.get(id))?.attempts === 1 && (await status(queue, id)) === 'queued');
      await clock.advance(2_000);
      expect(stalled).toEqual([id]);
      expect(runs).toEqual([1]);
      expect(queue.stats()).toMatchObject({ running: 1, idleSlots: 0, stalled: 1 });
      stuck.resolve('late first run');
      expect(await queue.wait(id)).toBe('second run');
      expect(runs).toEqual([1, 2]);
      expect((await queue.get(id))?.result).toBe('second run');
    });

    it('cancels queued and running jobs', async () => {
      const queue = make();
      let runningSignal: AbortSignal | undefined;
      const release = deferred();
      queue.register('long', async (_data, job) => {
        runningSignal = job.signal;
        await release.promise; // settles only when released, after the abort
        job.signal.throwIfAborted();
        return 'done';
      });
      const queued = await queue.enqueue('long', 1, { delayMs: 60_000 });
      expect(await queue.cancel(queued)).toBe(true);
      expect(await status(queue, queued)).toBe('cancelled');
      await expect(queue.wait(queued)).rejects.toBeInstanceOf(JobCancelledError);

      await queue.start();
      const running = await queue.enqueue('long', 2);
      await eventually(() => runningSignal !== undefined);
      const cancelled: string[] = [];
      queue.on('cancelled', (job) => cancelled.push(job.id));
      expect(await queue.cancel(running)).toBe(true);
      expect(runningSignal?.aborted).toBe(true);
      expect(runningSignal?.reason).toBeInstanceOf(JobCancelledError);
      expect(await status(queue, running)).toBe('running'); // until the handler settles
      release.resolve();
      await expect(queue.wait(running)).rejects.toBeInstanceOf(JobCancelledError);
      expect(cancelled).toEqual([running]);
      expect(await queue.cancel(running)).toBe(false);
      expect(await queue.cancel('missing')).toBe(false);
    });

    it('dedupes by key while queued or running, and for keyRetentionMs after', async () => {
      const queue = make();
      queue.register('k', async (data: unknown) => data);
      const first = await queue.enqueue('k', 'a', { key: 'report-7' });
      expect(await queue.enqueue('k', 'b', { key: 'report-7' })).toBe(first);
      const [again, other] = await queue.enqueueMany([
        { type: 'k', data: 'c', key: 'report-7' },
        { type: 'k', data: 'd', key: 'report-8' },
      ]);
      expect(again).toBe(first);
      expect(other).not.toBe(first);
      expect(queue.stats().enqueued).toBe(2);
      await queue.start();
      expect(await queue.wait(first)).toBe('a');
      const fresh = await queue.enqueue('k', 'e', { key: 'report-7' });
      expect(fresh).not.toBe(first);
      expect(await queue.wait(fresh)).toBe('e');

      const kept = await queue.enqueue('k', 'f', { key: 'daily', keyRetentionMs: 5_000 });
      await queue.wait(kept);
      await clock.advance(4_000);
      expect(await queue.enqueue('k', 'g', { key: 'daily' })).toBe(kept);
      await clock.advance(1_001);
      expect(await queue.enqueue('k', 'h', { key: 'daily' })).not.toBe(kept);
    });

    it('stores throttled progress, visible through get(id) and the progress event', async () => {
      const queue = make({ progressIntervalMs: 1_000 });
      const events: Array<[number, number | undefined, string | undefined]> = [];
      queue.on('progress', (_job, progress) => events.push([progress.done, progress.total, progress.stage]));
      const step = deferred();
      const finish = deferred();
      queue.register('sim', async (_data, job) => {
        job.progress(1, 10, 'loading');
        job.progress(2, 10, 'loading'); // within the interval: not written yet
        await step.promise;
        job.progress(5, 10, 'simulating');
        await finish.promise;
        job.progress(10, 10, 'done');
        return 'ok';
      });
      await queue.start();
      const id = await queue.enqueue('sim', null);
      await eventually(async () => (await queue.get(id))?.progress?.done === 1);
      expect((await queue.get(id))?.progress).toEqual({ done: 1, total: 10, stage: 'loading' });
      await clock.advance(1_000); // trailing write of the latest report
      await eventually(async () => (await queue.get(id))?.progress?.done === 2);
      step.resolve();
      await eventually(() => events.length === 3);
      await clock.advance(1_000);
      await eventually(async () => (await queue.get(id))?.progress?.stage === 'simulating');
      finish.resolve();
      await queue.wait(id);
      expect((await queue.get(id))?.progress).toEqual({ done: 10, total: 10, stage: 'done' });
      expect(events).toEqual([
        [1, 10, 'loading'],
        [2, 10, 'loading'],
        [5, 10, 'simulating'],
        [10, 10, 'done'],
      ]);
    });

    it('wait() gives up with TimeoutError or the signal reason, leaving the job alone', async () => {
      const queue = make();
      const id = await queue.enqueue('nobody-runs-this', null);
      const waiting = queue.wait(id, { timeoutMs: 1_000 });
      const outcome = waiting.catch((error: unknown) => error);
      await clock.advance(1_000);
      expect(await outcome).toBeInstanceOf(TimeoutError);
      const controller = new AbortController();
      const aborted = queue.wait(id, { signal: controller.signal }).catch((error: unknown) => error);
      controller.abort(new Error('client went away'));
      expect(((await aborted) as Error).message).toBe('client went away');
      expect(await status(queue, id)).toBe('queued');
      await expect(queue.wait('missing')).rejects.toBeInstanceOf(ConfigError);
    });

    it('deletes finished jobs after resultTtlMs', async () => {
      const queue = make({ resultTtlMs: 10_000, sweepIntervalMs: 1_000 });
      queue.register('t', async () => 'r');
      await queue.start();
      const done = await queue.enqueue('t', null);
      const keyed = await queue.enqueue('t', null, { key: 'monthly', keyRetentionMs: 30_000 });
      await queue.wait(done);
      await queue.wait(keyed);
      const waiting = await queue.enqueue('never', null);
      await clock.advance(5_000);
      expect(await queue.get(done)).toBeDefined();
      await walk(6_000, 500);
      await advanceUntil(async () => (await queue.get(done)) === undefined, 500);
      expect(await queue.get(waiting)).toBeDefined(); // only finished jobs are swept
      expect(await queue.get(keyed)).toBeDefined(); // its key is reserved for 30 s: kept
      expect(queue.stats().swept).toBe(1);
      await walk(20_000, 1_000);
      await advanceUntil(async () => (await queue.get(keyed)) === undefined, 1_000);
      expect(queue.stats().swept).toBe(2);
    });

    it('purges finished jobs by status, age, type and limit; refuses queued and running', async () => {
      const queue = make({ resultTtlMs: 3_600_000 });
      queue.register('t', async (data: unknown) => {
        if (data === 'fail') throw new Error('no');
        return data;
      });
      queue.register('u', async () => 'u');
      await queue.start();
      const old = await queue.enqueue('t', 'a');
      const oldOther = await queue.enqueue('u', null);
      const failed = await queue.enqueue('t', 'fail', { attempts: 1 });
      const keyed = await queue.enqueue('t', 'k', { key: 'nightly', keyRetentionMs: 60_000 });
      for (const id of [old, oldOther, keyed]) await queue.wait(id);
      await queue.wait(failed).catch(() => {});
      const waiting = await queue.enqueue('never', null);
      const cancelled = await Promise.all([1, 2, 3].map((n) => queue.enqueue('never', n, { delayMs: 600_000 })));
      for (const id of cancelled) await queue.cancel(id);
      await clock.advance(10_000);
      const recent = await queue.enqueue('t', 'r');
      await queue.wait(recent);
      const exists = async (ids: string[]) => Promise.all(ids.map(async (id) => (await queue.get(id)) !== undefined));

      for (const bad of ['queued', 'running', 'nope', undefined]) {
        await expect(queue.purge({ status: bad } as never)).rejects.toBeInstanceOf(ConfigError);
      }
      await expect(queue.purge({ status: 'failed', limit: 0 })).rejects.toBeInstanceOf(ConfigError);
      await expect(queue.purge({ status: 'failed', olderThanMs: -1 })).rejects.toBeInstanceOf(ConfigError);
      expect(await exists([waiting, failed])).toEqual([true, true]);

      expect(await queue.purge({ status: 'succeeded', olderThanMs: 5_000, dryRun: true })).toBe(2);
      expect(await exists([old, oldOther])).toEqual([true, true]);
      expect(await queue.purge({ status: 'succeeded', olderThanMs: 5_000, type: 't' })).toBe(1);
      expect(await exists([old, oldOther, keyed, recent])).toEqual([false, true, true, true]);
      expect(await queue.purge({ status: 'succeeded', olderThanMs: 5_000 })).toBe(1);
      expect(await exists([oldOther, keyed, recent])).toEqual([false, true, true]);

      expect(await queue.purge({ status: 'failed' })).toBe(1);
      expect(await exists([failed, waiting])).toEqual([false, true]);
      expect(await queue.purge({ status: 'cancelled', limit: 2 })).toBe(2);
      expect(await queue.purge({ status: 'cancelled', limit: 2 })).toBe(1);
      expect(await exists(cancelled)).toEqual([false, false, false]);

      // The key of `keyed` is reserved for 60 s after it finished: kept until then, so no duplicate gets in.
      expect(await queue.enqueue('t', 'dup', { key: 'nightly' })).toBe(keyed);
      await clock.advance(60_000);
      expect(await queue.purge({ status: 'succeeded', olderThanMs: 5_000 })).toBe(2);
      expect(await exists([keyed, recent, waiting])).toEqual([false, false, true]);
      expect(await queue.enqueue('t', 'fresh', { key: 'nightly' })).not.toBe(keyed);
    });

    it('fires recurring jobs once per tick', async () => {
      // A long poll interval: the test moves the clock an hour, and each poll is a timer to fire.
      const queue = make({ pollIntervalMs: 60_000 });
      const fired: number[] = [];
      queue.register('tick', async (data: unknown) => {
        fired.push((data as { n: number }).n);
      });
      await queue.schedule('heartbeat', { every: 1_000 }, 'tick', { n: 1 });
      await queue.start();
      await walk(3_500);
      await eventually(() => fired.length === 3);
      await walk(400);
      expect(fired).toEqual([1, 1, 1]);
      expect(queue.stats().scheduledFired).toBe(3);
      await expect(queue.schedule('bad', { cron: 'not a cron' }, 'tick', {})).rejects.toBeInstanceOf(ConfigError);
      await expect(queue.schedule('bad', { every: -1 }, 'tick', {})).rejects.toBeInstanceOf(ConfigError);
      await queue.schedule('hourly', { cron: '0 * * * *', timezone: 'UTC' }, 'tick', { n: 2 });
      expect(await queue.unschedule('heartbeat')).toBe(true);
      await walk(5_000, 500);
      expect(fired).toEqual([1, 1, 1]);
      await clock.advance(3_600_000 - 10_000);
      await walk(10_000, 500);
      await eventually(() => fired.includes(2));
      expect(fired.filter((n) => n === 2)).toHaveLength(1);
    });

    it('with knownTypes, refuses a misspelled type at enqueue, enqueueMany and schedule, writing nothing', async () => {
      const queue = make({ knownTypes: ['email', 'report'] });
      for (const call of [
        () => queue.enqueue('emial', {}),
        () =>
          queue.enqueueMany([
            { type: 'email', data: 1 },
            { type: 'reprot', data: 2 },
          ]),
        () => queue.schedule('nightly', { every: 60_000 }, 'reprot', {}),
      ]) {
        const error = await call().catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ConfigError);
        expect(String((error as Error).message)).toMatch(/unknown job type "(emial|reprot)".*email, report/);
      }
      expect((await queue.list()).items).toEqual([]);
      expect(await queue.enqueue('email', { to: 'a@example.com' })).toEqual(expect.any(String));
      // A typed job map makes the same mistake a compile error.
      const typed = make() as unknown as JobQueue<{ email: { to: string } }>;
      // @ts-expect-error "emial" is not a job type of the map
      await typed.enqueue('emial', { to: 'b@example.com' });
    });

    it('refuses bad input at enqueue and writes nothing', async () => {
      const queue = make();
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      const bad: Array<[string, () => Promise<unknown>]> = [
        ['function', () => queue.enqueue('x', { fn: () => 1 })],
        ['bigint', () => queue.enqueue('x', { n: 1n })],
        ['map', () => queue.enqueue('x', { m: new Map() })],
        ['cycle', () => queue.enqueue('x', cyclic)],
        ['NaN', () => queue.enqueue('x', { n: Number.NaN })],
        ['empty type', () => queue.enqueue('', {})],
        ['long type', () => queue.enqueue('t'.repeat(129), {})],
        ['negative delay', () => queue.enqueue('x', {}, { delayMs: -1 })],
        ['priority range', () => queue.enqueue('x', {}, { priority: 1001 })],
        ['priority integer', () => queue.enqueue('x', {}, { priority: 1.5 })],
        ['attempts', () => queue.enqueue('x', {}, { attempts: 0 })],
        ['unknown option', () => queue.enqueue('x', {}, { prio: 1 } as never)],
        ['both delays', () => queue.enqueue('x', {}, { delayMs: 1, runAt: 5 })],
        ['empty key', () => queue.enqueue('x', {}, { key: '' })],
        [
          'many',
          () =>
            queue.enqueueMany([
              { type: 'x', data: 1 },
              { type: 'x', data: () => 1 },
            ]),
        ],
      ];
      for (const [name, call] of bad) {
        const error = await call().catch((e: unknown) => e);
        expect(error, name).toBeInstanceOf(ConfigError);
      }
      const health = await queue.health();
      expect(health.counts).toEqual({ queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 });
      expect(() => new JobQueue({ concurrency: 0 })).toThrow(ConfigError);
      expect(() => new JobQueue({ leaseMs: 1_000, heartbeatMs: 2_000 })).toThrow(/heartbeatMs/);
      expect(() => new JobQueue({ bogus: 1 } as never)).toThrow(/bogus/);
      const ok = await queue.enqueue('x', { when: undefined, list: [1, 'two', null] });
      expect((await queue.get(ok))?.data).toEqual({ list: [1, 'two', null] });
    });

    it('claims only registered types; any process may enqueue any type', async () => {
      const queue = make({ concurrency: 4 });
      queue.register('mine', async () => 'mine');
      await queue.start();
      const foreign = await queue.enqueue('theirs', { x: 1 });
      const mine = await queue.enqueue('mine', null);
      expect(await queue.wait(mine)).toBe('mine');
      expect(await status(queue, foreign)).toBe('queued');
      const page = await queue.list({ type: 'theirs' });
      expect(page.items.map((job) => job.id)).toEqual([foreign]);
    });

    it('lists with filters and a cursor', async () => {
      const queue = make();
      const ids = await queue.enqueueMany(Array.from({ length: 5 }, (_, i) => ({ type: 'l', data: i })));
      const first = await queue.list({ limit: 2 });
      expect(first.items.map((job) => job.id)).toEqual(ids.slice(0, 2));
      const second = await queue.list({ limit: 2, cursor: first.nextCursor });
      expect(second.items.map((job) => job.id)).toEqual(ids.slice(2, 4));
      const third = await queue.list({ limit: 2, cursor: second.nextCursor });
      expect(third.items.map((job) => job.id)).toEqual(ids.slice(4));
      expect(third.nextCursor).toBeUndefined();
      expect((await queue.list({ status: 'succeeded' })).items).toEqual([]);
      await expect(queue.list({ status: 'bogus' as never })).rejects.toBeInstanceOf(ConfigError);
    });

    it('stops in stages: graceful finish, then abort and hand leases back without spending attempts', async () => {
      const queue = make({ concurrency: 2 });
      const quick = deferred();
      const seen: number[] = [];
      queue.register('work', async (data: unknown, job) => {
        seen.push(job.attempt);
        if (data === 'quick') {
          await quick.promise;
          return 'quick done';
        }
        await untilAborted(job.signal);
      });
      await queue.start();
      const quickId = await queue.enqueue('work', 'quick');
      const slowId = await queue.enqueue('work', 'slow');
      await eventually(() => seen.length === 2);
      const stopping = queue.stop({ timeoutMs: 4_000 });
      quick.resolve();
      await eventually(async () => (await status(queue, quickId)) === 'succeeded');
      await clock.advance(4_000);
      await stopping;
      await queue.stop(); // harmless
      const slow = await queue.get(slowId);
      expect(slow).toMatchObject({ status: 'queued', attempts: 0 });
      expect(queue.stats().released).toBe(1);
      const later = await queue.enqueue('work', 'quick'); // producers keep working after stop
      expect(await status(queue, later)).toBe('queued');
      await queue.start();
      await eventually(() => seen.length >= 4);
      expect(seen.slice(2).sort()).toEqual([1, 1]); // the handed-back job starts again at attempt 1
      await queue.close();
      await queue.close();
      await expect(queue.enqueue('work', 'x')).rejects.toThrow(/closed/);
      expect(() => queue.register('other', async () => 1)).toThrow(/closed/);
      await expect(queue.start()).rejects.toThrow(/closed/);
    });

    it('reports health and plain-number stats', async () => {
      const queue = make();
      queue.register('h', async () => 1);
      await queue.enqueue('h', null);
      await clock.advance(2_000);
      const before = await queue.health();
      expect(before).toMatchObject({
        ok: true,
        backendReachable: true,
        workerRunning: false,
        oldestQueuedAgeMs: 2_000,
      });
      expect(before.counts.queued).toBe(1);
      await queue.start();
      await eventually(async () => (await queue.health()).counts.succeeded === 1);
      const after = await queue.health();
      expect(after).toMatchObject({ workerRunning: true, oldestQueuedAgeMs: 0 });
      for (const value of Object.values(queue.stats())) expect(typeof value).toBe('number');
    });
  });
}
