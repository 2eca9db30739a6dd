import { ManualClock } from 'hotpath/core';
import { describe, expect, it } from 'vitest';
import { clearLongTimeout, MAX_TIMEOUT_MS, setLongTimeout } from '../../src/core/long-timeout.js';

/** A ManualClock that refuses what a Node timer cannot hold, as Node does (it fires after 1 ms). */
class NodeLikeClock extends ManualClock {
  override setTimeout(fn: () => void, ms: number) {
    if (ms > MAX_TIMEOUT_MS) throw new Error(`a Node timer cannot hold ${ms} ms`);
    return super.setTimeout(fn, ms);
  }
}

describe('setLongTimeout', () => {
  it('fires a 3e9 ms timer once, at its time, through timers Node can hold', async () => {
    const clock = new NodeLikeClock();
    let fired = 0;
    setLongTimeout(clock, () => fired++, 3e9);
    await clock.advance(MAX_TIMEOUT_MS);
    expect(fired).toBe(0);
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(3e9 - MAX_TIMEOUT_MS - 1);
    expect(fired).toBe(0);
    await clock.advance(1);
    expect(fired).toBe(1);
    expect(clock.pendingTimers).toBe(0);
  });

  it('clears before and after a link of the chain; Infinity arms nothing; short delays are plain timers', async () => {
    const clock = new NodeLikeClock();
    let fired = 0;
    const early = setLongTimeout(clock, () => fired++, 5e9);
    clearLongTimeout(clock, early);
    const late = setLongTimeout(clock, () => fired++, 5e9);
    await clock.advance(3e9);
    clearLongTimeout(clock, late);
    const never = setLongTimeout(clock, () => fired++, Number.POSITIVE_INFINITY);
    expect(clock.pendingTimers).toBe(0);
    clearLongTimeout(clock, never);
    setLongTimeout(clock, () => fired++, 10);
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(5e9);
    expect(fired).toBe(1);
  });
});
