/**
 * Property tests (fast-check) for the limiter on a ManualClock: random configurations, arrivals, weights,
 * priorities, aborts and penalties. Each run checks, at every start and after every clock step:
 * - no window of `intervalMs` holds more than `limit` units, no more than `maxConcurrent` run, starts are
 *   `minTimeMs` apart, and nothing starts during a `penalize()` pause;
 * - an aborted waiter never runs, and every waiter that was not aborted runs;
 * - no waiter waits past its bound: once the head of the line could start (even by the most conservative
 *   reading of the window), it has started before the clock moves on.
 * Seeded so CI is repeatable; `PROPERTY_RUNS=500 npx vitest run test/ratelimit/properties.test.ts`
 * runs a longer search.
 */
import fc from 'fast-check';
import { ManualClock, sleep } from 'hotpath/core';
import { RateLimiter } from 'hotpath/ratelimit';
import { describe, expect, it } from 'vitest';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 100);

const configArb = fc.record({
  limit: fc.integer({ min: 1, max: 10 }),
  intervalMs: fc.integer({ min: 10, max: 200 }),
  maxConcurrent: fc.oneof(fc.constant(Number.POSITIVE_INFINITY), fc.integer({ min: 1, max: 4 })),
  minTimeMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 15 })),
});

const stepArb = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('arrive' as const),
      priority: fc.integer({ min: 0, max: 3 }),
      weight: fc.integer({ min: 1, max: 3 }),
      durationMs: fc.integer({ min: 0, max: 50 }),
    }),
  },
  fc.record({ kind: fc.constant('abort' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('penalize' as const), retryAfterMs: fc.integer({ min: 0, max: 300 }) }),
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 40 }) }) },
);

type Step = typeof stepArb extends fc.Arbitrary<infer S> ? S : never;
type Config = typeof configArb extends fc.Arbitrary<infer C> ? C : never;

interface Task {
  seq: number;
  priority: number;
  weight: number;
  state: 'waiting' | 'running' | 'done' | 'aborted';
  controller: AbortController;
}

/** Lets every promise continuation that is already due run (the limiter grants in microtasks). */
async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
  await new Promise<void>((resolve) => setImmediate(resolve));
}

