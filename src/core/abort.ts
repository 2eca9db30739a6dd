/**
 * Abort and timeout helpers: every operation that waits takes a signal and rejects with its reason.
 * @module
 */
import { type Clock, systemClock } from './clock.js';
import { TimeoutError } from './errors.js';
import { clearLongTimeout, setLongTimeout } from './long-timeout.js';

/** Options for anything that waits. */
export interface WaitOptions {
  /** Aborts the wait; the promise rejects with `signal.reason`. */
  signal?: AbortSignal | undefined;
  /** Time source (default: the system clock). */
  clock?: Clock | undefined;
}

/** The reason an aborted signal carries, as an Error when possible. */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

/** Throws the signal's reason when it is already aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortReason(signal);
}

/**
 * Waits `ms` milliseconds.
 * @throws the signal's reason when aborted before the time is up.
 */
export function sleep(ms: number, options: WaitOptions = {}): Promise<void> {
  const { signal, clock = systemClock } = options;
  if (signal?.aborted) return Promise.reject(abortReason(signal));
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clearLongTimeout(clock, handle);
      reject(abortReason(signal as AbortSignal));
    };
    // Any length: a plain timer would fire after 1 ms for waits over ~24.8 days.
    const handle = setLongTimeout(
      clock,
      () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      },
      ms,
    );
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Races `promise` against `signal`: rejects with the signal's reason as soon as it aborts, without
 * cancelling the promise itself (use it for waits that must not cancel shared work).
 * @param onAbort - called once when this wait is abandoned because of the signal (e.g. to drop a waiter count).
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined, onAbort?: () => void): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) {
    onAbort?.();
    return Promise.reject(abortReason(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const abandon = () => {
      onAbort?.();
      reject(abortReason(signal));
    };
    signal.addEventListener('abort', abandon, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', abandon);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', abandon);
        reject(error);
      },
    );
  });
}

/** Options of {@link withTimeout}. */
export interface WithTimeoutOptions extends WaitOptions {
  /** Message of the {@link TimeoutError} (default: "operation timed out after N ms"). */
  message?: string;
}

/**
 * Runs `fn` with a signal that fires after `ms` milliseconds (or when the caller's signal aborts),
 * so the inner work really stops. Resolves with `fn`'s value.
 * @throws TimeoutError when `ms` elapse first; the caller's abort reason when it aborts.
 */
export async function withTimeout<T>(
  fn: (signal: AbortSignal) => Promise<T> | T,
  ms: number,
  options: WithTimeoutOptions = {},
): Promise<T> {
  const { signal: outer, clock = systemClock } = options;
  if (outer?.aborted) throw abortReason(outer);
  const controller = new AbortController();
  const timeoutError = new TimeoutError(options.message ?? `operation timed out after ${ms} ms`, ms);
  let settle: ((error: unknown) => void) | undefined;
  const stopped = new Promise<never>((_, reject) => {
    settle = reject;
  });
  const handle = setLongTimeout(
    clock,
    () => {
      controller.abort(timeoutError);
      settle?.(timeoutError);
    },
    ms,
  );
  const onOuterAbort = () => {
    const reason = abortReason(outer as AbortSignal);
    controller.abort(reason);
    settle?.(reason);
  };
  outer?.addEventListener('abort', onOuterAbort, { once: true });
  try {
    return await Promise.race([Promise.resolve().then(() => fn(controller.signal)), stopped]);
  } finally {
    clearLongTimeout(clock, handle);
    outer?.removeEventListener('abort', onOuterAbort);
  }
}

/** A signal that aborts when any of the given signals does (undefined entries are ignored). */
export function anySignal(signals: ReadonlyArray<AbortSignal | undefined>): AbortSignal | undefined {
  const present = signals.filter((signal): signal is AbortSignal => signal !== undefined);
  if (present.length === 0) return undefined;
  if (present.length === 1) return present[0];
  return AbortSignal.any(present);
}
