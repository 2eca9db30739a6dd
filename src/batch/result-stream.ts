/**
 * The engine behind `BatchProcessor.stream`: pulls from a (sync or async) iterable only while fewer
 * than `concurrency` items run and fewer than `concurrency + bufferSize` results wait for the consumer,
 * so memory is bounded by those two numbers and never by the length of the source.
 * @module
 */
import { abortReason } from '../core/abort.js';
import type { ProgressReporter } from './progress-reporter.js';
import type { ItemResult } from './types.js';

/** @internal */
export interface ResultStreamSetup<T, R> {
  source: Iterable<T> | AsyncIterable<T>;
  /** Starts one item; must not throw synchronously. */
  execute: (item: T) => Promise<R>;
  concurrency: number;
  bufferSize: number;
  isOrdered: boolean;
  isStopOnError: boolean;
  /** Aborted to stop the handlers; the stream aborts it on abort, stopOnError, early exit. */
  controller: AbortController;
  /** The caller's signal. */
  signal: AbortSignal | undefined;
  progress: ProgressReporter;
  /** Called once when iteration starts (a stream never iterated holds nothing). */
  onStart: () => void;
  /** Called once when the stream ends, however it ends. */
  onEnd: () => void;
}

interface Slot<R> {
  result: ItemResult<R> | undefined;
}

/** @internal */
export async function* resultStream<T, R>(setup: ResultStreamSetup<T, R>): AsyncGenerator<ItemResult<R>, void, void> {
  const { execute, concurrency, isOrdered, isStopOnError, controller, signal, progress } = setup;
  const maxPending = concurrency + setup.bufferSize;
  const isAsync = typeof (setup.source as Partial<AsyncIterable<T>>)[Symbol.asyncIterator] === 'function';
  // Assigned when iteration starts (inside the try below, so a throwing [Symbol.iterator]() still
  // runs the clean-up); `pump` only runs after that.
  let iterator!: Iterator<T> | AsyncIterator<T>;

  // Ordered: slots in start order, the head is yielded once done. Unordered: finished results in
  // completion order. Both hold at most `maxPending` entries.
  const slots: Slot<R>[] = [];
  const finished: ItemResult<R>[] = [];
  let inFlight = 0;
  let pending = 0; // started and not yet handed to the consumer
  let isPulling = false;
  let isSourceDone = false;
  let hasSourceError = false;
  let sourceError: unknown;
  let hasFailure = false; // abort or stopOnError: throw at the consumer's next step
  let failure: unknown;
  let wake: (() => void) | undefined;

  const notify = (): void => {
    const resolve = wake;
    wake = undefined;
    resolve?.();
  };

  const stop = (reason: unknown): void => {
    if (hasFailure) return;
    hasFailure = true;
    failure = reason;
    if (!controller.signal.aborted) controller.abort(reason);
    notify();
  };

  // Everything that stops the stream goes through the controller: the caller's signal, close() of
  // the processor (which aborts the controller directly), stopOnError and an early exit.
  const onAbort = (): void => stop(abortReason(controller.signal));
  const onCallerAbort = (): void => {
    if (!controller.signal.aborted) controller.abort(abortReason(signal as AbortSignal));
  };

  const complete = (slot: Slot<R> | undefined, result: ItemResult<R>): void => {
    if (hasFailure) return;
    inFlight--;
    progress.add(1, result.ok ? 0 : 1);
    if (slot !== undefined) slot.result = result;
    else finished.push(result);
    if (!result.ok && isStopOnError) {
      stop(result.error);
      return;
    }
    notify();
    pump();
  };

  const start = (item: T): void => {
    inFlight++;
    pending++;
    let slot: Slot<R> | undefined;
    if (isOrdered) {
      slot = { result: undefined };
      slots.push(slot);
    }
    execute(item).then(
      (value) => complete(slot, { ok: true, value }),
      (error: unknown) => complete(slot, { ok: false, error }),
    );
  };

  const endSource = (error: unknown, isError: boolean): void => {
    isSourceDone = true;
    if (isError) {
      hasSourceError = true;
      sourceError = error;
    }
    notify();
  };

  const onPulled = (step: IteratorResult<T>): void => {
    isPulling = false;
    if (hasFailure) return;
    if (step.done) {
      endSource(undefined, false);
      return;
    }
    start(step.value);
    pump();
  };
  const onPullError = (error: unknown): void => {
    isPulling = false;
    endSource(error, true);
  };

  function pump(): void {
    while (!hasFailure && !isSourceDone && !isPulling && inFlight < concurrency && pending < maxPending) {
      if (isAsync) {
        isPulling = true;
        let next: Promise<IteratorResult<T>>;
        try {
          next = Promise.resolve((iterator as AsyncIterator<T>).next());
        } catch (error) {
          onPullError(error);
          return;
        }
        next.then(onPulled, onPullError);
        return;
      }
      let step: IteratorResult<T>;
      try {
        step = (iterator as Iterator<T>).next();
      } catch (error) {
        endSource(error, true);
        return;
      }
      if (step.done) {
        endSource(undefined, false);
        return;
      }
      start(step.value);
    }
  }

  setup.onStart();
  controller.signal.addEventListener('abort', onAbort, { once: true });
  signal?.addEventListener('abort', onCallerAbort, { once: true });
  let isExhausted = false;
  try {
    iterator = isAsync
      ? (setup.source as AsyncIterable<T>)[Symbol.asyncIterator]()
      : (setup.source as Iterable<T>)[Symbol.iterator]();
    if (signal?.aborted) onCallerAbort();
    else if (controller.signal.aborted) onAbort();
    pump();
    for (;;) {
      if (hasFailure) throw failure;
      if (isOrdered) {
        const head = slots[0];
        if (head?.result !== undefined) {
          slots.shift();
          pending--;
          pump();
          yield head.result;
          continue;
        }
      } else if (finished.length > 0) {
        const result = finished.shift() as ItemResult<R>;
        pending--;
        pump();
        yield result;
        continue;
      }
      if (isSourceDone && pending === 0) {
        if (hasSourceError) throw sourceError;
        isExhausted = true;
        return;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    signal?.removeEventListener('abort', onCallerAbort);
    controller.signal.removeEventListener('abort', onAbort);
    if (!isExhausted) {
      // Early exit (break, throw in the loop body, abort, stopOnError): handlers in flight see their
      // signal fire, and the source is closed so its own finally blocks run.
      if (!hasFailure) {
        hasFailure = true;
        controller.abort(new DOMException('The stream consumer stopped early', 'AbortError'));
      }
      if (!isSourceDone && iterator !== undefined) {
        isSourceDone = true;
        try {
          // Not awaited: an async source may be stuck in a pending next() that return() queues behind.
          const closing = iterator.return?.();
          if (closing instanceof Promise) closing.catch(() => {});
        } catch {
          // A source whose return() throws has nothing left to clean up.
        }
      }
    }
    progress.finish();
    setup.onEnd();
  }
}
