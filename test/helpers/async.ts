/** Small async helpers shared by tests: hand-settled promises, letting callbacks run, polling. */

/** A promise the test settles by hand. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

/** A promise with its `resolve`/`reject`, for handlers and loaders the test releases. */
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** One turn of the event loop (lets queued promise callbacks and I/O callbacks run). */
export const tick = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));

/** Several turns of the event loop (`turns`, default 5): lets chains of promise callbacks run. */
export async function settle(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await tick();
}

/** Polls `check` on real time until it returns something other than `undefined`/`false` (or throws after `timeoutMs`). */
export async function eventually<T>(
  check: () => T | Promise<T>,
  timeoutMs = 10_000,
): Promise<Exclude<T, undefined | false>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const value = await check();
      if (value !== false && value !== undefined) return value as Exclude<T, undefined | false>;
      if (Date.now() > deadline) throw new Error('condition never held');
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
