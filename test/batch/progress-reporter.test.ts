import type { Clock, TimerHandle } from 'hotpath/core';
import { describe, expect, it } from 'vitest';
import { ProgressReporter } from '../../src/batch/progress-reporter.js';
import type { BatchProgress } from '../../src/batch/types.js';

/** A clock whose timers fire only when the test says (a real timer may fire after its interval). */
function heldClock() {
  let now = 0;
  const timers = new Map<number, () => void>();
  let next = 1;
  const clock: Clock = {
    now: () => now,
    setTimeout: (fn) => {
      timers.set(next, fn);
      return next++ as unknown as TimerHandle;
    },
    clearTimeout: (handle) => {
      timers.delete(handle as unknown as number);
    },
  };
  return {
    clock,
    set: (ms: number) => {
      now = ms;
    },
    fireAll: () => {
      const due = [...timers.values()];
      timers.clear();
      for (const fn of due) fn();
    },
    pending: () => timers.size,
  };
}

describe('ProgressReporter', () => {
  it('a report made at once drops the pending trailing report (no repeat of the same counts)', () => {
    const held = heldClock();
    const reports: BatchProgress[] = [];
    const reporter = new ProgressReporter(
      10,
      (p) => reports.push(p),
      100,
      held.clock,
      () => {},
    );
    reporter.add(1, 0); // t=0: reports at once
    held.set(10);
    reporter.add(1, 0); // within the interval: a trailing report is scheduled
    expect(held.pending()).toBe(1);
    held.set(100);
    reporter.add(1, 0); // the interval has passed and the timer has not fired yet: reports at once
    expect(reports).toEqual([
      { done: 1, total: 10, failed: 0 },
      { done: 3, total: 10, failed: 0 },
    ]);
    expect(held.pending()).toBe(0);
    held.fireAll();
    reporter.finish();
    expect(reports).toHaveLength(2);
  });
});
