/**
 * A minimal real limiter for the feedback tests until hotpath's RateLimiter is wired in here: it
 * pauses every acquire while penalised, counts acquires, and records what the client fed back.
 */
import type { ClientRateLimiter, LimiterAcquireOptions } from 'hotpath/client';
import { type Clock, sleep } from 'hotpath/core';

export class PausingLimiter implements ClientRateLimiter {
  acquired = 0;
  released = 0;
  readonly penalties: number[] = [];
  readonly remainingUpdates: Array<[number, number]> = [];
  #pausedUntil = Number.NEGATIVE_INFINITY;

  constructor(private readonly clock: Clock) {}

  async acquire(options: LimiterAcquireOptions = {}): Promise<() => void> {
    for (;;) {
      const waitMs = this.#pausedUntil - this.clock.now();
      if (waitMs <= 0) break;
      await sleep(waitMs, { signal: options.signal, clock: this.clock });
    }
    this.acquired++;
    return () => {
      this.released++;
    };
  }

  penalize(retryAfterMs: number): void {
    this.penalties.push(retryAfterMs);
    this.#pausedUntil = Math.max(this.#pausedUntil, this.clock.now() + retryAfterMs);
  }

  updateRemaining(remaining: number, resetInMs: number): void {
    this.remainingUpdates.push([remaining, resetInMs]);
  }
}
