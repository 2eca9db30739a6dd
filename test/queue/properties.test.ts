/**
 * Property tests (fast-check) for `JobQueue` on memory and SQLite with a ManualClock: random enqueues
 * (obedient handlers, and stubborn ones that ignore their signal so their lease runs out), cancels,
 * retries, handler outcomes and clock advances past timeouts and leases. After the run:
 * - every job ends in exactly one final state (succeeded, failed or cancelled);
 * - a job's handler never runs more often than its attempts allow (per `retry()` that was accepted);
 * - a succeeded job's result comes from its last-started attempt: a fenced-off (superseded) attempt
 *   that finishes late never completes the job.
 * Seeded; `PROPERTY_RUNS=200` runs a longer search.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { ManualClock } from 'hotpath/core';
import { JobQueue } from 'hotpath/queue';
import { SqliteStorage } from 'hotpath/storage';
import { describe, expect, it } from 'vitest';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 20);
const TIMEOUT_MS = 1_000;
const LEASE_MS = 1_500;

const stepArb = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('enqueue' as const),
      attempts: fc.integer({ min: 1, max: 3 }),
      stubborn: fc.boolean(),
      priority: fc.integer({ min: 0, max: 3 }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('settle' as const), pick: fc.nat(), ok: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cancel' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('retry' as const), pick: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 2_500 }) }),
  },
);
type Step = typeof stepArb extends fc.Arbitrary<infer S> ? S : never;

interface Invocation {
  seq: number;
  jobId: string;
  token: string;
  settle: (ok: boolean) => void;
  settled: boolean;
}

interface JobRecord {
  id: string;
  attempts: number;
  acceptedRetries: number;
}

type Backend = { name: string; open(): { storage: SqliteStorage | undefined; cleanup(): void } };

const BACKENDS: Backend[] = [
  { name: 'memory', open: () => ({ storage: undefined, cleanup: () => {} }) },
  {
    name: 'sqlite',
    open: () => {
      const dir = mkdtempSync(join(tmpdir(), 'hotpath-queue-props-'));
      const storage = new SqliteStorage({ filename: join(dir, 'q.db') });
      return { storage, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
    },
  },
];

/** Moves the manual clock in small steps with a real pause between them, so storage round trips keep up. */
async function walk(clock: ManualClock, ms: number, stepMs = 100): Promise<void> {
  for (let left = ms; left > 0; left -= stepMs) {
    await clock.advance(Math.min(stepMs, left));
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await new Promise((resolve) => setTimeout(resolve, 1));
}

async function runScenario(backend: Backend, steps: readonly Step[]): Promise<string[]> {
  const { storage, cleanup } = backend.open();
  const clock = new ManualClock();
  const queue = new JobQueue({
    storage,
    clock,
    concurrency: 2,
    pollIntervalMs: 50,
    leaseMs: LEASE_MS,
    stallGraceMs: 500,
    defaults: { timeoutMs: TIMEOUT_MS, backoff: { baseDelayMs: 0, maxDelayMs: 0 } },
  });
  const problems: string[] = [];
  const invocations: Invocation[] = [];
  const jobs: JobRecord[] = [];
  queue.register('prop', async (data, job) => {
    const { stubborn } = data as { stubborn: boolean };
    const invocation: Invocation = {
      seq: invocations.length,
      jobId: job.id,
      token: `${job.id}#${invocations.length}`,
      settle: () => {},
      settled: false,
    };
    invocations.push(invocation);
    return new Promise<string>((resolve, reject) => {
      invocation.settle = (ok) => {
        if (invocation.settled) return;
        invocation.settled = true;
        if (ok) resolve(invocation.token);
        else reject(new Error(`attempt ${invocation.token} failed`));
      };
      if (!stubborn) {
        job.signal.addEventListener('abort', () => invocation.settle(false), { once: true });
      }
    });
  });
  await queue.start();
  try {
    for (const step of steps) {
      if (step.kind === 'enqueue') {
        const id = await queue.enqueue(
          'prop',
          { stubborn: step.stubborn },
          { attempts: step.attempts, priority: step.priority },
        );
        jobs.push({ id, attempts: step.attempts, acceptedRetries: 0 });
      } else if (step.kind === 'settle') {
        const open = invocations.filter((invocation) => !invocation.settled);
        open[step.pick % Math.max(1, open.length)]?.settle(step.ok);
      } else if (step.kind === 'cancel') {
        const job = jobs[step.pick % Math.max(1, jobs.length)];
        if (job !== undefined) await queue.cancel(job.id);
      } else if (step.kind === 'retry') {
        const job = jobs[step.pick % Math.max(1, jobs.length)];
        if (job !== undefined && (await queue.retry(job.id))) job.acceptedRetries++;
      } else {
        await walk(clock, step.ms);
      }
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    // Drain: every handler settles; time moves until every job is final.
    const isFinal = (status: string | undefined) =>
      status === 'succeeded' || status === 'failed' || status === 'cancelled';
    for (let round = 0; round < 400; round++) {
      for (const invocation of invocations) invocation.settle(true);
      const statuses = await Promise.all(jobs.map(async (job) => (await queue.get(job.id))?.status));
      if (statuses.every(isFinal)) break;
      await walk(clock, 200);
    }

    for (const job of jobs) {
      const info = await queue.get(job.id);
      if (info === undefined) {
        problems.push(`job ${job.id} vanished`);
        continue;
      }
      if (!isFinal(info.status)) problems.push(`job ${job.id} ended ${info.status}`);
      const runs = invocations.filter((invocation) => invocation.jobId === job.id);
      const allowed = job.attempts * (1 + job.acceptedRetries);
      if (runs.length > allowed) problems.push(`job ${job.id} ran ${runs.length} times, attempts allow ${allowed}`);
      if (info.status === 'succeeded') {
        const last = runs.at(-1);
        if (info.result !== last?.token) {
          problems.push(`job ${job.id} completed by ${String(info.result)}, but its last attempt was ${last?.token}`);
        }
      }
    }
  } finally {
    for (const invocation of invocations) invocation.settle(true);
    await queue.close();
    await storage?.close();
    cleanup();
  }
  return problems;
}

describe.each(BACKENDS)('JobQueue properties on $name (fast-check, ManualClock)', (backend) => {
  it('one final state per job, attempts within bounds, fenced attempts never complete', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 3, maxLength: 30, size: 'max' }), async (steps) => {
        const problems = await runScenario(backend, steps);
        expect(problems).toEqual([]);
      }),
      { numRuns: RUNS, seed: 20261201 },
    );
  });

  it('regression: a stubborn attempt past its lease finishes late and does not complete the re-run job', async () => {
    const problems = await runScenario(backend, [
      { kind: 'enqueue', attempts: 2, stubborn: true, priority: 0 },
      { kind: 'advance', ms: 2_500 },
      { kind: 'advance', ms: 2_500 },
      { kind: 'settle', pick: 0, ok: true },
      { kind: 'settle', pick: 0, ok: true },
    ]);
    expect(problems).toEqual([]);
  });
});
