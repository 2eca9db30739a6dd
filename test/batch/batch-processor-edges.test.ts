import { getEventListeners, getMaxListeners } from 'node:events';
import { BatchProcessor, type BatchProgress, type ItemResult } from 'hotpath/batch';
import { ClosedError, ConfigError, type Logger, ManualClock } from 'hotpath/core';
import { describe, expect, it } from 'vitest';
import { deferred, settle, tick } from '../helpers/async.js';
import { caught } from '../helpers/errors.js';

const values = <T>(results: ItemResult<T>[]) => results.map((r) => (r.ok ? r.value : 'error'));

/** A logger that keeps `[level, message, fields]` of every call. */
function logSpy() {
  const lines: Array<[string, string | undefined, object]> = [];
  const at =
    (level: string) =>
    (fields: object, message?: string): void => {
      lines.push([level, message, fields]);
    };
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { lines, logger };
}

/** A profiler stand-in that keeps every record call as it was made. */
function profilerSpy() {
  const records: unknown[][] = [];
  return {
    records,
    profiler: {
      record: (...args: unknown[]) => {
        records.push(args);
      },
    },
  };
}

/** Tracks how many calls run at once. */
function gauge() {
  let now = 0;
  let max = 0;
  return {
    enter() {
      now++;
      max = Math.max(max, now);
    },
    leave() {
      now--;
    },
    get max() {
      return max;
    },
  };
}

describe('BatchProcessor edges: arguments', () => {
  it('items, handler and source errors name the argument and the method', async () => {
    const processor = new BatchProcessor();
    for (const method of ['map', 'process'] as const) {
      const run = (items: unknown, fn: unknown) => processor[method](items as never, fn as never);
      const asString = await run('abc', async () => 1).catch((e: unknown) => e);
      expect(asString).toBeInstanceOf(ConfigError);
      expect(asString).toMatchObject({
        option: `BatchProcessor.${method}.items`,
        message: `BatchProcessor.${method}: items must be an array or an iterable of items, got a string (wrap it: [value])`,
      });
      for (const items of [null, undefined, 42, {}]) {
        const error = await run(items, async () => 1).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ConfigError);
        expect(error).toMatchObject({
          option: `BatchProcessor.${method}.items`,
          message: `BatchProcessor.${method}: items must be an array or an iterable`,
        });
      }
      const noHandler = await run([1], 'fn').catch((e: unknown) => e);
      expect(noHandler).toBeInstanceOf(ConfigError);
      expect(noHandler).toMatchObject({
        option: `BatchProcessor.${method}.handler`,
        message: `BatchProcessor.${method}: the handler must be a function`,
      });
    }
    for (const source of [null, 42, 'abc', {}]) {
      const error = caught(() => processor.stream(source as never, async (x) => x));
      expect(error).toBeInstanceOf(ConfigError);
      expect(error).toMatchObject({
        option: 'BatchProcessor.stream.source',
        message: 'BatchProcessor.stream: source must be an iterable or an async iterable',
      });
    }
    expect(caught(() => processor.stream([1], 'fn' as never))).toMatchObject({
      option: 'BatchProcessor.stream.handler',
      message: 'BatchProcessor.stream: the handler must be a function',
    });
    const limiter = caught(() => new BatchProcessor({ rateLimiter: { acquire: 1 } as never }));
    expect(limiter).toBeInstanceOf(ConfigError);
    expect(limiter).toMatchObject({
      option: 'BatchProcessor.rateLimiter',
      message: 'BatchProcessor.rateLimiter must have an acquire() method',
    });
    // Nothing was started by the refused calls.
    expect(processor.stats()).toEqual({
      items: 0,
      succeeded: 0,
      failed: 0,
      retries: 0,
      calls: 0,
      inFlight: 0,
      activeRuns: 0,
      listenerErrors: 0,
    });
  });

  it('an iterable that is not an array is read once, in order', async () => {
    const processor = new BatchProcessor({ batchSize: 2 });
    function* items() {
      yield 1;
      yield 2;
      yield 3;
    }
    expect(values(await processor.map(items(), async (n) => n * 2))).toEqual([2, 4, 6]);
    expect(values(await processor.process(items(), async (batch) => batch.map((n) => -n)))).toEqual([-1, -2, -3]);
  });
});

