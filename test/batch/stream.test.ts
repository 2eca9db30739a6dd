import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { BatchProcessor, type ItemResult } from 'hotpath/batch';
import { ClosedError } from 'hotpath/core';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
// Under mutation testing (`npm run mutate` sets HOTPATH_MUTATION=1) the child-process memory test is skipped: the child
// never sees Stryker's active mutant (it is injected into the vitest worker only), so it can kill no mutant, and
// tsx cannot even load the instrumented sources (esbuild rejects Stryker's `cond ? (x as number)-- : …` output).
const isMutationRun = process.env.HOTPATH_MUTATION === '1';
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
const sleepMs = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function collect<T>(iterable: AsyncIterable<ItemResult<T>>): Promise<Array<T | 'error'>> {
  const out: Array<T | 'error'> = [];
  for await (const result of iterable) out.push(result.ok ? result.value : 'error');
  return out;
}

describe('BatchProcessor.stream', () => {
  it('yields results in input order by default, failures in place', async () => {
    const processor = new BatchProcessor({ concurrency: 3 });
    const delays = [30, 5, 20, 1, 10, 2];
    const out = await collect(
      processor.stream(delays, async (ms) => {
        await sleepMs(ms);
        if (ms === 20) throw new Error('twenty');
        return ms;
      }),
    );
    expect(out).toEqual([30, 5, 'error', 1, 10, 2]);
  });

  it('with ordered: false yields in completion order', async () => {
    const processor = new BatchProcessor({ concurrency: 3 });
    const out = await collect(
      processor.stream(
        [40, 5, 20],
        async (ms) => {
          await sleepMs(ms);
          return ms;
        },
        { ordered: false },
      ),
    );
    expect(out).toEqual([5, 20, 40]);
  });

  it('pulls an async source no faster than the consumer reads (bounded buffer)', async () => {
    const processor = new BatchProcessor({ concurrency: 2 });
    let pulled = 0;
    async function* source() {
      for (let i = 0; ; i++) {
        pulled++;
        yield i;
      }
    }
    const seen: number[] = [];
    let finished = 0;
    const handler = async (n: number) => {
      finished++;
      return n;
    };
    for await (const result of processor.stream(source(), handler, { bufferSize: 3 })) {
      seen.push(result.ok ? result.value : -1);
      if (seen.length === 5) {
        // A slow consumer: the source must stay within concurrency + bufferSize of what was read,
        // and that is the documented bound on finished-but-unread results too (it is reached).
        await sleepMs(20);
        expect(pulled - seen.length).toBeLessThanOrEqual(2 + 3);
        expect(finished - seen.length).toBe(2 + 3);
      }
      if (seen.length === 10) break;
    }
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(pulled).toBeLessThanOrEqual(10 + 5);
  });

  it('breaking out fires the handlers’ signals and closes the source', async () => {
    const processor = new BatchProcessor({ concurrency: 2 });
    let isSourceClosed = false;
    const aborted: number[] = [];
    function* source() {
      try {
        for (let i = 0; ; i++) yield i;
      } finally {
        isSourceClosed = true;
      }
    }
    for await (const result of processor.stream(source(), async (n, { signal }) => {
      if (n === 0) return n;
      await new Promise((_, reject) =>
        signal.addEventListener('abort', () => {
          aborted.push(n);
          reject(signal.reason);
        }),
      );
      return n;
    })) {
      expect(result).toEqual({ ok: true, value: 0 });
      break;
    }
    expect(isSourceClosed).toBe(true);
    expect(aborted).toEqual([1, 2]);
    expect(processor.stats()).toMatchObject({ activeRuns: 0 });
  });

  it('abort: throws the reason, starts nothing more, running handlers see their signal', async () => {
    const processor = new BatchProcessor({ concurrency: 2 });
    const controller = new AbortController();
    const started: number[] = [];
    const sawAbort: number[] = [];
    const reason = new Error('shutdown');
    const received: number[] = [];
    const consume = async () => {
      for await (const result of processor.stream(
        [0, 1, 2, 3, 4, 5],
        async (n, { signal }) => {
          started.push(n);
          if (n === 0) return n;
          await new Promise((_, reject) =>
            signal.addEventListener('abort', () => {
              sawAbort.push(n);
              reject(signal.reason);
            }),
          );
          return n;
        },
        { signal: controller.signal },
      )) {
        received.push(result.ok ? result.value : -1);
        if (received.length === 1) setTimeout(() => controller.abort(reason), 5);
      }
    };
    await expect(consume()).rejects.toBe(reason);
    await tick();
    expect(received).toEqual([0]);
    expect(started).toEqual([0, 1, 2]);
    expect(sawAbort).toEqual([1, 2]);
  });

  it('close() of the processor ends an endless stream with a ClosedError', async () => {
    const processor = new BatchProcessor({ concurrency: 2 });
    function* endless() {
      for (let i = 0; ; i++) yield i;
    }
    let received = 0;
    const consume = async () => {
      for await (const _ of processor.stream(endless(), async (n) => n)) {
        if (++received === 100) await processor.close();
      }
    };
    await expect(consume()).rejects.toBeInstanceOf(ClosedError);
    expect(received).toBe(100);
    expect(processor.stats().activeRuns).toBe(0);
  });

  it('a stream holds nothing until iterated, and one iterated after close() throws ClosedError', async () => {
    const processor = new BatchProcessor();
    let calls = 0;
    const stream = processor.stream([1, 2, 3], async (n) => {
      calls++;
      return n;
    });
    expect(processor.stats().activeRuns).toBe(0);
    await processor.close();
    await expect(collect(stream)).rejects.toBeInstanceOf(ClosedError);
    expect(calls).toBe(0);
  });

  it('a source that throws when iterated ends the stream with its error', async () => {
    const processor = new BatchProcessor();
    const broken = {
      [Symbol.iterator](): Iterator<number> {
        throw new Error('cannot iterate');
      },
    };
    await expect(collect(processor.stream(broken, async (n) => n))).rejects.toThrow('cannot iterate');
    expect(processor.stats().activeRuns).toBe(0);
  });

  it('stopOnError throws the first failure', async () => {
    const processor = new BatchProcessor({ concurrency: 1, stopOnError: true });
    const started: number[] = [];
    const received: number[] = [];
    const consume = async () => {
      for await (const result of processor.stream([1, 2, 3, 4], async (n) => {
        started.push(n);
        if (n === 2) throw new Error('two');
        return n;
      }))
        received.push(result.ok ? result.value : -1);
    };
    await expect(consume()).rejects.toThrow('two');
    expect(received).toEqual([1]);
    expect(started).toEqual([1, 2]);
  });

  it('a failing source throws after the items already started are yielded', async () => {
    const processor = new BatchProcessor({ concurrency: 4 });
    async function* source() {
      yield 1;
      yield 2;
      throw new Error('source broke');
    }
    const received: number[] = [];
    const consume = async () => {
      for await (const result of processor.stream(source(), async (n) => {
        await sleepMs(5);
        return n;
      }))
        received.push(result.ok ? result.value : -1);
    };
    await expect(consume()).rejects.toThrow('source broke');
    expect(received).toEqual([1, 2]);
  });

  it('retries per item and reports progress without a total', async () => {
    const reports: Array<{ done: number; total: number | undefined; failed: number }> = [];
    const processor = new BatchProcessor({
      concurrency: 2,
      retry: { retries: 2, baseDelayMs: 0 },
      onProgress: (progress) => reports.push(progress),
    });
    const attempts = new Map<number, number>();
    const out = await collect(
      processor.stream(new Set([1, 2, 3]), async (n) => {
        const attempt = (attempts.get(n) ?? 0) + 1;
        attempts.set(n, attempt);
        if (n === 2 && attempt < 3) throw new Error('flaky');
        if (n === 3) throw new Error('broken');
        return n;
      }),
    );
    expect(out).toEqual([1, 2, 'error']);
    expect(Object.fromEntries(attempts)).toEqual({ 1: 1, 2: 3, 3: 3 });
    expect(processor.stats().retries).toBe(4);
    expect(reports.at(-1)).toEqual({ done: 3, total: undefined, failed: 1 });
  });

  it.skipIf(isMutationRun)(
    '1,000,000 items from a generator with concurrency 4: the heap stays flat, at most 4 in flight (ordered and unordered)',
    async () => {
      // Both modes run as child processes at once (each takes a few seconds under tsx).
      const reports = await Promise.all(['ordered', 'unordered'].map((mode) => streamMemoryReport(mode)));
      for (const [index, report] of reports.entries()) {
        const mode = index === 0 ? 'ordered' : 'unordered';
        const growthMb = (report.heapAtEnd - report.heapAtCheckpoint) / 2 ** 20;
        console.log(
          `stream ${mode}: heap after GC at 100k items ${(report.heapAtCheckpoint / 2 ** 20).toFixed(2)} MB, ` +
            `at 1M ${(report.heapAtEnd / 2 ** 20).toFixed(2)} MB (growth ${growthMb.toFixed(2)} MB); ` +
            `max in flight ${report.maxInFlight}, source ahead of consumer at most ${report.maxAhead}`,
        );
        expect(report.received).toBe(1_000_000);
        expect(report.sum).toBe(999_999 * 1_000_000);
        if (mode === 'ordered') expect(report.isInOrder).toBe(true);
        expect(report.maxInFlight).toBe(4);
        // concurrency 4 + default bufferSize 4.
        expect(report.maxAhead).toBeLessThanOrEqual(8);
        // 900,000 more items went through between the two readings (both taken with the stream open):
        // retaining one 8-byte slot per item measured +8.8 MB, so 2 MB of drift is a wide margin that
        // still catches any per-item leak.
        expect(growthMb).toBeLessThan(2);
      }
    },
  );
});

interface StreamMemoryReport {
  received: number;
  sum: number;
  isInOrder: boolean;
  maxInFlight: number;
  maxAhead: number;
  heapAtCheckpoint: number;
  heapAtEnd: number;
}

async function streamMemoryReport(mode: string): Promise<StreamMemoryReport> {
  const { stdout } = await run(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', 'test/batch/fixtures/stream-memory.ts', '4', mode],
    { cwd: process.cwd(), timeout: 60_000 },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1) as string) as StreamMemoryReport;
}
