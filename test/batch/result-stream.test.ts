import { getEventListeners } from 'node:events';
import { BatchProcessor, type BatchProgress, type ItemResult } from 'hotpath/batch';
import { ManualClock } from 'hotpath/core';
import { describe, expect, it } from 'vitest';
import { deferred, settle, tick } from '../helpers/async.js';

/** A sync source of `count` numbers that counts pulls and `return()` calls. */
function countingSource(count = Number.POSITIVE_INFINITY) {
  const counts = { pulled: 0, returned: 0 };
  let next = 0;
  const iterable: Iterable<number> = {
    [Symbol.iterator]: () => ({
      next: () => {
        if (next >= count) return { done: true, value: undefined };
        counts.pulled++;
        return { done: false, value: next++ };
      },
      return: () => {
        counts.returned++;
        return { done: true, value: undefined };
      },
    }),
  };
  return { counts, iterable };
}

const outcome = <T>(result: ItemResult<T>) => (result.ok ? result.value : 'error');

describe('stream (result-stream engine) edges', () => {
  it('pulls exactly concurrency + bufferSize items ahead of the consumer', async () => {
    for (const [bufferSize, ahead] of [
      [0, 2],
      [1, 3],
      [undefined, 4], // default bufferSize = concurrency
    ] as const) {
      const processor = new BatchProcessor({ concurrency: 2 });
      const { counts, iterable } = countingSource();
      const iterator = processor.stream(iterable, async (n) => n, { bufferSize })[Symbol.asyncIterator]();
      expect(counts.pulled).toBe(0); // nothing until iterated
      expect(outcome((await iterator.next()).value as ItemResult<number>)).toBe(0);
      await settle();
      expect(counts.pulled).toBe(1 + ahead);
      expect(outcome((await iterator.next()).value as ItemResult<number>)).toBe(1);
      await settle();
      expect(counts.pulled).toBe(2 + ahead);
      await iterator.return?.();
      expect(counts.returned).toBe(1);
      expect(processor.stats().activeRuns).toBe(0);
    }
  });

  it('ordered by default: a slow head holds back later results; unordered yields them as they finish', async () => {
    for (const ordered of [undefined, true, false]) {
      const processor = new BatchProcessor({ concurrency: 3 });
      const gates = [deferred(), deferred(), deferred()];
      const iterator = processor
        .stream(
          [0, 1, 2],
          async (n) => {
            await gates[n]?.promise;
            return n;
          },
          { ordered },
        )
        [Symbol.asyncIterator]();
      const first = iterator.next();
      gates[2]?.resolve();
      gates[1]?.resolve();
      await settle();
      gates[0]?.resolve();
      const out = [(await first).value, (await iterator.next()).value, (await iterator.next()).value].map((r) =>
        outcome(r as ItemResult<number>),
      );
      expect(out).toEqual(ordered === false ? [2, 1, 0] : [0, 1, 2]);
      expect((await iterator.next()).done).toBe(true);
    }
  });

  it('an already aborted signal: throws its reason without calling a handler or pulling', async () => {
    const processor = new BatchProcessor();
    const { counts, iterable } = countingSource();
    const reason = new Error('aborted before');
    let calls = 0;
    const iterator = processor
      .stream(
        iterable,
        async (n) => {
          calls++;
          return n;
        },
        { signal: AbortSignal.abort(reason) },
      )
      [Symbol.asyncIterator]();
    await expect(iterator.next()).rejects.toBe(reason);
    expect(calls).toBe(0);
    expect(counts.pulled).toBe(0);
    expect(counts.returned).toBe(1);
    expect(processor.stats()).toMatchObject({ activeRuns: 0, calls: 0 });
  });

  it('breaking out: the handlers see an AbortError "The stream consumer stopped early"; the caller’s signal is left clean', async () => {
    const processor = new BatchProcessor({ concurrency: 2 });
    const controller = new AbortController();
    const reasons: unknown[] = [];
    for await (const result of processor.stream(
      [0, 1, 2],
      async (n, { signal }) => {
        if (n === 0) return n;
        return await new Promise<number>((_, reject) =>
          signal.addEventListener('abort', () => {
            reasons.push(signal.reason);
            reject(signal.reason);
          }),
        );
      },
      { signal: controller.signal },
    )) {
      expect(outcome(result)).toBe(0);
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
      break;
    }
    expect(reasons).toHaveLength(2);
    expect(reasons[0]).toBeInstanceOf(DOMException);
    expect(reasons[0]).toMatchObject({ name: 'AbortError', message: 'The stream consumer stopped early' });
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    expect(controller.signal.aborted).toBe(false);
  });

  it('a source already exhausted is not closed again when the consumer stops early', async () => {
    const processor = new BatchProcessor({ concurrency: 4 });
    const { counts, iterable } = countingSource(2);
    for await (const result of processor.stream(iterable, async (n) => n)) {
      expect(outcome(result)).toBe(0);
      break;
    }
    expect(counts).toEqual({ pulled: 2, returned: 0 });
  });

  it('a source whose return() throws or rejects is still left quietly', async () => {
    const processor = new BatchProcessor({ concurrency: 1 });
    for (const close of [
      () => {
        throw new Error('return threw');
      },
      () => Promise.reject(new Error('return rejected')),
    ]) {
      let pulled = 0;
      const source: Iterable<number> = {
        [Symbol.iterator]: () => ({
          next: () => ({ done: false, value: pulled++ }),
          return: close as unknown as () => IteratorResult<number>,
        }),
      };
      const seen: unknown[] = [];
      for await (const result of processor.stream(source, async (n) => n)) {
        seen.push(outcome(result));
        break;
      }
      expect(seen).toEqual([0]);
    }
    await settle();
    expect(processor.stats().activeRuns).toBe(0);
  });

  it('a sync source whose next() throws: the items started are yielded, then its error', async () => {
    const processor = new BatchProcessor({ concurrency: 4 });
    const broken = new Error('next threw');
    let pulled = 0;
    const source: Iterable<number> = {
      [Symbol.iterator]: () => ({
        next: () => {
          if (pulled === 2) throw broken;
          return { done: false, value: pulled++ };
        },
      }),
    };
    const seen: unknown[] = [];
    const consume = async () => {
      for await (const result of processor.stream(source, async (n) => n)) seen.push(outcome(result));
    };
    await expect(consume()).rejects.toBe(broken);
    expect(seen).toEqual([0, 1]);
  });

  it('an async source whose next() throws synchronously or rejects ends the stream with that error', async () => {
    for (const mode of ['throw', 'reject'] as const) {
      const processor = new BatchProcessor({ concurrency: 2 });
      const broken = new Error(`next ${mode}`);
      let pulled = 0;
      const source: AsyncIterable<number> = {
        [Symbol.asyncIterator]: () => ({
          next: () => {
            if (pulled === 1) {
              if (mode === 'throw') throw broken;
              return Promise.reject(broken);
            }
            return Promise.resolve({ done: false, value: pulled++ });
          },
        }),
      };
      const seen: unknown[] = [];
      const consume = async () => {
        for await (const result of processor.stream(source, async (n) => n)) seen.push(outcome(result));
      };
      await expect(consume()).rejects.toBe(broken);
      expect(seen).toEqual([0]);
      expect(processor.stats().activeRuns).toBe(0);
    }
  });

  it('an async source: pulls one at a time, each only after the previous arrived', async () => {
    const processor = new BatchProcessor({ concurrency: 3 });
    const pending: Array<ReturnType<typeof deferred<IteratorResult<number>>>> = [];
    const source: AsyncIterable<number> = {
      [Symbol.asyncIterator]: () => ({
        next: () => {
          const next = deferred<IteratorResult<number>>();
          pending.push(next);
          return next.promise;
        },
      }),
    };
    const iterator = processor.stream(source, async (n) => n * 10)[Symbol.asyncIterator]();
    const first = iterator.next();
    await tick();
    expect(pending).toHaveLength(1);
    pending[0]?.resolve({ done: false, value: 1 });
    await tick();
    expect(pending).toHaveLength(2);
    pending[1]?.resolve({ done: true, value: undefined });
    expect((await first).value).toEqual({ ok: true, value: 10 });
    expect((await iterator.next()).done).toBe(true);
    expect(pending).toHaveLength(2);
  });

  it('stopOnError: results finishing after the failure are dropped and the rest of the source is not pulled', async () => {
    const processor = new BatchProcessor({ concurrency: 2, stopOnError: true });
    const { counts, iterable } = countingSource();
    const gate = deferred();
    const failure = new Error('item 0');
    const finished: number[] = [];
    const iterator = processor
      .stream(iterable, async (n) => {
        if (n === 0) throw failure;
        await gate.promise;
        finished.push(n);
        return n;
      })
      [Symbol.asyncIterator]();
    await expect(iterator.next()).rejects.toBe(failure);
    gate.resolve();
    await settle();
    expect(finished).toEqual([1]);
    expect(counts.pulled).toBe(2);
    expect(counts.returned).toBe(1);
    expect((await iterator.next()).done).toBe(true);
  });

  it('progress of a stream: total undefined, failures counted, one final report', async () => {
    const clock = new ManualClock();
    const reports: BatchProgress[] = [];
    const processor = new BatchProcessor({
      concurrency: 2,
      clock,
      progressIntervalMs: 1000,
      onProgress: (p) => reports.push(p),
    });
    const out: unknown[] = [];
    for await (const result of processor.stream([1, 2, 3], async (n) => {
      if (n === 2) throw new Error('two');
      return n;
    }))
      out.push(outcome(result));
    expect(out).toEqual([1, 'error', 3]);
    expect(reports).toEqual([
      { done: 1, total: undefined, failed: 0 },
      { done: 3, total: undefined, failed: 1 },
    ]);
    expect(clock.pendingTimers).toBe(0);
  });
});