describe('BatchProcessor edges: defaults', () => {
  it('runs 8 handlers at once and batches of 100 by default', async () => {
    const processor = new BatchProcessor();
    const inFlight = gauge();
    await processor.map(
      Array.from({ length: 20 }, (_, i) => i),
      async (n) => {
        inFlight.enter();
        await tick();
        inFlight.leave();
        return n;
      },
    );
    expect(inFlight.max).toBe(8);
    const sizes: number[] = [];
    await processor.process(
      Array.from({ length: 201 }, (_, i) => i),
      async (batch) => {
        sizes.push(batch.length);
        return batch;
      },
    );
    expect(sizes).toEqual([100, 100, 1]);
  });

  it('reports progress at most every 100 ms by default', async () => {
    const clock = new ManualClock();
    const reports: BatchProgress[] = [];
    const processor = new BatchProcessor({ concurrency: 3, clock, onProgress: (p) => reports.push(p) });
    const run = processor.map([10, 60, 99, 150], async (ms) => {
      await new Promise<void>((resolve) => clock.setTimeout(resolve, ms));
      return ms;
    });
    await clock.advance(10);
    expect(reports.map((r) => r.done)).toEqual([1]);
    await clock.advance(89); // 60 and 99 finished inside the interval
    expect(reports.map((r) => r.done)).toEqual([1]);
    await clock.advance(1); // the trailing report is due at 10 + 100 ms
    expect(reports.map((r) => r.done)).toEqual([1]);
    await clock.advance(10);
    expect(reports.map((r) => r.done)).toEqual([1, 3]);
    await clock.advance(50);
    await run;
    expect(reports).toEqual([
      { done: 1, total: 4, failed: 0 },
      { done: 3, total: 4, failed: 0 },
      { done: 4, total: 4, failed: 0 },
    ]);
  });

  it('without retries (retry false or retries 0) a failing item is called once', async () => {
    for (const retry of [false, { retries: 0 }, undefined] as const) {
      const processor = new BatchProcessor({ retry });
      let calls = 0;
      const [result] = await processor.map([1], async () => {
        calls++;
        throw new Error('once');
      });
      expect(result).toEqual({ ok: false, error: new Error('once') });
      expect(calls).toBe(1);
      expect(processor.stats()).toMatchObject({ calls: 1, retries: 0, failed: 1 });
    }
  });

  it('the handlers’ signal takes 4 listeners per unit of concurrency, plus 10, before Node warns', async () => {
    const processor = new BatchProcessor({ concurrency: 3 });
    let seen: AbortSignal | undefined;
    await processor.map([1], (_n, { signal }) => {
      seen = signal;
      return 1;
    });
    expect(getMaxListeners(seen as AbortSignal)).toBe(22);
    for await (const _ of processor.stream([1], (_n, { signal }) => {
      seen = signal;
      return 1;
    }));
    expect(getMaxListeners(seen as AbortSignal)).toBe(22);
  });
});

