/**
 * Who waits for what: `wait(id)` callers watching a job (woken by a local outcome, else they poll),
 * and shutdown waiting for every run to drain. Bounded, so `wait()` callers cannot grow memory.
 * @module
 */
import { abortReason } from '../core/abort.js';
import type { Clock } from '../core/clock.js';
import { ConfigError, JobCancelledError, TimeoutError } from '../core/errors.js';
import type { QueueBackend } from './backend.js';
import { failedError, parseJson } from './job-info.js';
import type { QueueSettings } from './queue-options.js';

/** Pending waiters in all, so `wait()` callers cannot grow memory without bound. */
const MAX_WAITERS = 100_000;

/** One `wait()` round: fired by a local notification, or times out (then the caller polls again). */
export class Watch {
  readonly #clock: Clock;
  #isFired = false;
  #resolve: (() => void) | undefined;
  onCancel: (() => void) | undefined;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  fire(): void {
    this.#isFired = true;
    this.#resolve?.();
  }

  /** Resolves when fired or after `ms`; rejects with the signal's reason when aborted. */
  wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
    if (this.#isFired) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        this.#clock.clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#resolve = undefined;
      };
      const onAbort = () => {
        done();
        reject(abortReason(signal as AbortSignal));
      };
      this.#resolve = () => {
        done();
        resolve();
      };
      const timer = this.#clock.setTimeout(() => this.#resolve?.(), ms, { unref: true });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  cancel(): void {
    this.onCancel?.();
    this.onCancel = undefined;
  }
}

/** `wait(id)` callers per job id. */
export class JobWaiters {
  readonly #clock: Clock;
  readonly #byId = new Map<string, Set<() => void>>();
  #count = 0;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Whether anyone waits (cheap check before `notify`). */
  get isEmpty(): boolean {
    return this.#byId.size === 0;
  }

  /** Registers interest in a change of job `id`; its `wait` resolves at once if it already happened. */
  watch(id: string): Watch {
    const watch = new Watch(this.#clock);
    if (this.#count >= MAX_WAITERS) return watch; // too many to track: this one just polls
    let set = this.#byId.get(id);
    if (set === undefined) {
      set = new Set();
      this.#byId.set(id, set);
    }
    const wake = () => watch.fire();
    set.add(wake);
    this.#count++;
    watch.onCancel = () => {
      const current = this.#byId.get(id);
      if (current?.delete(wake)) {
        this.#count--;
        if (current.size === 0) this.#byId.delete(id);
      }
    };
    return watch;
  }

  /** Wakes the waiters of job `id` (each watch removes itself when its round ends). */
  notify(id: string): void {
    const waiters = this.#byId.get(id);
    if (waiters === undefined) return;
    for (const wake of waiters) wake();
  }

  /** Wakes everyone (close). */
  wakeAll(): void {
    for (const waiters of this.#byId.values()) for (const wake of waiters) wake();
    this.#byId.clear();
    this.#count = 0;
  }
}

/** Shutdown waiting for every run to be finalized and written. */
export class DrainWaiters {
  readonly #clock: Clock;
  readonly #isDrained: () => boolean;
  readonly #waiting = new Set<() => void>();

  constructor(clock: Clock, isDrained: () => boolean) {
    this.#clock = clock;
    this.#isDrained = isDrained;
  }

  /** Resolves once drained, or after `ms`. */
  wait(ms: number): Promise<void> {
    if (this.#isDrained()) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        this.#clock.clearTimeout(timer);
        this.#waiting.delete(done);
        resolve();
      };
      const timer = this.#clock.setTimeout(done, Math.max(0, ms));
      this.#waiting.add(done);
    });
  }

  /** Call after anything that may have drained the runs. */
  check(): void {
    if (this.#waiting.size === 0 || !this.#isDrained()) return;
    for (const done of [...this.#waiting]) done();
  }
}

/** What {@link waitForJob} reads. */
export interface WaitContext {
  readonly backend: QueueBackend;
  readonly waiters: JobWaiters;
  readonly settings: QueueSettings;
  /** Throws once the queue is closed. */
  assertOpen(): void;
}

/**
 * Waits until job `id` finishes: woken by a local outcome, else polls every `pollIntervalMs`.
 * @throws JobFailedError, JobCancelledError, TimeoutError, the signal's reason, or ConfigError for an unknown id.
 */
export async function waitForJob<Result>(
  context: WaitContext,
  id: string,
  timeoutMs: number | undefined,
  signal: AbortSignal | undefined,
): Promise<Result> {
  const { clock, pollIntervalMs } = context.settings;
  const deadline = timeoutMs === undefined ? Number.POSITIVE_INFINITY : clock.now() + timeoutMs;
  for (;;) {
    // Watch before reading, so a completion landing between the read and the wait is not missed.
    const watch = context.waiters.watch(id);
    try {
      const row = await context.backend.get(id);
      if (row === undefined) throw new ConfigError('JobQueue.wait.id', `no job with id "${id}"`);
      if (row.status === 'succeeded') return parseJson(row.result) as Result;
      if (row.status === 'failed') throw failedError(row);
      if (row.status === 'cancelled') throw new JobCancelledError(id);
      const remaining = deadline - clock.now();
      if (remaining <= 0) {
        throw new TimeoutError(
          `job ${id} did not finish within ${timeoutMs} ms (status ${row.status})`,
          timeoutMs ?? 0,
        );
      }
      context.assertOpen();
      await watch.wait(Math.min(remaining, pollIntervalMs), signal);
    } finally {
      watch.cancel();
    }
  }
}
