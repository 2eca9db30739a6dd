/**
 * Sandboxed handlers: `register(type, { file, exportName?, timeoutMs? })` runs each job of the type
 * in a worker thread. At the job's deadline or on cancel the thread is terminated (a hard kill: a
 * handler stuck in a CPU loop cannot ignore it) and replaced for the next job, so the slot is freed
 * at once and the attempt counts; `job.progress` works from the thread; errors cross back with their
 * name, message and stack.
 *
 * Threads are plain `worker_threads` with an inline runner (`eval`), not piscina: piscina loads its
 * worker module from a file path, and a bundled package has no stable path for a runner file of its
 * own. The pool is small on purpose — one thread per running job, reused while it lives, idle threads
 * unref'd and ended after `IDLE_MS`.
 * @module
 */
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ConfigError } from '../core/errors.js';
import type { JobContext, JobHandler } from './types.js';

/** What `register` takes instead of a function to run a job type in a worker thread. */
export interface SandboxedHandlerSpec {
  /**
   * Absolute path or `file:` URL of the module; its default export (or `exportName`) is called as
   * `(data, job) => result` in the thread. Plain `.js`/`.mjs` (threads inherit the process's
   * `--import` loaders, so `.ts` works only where the process runs one).
   */
  file: string | URL;
  /** Export to call (default: the default export). */
  exportName?: string | undefined;
  /** Per-attempt deadline in ms; the thread is terminated when it passes (default: the type's or queue's `timeoutMs`). */
  timeoutMs?: number | undefined;
}

/** Idle threads end after this long without a job, ms. */
const IDLE_MS = 30_000;

/** Runs in each thread: loads the module once, then runs one job per message. CommonJS (eval). */
const RUNNER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const loaded = import(workerData.href).then((mod) => {
  const name = workerData.exportName;
  let fn = name === undefined ? mod.default : mod[name];
  if (name === undefined && fn !== null && typeof fn === 'object' && typeof fn.default === 'function') fn = fn.default;
  if (typeof fn !== 'function') {
    throw new Error(workerData.href + (name === undefined ? ' has no default export function' : ' has no export "' + name + '" function'));
  }
  return fn;
});
const describe = (error) => error instanceof Error
  ? { name: error.name, message: error.message, stack: error.stack, code: error.code }
  : { name: 'Error', message: String(error) };
