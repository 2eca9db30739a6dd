/**
 * Timers of any length on any {@link Clock}. Node's `setTimeout` holds at most 2^31−1 ms (~24.8 days);
 * a longer delay fires after 1 ms with a `TimeoutOverflowWarning`, so a limiter paused for 3e9 ms would
 * re-arm a 1 ms timer in a loop. These helpers chain timers of at most that length instead.
 * @module
 */
import type { Clock, TimerHandle } from './clock.js';

/** Longest delay one Node timer holds, in ms (2^31−1, about 24.8 days). */
export const MAX_TIMEOUT_MS = 2_147_483_647;

/** A chain of timers standing for one long delay; re-armed until its due time has come. */
class LongTimeout {
  handle: TimerHandle | undefined;
  constructor(
    readonly clock: Clock,
    readonly fn: () => void,
    readonly dueAt: number,
    readonly unref: boolean,
  ) {}

  arm(): void {
    const leftMs = this.dueAt - this.clock.now();
    if (leftMs <= MAX_TIMEOUT_MS) {
      this.handle = this.clock.setTimeout(this.fn, Math.max(0, leftMs), { unref: this.unref });
      return;
    }
    this.handle = this.clock.setTimeout(() => this.arm(), MAX_TIMEOUT_MS, { unref: this.unref });
  }
}

/**
 * Calls `fn` after `ms` milliseconds on `clock`, however long `ms` is. Delays up to
 * {@link MAX_TIMEOUT_MS} cost exactly one `clock.setTimeout` (no allocation of ours); longer ones
 * chain timers; `Infinity` arms nothing and never fires.
 * @returns a handle for {@link clearLongTimeout}.
 */
export function setLongTimeout(clock: Clock, fn: () => void, ms: number, options?: { unref?: boolean }): TimerHandle {
  if (!(ms > MAX_TIMEOUT_MS)) return clock.setTimeout(fn, Math.max(0, ms), options);
  const timer = new LongTimeout(clock, fn, clock.now() + ms, options?.unref === true);
  if (ms !== Number.POSITIVE_INFINITY) timer.arm();
  return timer;
}

/** Cancels a timer made by {@link setLongTimeout}; unknown handles are ignored. */
export function clearLongTimeout(clock: Clock, handle: TimerHandle): void {
  if (handle instanceof LongTimeout) {
    if (handle.handle !== undefined) clock.clearTimeout(handle.handle);
    handle.handle = undefined;
    return;
  }
  clock.clearTimeout(handle);
}
