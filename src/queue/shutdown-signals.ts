/**
 * Graceful shutdown of a hand-written worker process on SIGTERM / SIGINT: the staged `stop()` under a
 * deadline (running jobs finish; the rest are aborted and their leases handed back without spending an
 * attempt), then `close()`, your own cleanup, and exit 0.
 * @module
 */
import { ConfigError } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { validateOptions } from '../core/options.js';
import type { StopOptions } from './types.js';

/** What {@link handleShutdownSignals} stops: a `JobQueue` or a `QueueManager`. */
export interface StoppableQueue {
  /** The staged stop. */
  stop(options?: StopOptions): Promise<void>;
  /** Releases everything (after `stop`). */
  close(): Promise<void>;
}

/** Options of {@link handleShutdownSignals}. */
export interface ShutdownSignalOptions {
  /** Signals that start the graceful stop (default `['SIGTERM', 'SIGINT']`). */
  signals?: readonly NodeJS.Signals[];
  /**
   * Deadline of the staged stop, in ms (default 30,000): running jobs may finish until shortly before
   * it; then they are aborted and their leases handed back (the attempt is not spent).
   */
  timeoutMs?: number;
  /** Runs after the queue closed and before the exit: close your storage, pools, servers here. */
  onStopped?: () => void | Promise<void>;
  /**
   * Exit the process when done (default true): code 0 after a clean stop, 1 when stopping or
   * `onStopped` threw. With false, the handlers only stop and close (the process ends once idle).
   */
  exit?: boolean;
  /** Receives one line when the stop starts and one when it is done (default: silent). */
  logger?: Logger;
}

const OPTIONS_SCHEMA = {
  signals: { type: 'object' },
  timeoutMs: { type: 'number', min: 0, max: 2_147_483_647 },
  onStopped: { type: 'function' },
  exit: { type: 'boolean' },
  logger: { type: 'object' },
} as const;

/**
 * Installs SIGTERM/SIGINT handlers that stop `queue` gracefully under a deadline, then close it, run
 * `onStopped` and exit 0. A second signal while stopping skips the rest of the grace period: running
 * jobs are aborted and their leases handed back at once, then the process exits 1.
 * Returns a function that removes the handlers.
 *
 * @example
 * ```ts
 * const queue = new JobQueue({ storage, concurrency: 4 });
 * queue.register('email', sendEmail);
 * await queue.start(); // keeps the process alive until stopped
 * handleShutdownSignals(queue, { timeoutMs: 20_000, onStopped: () => storage.close() });
 * ```
 * @throws ConfigError for bad options.
 */
export function handleShutdownSignals(queue: StoppableQueue, options: ShutdownSignalOptions = {}): () => void {
  validateOptions('handleShutdownSignals', options, OPTIONS_SCHEMA);
  if (typeof queue?.stop !== 'function' || typeof queue.close !== 'function') {
    throw new ConfigError('handleShutdownSignals.queue', 'handleShutdownSignals needs a JobQueue or QueueManager');
  }
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  if (!Array.isArray(signals) || signals.length === 0 || signals.some((s) => typeof s !== 'string')) {
    throw new ConfigError('handleShutdownSignals.signals', 'handleShutdownSignals.signals must be signal names');
  }
  const timeoutMs = options.timeoutMs ?? 30_000;
  const shouldExit = options.exit ?? true;
  const logger = options.logger ?? silentLogger;
  let stopping: Promise<void> | undefined;

  const finish = (code: number) => {
    remove();
    if (shouldExit) process.exit(code);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping !== undefined) {
      // Second signal: no more grace. close() aborts what still runs and hands the leases back.
      logger.warn({ signal }, 'worker: second signal, stopping now');
      void queue.close().finally(() => finish(1));
      return;
    }
    logger.info({ signal, timeoutMs }, 'worker: stopping gracefully');
    stopping = (async () => {
      let code = 0;
      try {
        await queue.stop({ graceful: true, timeoutMs });
        await queue.close();
        await options.onStopped?.();
        logger.info({ signal }, 'worker: stopped');
      } catch (error) {
        code = 1;
        logger.error({ err: error, signal }, 'worker: stopping failed');
      }
      finish(code);
    })();
  };
  const remove = () => {
    for (const signal of signals) process.off(signal, onSignal);
  };
  for (const signal of signals) process.on(signal, onSignal);
  return remove;
}
