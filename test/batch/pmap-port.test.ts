/**
 * p-map's behavioural test cases (sindresorhus/p-map, test.js, MIT) ported to `BatchProcessor.map`
 * and `.stream` (p-map's `pMapIterable`). Timing assertions (`assertInRange`) are left out — speed is
 * measured in bench/ — and so are `pMapSkip` and the mapper's index argument, which BatchProcessor
 * does not have. Where BatchProcessor deliberately differs (per-item results instead of an
 * AggregateError, an abort that settles with what finished), the case asserts the difference and
 * names it; docs/batch.md lists them.
 */
import { getEventListeners } from 'node:events';
import { BatchProcessor, type ItemResult } from 'hotpath/batch';
import { ConfigError } from 'hotpath/core';
import { describe, expect, it } from 'vitest';

const delay = <T>(ms: number, value?: T) => new Promise<T>((resolve) => setTimeout(() => resolve(value as T), ms));
type Input = [unknown, number];
const mapper = async ([value, ms]: Input) => {
  await delay(ms);
  return typeof value === 'function' ? await (value as () => unknown)() : value;
};
const sharedInput: Input[] = [
  [async () => 10, 30],
  [20, 20],
  [30, 10],
];
const errorInput1: Input[] = [
  [20, 20],
  [30, 10],
  [
    async () => {
      throw new Error('foo');
    },
    1,
  ],
  [
    () => {
      throw new Error('bar');
    },
    1,
  ],
];
const errorInput2: Input[] = [
  [20, 20],
  [
    async () => {
      throw new Error('bar');
    },
    1,
  ],
  [30, 10],
  [
    () => {
      throw new Error('foo');
    },
    1,
  ],
];
const valuesOf = <T>(results: ItemResult<T>[]) => results.map((r) => (r.ok ? r.value : r.error));

/** p-map's ThrowingIterator: yields 0, 1, … and throws on `throwOnIndex`; `index` counts next() calls. */
class ThrowingIterator implements Iterable<number> {
  index = 0;
  constructor(
    readonly max: number,
    readonly throwOnIndex: number,
  ) {}
  [Symbol.iterator](): Iterator<number> {
    let index = 0;
    return {
      next: () => {
        try {
          if (index === this.throwOnIndex) throw new Error(`throwing on index ${index}`);
          return { value: index, done: index === this.max } as IteratorResult<number>;
        } finally {
          index++;
          this.index = index;
        }
      },
    };
  }
}

async function collect<T>(iterable: AsyncIterable<ItemResult<T>>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const result of iterable) out.push(result.ok ? result.value : result.error);
  return out;
}

