/**
 * The queue's background upkeep: one heartbeat timer per worker that renews the leases of every run
 * (and hears of cancels requested elsewhere), and the maintenance timer that takes back expired
 * leases of dead workers and sweeps finished jobs past their retention.
 * @module
 */
import type { TimerHandle } from '../core/clock.js';
import { errorJson } from './job-validation.js';
import type { QueueContext } from './queue-options.js';
import type { RunningJob } from './running-job.js';

/** Jobs deleted per sweep statement: keeps each delete short so it never holds the write lock long. */
const SWEEP_BATCH = 1_000;

/** What maintenance needs from the engine. */
export interface MaintenanceHost extends QueueContext {
  /** Runs of this process whose outcome is still open. */
  openRuns(): RunningJob[];
  /** The lease of run `id` was found taken over. */
  onLeaseLost(id: string): void;
  /** Cancellation of run `id` was requested by another process. */
  onCancelRequested(id: string): void;
  /** Expired leases were taken back: there is work to claim. */
  onReaped(): void;
  /** Leases still need renewing (started, or stopping with runs left). */
  needsHeartbeat(): boolean;
}

/** Heartbeat, lease reaper and retention sweep of one worker. */
export class Maintenance {
  readonly #host: MaintenanceHost;
  #heartbeatTimer: TimerHandle | undefined;
  #maintenanceTimer: TimerHandle | undefined;
  #lastSweepAt = Number.NEGATIVE_INFINITY;

  constructor(host: MaintenanceHost) {
    this.#host = host;
  }

  /** Starts the heartbeat and runs maintenance now. */
  start(): void {
    this.#armHeartbeat();
    this.#armMaintenance(0);
  }

  /** Stops reaping and sweeping (the heartbeat goes on while runs are left). */
  stopMaintenance(): void {
    this.#clear(this.#maintenanceTimer);
    this.#maintenanceTimer = undefined;
  }

  /** Stops the heartbeat (the last runs were written). */
  stopHeartbeat(): void {
    this.#clear(this.#heartbeatTimer);
    this.#heartbeatTimer = undefined;
  }

  #clear(timer: TimerHandle | undefined): void {
    if (timer !== undefined) this.#host.settings.clock.clearTimeout(timer);
  }

  #armHeartbeat(): void {
    const { clock, heartbeatMs } = this.#host.settings;
    this.#heartbeatTimer = clock.setTimeout(() => void this.#heartbeat(), heartbeatMs, { unref: true });
  }

  async #heartbeat(): Promise<void> {
    this.#heartbeatTimer = undefined;
    const host = this.#host;
    const { clock, leaseMs } = host.settings;
    const runs = host.openRuns();
    if (runs.length > 0) {
      try {
        const { lost, cancelRequested } = await host.backend.renew(runs, clock.now() + leaseMs);
        for (const id of lost) host.onLeaseLost(id);
        for (const id of cancelRequested) host.onCancelRequested(id);
      } catch (error) {
        host.onError('heartbeat', error);
      }
    }
    if (host.needsHeartbeat()) this.#armHeartbeat();
  }

  #armMaintenance(delay: number): void {
    this.#clear(this.#maintenanceTimer);
    this.#maintenanceTimer = this.#host.settings.clock.setTimeout(() => void this.#maintain(), delay, { unref: true });
  }

  async #maintain(): Promise<void> {
    this.#maintenanceTimer = undefined;
    const host = this.#host;
    const { clock, defaultAttempts, sweepIntervalMs, resultTtlMs, leaseMs } = host.settings;
    if (!host.isStarted()) return;
    const now = clock.now();
    try {
      const reaped = await host.backend.reap(
        now,
        defaultAttempts,
        errorJson(new Error('lease expired: the worker running this job died or hung')),
      );
      if (reaped > 0) {
        host.stats.reaped += reaped;
        host.settings.logger.info(
          { reaped, workerId: host.settings.workerId },
          'JobQueue: took back jobs whose lease expired',
        );
        host.onReaped();
      }
      if (now - this.#lastSweepAt >= sweepIntervalMs) {
        this.#lastSweepAt = now;
        for (;;) {
          const swept = await host.backend.sweep(now, now - resultTtlMs, SWEEP_BATCH);
          host.stats.swept += swept;
          if (swept < SWEEP_BATCH || !host.isStarted()) break;
        }
      }
    } catch (error) {
      host.onError('maintenance', error);
    }
    // Expired leases are looked for twice per lease period, so a dead worker's jobs wait at most 1.5 leases.
    if (host.isStarted()) this.#armMaintenance(Math.min(leaseMs / 2, sweepIntervalMs));
  }
}
