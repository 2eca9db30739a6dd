/**
 * What an applied outcome means to the outside: the counters of `stats()`, the `completed` / `failed` /
 * `cancelled` events (each with the attempt's `waitMs` and `runMs`), and the log lines.
 * @module
 */
import type { Completion } from './backend.js';
import type { QueueContext } from './queue-options.js';
import type { RunningJob } from './running-job.js';
import type { JobQueueEvents } from './types.js';

/** The queue's event side, as the outcome reporter sees it. */
export interface OutcomeEvents {
  /** Whether anyone listens (payloads are built only then). */
  listens(event: keyof JobQueueEvents): boolean;
  emit<E extends keyof JobQueueEvents>(event: E, ...args: JobQueueEvents[E]): void;
}

/** Counts an outcome whose write applied and fires its event (built only when someone listens). */
export function reportOutcome(
  events: OutcomeEvents,
  context: QueueContext,
  job: RunningJob,
  completion: Completion,
  detail: unknown,
): void {
  const stats = context.stats;
  switch (completion.kind) {
    case 'succeeded':
      stats.succeeded++;
      if (events.listens('completed')) events.emit('completed', job.info, detail);
      break;
    case 'retry':
      stats.failedAttempts++;
      stats.retried++;
      if (events.listens('failed')) events.emit('failed', job.info, detail, true);
      break;
    case 'failed':
      stats.failedAttempts++;
      stats.failed++;
      context.settings.logger.warn(
        { jobId: job.id, type: job.type, attempt: job.attempt, err: detail },
        'JobQueue: job failed',
      );
      if (events.listens('failed')) events.emit('failed', job.info, detail, false);
      break;
    case 'cancelled':
      stats.cancelled++;
      events.emit('cancelled', job.info);
      break;
    case 'released':
      stats.released++;
      break;
  }
}

/** Counts and logs a run whose lease another worker took over (its outcome no longer counts). */
export function warnLeaseLost(context: QueueContext, job: RunningJob, what: string): void {
  context.stats.leasesLost++;
  context.settings.logger.warn(
    { jobId: job.id, type: job.type, attempt: job.attempt, workerId: context.settings.workerId },
    `JobQueue: lease was lost ${what}`,
  );
}
