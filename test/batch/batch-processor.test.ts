import { BatchProcessor, type BatchProgress, type BatchRateLimiter, type ItemResult } from 'hotpath/batch';
import { ClosedError, ConfigError, isHotpathError, ManualClock } from 'hotpath/core';
import { Profiler } from 'hotpath/profiling';
import { RateLimiter } from 'hotpath/ratelimit';
import { describe, expect, it } from 'vitest';
import { deferred } from '../helpers/async.js';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

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
    get now() {
      return now;
    },
  };
}

const values = <T>(results: ItemResult<T>[]) => results.map((r) => (r.ok ? r.value : 'error'));

describe('BatchProcessor options', () => {
  it.each([
    [{ batchSize: 0 }, 'BatchProcessor.batchSize'],
    [{ batchSize: 1.5 }, 'BatchProcessor.batchSize'],
    [{ concurrency: -1 }, 'BatchProcessor.concurrency'],
    [{ concurrency: Number.NaN }, 'BatchProcessor.concurrency'],
    [{ concurrency: Number.POSITIVE_INFINITY }, 'BatchProcessor.concurrency'],
    [{ progressIntervalMs: -5 }, 'BatchProcessor.progressIntervalMs'],
    [{ retry: { retries: -1 } }, 'BatchProcessor.retry.retries'],
    [{ retry: { baseDelayMs: 100, maxDelayMs: 10 } }, 'BatchProcessor.retry.maxDelayMs'],
    [{ rateLimiter: {} }, 'BatchProcessor.rateLimiter'],
    [{ onProgress: 'yes' }, 'BatchProcessor.onProgress'],
    [{ batchsize: 10 }, 'BatchProcessor.batchsize'],
  ])('rejects %o with a ConfigError naming the option', (options, option) => {
    let caught: unknown;
    try {
      new BatchProcessor(options as never);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).option).toBe(option);
  });

  it('rejects bad method input with a ConfigError and stays usable', async () => {
    const processor = new BatchProcessor({ concurrency: 2 });
    await expect(processor.map(42 as never, async (x) => x)).rejects.toBeInstanceOf(ConfigError);
    await expect(processor.map([1], 'nope' as never)).rejects.toBeInstanceOf(ConfigError);
    await expect(processor.map([1], async (x) => x, { sginal: 1 } as never)).rejects.toBeInstanceOf(ConfigError);
    await expect(processor.process([1], async (b) => b, { signal: 'x' } as never)).rejects.toBeInstanceOf(ConfigError);
    expect(() => processor.stream(42 as never, async (x) => x)).toThrow(ConfigError);
    expect(() => processor.stream([1], async (x) => x, { bufferSize: -1 })).toThrow(ConfigError);
    expect(values(await processor.map(new Set([1, 2]), async (x) => x * 10))).toEqual([10, 20]);
  });
});

