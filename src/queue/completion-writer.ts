/**
 * Outcomes of runs, written in batches: every outcome decided in one tick goes out in one fenced
 * statement. While the backend is down the batch is kept and retried with the core backoff policy;
 * outcomes stay fenced by token, so a late write is harmless.
 * @module
 */
import { backoffDelay } from '../core/backoff.js';
import type { Completion } from './backend.js';
import type { QueueContext } from './queue-options.js';
import type { RunningJob } from './running-job.js';

/** An outcome waiting to be written. */
export interface PendingCompletion {
  completion: Completion;
  /** The run it ends (undefined for claims handed straight back). */
  job: RunningJob | undefined;
  /** The result or error, for the event fired once the write applied. */
  detail: unknown;
}

/** What the completion writer needs from the engine. */
export interface CompletionWriterHost extends QueueContext {
  /** The write of `entry` finished: `applied` false when its lease had been taken over. */
  onWritten(entry: PendingCompletion, applied: boolean): void;
  /** The queue was closed: stop retrying. */
  isClosed(): boolean;
}

/** Batches outcomes into one write per tick. */
export class CompletionWriter {
  readonly #host: CompletionWriterHost;
  #pending: PendingCompletion[] = [];
  #flushing: Promise<void> | undefined;
  #isFlushScheduled = false;
  #failures = 0;

  constructor(host: CompletionWriterHost) {
    this.#host = host;
  }

  /** Outcomes queued or being written. */
  get isIdle(): boolean {
    return this.#pending.length === 0 && this.#flushing === undefined;
  }

  /** Outcomes queued and not yet handed to the backend. */
  get queued(): number {
    return this.#pending.length;
  }

  /** Queues an outcome; the batch goes out on the next turn of the event loop. */
  push(completion: Completion, job: RunningJob | undefined, detail: unknown): void {
    this.#pending.push({ completion, job, detail });
    if (!this.#isFlushScheduled && this.#flushing === undefined) {
      this.#isFlushScheduled = true;
      setImmediate(() => {
        this.#isFlushScheduled = false;
        void this.flush();
      });
    }
  }

  /** Writes everything queued; resolves once the queue is empty (or the queue was closed). */
  flush(): Promise<void> {
    if (this.#flushing !== undefined) return this.#flushing;
    this.#flushing = this.#flushLoop().finally(() => {
      this.#flushing = undefined;
      if (this.#pending.length > 0 && !this.#host.isClosed()) void this.flush();
    });
    return this.#flushing;
  }

  async #flushLoop(): Promise<void> {
    while (this.#pending.length > 0) {
      const batch = this.#takeOnePerJob();
      let applied: Set<string>;
      try {
        applied = await this.#host.backend.complete(batch.map((entry) => entry.completion));
        this.#failures = 0;
      } catch (error) {
        this.#failures++;
        this.#host.onError('completion write', error);
        this.#pending = batch.concat(this.#pending);
        await new Promise<void>((resolve) => {
          // Unref'd: a backend that stays down must not keep the process alive after close().
          const { clock, backendDownBackoff } = this.#host.settings;
          clock.setTimeout(resolve, backoffDelay(this.#failures, backendDownBackoff), { unref: true });
        });
        if (this.#host.isClosed()) return;
        continue;
      }
      for (const entry of batch) this.#host.onWritten(entry, applied.has(entry.completion.id));
    }
  }

  /**
   * The next statement's outcomes: the first queued one of each job; the others wait for the next
   * statement. Two outcomes of one job can be queued together when a claim was lost in a database
   * crash (claims commit asynchronously) and the job was claimed again with the same token while the
   * first run's outcome waited out the outage. One statement would apply either of them and report
   * both as applied, since the backend answers by id; written one after the other, the second finds
   * the job finished and is reported as not applied.
   */
  #takeOnePerJob(): PendingCompletion[] {
    const pending = this.#pending;
    const batch: PendingCompletion[] = [];
    const later: PendingCompletion[] = [];
    const ids = new Set<string>();
    for (const entry of pending) {
      const id = entry.completion.id;
      if (ids.has(id)) later.push(entry);
      else {
        ids.add(id);
        batch.push(entry);
      }
    }
    this.#pending = later;
    return batch;
  }
}
