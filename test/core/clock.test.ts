import { ManualClock, systemClock } from 'hotpath/core';
import { describe, expect, it } from 'vitest';

describe('ManualClock', () => {
  it('reads and sets the time without firing timers', async () => {
    const clock = new ManualClock(1_000);
    expect(clock.now()).toBe(1_000);
    expect(new ManualClock().now()).toBe(1_700_000_000_000);
    let fired = false;
    clock.setTimeout(() => {
      fired = true;
    }, 10);
    clock.set(5_000);
    expect(clock.now()).toBe(5_000);
    expect(fired).toBe(false);
    // A timer already overdue fires on the next advance; time does not go back to its due time.
    let seenAt = 0;
    clock.setTimeout(() => {
      seenAt = clock.now();
    }, 0);
    await clock.advance(0);
    expect(fired).toBe(true);
    expect(seenAt).toBe(5_000);
  });

  it('fires due timers in time order, ties in creation order, each at its own time', async () => {
    const clock = new ManualClock(0);
    const order: string[] = [];
    const at = (label: string) => () => order.push(`${label}@${clock.now()}`);
    clock.setTimeout(at('c'), 30);
    clock.setTimeout(at('a1'), 10);
    clock.setTimeout(at('a2'), 10);
    clock.setTimeout(at('b'), 20);
    clock.setTimeout(at('late'), 100);
    clock.setTimeout(at('negative'), -5);
    await clock.advance(50);
    expect(order).toEqual(['negative@0', 'a1@10', 'a2@10', 'b@20', 'c@30']);
    expect(clock.now()).toBe(50);
    expect(clock.pendingTimers).toBe(1);
  });

  it('clearTimeout cancels only the timer it names', async () => {
    const clock = new ManualClock(0);
    const fired: number[] = [];
    const first = clock.setTimeout(() => fired.push(1), 10);
    clock.setTimeout(() => fired.push(2), 10);
    clock.clearTimeout(first);
    clock.clearTimeout(999);
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(10);
    expect(fired).toEqual([2]);
  });

  it('lets promise callbacks run between timers, so async code can schedule the next timer in the same advance', async () => {
    const clock = new ManualClock(0);
    const fired: string[] = [];
    clock.setTimeout(async () => {
      fired.push('first');
      for (let i = 0; i < 5; i++) await null;
      clock.setTimeout(() => fired.push('second'), 5);
    }, 10);
    await clock.advance(20);
    expect(fired).toEqual(['first', 'second']);
    expect(clock.pendingTimers).toBe(0);
  });
});

describe('systemClock', () => {
  it('unrefs a timer only when asked, and clearTimeout stops it', async () => {
    const kept = systemClock.setTimeout(() => {}, 1_000) as NodeJS.Timeout;
    const unrefd = systemClock.setTimeout(() => {}, 1_000, { unref: true }) as NodeJS.Timeout;
    expect(kept.hasRef()).toBe(true);
    expect(unrefd.hasRef()).toBe(false);
    systemClock.clearTimeout(kept);
    systemClock.clearTimeout(unrefd);
    let fired = false;
    const cleared = systemClock.setTimeout(() => {
      fired = true;
    }, 1);
    systemClock.clearTimeout(cleared);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(fired).toBe(false);
    expect(Math.abs(systemClock.now() - Date.now())).toBeLessThan(1_000);
  });
});
