/**
 * The timers of a run: its `timeoutMs`, and the stall report of a handler that keeps running
 * `stallGraceMs` after its signal was aborted (its slot stays taken until it settles).
 * @module
 */
import type { QueueContext } from './queue-options.js';
import type { RunningJob } from './running-job.js';

/** What the watchdog needs from the engine. */
export interface RunWatchdogHost extends QueueContext {
  /** The run hit its time limit (its signal is not aborted yet). */
  onTimeout(job: RunningJob, timeoutMs: number): void;
  /** The handler ignored its aborted signal for `stallGraceMs`. */
  onStalled(job: RunningJob, reason: unknown): void;
}

/** Arms and clears the per-run timers. */
export class RunWatchdog {
  readonly #host: RunWatchdogHost;

  constructor(host: RunWatchdogHost) {
    this.#host = host;
  }

  /** Arms the run's time limit (none when undefined). */
  arm(job: RunningJob, timeoutMs: number | undefined): void {
    if (timeoutMs === undefined) return;
    job.timeoutTimer = this.#host.settings.clock.setTimeout(
      () => {
        job.timeoutTimer = undefined;
        if (!job.isSettled && !job.isFinalized) this.#host.onTimeout(job, timeoutMs);
      },
      timeoutMs,
      { unref: true },
    );
  }

  /** Aborts the run's signal and reports it stalled if its handler has not settled `stallGraceMs` later. */
  abort(job: RunningJob, reason: unknown): void {
    job.abort(reason);
    if (job.isSettled || job.stallTimer !== undefined) return;
    const { clock, logger, stallGraceMs } = this.#host.settings;
    job.stallTimer = clock.setTimeout(
      () => {
        job.stallTimer = undefined;
        if (job.isSettled) return;
        job.stallReported = true;
        this.#host.stats.stalled++;
        logger.warn(
          { jobId: job.id, type: job.type, attempt: job.attempt, graceMs: stallGraceMs },
          'JobQueue: handler ignores its aborted signal; its slot stays taken until it settles',
        );
        this.#host.onStalled(job, reason);
      },
      stallGraceMs,
      { unref: true },
    );
  }

  /** The handler settled: clears both timers. */
  disarm(job: RunningJob): void {
    const { clock, logger } = this.#host.settings;
    if (job.timeoutTimer !== undefined) clock.clearTimeout(job.timeoutTimer);
    if (job.stallTimer !== undefined) clock.clearTimeout(job.stallTimer);
    job.timeoutTimer = undefined;
    job.stallTimer = undefined;
    if (job.stallReported) logger.info({ jobId: job.id, type: job.type }, 'JobQueue: stalled handler settled at last');
  }
}
