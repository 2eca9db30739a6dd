import { setTimeout as delay } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ClosedError, ConfigError, type LatencyRecorder, type Logger, ManualClock } from 'hotpath/core';
import { type NPlusOneEvent, Profiler, type SlowOperation } from 'hotpath/profiling';
import { afterEach, describe, expect, it } from 'vitest';

const open: Profiler[] = [];
function make(options: ConstructorParameters<typeof Profiler>[0] = {}): Profiler {
  const profiler = new Profiler(options);
  open.push(profiler);
  return profiler;
}
afterEach(() => {
  for (const profiler of open.splice(0)) profiler.close();
});

/** A full garbage collection without starting node with --expose-gc (the flag can be set at run time). */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

/** A controllable monotonic time source for deterministic durations. */
function fakeNow(start = 1000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

function recordingLogger(): Logger & { lines: Array<{ level: string; obj: object; msg?: string | undefined }> } {
  const lines: Array<{ level: string; obj: object; msg?: string | undefined }> = [];
  const at = (level: string) => (obj: object, msg?: string) => lines.push({ level, obj, msg });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

describe('Profiler recording', () => {
  it('implements LatencyRecorder and reports count, errors, min/mean/max and percentiles per name', () => {
    const profiler = make();
    const recorder: LatencyRecorder = profiler;
    for (let i = 1; i <= 1000; i++) recorder.record('db.query', i / 10, i % 100 === 0);
    const stats = profiler.stats('db.query');
    expect(stats).toBeDefined();
    expect(stats?.count).toBe(1000);
    expect(stats?.errors).toBe(10);
    expect(stats?.min).toBe(0.1);
    expect(stats?.max).toBe(100);
    expect(stats?.mean).toBeCloseTo(50.05, 9);
    expect(stats?.p50).toBeCloseTo(50, -Math.log10(50 * 0.01));
    expect(Math.abs((stats?.p99 ?? 0) - 99) / 99).toBeLessThan(0.01);
    expect(Math.abs((stats?.p999 ?? 0) - 99.9) / 99.9).toBeLessThan(0.01);
    expect(profiler.stats('unknown')).toBeUndefined();
    expect(Object.keys(profiler.snapshot())).toEqual(['db.query']);
  });

  it('keeps microsecond-level values precise', () => {
    const profiler = make();
    for (let i = 0; i < 100; i++) profiler.record('cache.get', 0.0015);
    const stats = profiler.stats('cache.get');
    expect(stats?.p50).toBeCloseTo(0.0015, 6);
    expect(stats?.p99).toBe(0.0015);
  });

  it('time() times sync functions, passes results through and records throws as errors', () => {
    const clock = fakeNow();
    const profiler = make({ now: clock.now });
    const value = profiler.time('sync', () => {
      clock.advance(5);
      return 42;
    });
    expect(value).toBe(42);
    expect(() =>
      profiler.time('sync', () => {
        clock.advance(7);
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(profiler.stats('sync')).toMatchObject({ count: 2, errors: 1, min: 5, max: 7 });
  });

  it('time() times async functions until they settle and records rejections as errors', async () => {
    const profiler = make();
    const result = await profiler.time('async', async () => {
      await delay(20);
      return 'done';
    });
    expect(result).toBe('done');
    await expect(
      profiler.time('async', async () => {
        await delay(1);
        throw new Error('nope');
      }),
    ).rejects.toThrow('nope');
    const stats = profiler.stats('async');
    expect(stats).toMatchObject({ count: 2, errors: 1 });
    // The successful call slept 20 ms, so the recorded maximum covers the await, not just the sync part.
    expect(stats?.max).toBeGreaterThanOrEqual(19);
  });

  it('start() returns a stop function that records once and returns the elapsed ms', () => {
    const clock = fakeNow();
    const profiler = make({ now: clock.now });
    const stop = profiler.start('job');
    clock.advance(12.5);
    expect(stop()).toBe(12.5);
    clock.advance(100);
    expect(stop(true)).toBe(12.5);
    expect(profiler.stats('job')).toMatchObject({ count: 1, errors: 0, max: 12.5 });
    const failing = profiler.start('job');
    clock.advance(3);
    failing(true);
    expect(profiler.stats('job')).toMatchObject({ count: 2, errors: 1 });
  });

  it('rejects bad record input with ConfigError and leaves stats unchanged', () => {
    const profiler = make();
    profiler.record('x', 1);
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY, '5' as unknown as number]) {
      expect(() => profiler.record('x', bad)).toThrow(ConfigError);
    }
    for (const badName of ['', 'n'.repeat(201), 7 as unknown as string, undefined as unknown as string]) {
      expect(() => profiler.record(badName, 1)).toThrow(ConfigError);
      expect(() => profiler.time(badName, () => 1)).toThrow(ConfigError);
      expect(() => profiler.start(badName)).toThrow(ConfigError);
    }
    expect(profiler.stats('x')).toMatchObject({ count: 1, errors: 0 });
    expect(profiler.size).toBe(1);
  });

  it('a custom now() that steps back records 0 instead of making time() throw', () => {
    let t = 100;
    const profiler = make({ now: () => t });
    expect(
      profiler.time('x', () => {
        t -= 50;
        return 'ok';
      }),
    ).toBe('ok');
    expect(profiler.stats('x')).toMatchObject({ count: 1, max: 0 });
  });

  it('past the cap, time() still runs the function and returns its value', async () => {
    const profiler = make({ maxMetrics: 1 });
    profiler.record('kept', 1);
    expect(profiler.time('dropped', () => 7)).toBe(7);
    await expect(profiler.time('dropped', async () => 8)).resolves.toBe(8);
    expect(profiler.stats('dropped')).toBeUndefined();
    expect(profiler.droppedRecords).toBe(2);
  });

  it('caps distinct names: past maxMetrics new names are dropped and counted, known names still record', () => {
    const logger = recordingLogger();
    const profiler = make({ maxMetrics: 3, logger });
    for (let i = 0; i < 10; i++) profiler.record(`op.${i}`, 1);
    profiler.record('op.0', 2);
    expect(profiler.size).toBe(3);
    expect(profiler.droppedRecords).toBe(7);
    expect(profiler.stats('op.0')?.count).toBe(2);
    expect(profiler.stats('op.5')).toBeUndefined();
    expect(logger.lines.filter((line) => line.msg?.includes('cap reached'))).toHaveLength(1);
  });

  it('reset() forgets metrics, scope totals and drops', () => {
    const profiler = make({ maxMetrics: 1 });
    profiler.record('a', 1);
    profiler.record('b', 1);
    profiler.scope('a', () => undefined);
    profiler.reset();
    expect(profiler.snapshot()).toEqual({});
    expect(profiler.droppedRecords).toBe(0);
    expect(profiler.scopeStats('a')).toBeUndefined();
    profiler.record('b', 1);
    expect(profiler.stats('b')?.count).toBe(1);
  });

  it('histogram(name) returns an independent copy that can be merged elsewhere', () => {
    const profiler = make();
    for (let i = 1; i <= 100; i++) profiler.record('x', i);
    const copy = profiler.histogram('x');
    expect(copy?.count).toBe(100);
    copy?.record(1000);
    expect(profiler.stats('x')?.count).toBe(100);
    expect(profiler.histogram('nope')).toBeUndefined();
  });
});

describe('Profiler slow operations', () => {
  it('calls onSlow for every slow operation and logs at most once per second per name', () => {
    const clock = fakeNow();
    const logger = recordingLogger();
    const events: SlowOperation[] = [];
    const profiler = make({ slowThresholdMs: 500, onSlow: (e) => events.push(e), logger, now: clock.now });
    profiler.record('api', 499);
    profiler.record('api', 500);
    profiler.record('api', 800, true);
    clock.advance(1000);
    profiler.record('api', 900);
    expect(events.map((e) => e.ms)).toEqual([500, 800, 900]);
    expect(events[1]).toEqual({ name: 'api', ms: 800, isError: true, thresholdMs: 500, scope: undefined });
    expect(logger.lines.filter((line) => line.msg === 'slow operation')).toHaveLength(2);
    expect(profiler.stats('api')?.slow).toBe(3);
  });

  it('a throwing onSlow is logged and does not break the caller', () => {
    const logger = recordingLogger();
    const profiler = make({
      slowThresholdMs: 1,
      logger,
      onSlow: () => {
        throw new Error('callback bug');
      },
    });
    expect(() => profiler.record('x', 5)).not.toThrow();
    expect(profiler.stats('x')?.count).toBe(1);
    expect(logger.lines.some((line) => line.level === 'error')).toBe(true);
  });

  it('time() of a really slow async operation is reported with its scope', async () => {
    const events: SlowOperation[] = [];
    const profiler = make({ slowThresholdMs: 10, onSlow: (e) => events.push(e) });
    await profiler.scope('request', () => profiler.time('wait', () => delay(25)));
    expect(events.map((e) => [e.name, e.scope])).toContainEqual(['wait', 'request']);
  });
});

describe('Profiler scopes', () => {
  it('attributes operations across awaits to the scope, and records the scope duration under its name', async () => {
    const profiler = make();
    const seen = await profiler.scope('GET /stocks', async () => {
      profiler.record('db.query', 2);
      await delay(1);
      profiler.record('db.query', 4);
      await Promise.resolve();
      await profiler.time('cache.get', async () => delay(1));
      return profiler.currentScope();
    });
    expect(seen?.name).toBe('GET /stocks');
    expect(seen?.operations['db.query']).toEqual({ count: 2, errors: 0, totalMs: 6 });
    expect(seen?.operations['cache.get']?.count).toBe(1);
    profiler.record('db.query', 100); // outside: not attributed
    const stats = profiler.scopeStats('GET /stocks');
    expect(stats?.count).toBe(1);
    expect(stats?.operations['db.query']).toMatchObject({ count: 2, totalMs: 6, meanMs: 3, perScope: 2 });
    expect(profiler.stats('GET /stocks')?.count).toBe(1);
    expect(profiler.stats('db.query')?.count).toBe(3);
    expect(profiler.currentScope()).toBeUndefined();
  });

  it('nested scopes: inner operations count for inner and outer, later outer ones only for outer', async () => {
    const profiler = make();
    await profiler.scope('outer', async () => {
      await profiler.scope('inner', async () => {
        await delay(1);
        profiler.record('q', 1);
        expect(profiler.currentScope()?.parents).toEqual(['outer']);
      });
      profiler.record('q', 1);
    });
    expect(profiler.scopeStats('inner')?.operations['q']?.count).toBe(1);
    expect(profiler.scopeStats('outer')?.operations['q']?.count).toBe(2);
    // The inner scope's own duration is an operation of the outer scope.
    expect(profiler.scopeStats('outer')?.operations['inner']?.count).toBe(1);
  });

  it('concurrent scopes keep their own attribution', async () => {
    const profiler = make();
    const run = (id: number, queries: number) =>
      profiler.scope(`req.${id}`, async () => {
        for (let i = 0; i < queries; i++) {
          await delay(Math.random() * 3);
          profiler.record('db', 1);
        }
        return profiler.currentScope()?.operations['db']?.count;
      });
    const counts = await Promise.all([run(1, 3), run(2, 7), run(3, 5), run(4, 1)]);
    expect(counts).toEqual([3, 7, 5, 1]);
    expect(profiler.scopeStats('req.2')?.operations['db']?.count).toBe(7);
    expect(profiler.stats('db')?.count).toBe(16);
  });

  it('sync scopes return their value, and a throwing scope counts as an error', () => {
    const profiler = make();
    expect(profiler.scope('s', () => 5)).toBe(5);
    expect(() =>
      profiler.scope('s', () => {
        throw new Error('x');
      }),
    ).toThrow('x');
    expect(profiler.scopeStats('s')).toMatchObject({ count: 2, errors: 1 });
    expect(profiler.stats('s')).toMatchObject({ count: 2, errors: 1 });
  });

  it('an invalid scope name throws ConfigError before the function runs', () => {
    const profiler = make();
    let ran = false;
    expect(() =>
      profiler.scope('', () => {
        ran = true;
      }),
    ).toThrow(ConfigError);
    expect(ran).toBe(false);
  });

  it('start() captured inside a scope attributes to it even when stopped outside', async () => {
    const profiler = make();
    let stop: (() => number) | undefined;
    await profiler.scope('req', async () => {
      stop = profiler.start('late');
      profiler.record('in', 1);
      await delay(1);
      stop();
    });
    stop?.();
    expect(profiler.scopeStats('req')?.operations['late']?.count).toBe(1);
  });

  it('work left running after a scope settled is not attributed to it', async () => {
    const profiler = make();
    let late: Promise<void> | undefined;
    await profiler.scope('req', async () => {
      late = delay(5).then(() => profiler.record('orphan', 1));
    });
    await late;
    expect(profiler.scopeStats('req')?.operations['orphan']).toBeUndefined();
    expect(profiler.stats('orphan')?.count).toBe(1);
  });
});

describe('Profiler N+1 detection', () => {
  it('fires once per shape per scope run when a shape reaches the threshold', async () => {
    const events: NPlusOneEvent[] = [];
    const profiler = make({ nPlusOneThreshold: 5, onNPlusOne: (e) => events.push(e) });
    const author = 'select * from authors where id = $1';
    const book = 'select * from books where id = $1';
    await profiler.scope('GET /books', async () => {
      for (let i = 0; i < 12; i++) {
        profiler.noteQuery(author);
        await Promise.resolve();
      }
      for (let i = 0; i < 4; i++) profiler.noteQuery(book);
    });
    expect(events).toEqual([{ scope: 'GET /books', shape: author, count: 5 }]);
    // A second run of the same scope name is a new scope: it may fire again.
    await profiler.scope('GET /books', async () => {
      for (let i = 0; i < 5; i++) profiler.noteQuery(author);
    });
    expect(events).toHaveLength(2);
    expect(profiler.scopeStats('GET /books')).toMatchObject({ count: 2, queries: 21, nPlusOne: 2 });
  });

  it('concurrent scopes count separately; nested scopes count in each enclosing scope', async () => {
    const events: NPlusOneEvent[] = [];
    const profiler = make({ nPlusOneThreshold: 3, onNPlusOne: (e) => events.push(e) });
    await Promise.all([
      profiler.scope('a', async () => {
        for (let i = 0; i < 2; i++) {
          profiler.noteQuery('q');
          await delay(1);
        }
      }),
      profiler.scope('b', async () => {
        for (let i = 0; i < 2; i++) {
          profiler.noteQuery('q');
          await delay(1);
        }
      }),
    ]);
    expect(events).toEqual([]);
    await profiler.scope('outer', async () => {
      for (let i = 0; i < 3; i++) await profiler.scope('loadAuthor', async () => profiler.noteQuery('q'));
    });
    // Each inner run saw the shape once; the outer request saw it 3 times.
    expect(events).toEqual([{ scope: 'outer', shape: 'q', count: 3 }]);
  });

  it('bounds what a scope remembers: 1024 distinct shapes, shapes truncated to 1000 characters', async () => {
    const events: NPlusOneEvent[] = [];
    const profiler = make({ nPlusOneThreshold: 2, onNPlusOne: (e) => events.push(e) });
    await profiler.scope('bulk', async () => {
      for (let i = 0; i < 1100; i++) profiler.noteQuery(`select ${i}`);
      const long = `select ${'x'.repeat(5000)}`;
      profiler.noteQuery(`${long} a`);
      const queries = profiler.currentScope()?.queries ?? {};
      expect(Object.keys(queries)).toHaveLength(1024);
    });
    await profiler.scope('long', async () => {
      profiler.noteQuery(`select ${'y'.repeat(5000)} a`);
      profiler.noteQuery(`select ${'y'.repeat(5000)} b`);
    });
    // Both long statements share their first 1000 characters, so they count as one shape.
    expect(events).toHaveLength(1);
    expect(events[0]?.shape).toHaveLength(1000);
    expect(profiler.scopeStats('bulk')?.queries).toBe(1101);
  });

  it('scope names beyond maxMetrics are not aggregated', async () => {
    const profiler = make({ maxMetrics: 2 });
    for (const name of ['a', 'b', 'c']) await profiler.scope(name, async () => undefined);
    expect(profiler.scopeStats('a')?.count).toBe(1);
    expect(profiler.scopeStats('c')).toBeUndefined();
  });

  it('noteQuery outside a scope is a no-op, and rejects non-strings', () => {
    const events: NPlusOneEvent[] = [];
    const profiler = make({ nPlusOneThreshold: 2, onNPlusOne: (e) => events.push(e) });
    for (let i = 0; i < 10; i++) profiler.noteQuery('q');
    expect(events).toEqual([]);
    expect(() => profiler.noteQuery(5 as unknown as string)).toThrow(ConfigError);
  });
});

describe('Profiler lifecycle', () => {
  it('close() is idempotent, stops monitors, ignores later records and keeps stats readable', async () => {
    const profiler = make();
    profiler.record('x', 1);
    const monitor = profiler.monitorEventLoop({ resolutionMs: 5 });
    profiler.close();
    profiler.close();
    expect(monitor.isClosed).toBe(true);
    profiler.record('x', 1);
    profiler.record('y', 1);
    expect(profiler.stats('x')?.count).toBe(1);
    expect(profiler.stats('y')).toBeUndefined();
    expect(profiler.droppedRecords).toBe(2);
    expect(() => profiler.monitorEventLoop()).toThrow(ClosedError);
    await profiler[Symbol.asyncDispose]();
  });

  it('samples heap usage on a timer from its clock when memorySampleIntervalMs is set', async () => {
    const clock = new ManualClock();
    const profiler = make({ clock, memorySampleIntervalMs: 100 });
    expect(clock.pendingTimers).toBe(1);
    // A peak that lives only between two memory() calls: 32 MB of ballast while the timer fires, gone after.
    let ballast: number[][] | undefined = Array.from({ length: 64 }, () => new Array(65_536).fill(1.5));
    const heapWithBallast = process.memoryUsage().heapUsed;
    await clock.advance(250);
    expect(ballast.length).toBe(64);
    ballast = undefined;
    collectGarbage();
    const { heapUsed, peakHeapUsed } = profiler.memory();
    expect(heapUsed).toBeLessThan(heapWithBallast - 16_000_000);
    expect(peakHeapUsed).toBeGreaterThan(heapWithBallast - 1_000_000); // only the timer's samples saw it
    expect(clock.pendingTimers).toBe(1);
    profiler.close();
    expect(clock.pendingTimers).toBe(0);
  });
});