describe('BatchProcessor edges: runs', () => {
  it('counts every call, retry and item exactly across map, process and stream', async () => {
    const processor = new BatchProcessor({ concurrency: 2, batchSize: 2, retry: { retries: 1, baseDelayMs: 0 } });
    const mapped = await processor.map([1, 2, 3], async (n) => {
      if (n === 2) throw new Error('two');
      return n;
    });
    expect(values(mapped)).toEqual([1, 'error', 3]);
    expect(processor.stats()).toEqual({
      items: 3,
      succeeded: 2,
      failed: 1,
      retries: 1,
      calls: 4,
      inFlight: 0,
      activeRuns: 0,
      listenerErrors: 0,
    });
    const processed = await processor.process([1, 2, 3], async (batch) =>
      batch.map((n) => (n === 3 ? new Error('three') : n)),
    );
    expect(values(processed)).toEqual([1, 2, 'error']);
    expect(processor.stats()).toMatchObject({ items: 6, succeeded: 4, failed: 2, retries: 1, calls: 6 });
    const streamed: Array<number | 'error'> = [];
    for await (const result of processor.stream([5, 6], async (n) => {
      if (n === 6) throw new Error('six');
      return n;
    }))
      streamed.push(result.ok ? result.value : 'error');
    expect(streamed).toEqual([5, 'error']);
    expect(processor.stats()).toEqual({
      items: 8,
      succeeded: 5,
      failed: 3,
      retries: 2,
      calls: 9,
      inFlight: 0,
      activeRuns: 0,
      listenerErrors: 0,
    });
  });

  it('inFlight and activeRuns count what runs right now', async () => {
    const processor = new BatchProcessor({ concurrency: 2 });
    const gate = deferred();
    const run = processor.map([1, 2, 3], async (n) => {
      await gate.promise;
      return n;
    });
    await tick();
    expect(processor.stats()).toMatchObject({ inFlight: 2, activeRuns: 1, calls: 2, items: 0 });
    gate.resolve();
    await run;
    expect(processor.stats()).toMatchObject({ inFlight: 0, activeRuns: 0, calls: 3, items: 3 });
  });

  it('an empty run, or one whose signal is already aborted, reports final progress at once', async () => {
    const reports: BatchProgress[] = [];
    const processor = new BatchProcessor({ onProgress: (p) => reports.push(p) });
    expect(await processor.map([], async () => 1)).toEqual([]);
    expect(await processor.process([], async (b) => b)).toEqual([]);
    expect(reports).toEqual([
      { done: 0, total: 0, failed: 0 },
      { done: 0, total: 0, failed: 0 },
    ]);
    const reason = new Error('late');
    const results = await processor.process([1, 2, 3], async (b) => b, { signal: AbortSignal.abort(reason) });
    expect(results).toEqual([
      { ok: false, error: reason },
      { ok: false, error: reason },
      { ok: false, error: reason },
    ]);
    expect(reports.at(-1)).toEqual({ done: 3, total: 3, failed: 3 });
    expect(processor.stats()).toMatchObject({ items: 3, failed: 3, succeeded: 0, calls: 0, activeRuns: 0 });
  });

  it('an abort counts the unfinished items as failed in stats and in the final progress report', async () => {
    const clock = new ManualClock();
    const reports: BatchProgress[] = [];
    const processor = new BatchProcessor({ concurrency: 1, clock, onProgress: (p) => reports.push(p) });
    const controller = new AbortController();
    const never = deferred();
    const run = processor.map(
      [1, 2, 3, 4],
      async (n) => {
        if (n === 1) return n;
        await never.promise;
        return n;
      },
      { signal: controller.signal },
    );
    await tick();
    controller.abort(new Error('stop'));
    const results = await run;
    expect(values(results)).toEqual([1, 'error', 'error', 'error']);
    expect(reports).toEqual([
      { done: 1, total: 4, failed: 0 },
      { done: 4, total: 4, failed: 3 },
    ]);
    expect(processor.stats()).toMatchObject({ items: 4, failed: 3, succeeded: 1, activeRuns: 0 });
    expect(clock.pendingTimers).toBe(0);
  });

  it('the caller’s signal loses its listener once the run is over, finished or failed', async () => {
    const controller = new AbortController();
    const processor = new BatchProcessor({ concurrency: 1, stopOnError: true });
    const run = processor.map([1], async (n) => n, { signal: controller.signal });
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    await run;
    await tick();
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    const failing = processor.map(
      [1],
      async () => {
        throw new Error('x');
      },
      { signal: controller.signal },
    );
    await expect(failing).rejects.toThrow('x');
    await tick();
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('a handler that ignores its signal and finishes after an abort does not change the results', async () => {
    const processor = new BatchProcessor({ concurrency: 2 });
    const controller = new AbortController();
    const gate = deferred();
    const run = processor.process(
      [1, 2, 3, 4],
      async (batch) => {
        await gate.promise;
        return batch;
      },
      { signal: controller.signal },
    );
    await tick();
    const reason = new Error('abort');
    controller.abort(reason);
    const results = await run;
    gate.resolve();
    await settle();
    expect(results).toEqual([
      { ok: false, error: reason },
      { ok: false, error: reason },
      { ok: false, error: reason },
      { ok: false, error: reason },
    ]);
    expect(processor.stats()).toMatchObject({ items: 4, failed: 4, inFlight: 0 });
  });
});

describe('BatchProcessor edges: process', () => {
  it('a malformed batch result names what it got', async () => {
    for (const [answer, got] of [
      [null, 'null'],
      [{ length: 2 }, 'object'],
      [undefined, 'undefined'],
      [[1], 'an array of 1'],
      [[1, 2, 3], 'an array of 3'],
    ] as const) {
      const processor = new BatchProcessor({ batchSize: 2 });
      const results = await processor.process([1, 2], async () => answer as never);
      const error = (results[0] as { error: Error }).error;
      expect(error).toBeInstanceOf(TypeError);
      expect(error.message).toBe(
        `BatchProcessor.process: the handler must return an array of 2 results (one per item), got ${got}`,
      );
      expect(results[1]).toEqual({ ok: false, error });
    }
  });

  it('stopOnError rejects with the first failing item of the batch, in item order', async () => {
    const processor = new BatchProcessor({ batchSize: 3, stopOnError: true });
    const first = new Error('first');
    const second = new Error('second');
    await expect(processor.process([1, 2, 3], async () => [1, first, second])).rejects.toBe(first);
    const thrown = new Error('whole batch');
    await expect(
      processor.process([1, 2], async () => {
        throw thrown;
      }),
    ).rejects.toBe(thrown);
    expect(processor.stats()).toMatchObject({ items: 5, failed: 4, succeeded: 1, activeRuns: 0 });
  });

  it('retries, limiter and profiler wrap each batch call: one `batch.batch` record per batch', async () => {
    const { records, profiler } = profilerSpy();
    const acquired: string[] = [];
    const rateLimiter = {
      acquire: async () => {
        acquired.push('acquire');
        return () => acquired.push('release');
      },
    };
    const processor = new BatchProcessor({
      batchSize: 2,
      concurrency: 1,
      profiler,
      rateLimiter,
      retry: { retries: 1, baseDelayMs: 0 },
    });
    let calls = 0;
    const results = await processor.process([1, 2, 3], async (batch) => {
      calls++;
      if (calls === 1) throw new Error('transient');
      if (batch[0] === 3) throw new Error('always');
      return batch;
    });
    expect(values(results)).toEqual([1, 2, 'error']);
    expect(records.map((args) => [args[0], typeof args[1], args[2]])).toEqual([
      ['batch.batch', 'number', undefined],
      ['batch.batch', 'number', true],
    ]);
    expect(records[0]).toHaveLength(2);
    expect(acquired).toEqual(['acquire', 'release', 'acquire', 'release', 'acquire', 'release', 'acquire', 'release']);
    expect(processor.stats()).toMatchObject({ calls: 4, retries: 2 });
  });
});

describe('BatchProcessor edges: retries, limiter, listener errors', () => {
  it('shouldRetry sees each error with its attempt number; an aborted run retries nothing', async () => {
    const clock = new ManualClock();
    const seen: Array<[string, number]> = [];
    const processor = new BatchProcessor({
      retry: { retries: 5, baseDelayMs: 10, jitter: false, factor: 1 },
      clock,
      shouldRetry: (error, attempt) => {
        seen.push([(error as Error).message, attempt]);
        return attempt < 3;
      },
    });
    let calls = 0;
    const run = processor.map([1], async () => {
      calls++;
      throw new Error(`fail ${calls}`);
    });
    await clock.advance(10);
    await clock.advance(10);
    const [result] = await run;
    expect(result).toEqual({ ok: false, error: new Error('fail 3') });
    expect(seen).toEqual([
      ['fail 1', 1],
      ['fail 2', 2],
      ['fail 3', 3],
    ]);
    expect(processor.stats()).toMatchObject({ calls: 3, retries: 2 });

    const controller = new AbortController();
    let asked = 0;
    const aborting = new BatchProcessor({
      retry: { retries: 5, baseDelayMs: 0 },
      shouldRetry: () => {
        asked++;
        return true;
      },
    });
    const [aborted] = await aborting.map(
      [1],
      async () => {
        controller.abort(new Error('stop'));
        throw new Error('failed while stopping');
      },
      { signal: controller.signal },
    );
    expect(aborted).toEqual({ ok: false, error: new Error('stop') });
    expect(asked).toBe(0);
    expect(aborting.stats()).toMatchObject({ calls: 1, retries: 0 });
  });

  it('map with a profiler records one `batch.item` per item, flagged on failure', async () => {
    const { records, profiler } = profilerSpy();
    const processor = new BatchProcessor({ profiler, concurrency: 1 });
    await processor.map([1, 2], async (n) => {
      if (n === 2) throw new Error('x');
      return n;
    });
    expect(records.map((args) => [args[0], typeof args[1], args[2]])).toEqual([
      ['batch.item', 'number', undefined],
      ['batch.item', 'number', true],
    ]);
  });

  it('a limiter slot granted after the run was aborted starts no handler and is released', async () => {
    const grant = deferred<() => void>();
    let released = 0;
    const rateLimiter = { acquire: () => grant.promise };
    const processor = new BatchProcessor({ rateLimiter, concurrency: 1 });
    const controller = new AbortController();
    let calls = 0;
    const reason = new Error('cancelled');
    const stream = processor.stream(
      [1],
      async () => {
        calls++;
        return 1;
      },
      { signal: controller.signal },
    );
    const iterator = stream[Symbol.asyncIterator]();
    const next = iterator.next();
    await tick();
    controller.abort(reason);
    grant.resolve(() => {
      released++;
    });
    await expect(next).rejects.toBe(reason);
    await settle();
    expect(calls).toBe(0);
    expect(released).toBe(1);
  });

  it('a throwing progress listener is counted and logged as a warning with the error', async () => {
    const { lines, logger } = logSpy();
    const bug = new Error('listener bug');
    const processor = new BatchProcessor({
      logger,
      onProgress: () => {
        throw bug;
      },
    });
    expect(values(await processor.map([1], async (n) => n))).toEqual([1]);
    expect(processor.stats().listenerErrors).toBe(1);
    expect(lines).toEqual([['warn', 'BatchProcessor: onProgress listener threw', { err: bug }]]);
  });
});

describe('BatchProcessor edges: close', () => {
  it('close() aborts every running call with the same ClosedError and is idempotent', async () => {
    const processor = new BatchProcessor({ concurrency: 1 });
    const reasons: unknown[] = [];
    const hang = (_n: number, { signal }: { signal: AbortSignal }) =>
      new Promise<number>((_, reject) =>
        signal.addEventListener('abort', () => {
          reasons.push(signal.reason);
          reject(signal.reason);
        }),
      );
    const a = processor.map([1], hang);
    const b = processor.process([1], (batch, context) => hang(batch[0] as number, context).then(() => batch));
    await tick();
    expect(processor.stats().activeRuns).toBe(2);
    await processor.close();
    const [ra, rb] = await Promise.all([a, b]);
    expect(reasons).toHaveLength(2);
    expect(reasons[0]).toBeInstanceOf(ClosedError);
    expect(reasons[1]).toBe(reasons[0]);
    expect((reasons[0] as Error).message).toBe('BatchProcessor is closed');
    expect(ra).toEqual([{ ok: false, error: reasons[0] }]);
    expect(rb).toEqual([{ ok: false, error: reasons[0] }]);
    await processor.close();
    const error = await processor.process([1], async (batch) => batch).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClosedError);
    expect(processor.stats().activeRuns).toBe(0);
  });

  it('await using closes it', async () => {
    let processor: BatchProcessor | undefined;
    {
      await using scoped = new BatchProcessor();
      processor = scoped;
    }
    await expect(processor.map([1], async (n) => n)).rejects.toBeInstanceOf(ClosedError);
  });
});

describe('BatchProcessor edges: names, timings and handlers that ignore their signal', () => {
  it('option errors name the method they came from', async () => {
    const processor = new BatchProcessor();
    const bad = { signal: 5 as unknown as AbortSignal };
    const messages = [
      await processor.map([1], async (n) => n, bad).catch((e: Error) => e.message),
      await processor.process([1], async (b) => b, bad).catch((e: Error) => e.message),
      (caught(() => processor.stream([1], async (n) => n, bad)) as Error).message,
    ];
    expect(messages).toEqual([
      'BatchProcessor.map.signal must be an object, got 5',
      'BatchProcessor.process.signal must be an object, got 5',
      'BatchProcessor.stream.signal must be an object, got 5',
    ]);
  });

  it('records each call’s own duration (never more than the whole call took), ok and failed, for map and stream', async () => {
    const { records, profiler } = profilerSpy();
    const processor = new BatchProcessor({ profiler });
    const before = performance.now();
    await processor.map([1, 2], async (n) => {
      if (n === 2) throw new Error('no');
      return n;
    });
    for await (const _ of processor.stream([3], async (n) => n));
    const took = performance.now() - before;
    expect(records.map(([name, , failed]) => [name, failed])).toEqual([
      ['batch.item', undefined],
      ['batch.item', true],
      ['batch.item', undefined],
    ]);
    for (const [, ms] of records) {
      expect(ms).toBeGreaterThanOrEqual(0);
      expect(ms).toBeLessThanOrEqual(took);
    }
  });

  it('hands the run’s signal to the rate limiter', async () => {
    const seen: unknown[] = [];
    const rateLimiter = {
      acquire: async (options?: { signal?: AbortSignal }) => {
        seen.push(options?.signal);
        return () => {};
      },
    };
    const processor = new BatchProcessor({ rateLimiter });
    await processor.map([1], async (n) => n);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBeInstanceOf(AbortSignal);
  });

  it('close() settles a run whose handler ignores its signal; the late result is dropped', async () => {
    const processor = new BatchProcessor({ concurrency: 2 });
    const release = deferred<number>();
    const run = processor.map([1, 2], (n) => (n === 1 ? Promise.resolve(1) : release.promise));
    await tick();
    await processor.close();
    const results = await run; // settles although item 2's handler is still running
    expect(results[0]).toEqual({ ok: true, value: 1 });
    expect(results[1]?.ok).toBe(false);
    expect((results[1] as { error: unknown }).error).toBeInstanceOf(ClosedError);
    expect(processor.stats()).toMatchObject({ items: 2, succeeded: 1, failed: 1, activeRuns: 0 });
    release.resolve(2);
    await tick();
    await tick();
    expect((results[1] as { ok: boolean }).ok).toBe(false);
    expect(processor.stats()).toMatchObject({ items: 2, succeeded: 1, failed: 1 });
  });

  it('a stream made before close() and read after it ends with a ClosedError', async () => {
    const processor = new BatchProcessor();
    const stream = processor.stream([1, 2], async (n) => n);
    await processor.close();
    const error = await (async () => {
      for await (const _ of stream);
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClosedError);
    expect((error as Error).message).toBe('BatchProcessor is closed');
  });
});