parentPort.on('message', async (message) => {
  const job = {
    id: message.id, type: message.type, attempt: message.attempt, maxAttempts: message.maxAttempts,
    priority: message.priority,
    // Never aborted here: a timeout or cancel terminates the thread instead.
    signal: new AbortController().signal,
    progress(done, total, stage) { parentPort.postMessage({ kind: 'progress', done, total, stage }); },
  };
  try {
    const fn = await loaded;
    const result = await fn(message.data, job);
    try {
      parentPort.postMessage({ kind: 'result', result });
    } catch (error) {
      parentPort.postMessage({ kind: 'error', error: describe(new TypeError('the handler result cannot be copied out of its thread: ' + (error && error.message))) });
    }
  } catch (error) {
    parentPort.postMessage({ kind: 'error', error: describe(error) });
  }
});
`;

interface ThreadMessage {
  kind: 'progress' | 'result' | 'error';
  done?: number;
  total?: number;
  stage?: string;
  result?: unknown;
  error?: { name: string; message: string; stack?: string; code?: unknown };
}

/** True when `value` is a sandboxed-handler spec (an object with `file`), not a handler function. */
export function isSandboxedHandlerSpec(value: unknown): value is SandboxedHandlerSpec {
  return value !== null && typeof value === 'object' && 'file' in value;
}

/** @internal The threads of one sandboxed job type; `handler` is what the queue runs. */
export class SandboxedHandler {
  readonly handler: JobHandler;
  /** The spec's `timeoutMs`, for the type's default. */
  readonly timeoutMs: number | undefined;
  readonly #href: string;
  readonly #exportName: string | undefined;
  readonly #idle: Array<{ worker: Worker; timer: ReturnType<typeof setTimeout> }> = [];
  readonly #busy = new Set<Worker>();
  #isClosed = false;

  /** @throws ConfigError for a bad spec (the file is checked when the first thread loads it). */
  constructor(spec: SandboxedHandlerSpec, scope: string) {
    const { file, exportName, timeoutMs } = spec;
    for (const key of Object.keys(spec)) {
      if (key !== 'file' && key !== 'exportName' && key !== 'timeoutMs') {
        throw new ConfigError(`${scope}.${key}`, `${scope}.${key} is not a known option (file, exportName, timeoutMs)`);
      }
    }
    this.#href = toHref(file, `${scope}.file`);
    if (exportName !== undefined && (typeof exportName !== 'string' || exportName.length === 0)) {
      throw new ConfigError(`${scope}.exportName`, `${scope}.exportName must be a non-empty string`);
    }
    if (timeoutMs !== undefined && (typeof timeoutMs !== 'number' || !(timeoutMs > 0) || timeoutMs > 2_147_483_647)) {
      throw new ConfigError(`${scope}.timeoutMs`, `${scope}.timeoutMs must be a number of ms in (0, 2147483647]`);
    }
    this.#exportName = exportName;
    this.timeoutMs = timeoutMs;
    this.handler = (data, job) => this.#run(data, job);
  }

  /** Terminates every thread; jobs still running in one reject with the job's abort reason or an Error. */
  async close(): Promise<void> {
    this.#isClosed = true;
    const workers = [...this.#busy, ...this.#idle.map((entry) => entry.worker)];
    for (const entry of this.#idle.splice(0)) clearTimeout(entry.timer);
    await Promise.all(workers.map((worker) => worker.terminate()));
  }

  #run(data: unknown, job: JobContext): Promise<unknown> {
    if (job.signal.aborted) return Promise.reject(job.signal.reason);
    if (this.#isClosed) return Promise.reject(new Error('sandboxed handler: the queue is closed'));
    const worker = this.#take();
    this.#busy.add(worker);
    return new Promise<unknown>((resolve, reject) => {
      const cleanUp = (): void => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
        job.signal.removeEventListener('abort', onAbort);
        this.#busy.delete(worker);
      };
      // Hard kill: the thread may be stuck in a loop that never reads its signal.
      const kill = (reason: unknown): void => {
        cleanUp();
        void worker.terminate();
        reject(reason);
      };
      const onAbort = (): void => kill(job.signal.reason);
      const onError = (error: Error): void => kill(error);
      const onExit = (code: number): void => kill(new Error(`sandboxed handler: its thread exited (code ${code})`));
      const onMessage = (message: ThreadMessage): void => {
        if (message.kind === 'progress') {
          try {
            job.progress(message.done as number, message.total, message.stage);
          } catch {
            // A malformed report from the thread is dropped, as a throwing progress listener would be.
          }
          return;
        }
        cleanUp();
        this.#release(worker);
        if (message.kind === 'result') resolve(message.result);
        else reject(toError(message.error));
      };
      worker.on('message', onMessage);
      worker.once('error', onError);
      worker.once('exit', onExit);
      job.signal.addEventListener('abort', onAbort, { once: true });
      worker.ref();
      worker.postMessage({
        id: job.id,
        type: job.type,
        attempt: job.attempt,
        maxAttempts: job.maxAttempts,
        priority: job.priority,
        data,
      });
    });
  }

  #take(): Worker {
    const idle = this.#idle.pop();
    if (idle !== undefined) {
      clearTimeout(idle.timer);
      return idle.worker;
    }
    const worker = new Worker(RUNNER_SOURCE, {
      eval: true,
      workerData: { href: this.#href, exportName: this.#exportName },
    });
    // A thread that dies while idle (a crash outside a job) is simply dropped.
    worker.on('error', () => {});
    worker.once('exit', () => {
      const at = this.#idle.findIndex((entry) => entry.worker === worker);
      if (at >= 0) clearTimeout((this.#idle.splice(at, 1)[0] as { timer: ReturnType<typeof setTimeout> }).timer);
    });
    return worker;
  }

  #release(worker: Worker): void {
    if (this.#isClosed) {
      void worker.terminate();
      return;
    }
    // Idle threads do not hold the process open; the started queue does that.
    worker.unref();
    const timer = setTimeout(() => {
      const at = this.#idle.findIndex((entry) => entry.worker === worker);
      if (at >= 0) this.#idle.splice(at, 1);
      void worker.terminate();
    }, IDLE_MS);
    timer.unref();
    this.#idle.push({ worker, timer });
  }
}

function toHref(file: unknown, option: string): string {
  if (file instanceof URL) {
    if (file.protocol !== 'file:') throw new ConfigError(option, `${option} must be a file: URL, got ${file.protocol}`);
    return file.href;
  }
  if (typeof file !== 'string' || file.length === 0) {
    throw new ConfigError(option, `${option} must be an absolute path or a file: URL`);
  }
  if (file.startsWith('file:')) return pathToFileURL(fileURLToPath(file)).href;
  if (!file.startsWith('/') && !/^[A-Za-z]:[\\/]/.test(file)) {
    throw new ConfigError(
      option,
      `${option} must be absolute (threads resolve relative paths from their own cwd), got ${JSON.stringify(file)}`,
    );
  }
  return pathToFileURL(file).href;
}

/** The thread's error as an Error here, with its name, message, stack (and code) kept. */
function toError(described: ThreadMessage['error']): Error {
  const error = new Error(described?.message ?? 'sandboxed handler failed');
  error.name = described?.name ?? 'Error';
  if (described?.stack !== undefined) error.stack = described.stack;
  if (described?.code !== undefined) (error as Error & { code?: unknown }).code = described.code;
  return error;
}
