/**
 * Recurring jobs of this process. Ticks are stored: each tick fires once across every process that
 * declared the schedule (the backend advances the stored tick and inserts the job in one
 * transaction), none fires twice after a restart, and a tick missed while no process ran fires once.
 * @module
 */
import type { TimerHandle } from '../core/clock.js';
import { sortableId } from '../core/ids.js';
import type { NewJob } from './backend.js';
import { buildJob } from './job-validation.js';
import type { QueueContext } from './queue-options.js';
import type { Recurrence } from './recurrence.js';
import type { ScheduleOptions } from './types.js';

/** A schedule this process declared. */
export interface LocalSchedule {
  name: string;
  recurrence: Recurrence;
  type: string;
  /** JSON of the job data. */
  data: string;
  options: ScheduleOptions;
}

/** What the schedules need from the engine. */
export interface SchedulesHost extends QueueContext {
  /** A tick fired here and enqueued a job of `type`. */
  onFired(type: string): void;
}

/** The recurring jobs this process takes part in, and the timer of the next tick. */
export class Schedules {
  readonly #host: SchedulesHost;
  readonly #local = new Map<string, LocalSchedule>();
  #timer: TimerHandle | undefined;
  #isTicking = false;

  constructor(host: SchedulesHost) {
    this.#host = host;
  }

  /** Takes part in `schedule` (already stored); ticks at once when started. */
  add(schedule: LocalSchedule): void {
    this.#local.set(schedule.name, schedule);
    if (this.#host.isStarted()) this.#arm(0);
  }

  /** Stops taking part in a schedule. */
  delete(name: string): void {
    this.#local.delete(name);
  }

  /** Starts ticking (the worker started). */
  start(): void {
    if (this.#local.size > 0) this.#arm(0);
  }

  /** Stops ticking. */
  stop(): void {
    if (this.#timer !== undefined) this.#host.settings.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(delay: number): void {
    this.stop();
    this.#timer = this.#host.settings.clock.setTimeout(() => void this.#tick(), Math.max(0, delay), { unref: true });
  }

  /** The job one tick of `schedule` due at `dueAt` enqueues. */
  #job(schedule: LocalSchedule, dueAt: number, now: number): NewJob {
    const options = { ...schedule.options, runAt: dueAt };
    const scope = `schedule ${schedule.name}`;
    const job = buildJob(
      schedule.type,
      null,
      options,
      now,
      sortableId(now),
      this.#host.settings.defaultKeyRetentionMs,
      scope,
    );
    job.data = schedule.data;
    return job;
  }

  async #tick(): Promise<void> {
    this.#timer = undefined;
    const host = this.#host;
    const { clock } = host.settings;
    if (!host.isStarted() || this.#isTicking) return;
    this.#isTicking = true;
    // Re-read at least once a minute, so a tick another process moved is seen.
    let nextDelay = 60_000;
    try {
      const rows = await host.backend.getSchedules([...this.#local.keys()]);
      for (const row of rows) {
        const local = this.#local.get(row.name);
        if (local === undefined) continue;
        let nextRunAt = row.nextRunAt;
        const now = clock.now();
        if (nextRunAt <= now) {
          const nextAt = local.recurrence.nextAfter(now);
          const fired = await host.backend.fireSchedule(
            row.name,
            row.nextRunAt,
            nextAt,
            this.#job(local, row.nextRunAt, now),
          );
          if (fired) {
            host.stats.scheduledFired++;
            host.stats.enqueued++;
            host.onFired(local.type);
          }
          nextRunAt = fired ? nextAt : local.recurrence.nextAfter(now);
        }
        nextDelay = Math.min(nextDelay, nextRunAt - clock.now());
      }
    } catch (error) {
      host.onError('schedule tick', error);
      nextDelay = host.settings.pollIntervalMs;
    } finally {
      this.#isTicking = false;
    }
    if (host.isStarted() && this.#local.size > 0) this.#arm(nextDelay);
  }
}