async function runScenario(config: Config, steps: readonly Step[]): Promise<string[]> {
  const clock = new ManualClock();
  const limit = config.limit;
  const limiter = new RateLimiter({ ...config, clock, maxQueued: 10_000 });
  const tasks: Task[] = [];
  const starts: { at: number; weight: number }[] = [];
  const problems: string[] = [];
  const settled: Promise<unknown>[] = [];
  let running = 0;
  let lastStart = Number.NEGATIVE_INFINITY;
  let pausedUntil = Number.NEGATIVE_INFINITY;

  const checkNoneStarvable = () => {
    const now = clock.now();
    const waiting = tasks.filter((task) => task.state === 'waiting');
    if (waiting.length === 0) return;
    const head = waiting.reduce((best, task) =>
      task.priority > best.priority || (task.priority === best.priority && task.seq < best.seq) ? task : best,
    );
    // Conservative: a start exactly `intervalMs` ago still counts, so any boundary reading allows this start.
    const inWindow = starts.filter((s) => s.at >= now - config.intervalMs).reduce((sum, s) => sum + s.weight, 0);
    const couldStart =
      inWindow + Math.min(head.weight, limit) <= limit &&
      running < config.maxConcurrent &&
      now >= pausedUntil + 1 &&
      now >= lastStart + config.minTimeMs + 1;
    if (couldStart) problems.push(`t=${now}: head ${head.seq} (weight ${head.weight}) could start but waits`);
  };

  for (const step of steps) {
    if (step.kind === 'arrive') {
      const task: Task = {
        seq: tasks.length,
        priority: step.priority,
        weight: Math.min(step.weight, limit),
        state: 'waiting',
        controller: new AbortController(),
      };
      tasks.push(task);
      const done = limiter.schedule(
        async () => {
          const now = clock.now();
          if (task.state !== 'waiting') problems.push(`task ${task.seq} started in state ${task.state}`);
          if (now < pausedUntil)
            problems.push(`task ${task.seq} started at ${now} inside a pause until ${pausedUntil}`);
          if (now - lastStart < config.minTimeMs) problems.push(`starts ${now - lastStart} ms apart`);
          running++;
          if (running > config.maxConcurrent) problems.push(`${running} running > ${config.maxConcurrent}`);
          task.state = 'running';
          lastStart = now;
          starts.push({ at: now, weight: task.weight });
          await sleep(step.durationMs, { clock });
          running--;
          task.state = 'done';
        },
        { priority: task.priority, weight: task.weight, signal: task.controller.signal },
      );
      settled.push(
        done.catch((error: unknown) => {
          if (error !== 'aborted') problems.push(`task ${task.seq} failed: ${String(error)}`);
        }),
      );
    } else if (step.kind === 'abort') {
      const waiting = tasks.filter((task) => task.state === 'waiting');
      const victim = waiting[step.pick % Math.max(1, waiting.length)];
      if (victim !== undefined) {
        victim.state = 'aborted';
        victim.controller.abort('aborted');
      }
    } else if (step.kind === 'penalize') {
      limiter.penalize(step.retryAfterMs);
      pausedUntil = Math.max(pausedUntil, clock.now() + step.retryAfterMs);
    } else {
      await clock.advance(step.ms);
    }
    await flush();
    checkNoneStarvable();
  }
  for (let i = 0; i < 5_000 && tasks.some((task) => task.state === 'waiting' || task.state === 'running'); i++) {
    await clock.advance(10);
    await flush();
  }
  await Promise.all(settled);

  const sorted = [...starts].sort((a, b) => a.at - b.at);
  for (let i = 0; i < sorted.length; i++) {
    let units = 0;
    const from = sorted[i]?.at as number;
    for (let j = i; j < sorted.length && (sorted[j]?.at as number) - from < config.intervalMs; j++) {
      units += sorted[j]?.weight as number;
    }
    if (units > limit) problems.push(`${units} units started within ${config.intervalMs} ms of t=${from}`);
  }
  const unfinished = tasks.filter((task) => task.state !== 'done' && task.state !== 'aborted');
  if (unfinished.length > 0) problems.push(`${unfinished.length} tasks never finished`);
  const stats = limiter.stats();
  if (stats.running !== 0 || stats.queued !== 0) problems.push(`stats not idle: ${JSON.stringify(stats)}`);
  console.log('starts', starts.length, 'tasks', tasks.length);
  await limiter.close();
  return problems;
}

describe('RateLimiter properties (fast-check, ManualClock)', () => {
  it('windows, concurrency, spacing, pauses, aborts and liveness hold for random sequences', async () => {
    await fc.assert(
      fc.asyncProperty(
        configArb,
        fc.array(stepArb, { minLength: 10, maxLength: 120, size: 'max' }),
        async (config, steps) => {
          const problems = await runScenario(config, steps);
          expect(problems, JSON.stringify(config)).toEqual([]);
        },
      ),
      { numRuns: RUNS, seed: 20261201 },
    );
  });

  it('regression: a penalty that ends while a heavy head waits for the window does not stall the line', async () => {
    const problems = await runScenario(
      { limit: 3, intervalMs: 50, maxConcurrent: Number.POSITIVE_INFINITY, minTimeMs: 0 },
      [
        { kind: 'arrive', priority: 0, weight: 3, durationMs: 5 },
        { kind: 'penalize', retryAfterMs: 30 },
        { kind: 'arrive', priority: 1, weight: 3, durationMs: 5 },
        { kind: 'advance', ms: 31 },
        { kind: 'advance', ms: 50 },
        { kind: 'advance', ms: 50 },
      ],
    );
    expect(problems).toEqual([]);
  });
});