describe('progress reporting edges', () => {
  it('a completion exactly one interval after the last report is reported at once', async () => {
    const clock = new ManualClock();
    const reports: number[] = [];
    const processor = new BatchProcessor({
      concurrency: 3,
      progressIntervalMs: 100,
      clock,
      onProgress: ({ done }) => reports.push(done),
    });
    const gate = deferred();
    const run = processor.map([0, 100, -1], async (ms) => {
      if (ms < 0) return await gate.promise.then(() => 0);
      await new Promise<void>((resolve) => clock.setTimeout(resolve, ms));
      return ms;
    });
    await clock.advance(0);
    expect(reports).toEqual([1]);
    await clock.advance(100);
    expect(reports).toEqual([1, 2]);
    expect(clock.pendingTimers).toBe(0); // no trailing timer was needed
    gate.resolve();
    await run;
    expect(reports).toEqual([1, 2, 3]);
  });

  it('the trailing report fires when the interval since the last report ends, with the counts of then', async () => {
    const clock = new ManualClock();
    const reports: Array<[number, number]> = [];
    const processor = new BatchProcessor({
      concurrency: 4,
      progressIntervalMs: 100,
      clock,
      onProgress: ({ done }) => reports.push([clock.now() - start, done]),
    });
    const start = clock.now();
    const gate = deferred();
    const run = processor.map([10, 30, 70, -1], async (ms) => {
      if (ms < 0) return await gate.promise.then(() => 0);
      await new Promise<void>((resolve) => clock.setTimeout(resolve, ms));
      return ms;
    });
    await clock.advance(109);
    expect(reports).toEqual([[10, 1]]);
    await clock.advance(1);
    expect(reports).toEqual([
      [10, 1],
      [110, 3],
    ]);
    await clock.advance(500);
    expect(reports).toHaveLength(2);
    gate.resolve();
    await run;
    expect(reports.at(-1)).toEqual([610, 4]);
  });

  it('a listener is not called again after the final report, even by a trailing timer', async () => {
    const clock = new ManualClock();
    const reports: number[] = [];
    const processor = new BatchProcessor({
      concurrency: 2,
      progressIntervalMs: 100,
      clock,
      onProgress: ({ done }) => reports.push(done),
    });
    const run = processor.map([5, 6], async (ms) => {
      await new Promise<void>((resolve) => clock.setTimeout(resolve, ms));
      return ms;
    });
    await clock.advance(6);
    await run;
    expect(reports).toEqual([1, 2]);
    await clock.advance(1000);
    expect(reports).toEqual([1, 2]);
  });
});