describe('BatchProcessor.map', () => {
  it('returns one result per item in input order, with failures in place', async () => {
    const processor = new BatchProcessor({ concurrency: 4 });
    // Later items finish first, so completion order is the reverse of input order.
    const results = await processor.map([1, 2, 3, 4, 5, 6, 7, 8], async (n) => {
      await new Promise((resolve) => setTimeout(resolve, (9 - n) * 3));
      if (n % 3 === 0) throw new Error(`bad ${n}`);
      return n * 10;
    });
    expect(values(results)).toEqual([10, 20, 'error', 40, 50, 'error', 70, 80]);
    expect(results[2]).toMatchObject({ ok: false, error: { message: 'bad 3' } });
    expect(results[5]).toMatchObject({ ok: false, error: { message: 'bad 6' } });
    expect(processor.stats()).toMatchObject({ items: 8, succeeded: 6, failed: 2, calls: 8, inFlight: 0 });
  });

  it('keeps at most `concurrency` handlers in flight and accepts sync handlers', async () => {
    const processor = new BatchProcessor({ concurrency: 3 });
    const inFlight = gauge();
    const results = await processor.map(
      Array.from({ length: 40 }, (_, i) => i),
      async (n) => {
        inFlight.enter();
        await tick();
        inFlight.leave();
        return n;
      },
    );
    expect(inFlight.max).toBe(3);
    expect(values(results)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    const sync = await processor.map([1, 2, 3], (n) => {
      if (n === 2) throw new Error('sync throw');
      return n;
    });
    expect(values(sync)).toEqual([1, 'error', 3]);
    expect(await processor.map([], async () => 1)).toEqual([]);
  });

  it('retries each failing item exactly `retries` times on the core backoff policy', async () => {
    const clock = new ManualClock();
    const processor = new BatchProcessor({
      concurrency: 3,
      retry: { retries: 3, baseDelayMs: 100, maxDelayMs: 1000, jitter: false },
      clock,
    });
    const calls = new Map<string, number>();
    const running = processor.map(['flaky', 'broken', 'fine'], async (name) => {
      const attempt = (calls.get(name) ?? 0) + 1;
      calls.set(name, attempt);
      if (name === 'broken' || (name === 'flaky' && attempt < 3)) throw new Error(`${name} #${attempt}`);
      return `${name} ok on attempt ${attempt}`;
    });
    await clock.advance(0);
    // First attempts only: the retries wait 100 ms (then 200, 400: factor 2, no jitter).
    expect(Object.fromEntries(calls)).toEqual({ flaky: 1, broken: 1, fine: 1 });
    await clock.advance(99);
    expect(calls.get('broken')).toBe(1);
    await clock.advance(1);
    expect(Object.fromEntries(calls)).toEqual({ flaky: 2, broken: 2, fine: 1 });
    await clock.advance(200);
    await clock.advance(400);
    const results = await running;
    expect(values(results)).toEqual(['flaky ok on attempt 3', 'error', 'fine ok on attempt 1']);
    expect(results[1]).toMatchObject({ ok: false, error: { message: 'broken #4' } });
    expect(Object.fromEntries(calls)).toEqual({ flaky: 3, broken: 4, fine: 1 });
    // flaky retried twice, broken three times.
    expect(processor.stats()).toMatchObject({ retries: 5, calls: 8, failed: 1, succeeded: 2 });
  });

  it('does not retry what shouldRetry refuses', async () => {
    let calls = 0;
    const processor = new BatchProcessor({
      retry: { retries: 5, baseDelayMs: 0 },
      shouldRetry: (error) => !(error instanceof TypeError),
    });
    const [result] = await processor.map([1], async () => {
      calls++;
      throw new TypeError('permanent');
    });
    expect(result).toMatchObject({ ok: false, error: { message: 'permanent' } });
    expect(calls).toBe(1);
    expect(processor.stats().retries).toBe(0);
  });

  it('stopOnError rejects with the first error, starts nothing more and fires the running handlers’ signals', async () => {
    const processor = new BatchProcessor({ concurrency: 2, stopOnError: true });
    const started: number[] = [];
    const abortedWith: unknown[] = [];
    const failure = new Error('item 1 failed');
    const run = processor.map([0, 1, 2, 3, 4], async (n, { signal }) => {
      started.push(n);
      if (n === 1) {
        await tick();
        throw failure;
      }
      // Item 0 runs until aborted.
      await new Promise((_, reject) =>
        signal.addEventListener('abort', () => {
          abortedWith.push(signal.reason);
          reject(signal.reason);
        }),
      );
    });
    await expect(run).rejects.toBe(failure);
    await tick();
    expect(started).toEqual([0, 1]);
    expect(abortedWith).toEqual([failure]);
    expect(processor.stats().activeRuns).toBe(0);
  });

  it('abort: no handler starts after it, running handlers see their signal, and the call settles at once with what finished', async () => {
    const processor = new BatchProcessor({ concurrency: 2 });
    const controller = new AbortController();
    const started: number[] = [];
    const sawAbort: number[] = [];
    const never = deferred();
    const run = processor.map(
      [0, 1, 2, 3, 4, 5],
      async (n, { signal }) => {
        started.push(n);
        if (n < 2) return n; // the first two finish at once
        signal.addEventListener('abort', () => sawAbort.push(n));
        await never.promise; // the next two ignore their signal and never finish
        return n;
      },
      { signal: controller.signal },
    );
    await tick();
    expect(started).toEqual([0, 1, 2, 3]);
    const reason = new Error('user cancelled');
    controller.abort(reason);
    const results = await run; // settles although items 2 and 3 never finish
    expect(results).toEqual([
      { ok: true, value: 0 },
      { ok: true, value: 1 },
      { ok: false, error: reason },
      { ok: false, error: reason },
      { ok: false, error: reason },
      { ok: false, error: reason },
    ]);
    expect(sawAbort).toEqual([2, 3]);
    await tick();
    expect(started).toEqual([0, 1, 2, 3]);
    expect(processor.stats()).toMatchObject({ activeRuns: 0, failed: 4, succeeded: 2 });
  });

  it('an already aborted signal runs no handler', async () => {
    const processor = new BatchProcessor();
    let calls = 0;
    const reason = new Error('too late');
    const results = await processor.map([1, 2], async () => ++calls, { signal: AbortSignal.abort(reason) });
    expect(calls).toBe(0);
    expect(results).toEqual([
      { ok: false, error: reason },
      { ok: false, error: reason },
    ]);
  });

  it('aborting stops a retry wait', async () => {
    const clock = new ManualClock();
    const processor = new BatchProcessor({ retry: { retries: 3, baseDelayMs: 1000, jitter: false }, clock });
    const controller = new AbortController();
    let calls = 0;
    const run = processor.map(
      [1],
      async () => {
        calls++;
        throw new Error('down');
      },
      { signal: controller.signal },
    );
    await clock.advance(10);
    controller.abort(new Error('stop'));
    const [result] = await run;
    expect(result).toMatchObject({ ok: false, error: { message: 'stop' } });
    await clock.advance(5000);
    expect(calls).toBe(1);
  });

  it('gates every call, retries included, through a rate limiter (hotpath RateLimiter)', async () => {
    const limiter = new RateLimiter({ limit: Number.POSITIVE_INFINITY, intervalMs: 1000, maxConcurrent: 2 });
    const rateLimiter: BatchRateLimiter = limiter;
    const processor = new BatchProcessor({ concurrency: 5, rateLimiter, retry: { retries: 1, baseDelayMs: 0 } });
    const inFlight = gauge();
    const attempts = new Map<number, number>();
    const results = await processor.map(
      Array.from({ length: 10 }, (_, i) => i),
      async (n) => {
        inFlight.enter();
        await tick();
        inFlight.leave();
        const attempt = (attempts.get(n) ?? 0) + 1;
        attempts.set(n, attempt);
        if (n === 3 && attempt === 1) throw new Error('once');
        return n;
      },
    );
    expect(values(results)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(inFlight.max).toBe(2);
    // 10 first attempts + 1 retry, each admitted by the limiter and released.
    expect(limiter.stats()).toMatchObject({ running: 0, done: 11 });
    await limiter.close();
  });

  it('reports throttled progress and always a final report', async () => {
    const clock = new ManualClock();
    const reports: BatchProgress[] = [];
    const processor = new BatchProcessor({
      concurrency: 10,
      progressIntervalMs: 100,
      clock,
      onProgress: (progress) => reports.push(progress),
    });
    // Item n finishes at n * 10 ms; item 7 fails.
    const run = processor.map(
      Array.from({ length: 10 }, (_, i) => i + 1),
      async (n) => {
        await new Promise<void>((resolve) => clock.setTimeout(resolve, n * 10));
        if (n === 7) throw new Error('seven');
        return n;
      },
    );
    await clock.advance(100);
    await run;
    // First completion at 10 ms reports at once; the rest fall in one 100 ms interval: one
    // trailing report at 110 ms would follow, but the final report (at 100 ms) replaces it.
    expect(reports).toEqual([
      { done: 1, total: 10, failed: 0 },
      { done: 10, total: 10, failed: 1 },
    ]);
    await clock.advance(1000);
    expect(reports).toHaveLength(2);
    expect(clock.pendingTimers).toBe(0);
  });

  it('reports completion once when the last item finishes after the interval has passed (issue 20)', async () => {
    const clock = new ManualClock();
    const reports: BatchProgress[] = [];
    const processor = new BatchProcessor({
      concurrency: 4,
      progressIntervalMs: 100,
      clock,
      onProgress: (progress) => reports.push(progress),
    });
    // Item n finishes at n * 200 ms: every completion falls after the interval and reports at once.
    const run = processor.map(
      Array.from({ length: 12 }, (_, i) => i + 1),
      async (n) => {
        await new Promise<void>((resolve) => clock.setTimeout(resolve, n * 200));
        return n;
      },
    );
    for (let i = 0; i < 30; i++) await clock.advance(200);
    await run;
    expect(reports.map((report) => report.done)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(reports.filter((report) => report.done === 12)).toHaveLength(1);
  });

  it('refuses a string as the items (a ConfigError naming the argument), not one item per character', async () => {
    const processor = new BatchProcessor();
    let calls = 0;
    for (const method of ['map', 'process'] as const) {
      const error = await processor[method]('abc' as never, async (x: unknown) => {
        calls++;
        return x as never;
      }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).option).toBe(`BatchProcessor.${method}.items`);
    }
    expect(calls).toBe(0);
    expect(values(await processor.map(['abc'], async (x) => x.length))).toEqual([3]);
  });

  it('ClosedError reads "BatchProcessor is closed" (said once)', async () => {
    const processor = new BatchProcessor();
    await processor.close();
    const error = await processor.map([1], async (n) => n).catch((caught: unknown) => caught);
    expect((error as Error).message).toBe('BatchProcessor is closed');
    expect(() => processor.stream([1], async (n) => n)).toThrow(/^BatchProcessor is closed$/);
  });

  it('sends a trailing report after a quiet spell and survives a throwing listener', async () => {
    const clock = new ManualClock();
    const reports: number[] = [];
    const processor = new BatchProcessor({
      concurrency: 3,
      progressIntervalMs: 50,
      clock,
      onProgress: ({ done }) => {
        reports.push(done);
        if (done === 2) throw new Error('listener bug');
      },
    });
    const gate = deferred();
    const run = processor.map([10, 20, 'wait'] as const, async (item) => {
      if (item === 'wait') {
        await gate.promise;
        return 0;
      }
      await new Promise<void>((resolve) => clock.setTimeout(resolve, item));
      return item;
    });
    await clock.advance(20); // item 10 reports at once, item 20 is throttled
    expect(reports).toEqual([1]);
    await clock.advance(40); // trailing report at 60 ms
    expect(reports).toEqual([1, 2]);
    gate.resolve();
    const results = await run;
    expect(values(results)).toEqual([10, 20, 0]);
    expect(reports).toEqual([1, 2, 3]);
    expect(processor.stats().listenerErrors).toBe(1);
  });

  it('records item durations into the profiler', async () => {
    const profiler = new Profiler();
    const processor = new BatchProcessor({ profiler });
    await processor.map([1, 2, 3], async (n) => {
      if (n === 2) throw new Error('x');
      return n;
    });
    expect(profiler.stats('batch.item')).toMatchObject({ count: 3, errors: 1 });
    profiler.close();
  });

  it('close() stops running calls with a ClosedError and refuses new ones', async () => {
    const processor = new BatchProcessor({ concurrency: 1 });
    const run = processor.map(
      [1, 2],
      (_n, { signal }) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
    );
    await tick();
    await processor.close();
    await processor.close();
    const results = await run;
    expect(results.every((r) => !r.ok && isHotpathError(r.error, 'ERR_HOTPATH_CLOSED'))).toBe(true);
    await expect(processor.map([1], async (n) => n)).rejects.toBeInstanceOf(ClosedError);
    expect(() => processor.stream([1], async (n) => n)).toThrow(ClosedError);
  });
});

describe('BatchProcessor.process', () => {
  it('splits into batches of batchSize and maps results back to items in order', async () => {
    const processor = new BatchProcessor({ batchSize: 3, concurrency: 2 });
    const batches: number[][] = [];
    const inFlight = gauge();
    const results = await processor.process(
      Array.from({ length: 10 }, (_, i) => i),
      async (batch) => {
        batches.push(batch);
        inFlight.enter();
        await new Promise((resolve) => setTimeout(resolve, 10 - batch.length * 2));
        inFlight.leave();
        return batch.map((n) => n * 2);
      },
    );
    expect(batches.map((b) => b.length).sort()).toEqual([1, 3, 3, 3]);
    expect(inFlight.max).toBe(2);
    expect(values(results)).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
  });

  it('fails exactly the affected items: per-item Error, thrown batch, wrong-length result', async () => {
    const processor = new BatchProcessor({ batchSize: 2, concurrency: 3 });
    const results = await processor.process([1, 2, 3, 4, 5, 6, 7], async (batch) => {
      if (batch[0] === 3) throw new Error('batch 3-4 failed');
      if (batch[0] === 5) return [50]; // one value for two items
      return batch.map((n) => (n === 2 ? new Error('item 2 invalid') : n * 10));
    });
    expect(values(results)).toEqual([10, 'error', 'error', 'error', 'error', 'error', 70]);
    expect(results[1]).toMatchObject({ error: { message: 'item 2 invalid' } });
    expect(results[2]).toMatchObject({ error: { message: 'batch 3-4 failed' } });
    expect(results[3]).toMatchObject({ error: { message: 'batch 3-4 failed' } });
    const wrongLength = results[4] as { ok: false; error: Error };
    expect(wrongLength.error).toBeInstanceOf(TypeError);
    expect(wrongLength.error.message).toMatch(/array of 2 results .* got an array of 1/);
    expect(processor.stats()).toMatchObject({ items: 7, failed: 5, succeeded: 2 });
  });

  it('retries a batch as a whole and counts each retry once', async () => {
    const processor = new BatchProcessor({ batchSize: 5, retry: { retries: 2, baseDelayMs: 0 } });
    let calls = 0;
    const results = await processor.process([1, 2, 3, 4, 5, 6], async (batch) => {
      calls++;
      if (batch[0] === 1 && calls < 3) throw new Error('transient');
      return batch;
    });
    expect(values(results)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(processor.stats().retries).toBe(calls - 2);
  });

  it('stopOnError stops after the first failing batch', async () => {
    const processor = new BatchProcessor({ batchSize: 2, concurrency: 1, stopOnError: true });
    const seen: number[][] = [];
    await expect(
      processor.process([1, 2, 3, 4, 5, 6], async (batch) => {
        seen.push(batch);
        return batch.map((n) => (n === 3 ? new Error('three') : n));
      }),
    ).rejects.toThrow('three');
    expect(seen).toEqual([
      [1, 2],
      [3, 4],
    ]);
  });
});