describe('p-map port: map', () => {
  it('main: results in input order', async () => {
    expect(valuesOf(await new BatchProcessor().map(sharedInput, mapper))).toEqual([10, 20, 30]);
    expect(valuesOf(await new BatchProcessor({ concurrency: 1 }).map(sharedInput, mapper))).toEqual([10, 20, 30]);
  });

  it('concurrency: 4 — never more than 4 running', async () => {
    let running = 0;
    let most = 0;
    await new BatchProcessor({ concurrency: 4 }).map(
      Array.from({ length: 100 }, (_, i) => i),
      async (i) => {
        running++;
        most = Math.max(most, running);
        await delay(i % 7);
        running--;
      },
    );
    expect(most).toBe(4);
  });

  it('handles empty iterable', async () => {
    expect(await new BatchProcessor().map([], mapper)).toEqual([]);
  });

  it.each([
    ['random', Array.from({ length: 10 }, (_, i) => (i * 37) % 11)],
    ['problematic', [10, 20, 1, 4, 1, 5]],
    ['out of order', [20, 10, 5]],
  ])('async with concurrency: 2 (%s time sequence) keeps input order', async (_name, input) => {
    const results = await new BatchProcessor({ concurrency: 2 }).map(input, (ms) => delay(ms, ms));
    expect(valuesOf(results)).toEqual(input);
  });

  it('enforce a number in concurrency (difference: ConfigError at construction; Infinity refused, max 100,000)', () => {
    for (const concurrency of [0, 1.5, Number.POSITIVE_INFINITY]) {
      expect(() => new BatchProcessor({ concurrency })).toThrow(ConfigError);
    }
    expect(() => new BatchProcessor({ concurrency: 1 })).not.toThrow();
    expect(() => new BatchProcessor({ concurrency: 10 })).not.toThrow();
  });

  it('immediately rejects when stopOnError is true', async () => {
    const processor = new BatchProcessor({ concurrency: 1, stopOnError: true });
    await expect(processor.map(errorInput1, mapper)).rejects.toThrow('foo');
    await expect(processor.map(errorInput2, mapper)).rejects.toThrow('bar');
  });

  it('without stopOnError every item gets a result (difference: no AggregateError)', async () => {
    const processor = new BatchProcessor({ concurrency: 1 });
    expect(valuesOf(await processor.map(sharedInput, mapper))).toEqual([10, 20, 30]);
    const results = await processor.map(errorInput1, mapper);
    expect(results.map((r) => r.ok)).toEqual([true, true, false, false]);
    expect(results.slice(2).map((r) => (r.ok ? '' : (r.error as Error).message))).toEqual(['foo', 'bar']);
  });

  it('catches an exception from the source iterator — 1st item: no mapper runs', async () => {
    const input = new ThrowingIterator(100, 0);
    const mapped: number[] = [];
    const processor = new BatchProcessor({ concurrency: 1, stopOnError: true });
    await expect(processor.map(input, async (n) => mapped.push(n))).rejects.toThrow('throwing on index 0');
    expect(input.index).toBe(1);
    expect(mapped).toEqual([]);
  });

  it('catches an exception from the source iterator — 2nd item (difference: map reads the source first, so no mapper runs)', async () => {
    const input = new ThrowingIterator(100, 1);
    const mapped: number[] = [];
    await expect(new BatchProcessor({ concurrency: 1 }).map(input, async (n) => mapped.push(n))).rejects.toThrow(
      'throwing on index 1',
    );
    expect(input.index).toBe(2);
    expect(mapped).toEqual([]);
    // stream pulls lazily, as p-map does: item 0 runs, then the source's error ends the stream.
    const lazy = new ThrowingIterator(100, 1);
    const streamed: number[] = [];
    await expect(
      collect(new BatchProcessor({ concurrency: 1 }).stream(lazy, async (n) => streamed.push(n))),
    ).rejects.toThrow('throwing on index 1');
    expect(streamed).toEqual([0]);
  });

  it('with stopOnError, the error of the first item to fail (not the first in input order)', async () => {
    const mapped: number[] = [];
    const processor = new BatchProcessor({ concurrency: 3, stopOnError: true });
    const task = processor.map([1, 2, 3], async (value) => {
      mapped.push(value);
      await delay(value === 1 ? 1 : 20);
      throw new Error(`Oops! ${value}`);
    });
    await expect(task).rejects.toThrow('Oops! 1');
    expect(mapped).toEqual([1, 2, 3]);
  });

  it('incorrect input type: ConfigError, the mapper is never called', async () => {
    let isMapperCalled = false;
    const task = new BatchProcessor().map(123_456 as never, async () => {
      isMapperCalled = true;
    });
    await expect(task).rejects.toBeInstanceOf(ConfigError);
    expect(isMapperCalled).toBe(false);
  });

  it('no unhandled rejections from mapper throws — concurrency 1 stops after the first', async () => {
    const mapped: number[] = [];
    const processor = new BatchProcessor({ concurrency: 1, stopOnError: true });
    await expect(
      processor.map([1, 2, 3], async (value) => {
        mapped.push(value);
        await delay(1);
        throw new Error(`Oops! ${value}`);
      }),
    ).rejects.toThrow('Oops! 1');
    expect(mapped).toEqual([1]);
  });

  it('invalid mapper: ConfigError', async () => {
    await expect(new BatchProcessor({ concurrency: 2 }).map([], 'invalid mapper' as never)).rejects.toBeInstanceOf(
      ConfigError,
    );
  });

  it('abort (difference: settles with what finished, the rest fail with the reason, instead of rejecting)', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 10);
    const results = await new BatchProcessor({ concurrency: 1 }).map(
      [1, 1000, 2],
      async (ms, { signal }) =>
        new Promise((resolve, reject) => {
          const timer = setTimeout(() => resolve(ms), ms);
          signal.addEventListener('abort', () => {
            clearTimeout(timer);
            reject(signal.reason);
          });
        }),
      { signal: controller.signal },
    );
    expect(results[0]).toEqual({ ok: true, value: 1 });
    expect(results.slice(1).map((r) => !r.ok && (r.error as Error).name)).toEqual(['AbortError', 'AbortError']);
  });

  it('already aborted signal: nothing runs and no listener is left on the signal', async () => {
    const controller = new AbortController();
    controller.abort();
    let calls = 0;
    const results = await new BatchProcessor().map([1, 2], async (n) => ++calls + n, { signal: controller.signal });
    expect(results.every((r) => !r.ok)).toBe(true);
    expect(calls).toBe(0);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });
});

