import { ManualClock, sleep } from 'hotpath/core';
import { RateLimiter } from 'hotpath/ratelimit';
import { describe, expect, it } from 'vitest';

function prng(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

interface Task {
  seq: number;
  priority: number;
  weight: number;
  state: 'waiting' | 'running' | 'done' | 'aborted';
  startedAt: number;
  controller: AbortController;
}

/**
 * Random configurations, arrivals, durations and aborts on a ManualClock; every start is checked against
 * every rule at the moment it happens, and every task that was not aborted must start.
 */
describe('RateLimiter invariants under random workloads', () => {
  for (let seed = 1; seed <= 24; seed++) {
    it(`seed ${seed}`, async () => {
      const random = prng(seed * 7919);
      const clock = new ManualClock();
      const limit = 1 + Math.floor(random() * 12);
      const intervalMs = 20 + Math.floor(random() * 200);
      const maxConcurrent = random() < 0.5 ? Number.POSITIVE_INFINITY : 1 + Math.floor(random() * 5);
      const minTimeMs = random() < 0.6 ? 0 : Math.floor(random() * 15);
      const config = { limit, intervalMs, maxConcurrent, minTimeMs };
      const limiter = new RateLimiter({ ...config, clock, maxQueued: 10_000 });
      const tasks: Task[] = [];
      const starts: { at: number; weight: number }[] = [];
      const problems: string[] = [];
      let running = 0;
      let lastStart = Number.NEGATIVE_INFINITY;
      const settled: Promise<unknown>[] = [];

      const submit = () => {
        const task: Task = {
          seq: tasks.length,
          priority: Math.floor(random() * 4),
          weight: 1 + Math.floor(random() * Math.min(3, limit)),
          state: 'waiting',
          startedAt: Number.NaN,
          controller: new AbortController(),
        };
        tasks.push(task);
        const durationMs = Math.floor(random() * 60);
        const done = limiter.schedule(
          async () => {
            const now = clock.now();
            // Head of the line: nobody waiting may outrank the task that starts.
            for (const other of tasks) {
              if (other === task || other.state !== 'waiting') continue;
              if (other.priority > task.priority || (other.priority === task.priority && other.seq < task.seq)) {
                problems.push(`task ${task.seq} started before higher-ranked waiter ${other.seq}`);
              }
            }
            if (task.state !== 'waiting') problems.push(`task ${task.seq} started in state ${task.state}`);
            if (now - lastStart < minTimeMs) problems.push(`starts ${now - lastStart} ms apart < ${minTimeMs}`);
            running++;
            if (running > maxConcurrent) problems.push(`${running} running > ${maxConcurrent}`);
            task.state = 'running';
            task.startedAt = now;
            lastStart = now;
            starts.push({ at: now, weight: task.weight });
            await sleep(durationMs, { clock });
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
      };

      for (let step = 0; step < 60; step++) {
        const arrivals = Math.floor(random() * 5);
        for (let i = 0; i < arrivals; i++) submit();
        if (random() < 0.3) {
          const waiting = tasks.filter((task) => task.state === 'waiting');
          const victim = waiting[Math.floor(random() * waiting.length)];
          if (victim !== undefined) {
            victim.state = 'aborted';
            victim.controller.abort('aborted');
          }
        }
        await clock.advance(Math.floor(random() * 30));
      }
      for (let i = 0; i < 5000 && tasks.some((task) => task.state === 'waiting' || task.state === 'running'); i++) {
        await clock.advance(10);
      }
      await Promise.all(settled);

      // The window, checked on the recorded start times: [t_i, t_i + intervalMs) holds at most `limit` units.
      const sorted = [...starts].sort((a, b) => a.at - b.at);
      for (let i = 0; i < sorted.length; i++) {
        let units = 0;
        for (let j = i; j < sorted.length && (sorted[j]?.at as number) - (sorted[i]?.at as number) < intervalMs; j++) {
          units += sorted[j]?.weight as number;
        }
        if (units > limit) problems.push(`${units} units started within ${intervalMs} ms of t=${sorted[i]?.at}`);
      }
      expect(problems, JSON.stringify(config)).toEqual([]);
      expect(tasks.filter((task) => task.state !== 'done' && task.state !== 'aborted')).toEqual([]);
      const stats = limiter.stats();
      expect(stats.started).toBe(starts.length);
      expect(stats.done + stats.aborted).toBe(tasks.length);
      expect(stats).toMatchObject({ running: 0, queued: 0, queuedWeight: 0 });
      expect(clock.pendingTimers).toBe(0);
    });
  }
});
