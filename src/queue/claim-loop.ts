/**
 * The claim loop (graphile-worker's "local queue"): whenever slots are free it claims a batch of ready
 * jobs of the registered types in one round trip and hands each to the engine to run. Idle, it sleeps
 * until woken (a new job here, a NOTIFY, a freed slot) or until the poll interval / next delayed job.
 * @module
 */
import { backoffDelay } from '../core/backoff.js';
import type { TimerHandle } from '../core/clock.js';
import type { ClaimedJob } from './backend.js';
import type { QueueContext } from './queue-options.js';

/** What the claim loop needs from the engine. */
export interface ClaimLoopHost extends QueueContext {
  /** Job types this process runs. */
  types(): readonly string[];
  /** Concurrency slots free now. */
  freeSlots(): number;
  /** Runs a claimed job (takes a slot). */
  run(job: ClaimedJob): void;
  /** Hands claimed jobs straight back (claimed while stopping). */
  handBack(jobs: readonly ClaimedJob[]): void;
}

/** Fills free slots with claimed jobs. */
export class ClaimLoop {
  readonly #host: ClaimLoopHost;
  #isPumping = false;
  #pumpAgain = false;
  #isScheduled = false;
  #pollTimer: TimerHandle | undefined;
  #failures = 0;

  constructor(host: ClaimLoopHost) {
    this.#host = host;
  }

  /** Claims soon (next turn of the event loop); many wakes in one tick make one claim. */
  wake(): void {
    if (!this.#host.isStarted()) return;
    if (this.#isPumping) {
      this.#pumpAgain = true;
      return;
    }
    if (this.#isScheduled) return;
    // Slots freed by one completion batch all wake the pump in the same tick: one claim fills them all.
    this.#isScheduled = true;
    setImmediate(() => {
      this.#isScheduled = false;
      if (!this.#isPumping) void this.#pump();
      else this.#pumpAgain = true;
    });
  }

  /** Drops the idle timer (stop or close). */
  stop(): void {
    if (this.#pollTimer !== undefined) this.#host.settings.clock.clearTimeout(this.#pollTimer);
    this.#pollTimer = undefined;
  }

  async #pump(): Promise<void> {
    const host = this.#host;
    const { clock, claimBatchSize, leaseMs, agingMs, workerId, pollIntervalMs } = host.settings;
    this.#isPumping = true;
    this.stop();
    let idleDelay: number | undefined;
    try {
      do {
        this.#pumpAgain = false;
        idleDelay = undefined;
        while (host.isStarted() && host.freeSlots() > 0 && host.types().length > 0) {
          const limit = Math.min(host.freeSlots(), claimBatchSize);
          const now = clock.now();
          let jobs: ClaimedJob[];
          try {
            const request = { types: host.types(), limit, now, leaseUntil: now + leaseMs, agingMs, workerId };
            jobs = await host.backend.claim(request);
            this.#failures = 0;
          } catch (error) {
            this.#failures++;
            host.onError('claim', error);
            // Back off while the backend is down (reconnects happen in the driver).
            idleDelay = backoffDelay(this.#failures, host.settings.backendDownBackoff);
            break;
          }
          if (!host.isStarted()) {
            host.handBack(jobs);
            break;
          }
          for (const job of jobs) host.run(job);
          if (jobs.length < limit) {
            if (host.backend.nextRunAt) {
              // The memory backend hears of every new job in-process: no polling, only a timer for the next delayed job.
              const next = await host.backend.nextRunAt(host.types());
              if (next !== undefined) idleDelay = Math.max(0, next - clock.now());
            } else {
              idleDelay = pollIntervalMs;
            }
            break;
          }
        }
      } while (this.#pumpAgain && host.isStarted());
    } catch (error) {
      host.onError('claim loop', error);
      idleDelay = pollIntervalMs;
    } finally {
      this.#isPumping = false;
    }
    if (!host.isStarted()) return;
    if (this.#pumpAgain) {
      this.wake();
    } else if (idleDelay !== undefined || host.freeSlots() <= 0) {
      // When all slots are busy, the next free slot wakes the pump; the timer is only a safety net.
      this.#pollTimer = clock.setTimeout(() => this.wake(), idleDelay ?? pollIntervalMs, { unref: true });
    }
  }
}
