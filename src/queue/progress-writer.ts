/**
 * Progress writes of running jobs, throttled: at most one write per `progressIntervalMs` and one in
 * flight per run; the last report of a run is written before its final status (a progress write after
 * it would be fenced out).
 * @module
 */
import type { QueueContext } from './queue-options.js';
import type { RunningJob } from './running-job.js';
import type { JobProgress } from './types.js';

/** What the progress writer needs from the engine. */
export interface ProgressWriterHost extends QueueContext {
  /** A write found the lease taken over. */
  onLeaseLost(job: RunningJob): void;
}

/** Throttled progress writes of this process's runs. */
export class ProgressWriter {
  readonly #host: ProgressWriterHost;

  constructor(host: ProgressWriterHost) {
    this.#host = host;
  }

  /** Records a report; it is written now or at the end of the current interval. */
  report(job: RunningJob, progress: JobProgress): void {
    job.progressState.unwritten = progress;
    this.#schedule(job);
  }

  /** Whether the run has a report not yet written (or a write in flight). */
  hasPending(job: RunningJob): boolean {
    return job.progressState.unwritten !== undefined || job.progressState.writing !== undefined;
  }

  /** Writes the run's last report now (after the write in flight). */
  writeFinal(job: RunningJob): Promise<void> {
    return this.#write(job, true);
  }

  /** Drops the throttle timer of a run whose outcome was decided. */
  cancelTimer(job: RunningJob): void {
    const state = job.progressState;
    if (state.timer !== undefined) {
      this.#host.settings.clock.clearTimeout(state.timer);
      state.timer = undefined;
    }
  }

  #schedule(job: RunningJob): void {
    const state = job.progressState;
    if (job.isFinalized || state.unwritten === undefined) return;
    if (state.writing !== undefined || state.timer !== undefined) return;
    const { clock, progressIntervalMs } = this.#host.settings;
    const wait = state.lastWriteAt + progressIntervalMs - clock.now();
    if (wait <= 0) {
      void this.#write(job, false);
      return;
    }
    state.timer = clock.setTimeout(
      () => {
        state.timer = undefined;
        void this.#write(job, false);
      },
      wait,
      { unref: true },
    );
  }

  async #write(job: RunningJob, isFinal: boolean): Promise<void> {
    const state = job.progressState;
    while (state.writing !== undefined) await state.writing;
    const progress = state.unwritten;
    if (progress === undefined || (job.isFinalized && !isFinal)) return;
    state.unwritten = undefined;
    state.lastWriteAt = this.#host.settings.clock.now();
    const writing = this.#host.backend
      .progress(job, progress.done, progress.total ?? null, progress.stage ?? null)
      .then(
        (held) => {
          if (!held && !job.isFinalized) this.#host.onLeaseLost(job);
        },
        (error: unknown) => this.#host.onError('progress write', error),
      )
      .finally(() => {
        state.writing = undefined;
      });
    state.writing = writing;
    await writing;
    if (!isFinal) this.#schedule(job);
  }
}