/** A ManualClock that also keeps the delay and options of every timer set on it. */
function timerSpyClock() {
  const clock = new ManualClock();
  const timers: Array<[number, unknown]> = [];
  const spy = {
    now: () => clock.now(),
    setTimeout: (fn: () => void, ms: number, options?: unknown) => {
      timers.push([ms, options]);
      return clock.setTimeout(fn, ms);
    },
    clearTimeout: (handle: ReturnType<ManualClock['setTimeout']>) => clock.clearTimeout(handle),
  };
  return { clock, spy, timers };
}

describe('progress reporting edges: timers and single reports', () => {
  it('sets an unref’d trailing timer only for completions inside the interval, due when the interval ends', async () => {
    const { clock, spy, timers } = timerSpyClock();
    const reports: number[] = [];
    const processor = new BatchProcessor({
      concurrency: 4,
      progressIntervalMs: 100,
      clock: spy,
      onProgress: ({ done }) => reports.push(done),
    });
    const gate = deferred();
    const run = processor.map([0, 30, -1], async (ms) => {
      if (ms < 0) return await gate.promise.then(() => 0);
      await new Promise<void>((resolve) => clock.setTimeout(resolve, ms));
      return ms;
    });
    await clock.advance(0);
    await clock.advance(30); // inside the interval: a trailing timer due at 100
    await clock.advance(69);
    expect(reports).toEqual([1]);
    await clock.advance(1);
    expect(reports).toEqual([1, 2]);
    expect(timers.filter(([, options]) => options !== undefined)).toEqual([[70, { unref: true }]]);
    gate.resolve();
    await run;
    expect(reports).toEqual([1, 2, 3]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('without a listener no timer is ever set', async () => {
    const { clock, spy, timers } = timerSpyClock();
    const processor = new BatchProcessor({ concurrency: 3, progressIntervalMs: 100, clock: spy });
    const run = processor.map([1, 2, 3], async (ms) => {
      await new Promise<void>((resolve) => clock.setTimeout(resolve, ms));
      return ms;
    });
    await clock.advance(3);
    await run;
    expect(timers).toEqual([]);
  });

  it('one item: one report (the final counts are not repeated); an aborted single item: one report too', async () => {
    const reports: BatchProgress[] = [];
    const processor = new BatchProcessor({ onProgress: (p) => reports.push(p) });
    await processor.map([1], async (n) => n);
    expect(reports).toEqual([{ done: 1, total: 1, failed: 0 }]);
    reports.length = 0;
    await processor.map([1], async (n) => n, { signal: AbortSignal.abort(new Error('x')) });
    expect(reports).toEqual([{ done: 1, total: 1, failed: 1 }]);
  });

  it('the trailing timer is dropped as soon as the run ends', async () => {
    const clock = new ManualClock();
    const processor = new BatchProcessor({
      concurrency: 2,
      progressIntervalMs: 100,
      clock,
      onProgress: () => {},
    });
    const run = processor.map([5, 6], async (ms) => {
      await new Promise<void>((resolve) => clock.setTimeout(resolve, ms));
      return ms;
    });
    await clock.advance(6);
    await run;
    expect(clock.pendingTimers).toBe(0);
  });
});

describe('stream (result-stream engine) edges: signals', () => {
  it('stopOnError aborts the handlers still running with the failure', async () => {
    const processor = new BatchProcessor({ concurrency: 2, stopOnError: true });
    const failure = new Error('first');
    const reasons: unknown[] = [];
    const gate = deferred();
    const consume = async () => {
      for await (const _ of processor.stream([0, 1], async (n, { signal }) => {
        if (n === 0) {
          await gate.promise;
          throw failure;
        }
        return await new Promise<number>((_, reject) =>
          signal.addEventListener('abort', () => {
            reasons.push(signal.reason);
            reject(signal.reason);
          }),
        );
      }));
    };
    const consuming = consume();
    await tick();
    gate.resolve();
    await expect(consuming).rejects.toBe(failure);
    expect(reasons).toEqual([failure]);
  });

  it('an item pulled from an async source after the stream failed is never started', async () => {
    const processor = new BatchProcessor({ concurrency: 2, stopOnError: true });
    const next = deferred<IteratorResult<number>>();
    let pulls = 0;
    const source: AsyncIterable<number> = {
      [Symbol.asyncIterator]: () => ({
        next: () => {
          pulls++;
          return pulls === 1 ? Promise.resolve({ done: false, value: 0 }) : next.promise;
        },
        return: async () => ({ done: true, value: undefined }),
      }),
    };
    const started: number[] = [];
    const failure = new Error('zero');
    const iterator = processor
      .stream(source, async (n) => {
        started.push(n);
        if (n === 0) throw failure;
        return n;
      })
      [Symbol.asyncIterator]();
    await expect(iterator.next()).rejects.toBe(failure);
    next.resolve({ done: false, value: 1 });
    await settle();
    expect(started).toEqual([0]);
  });

  it('a stream read to its end leaves the handlers’ signal unaborted and without listeners', async () => {
    const processor = new BatchProcessor({ concurrency: 2 });
    let seen: AbortSignal | undefined;
    const out: unknown[] = [];
    for await (const result of processor.stream([1, 2], async (n, { signal }) => {
      seen = signal;
      return n;
    }))
      out.push(outcome(result));
    expect(out).toEqual([1, 2]);
    expect(seen?.aborted).toBe(false);
    expect(getEventListeners(seen as AbortSignal, 'abort')).toHaveLength(0);
  });
});
