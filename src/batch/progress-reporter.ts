/**
 * Throttled progress for one run: the first completion reports at once, later ones at most every
 * `intervalMs`, a trailing report catches the last change of a quiet spell, and `finish()` always
 * reports the final counts unless the last report already did. Without a listener every call is a counter increment.
 * @module
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import type { BatchProgress } from './types.js';

/** @internal */
export class ProgressReporter {
  done = 0;
  failed = 0;
  readonly #total: number | undefined;
  readonly #listener: ((progress: BatchProgress) => void) | undefined;
  readonly #intervalMs: number;
  readonly #clock: Clock;
  readonly #onListenerError: (error: unknown) => void;
  #lastReportAt = Number.NEGATIVE_INFINITY;
  /** `done` at the last report, so `finish()` does not repeat a report the last `add` already made. */
  #reportedDone = -1;
  #trailing: TimerHandle | undefined;
  #isFinished = false;

  constructor(
    total: number | undefined,
    listener: ((progress: BatchProgress) => void) | undefined,
    intervalMs: number,
    clock: Clock,
    onListenerError: (error: unknown) => void,
  ) {
    this.#onListenerError = onListenerError;
    this.#total = total;
    this.#listener = listener;
    this.#intervalMs = intervalMs;
    this.#clock = clock;
  }

  /** Counts `count` finished items, `failedCount` of them failed. */
  add(count: number, failedCount: number): void {
    this.done += count;
    this.failed += failedCount;
    if (this.#listener === undefined || this.#isFinished) return;
    const now = this.#clock.now();
    if (now - this.#lastReportAt >= this.#intervalMs) {
      this.#report(now);
    } else if (this.#trailing === undefined) {
      this.#trailing = this.#clock.setTimeout(
        () => {
          this.#trailing = undefined;
          if (!this.#isFinished) this.#report(this.#clock.now());
        },
        this.#lastReportAt + this.#intervalMs - now,
        { unref: true },
      );
    }
  }

  /** Reports the final counts (once) and drops the trailing timer. */
  finish(): void {
    if (this.#isFinished) return;
    this.#isFinished = true;
    if (this.#trailing !== undefined) this.#clock.clearTimeout(this.#trailing);
    this.#trailing = undefined;
    // The last item may have reported the final counts already (its interval had passed): once is enough.
    if (this.#listener !== undefined && this.#reportedDone !== this.done) this.#report(this.#clock.now());
  }

  #report(now: number): void {
    // A trailing report still pending would repeat these counts (a timer can fire after its interval).
    if (this.#trailing !== undefined) this.#clock.clearTimeout(this.#trailing);
    this.#trailing = undefined;
    this.#lastReportAt = now;
    this.#reportedDone = this.done;
    // A throwing listener must not fail the run (progress is advisory); the owner counts and logs it.
    try {
      this.#listener?.({ done: this.done, total: this.#total, failed: this.failed });
    } catch (error) {
      this.#onListenerError(error);
    }
  }
}
