/**
 * The periodic WAL checkpoint, run on a second connection in a worker thread. better-sqlite3 is
 * synchronous, so a checkpoint on the adapter's own connection stops the event loop for as long as it
 * copies pages (140–260 ms stalls with 8,192 pages in `npm run bench -- storage --checkpoint`). A
 * `PASSIVE` checkpoint from another connection copies what is committed without taking the write lock, so the adapter keeps
 * reading and writing meanwhile, and a commit only checkpoints by itself once the WAL passes
 * `wal_autocheckpoint` (which the thread keeps it below).
 *
 * The thread is started at the first tick (a short-lived adapter never starts one), unref'd (it never
 * holds the process open), and ended by `close()` before the adapter's own connection closes, so that
 * connection is the last one and removes the WAL. If the thread cannot start or dies, checkpoints run
 * on the adapter's connection again, as before. Inline runner (`eval`): a bundled package has no stable
 * path for a runner file of its own (as in the queue's sandboxed handlers).
 * @module
 */
import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { withTimeout } from '../../core/abort.js';

/** Runs in the thread: one connection, one PASSIVE checkpoint per message. CommonJS (eval). */
const RUNNER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driverPath);
const db = new Database(workerData.filename, { timeout: workerData.busyTimeoutMs, fileMustExist: true });
db.pragma('journal_size_limit = ' + workerData.walSizeLimitBytes);
parentPort.on('message', (message) => {
  if (message === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
    parentPort.postMessage({ ok: true });
  } catch (error) {
    parentPort.postMessage({ ok: false, message: error instanceof Error ? error.message : String(error) });
  }
});
`;

/** What the thread needs to open its own connection. */
export interface CheckpointThreadOptions {
  /** Resolved path of the better-sqlite3 package (the thread requires the same copy). */
  driverPath: string;
  filename: string;
  busyTimeoutMs: number;
  walSizeLimitBytes: number;
  /** Called once if the thread cannot start or dies (not when closed). */
  onFailure?: (error: Error) => void;
}

type Reply = { ok: true } | { ok: false; message: string };

/** One checkpoint connection in one thread, asked for one checkpoint at a time. */
export class CheckpointThread {
  readonly #options: Omit<CheckpointThreadOptions, 'onFailure'>;
  readonly #onFailure: ((error: Error) => void) | undefined;
  #worker: Worker | undefined;
  #pending: { resolve: () => void; reject: (error: Error) => void } | undefined;
  #failed: Error | undefined;

  constructor(options: CheckpointThreadOptions) {
    const { onFailure, ...rest } = options;
    this.#options = { ...rest, filename: resolve(options.filename) };
    this.#onFailure = onFailure;
  }

  /** True while a checkpoint is running in the thread. */
  get isBusy(): boolean {
    return this.#pending !== undefined;
  }

  /** Why the thread is unusable (it could not start, or died), if it is. */
  get failure(): Error | undefined {
    return this.#failed;
  }

  /**
   * Runs one PASSIVE checkpoint in the thread (starting it first if needed).
   * @throws Error when the thread cannot start, dies, or the checkpoint fails; a second call while one runs.
   */
  checkpoint(): Promise<void> {
    if (this.#failed) return Promise.reject(this.#failed);
    if (this.#pending) return Promise.reject(new Error('a checkpoint is already running'));
    const worker = this.#worker ?? this.#start();
    return new Promise<void>((resolvePromise, reject) => {
      this.#pending = { resolve: resolvePromise, reject };
      worker.postMessage('checkpoint');
    });
  }

  /** Closes the thread's connection and waits for the thread to end (terminated after `timeoutMs`). */
  async close(timeoutMs = 5_000): Promise<void> {
    const worker = this.#worker;
    this.#worker = undefined;
    this.#failed ??= new Error('checkpoint thread closed');
    const pending = this.#pending;
    this.#pending = undefined;
    pending?.reject(this.#failed);
    if (worker === undefined) return;
    const exited = new Promise<void>((done) => worker.once('exit', () => done()));
    worker.ref(); // `await storage.close()` as a script's last step finishes before the process ends
    worker.postMessage('close');
    try {
      await withTimeout(() => exited, timeoutMs);
    } catch {
      await worker.terminate(); // stuck in a checkpoint: end it (its connection closes with the thread)
    }
  }

  #start(): Worker {
    const worker = new Worker(RUNNER_SOURCE, { eval: true, workerData: this.#options });
    worker.on('message', (reply: Reply) => {
      const pending = this.#pending;
      this.#pending = undefined;
      if (pending === undefined) return;
      if (reply.ok) pending.resolve();
      else pending.reject(new Error(reply.message));
    });
    const fail = (error: Error): void => {
      if (this.#worker !== worker) return; // closed on purpose
      this.#failed = error;
      this.#worker = undefined;
      const pending = this.#pending;
      this.#pending = undefined;
      pending?.reject(error);
      this.#onFailure?.(error);
    };
    worker.on('error', fail);
    worker.once('exit', (code) => fail(new Error(`checkpoint thread exited with code ${code}`)));
    // After the listeners: adding a 'message' listener refs the worker again.
    worker.unref();
    this.#worker = worker;
    return worker;
  }
}