describe('p-map port: stream (pMapIterable)', () => {
  it('main and empty', async () => {
    expect(await collect(new BatchProcessor().stream(sharedInput, mapper))).toEqual([10, 20, 30]);
    expect(await collect(new BatchProcessor().stream([], mapper))).toEqual([]);
  });

  it('an iterable that throws ends the stream with its error', async () => {
    let isFirstNextCall = true;
    const iterable: AsyncIterable<Input> = {
      [Symbol.asyncIterator]() {
        return {
          async next() {
            if (!isFirstNextCall) return { done: true, value: undefined };
            isFirstNextCall = false;
            throw new Error('foo');
          },
        };
      },
    };
    const iterator = new BatchProcessor().stream(iterable, mapper)[Symbol.asyncIterator]();
    await expect(iterator.next()).rejects.toThrow('foo');
  });

  it('a mapper that throws: a failed result (difference), or the error with stopOnError', async () => {
    const failing = async () => {
      throw new Error('foo');
    };
    const results = await collect(new BatchProcessor().stream(sharedInput, failing));
    expect(results.map((error) => (error as Error).message)).toEqual(['foo', 'foo', 'foo']);
    await expect(collect(new BatchProcessor({ stopOnError: true }).stream(sharedInput, failing))).rejects.toThrow(
      'foo',
    );
  });

  it('stop on error: what came before is yielded, then the error', async () => {
    const errorInput3: Input[] = [
      [20, 1],
      [
        async () => {
          throw new Error('bar');
        },
        10,
      ],
      [30, 10],
    ];
    const output: unknown[] = [];
    let caught: unknown;
    try {
      for await (const result of new BatchProcessor({ stopOnError: true }).stream(errorInput3, mapper)) {
        output.push(result.ok ? result.value : result.error);
      }
    } catch (error) {
      caught = error;
    }
    expect((caught as Error).message).toBe('bar');
    expect(output).toEqual([20]);
  });

  it('backpressure: a reader that stops reading stops the mapping at concurrency + bufferSize', async () => {
    let started = 0;
    const iterator = new BatchProcessor({ concurrency: 2 })
      .stream(
        Array.from({ length: 20 }, (_, i) => i),
        async (n) => {
          started++;
          return n;
        },
        { bufferSize: 2 },
      )
      [Symbol.asyncIterator]();
    expect(await iterator.next()).toEqual({ done: false, value: { ok: true, value: 0 } });
    await delay(20);
    expect(started).toBe(1 + 2 + 2);
    await iterator.return?.();
  });

  it('async input, concurrency 1: one item at a time', async () => {
    async function* source() {
      yield 1;
      yield 2;
      yield 3;
    }
    const log: number[] = [];
    await collect(
      new BatchProcessor({ concurrency: 1 }).stream(
        source(),
        async (n) => {
          log.push(n);
          await delay(1);
          log.push(n);
        },
        { bufferSize: 2 },
      ),
    );
    expect(log).toEqual([1, 1, 2, 2, 3, 3]);
  });
});
