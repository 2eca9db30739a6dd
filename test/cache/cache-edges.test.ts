import {
  Cache,
  CacheRegistry,
  type CacheTier,
  type CacheTierEntry,
  type CacheTierSetOptions,
  CappedList,
  MapCacheTier,
} from 'hotpath/cache';
import { ClosedError, ConfigError, ManualClock, TimeoutError } from 'hotpath/core';
import { describe, expect, it } from 'vitest';
import { deferred, settle } from '../helpers/async.js';
import { caught } from '../helpers/errors.js';
import { logSpy } from './log-spy.js';

/** A plain tier whose answers and failures the test scripts. */
class PlainTier implements CacheTier<string> {
  readonly calls: string[] = [];
  readonly sets: Array<[string, string, CacheTierSetOptions]> = [];
  answer: CacheTierEntry<string> | null | undefined;
  fail: Set<string> = new Set();
  hold: Promise<void> | undefined;
  async get(key: string): Promise<CacheTierEntry<string> | undefined> {
    this.calls.push(`get ${key}`);
    if (this.fail.has('get')) throw new Error('get failed');
    return this.answer as CacheTierEntry<string> | undefined;
  }
  async set(key: string, value: string, options: CacheTierSetOptions): Promise<void> {
    this.calls.push(`set ${key}`);
    this.sets.push([key, value, options]);
    if (this.hold !== undefined) await this.hold;
    if (this.fail.has('set')) throw new Error('set failed');
  }
  async delete(key: string): Promise<void> {
    this.calls.push(`delete ${key}`);
  }
  async deleteTags(tags: readonly string[]): Promise<void> {
    this.calls.push(`deleteTags ${tags.join(',')}`);
    if (this.fail.has('deleteTags')) throw new Error('deleteTags failed');
  }
}

describe('Cache edges: argument errors', () => {
  it('constructor errors name the option and say what is missing', () => {
    const base = { max: 10, ttlMs: 1_000 };
    const cases: Array<[object, string, string]> = [
      [{ ttlMs: 1_000 }, 'Cache.max', 'Cache needs max (entries) and/or maxSize (with sizeOf) so memory is bounded'],
      [{ ...base, maxSize: 5 }, 'Cache.sizeOf', 'Cache.maxSize and Cache.sizeOf must be given together'],
      [
        { ...base, tier: { get() {}, delete() {}, deleteTags() {} } },
        'Cache.tier',
        'Cache.tier must have a set() method (expected: get, set, delete, deleteTags)',
      ],
      [
        { ...base, bus: { subscribe() {} } },
        'Cache.bus',
        'Cache.bus must have a publish() method (expected: subscribe, publish)',
      ],
      [
        { ...base, clock: { now() {}, setTimeout() {} } },
        'Cache.clock',
        'Cache.clock must have a clearTimeout() method (expected: now, setTimeout, clearTimeout)',
      ],
      [{ ...base, profiler: {} }, 'Cache.profiler', 'Cache.profiler must have a record() method (expected: record)'],
      [
        { ...base, logger: { debug() {}, info() {}, warn() {} } },
        'Cache.logger',
        'Cache.logger must have a error() method (expected: debug, info, warn, error)',
      ],
    ];
    for (const [options, option, message] of cases) {
      const error = caught(() => new Cache(options as never));
      expect(error).toBeInstanceOf(ConfigError);
      expect(error).toMatchObject({ option, message });
    }
    expect(new Cache({ maxSize: 5, sizeOf: () => 1, ttlMs: 1 }).name).toBe('default');
  });

  it('keys must be strings, everywhere, with the method in the message', async () => {
    const cache = new Cache<string>({ name: 'k', max: 10, ttlMs: 1_000, clock: new ManualClock() });
    const message = (method: string) =>
      `Cache "k".${method}: key must be a string, got 1 (convert numbers with String(n))`;
    for (const [method, call] of [
      ['get', () => cache.get(1 as never)],
      ['has', () => cache.has(1 as never)],
      ['set', () => cache.set(1 as never, 'v')],
      ['delete', () => cache.delete(1 as never)],
    ] as const) {
      const error = caught(call);
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).message).toBe(message(method));
    }
    const rejected = await cache.getOrSet(1 as never, () => 'v').catch((e: unknown) => e);
    expect(rejected).toBeInstanceOf(TypeError);
    expect((rejected as Error).message).toBe(message('getOrSet'));
    expect(cache.stats()).toMatchObject({ misses: 0, hits: 0 });
    await cache.close();
  });

  it('per-call options: object only, known names only, ttlMs > 0, tags an array of at most 64 strings, an AbortSignal', async () => {
    const cache = new Cache<string>({ name: 'o', max: 10, ttlMs: 1_000, clock: new ManualClock() });
    const set = (options: unknown) => caught(() => cache.set('k', 'v', options as never));
    const getOrSet = async (options: unknown) =>
      cache.getOrSet('k', () => 'v', options as never).catch((e: unknown) => e);
    expect(set(5)).toMatchObject({
      option: 'Cache "o".set',
      message: 'Cache "o".set options must be an object, got 5',
    });
    expect(await getOrSet(null)).toMatchObject({
      option: 'Cache "o".getOrSet',
      message: 'Cache "o".getOrSet options must be an object, got null',
    });
    expect(set({ signal: new AbortController().signal })).toMatchObject({
      option: 'Cache "o".set.signal',
      message: 'Cache "o".set: unknown option "signal" (known options: ttlMs, tags)',
    });
    expect(await getOrSet({ ttl: 5 })).toMatchObject({
      option: 'Cache "o".getOrSet.ttl',
      message: 'Cache "o".getOrSet: unknown option "ttl" (known options: ttlMs, tags, signal)',
    });
    expect(set({ ttlMs: 0 })).toMatchObject({
      option: 'Cache "o".set.ttlMs',
      message: 'Cache "o".set.ttlMs must be a number > 0 or Infinity, got 0',
    });
    expect(await getOrSet({ signal: {} })).toMatchObject({
      option: 'Cache "o".getOrSet.signal',
      message: 'Cache "o".getOrSet.signal must be an AbortSignal, got object',
    });
    const tagErrors: Array<[unknown, string]> = [
      ['a', 'Cache "o".set: tags must be an array of strings, got "a"'],
      [[1], 'Cache "o".set: every tag must be a string, got 1'],
      [Array.from({ length: 65 }, (_, i) => `t${i}`), 'Cache "o".set: at most 64 tags per entry, got 65'],
    ];
    for (const [tags, message] of tagErrors) {
      const error = set({ tags });
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).message).toBe(message);
    }
    cache.set('k', 'v', { tags: Array.from({ length: 64 }, (_, i) => `t${i}`), ttlMs: Number.POSITIVE_INFINITY });
    expect(cache.stats()).toMatchObject({ size: 1, tags: 64 });
    // Every option valid: accepted.
    expect(await cache.getOrSet('g', () => 'G', { ttlMs: 5, tags: [], signal: new AbortController().signal })).toBe(
      'G',
    );
    await cache.close();
  });

  it('set(undefined), a loader that is not a function and a bad wrap say exactly what is wrong', async () => {
    const cache = new Cache<string>({ name: 'w', max: 10, ttlMs: 1_000, clock: new ManualClock() });
    const undefinedValue = caught(() => cache.set('k', undefined as never));
    expect(undefinedValue).toBeInstanceOf(TypeError);
    expect((undefinedValue as Error).message).toBe(
      'Cache "w".set: undefined is not cacheable (use delete(), or null for a negative answer)',
    );
    const notFunction = await cache.getOrSet('k', 'x' as never).catch((e: unknown) => e);
    expect(notFunction).toBeInstanceOf(TypeError);
    expect((notFunction as Error).message).toBe('Cache "w".getOrSet: loader must be a function, got "x"');
    expect(caught(() => cache.wrap(5 as never, { key: () => 'k' }))).toMatchObject({
      option: 'Cache "w".wrap',
      message: 'Cache "w".wrap: fn must be a function, got 5',
    });
    expect(caught(() => cache.wrap(async () => 'v', {} as never))).toMatchObject({ option: 'Cache "w".wrap.key' });
    expect(caught(() => cache.wrap(async () => 'v', { key: () => 'k', tags: 'x' as never }))).toBeInstanceOf(TypeError);
    const badTags = cache.wrap(async () => 'v', { key: () => 'bt', tags: () => [7] as never });
    const rejected = await badTags().catch((e: unknown) => e);
    expect(rejected).toBeInstanceOf(TypeError);
    expect((rejected as Error).message).toBe('Cache "w".wrap: every tag must be a string, got 7');
    expect(cache.stats()).toMatchObject({ loads: 0, size: 0 });
    await cache.close();
  });
});

describe('Cache edges: wrap', () => {
  it('stores results with its ttlMs and tags (static, copied; or per call)', async () => {
    const clock = new ManualClock();
    const cache = new Cache<string>({ max: 10, ttlMs: 60_000, clock });
    const tags = ['static'];
    let calls = 0;
    const wrapped = cache.wrap(
      async (id: string) => {
        calls++;
        return `v${id}`;
      },
      { key: (id) => `w:${id}`, ttlMs: 100, tags },
    );
    tags[0] = 'changed';
    expect(await wrapped('1')).toBe('v1');
    expect(await wrapped('1')).toBe('v1');
    expect(calls).toBe(1);
    expect(cache.stats().hits).toBe(1);
    expect(await cache.invalidateTags(['changed'])).toBe(0);
    expect(await cache.invalidateTags(['static'])).toBe(1);
    expect(await wrapped('2')).toBe('v2');
    await clock.advance(101);
    expect(cache.get('w:2')).toBeUndefined();
    const perCall = cache.wrap(async (id: string) => id, { key: (id) => `p:${id}`, tags: (id) => [`id:${id}`] });
    await perCall('a');
    await perCall('b');
    expect(await cache.invalidateTags(['id:a'])).toBe(1);
    expect([cache.get('p:a'), cache.get('p:b')]).toEqual([undefined, 'b']);
    await cache.close();
  });
});

describe('Cache edges: expiry, purge and counters', () => {
  it('the background purge runs every ttlMs clamped to 1 s … 60 s, or as configured, or never', async () => {
    for (const [ttlMs, expected] of [
      [500, 1_000],
      [5_000, 5_000],
      [120_000, 60_000],
      [Number.POSITIVE_INFINITY, 60_000],
    ] as const) {
      const clock = new ManualClock();
      const cache = new Cache<string>({ max: 10, ttlMs, clock });
      cache.set('k', 'v', { ttlMs: 1 });
      await clock.advance(expected - 1);
      expect(cache.stats().size).toBe(1);
      await clock.advance(1);
      expect(cache.stats()).toMatchObject({ size: 0, expirations: 1 });
      await cache.close();
    }
    const clock = new ManualClock();
    const never = new Cache<string>({ max: 10, ttlMs: 10, clock, purgeIntervalMs: 0 });
    expect(clock.pendingTimers).toBe(0);
    never.set('k', 'v');
    await clock.advance(100_000);
    expect(never.stats().size).toBe(1);
    await never.close();
    const custom = new Cache<string>({ max: 10, ttlMs: 10, clock, purgeIntervalMs: 30 });
    custom.set('k', 'v');
    await clock.advance(29);
    expect(custom.stats().size).toBe(1);
    await clock.advance(1);
    expect(custom.stats().size).toBe(0);
    await custom.close();
    expect(clock.pendingTimers).toBe(0);
  });

  it('purgeStale keeps entries until their stale window has fully passed, and counts what it drops', async () => {
    const clock = new ManualClock();
    const cache = new Cache<string>({ max: 10, ttlMs: 100, staleWhileRevalidateMs: 50, clock, purgeIntervalMs: 0 });
    cache.set('a', 'A');
    cache.set('b', 'B', { ttlMs: 1_000 });
    await clock.advance(149);
    expect(cache.purgeStale()).toBe(0);
    await clock.advance(1);
    expect(cache.purgeStale()).toBe(1);
    expect(cache.stats()).toMatchObject({ size: 1, expirations: 1 });
    expect(cache.delete('b')).toBe(true);
    expect(cache.stats().expirations).toBe(1); // a delete is not an expiration
    await cache.close();
    expect(cache.purgeStale()).toBe(0);
  });

  it('a disabled cache has no purge timer and subscribes to nothing', async () => {
    const clock = new ManualClock();
    const cache = new Cache<string>({ max: 10, ttlMs: 10, clock, enabled: false });
    expect(clock.pendingTimers).toBe(0);
    cache.set('k', 'v');
    expect(cache.get('k')).toBeUndefined();
    await cache.close();
  });

  it('hitRate is (hits + stale hits) / answers, and overwriting is neither an eviction nor an expiration', async () => {
    const clock = new ManualClock();
    const cache = new Cache<string>({ max: 10, ttlMs: 100, staleWhileRevalidateMs: 1_000, clock });
    expect(cache.stats().hitRate).toBe(0);
    cache.set('a', 'A');
    cache.set('a', 'A2');
    expect(cache.get('a')).toBe('A2');
    expect(cache.get('x')).toBeUndefined();
    await clock.advance(101);
    const gate = deferred<string>();
    expect(await cache.getOrSet('a', () => gate.promise)).toBe('A2'); // stale hit
    gate.resolve('A3');
    await settle();
    expect(cache.stats()).toMatchObject({ hits: 1, staleHits: 1, misses: 1, hitRate: 2 / 3, evictions: 0 });
    expect(cache.stats().expirations).toBe(0);
    await cache.close();
  });

  it('remembered errors: kept for errorTtlMs rounded up, for at most `max` keys', async () => {
    const clock = new ManualClock();
    const cache = new Cache<string>({ max: 2, ttlMs: 1_000, errorTtlMs: 2.5, clock, purgeIntervalMs: 0 });
    let calls = 0;
    const failing = () => {
      calls++;
      throw new Error(`fail ${calls}`);
    };
    await expect(cache.getOrSet('a', failing)).rejects.toThrow('fail 1');
    await clock.advance(3);
    await expect(cache.getOrSet('a', failing)).rejects.toThrow('fail 1'); // still remembered at 3 ms
    await clock.advance(1);
    await expect(cache.getOrSet('a', failing)).rejects.toThrow('fail 2');
    // Three keys fail; only the last two are remembered.
    await expect(cache.getOrSet('b', failing)).rejects.toThrow('fail 3');
    await expect(cache.getOrSet('c', failing)).rejects.toThrow('fail 4');
    await expect(cache.getOrSet('a', failing)).rejects.toThrow('fail 5');
    await expect(cache.getOrSet('c', failing)).rejects.toThrow('fail 4');
    expect(cache.stats()).toMatchObject({ loadErrors: 5, loads: 5 });
    // set() forgets the remembered error.
    cache.set('c', 'C');
    expect(await cache.getOrSet('c', failing)).toBe('C');
    cache.delete('c');
    await expect(cache.getOrSet('a', failing)).rejects.toThrow('fail 5');
    await cache.close();
  });

  it('after close(): every method but clear() and purgeStale() throws ClosedError naming the cache', async () => {
    const cache = new Cache<string>({ name: 'shut', max: 10, ttlMs: 1_000, clock: new ManualClock() });
    cache.set('a', 'A');
    await cache.close();
    for (const call of [
      () => cache.get('a'),
      () => cache.has('a'),
      () => cache.set('a', 'A'),
      () => cache.delete('a'),
    ]) {
      const error = caught(call);
      expect(error).toBeInstanceOf(ClosedError);
      expect((error as Error).message).toBe('Cache "shut" is closed');
    }
    await expect(cache.getOrSet('a', () => 'A')).rejects.toBeInstanceOf(ClosedError);
    await expect(cache.invalidateTags(['t'])).rejects.toBeInstanceOf(ClosedError);
    cache.clear();
    expect(cache.purgeStale()).toBe(0);
    expect(cache.close()).toBe(cache.close());
  });

  it('set() during a load wins: the load answers its waiters but is not stored', async () => {
    const cache = new Cache<string>({ max: 10, ttlMs: 1_000, clock: new ManualClock() });
    const gate = deferred<string>();
    const load = cache.getOrSet('k', () => gate.promise);
    cache.set('k', 'newer');
    gate.resolve('older');
    expect(await load).toBe('older');
    expect(cache.get('k')).toBe('newer');
    expect(cache.stats().inflight).toBe(0);
    await cache.close();
  });
});

describe('Cache edges: slow loads, grace and logs', () => {
  it('a slow load past loadTimeoutMs within grace: the stale value, a warning, then the late result', async () => {
    const clock = new ManualClock();
    const { lines, logger } = logSpy();
    const cache = new Cache<string>({
      name: 'g',
      max: 10,
      ttlMs: 100,
      graceMs: 1_000,
      loadTimeoutMs: 50,
      clock,
      logger,
      purgeIntervalMs: 0,
    });
    cache.set('k', 'old');
    await clock.advance(101);
    const gate = deferred<string>();
    const first = cache.getOrSet('k', () => gate.promise);
    await clock.advance(50);
    expect(await first).toBe('old');
    // A caller joining the load after grace answered gets the same value at once, as a stale hit.
    expect(await cache.getOrSet('k', () => 'unused')).toBe('old');
    expect(cache.stats()).toMatchObject({ staleHits: 2, misses: 0 });
    expect(lines).toEqual([
      ['warn', 'cache load is slow; serving the stale value (grace)', { cache: 'g', key: 'k', timeoutMs: 50 }],
    ]);
    gate.resolve('new');
    await settle();
    expect(cache.get('k')).toBe('new');
    await cache.close();
  });

  it('a slow load that outlives grace is abandoned with a TimeoutError saying so', async () => {
    const clock = new ManualClock();
    const { lines, logger } = logSpy();
    const cache = new Cache<string>({
      name: 'g',
      max: 10,
      ttlMs: 100,
      graceMs: 200,
      loadTimeoutMs: 50,
      clock,
      logger,
      purgeIntervalMs: 0,
    });
    cache.set('k', 'old');
    await clock.advance(101);
    let signal: AbortSignal | undefined;
    const first = cache.getOrSet('k', (context) => {
      signal = context.signal;
      return new Promise<string>(() => {});
    });
    await clock.advance(50);
    expect(await first).toBe('old');
    // Grace ends 200 ms after the entry went stale (at 100): 149 ms after the timeout fired.
    await clock.advance(148);
    expect(signal?.aborted).toBe(false);
    await clock.advance(1);
    expect(signal?.aborted).toBe(true);
    const reason = signal?.reason as TimeoutError;
    expect(reason).toBeInstanceOf(TimeoutError);
    expect(reason.message).toBe('Cache "g": load of key "k" took longer than 50 ms and outlived graceMs');
    expect(reason.timeoutMs).toBe(50);
    expect(cache.stats()).toMatchObject({ inflight: 0, loadErrors: 1 });
    expect(lines.map((line) => line[1])).toEqual(['cache load is slow; serving the stale value (grace)']);
    expect(clock.pendingTimers).toBe(0);
    await cache.close();
  });

  it('logs a failed background refresh, a grace fallback and a failure after grace answered, each once', async () => {
    const clock = new ManualClock();
    const { lines, logger } = logSpy();
    const cache = new Cache<string>({
      name: 'l',
      max: 10,
      ttlMs: 100,
      staleWhileRevalidateMs: 50,
      graceMs: 500,
      loadTimeoutMs: 20,
      clock,
      logger,
      purgeIntervalMs: 0,
    });
    const broken = new Error('source down');
    cache.set('swr', 'S');
    cache.set('grace', 'G');
    cache.set('late', 'L');
    await clock.advance(101);
    // Inside the SWR window: stale answer, the refresh fails in the background.
    expect(await cache.getOrSet('swr', () => Promise.reject(broken))).toBe('S');
    await settle();
    await clock.advance(60);
    // Past SWR, inside grace: the loader fails and grace answers.
    expect(await cache.getOrSet('grace', () => Promise.reject(broken))).toBe('G');
    // Slow, grace answers at the timeout, then the loader fails.
    const gate = deferred<string>();
    const late = cache.getOrSet('late', () => gate.promise);
    await clock.advance(20);
    expect(await late).toBe('L');
    gate.reject(broken);
    await settle();
    expect(lines.map(([level, message, fields]) => [level, message, fields.cache, fields.key, fields.err])).toEqual([
      // Within grace, even a background refresh that fails takes the grace path.
      ['warn', 'cache load failed; serving the stale value (grace)', 'l', 'swr', broken],
      ['warn', 'cache load failed; serving the stale value (grace)', 'l', 'grace', broken],
      ['warn', 'cache load is slow; serving the stale value (grace)', 'l', 'late', undefined],
      ['warn', 'cache load failed after a stale value was served', 'l', 'late', broken],
    ]);
    await cache.close();
    const noGrace = new Cache<string>({ name: 'n', max: 10, ttlMs: 100, staleWhileRevalidateMs: 50, clock, logger });
    noGrace.set('swr', 'S');
    await clock.advance(101);
    lines.length = 0;
    expect(await noGrace.getOrSet('swr', () => Promise.reject(broken))).toBe('S');
    await settle();
    expect(lines).toEqual([['warn', 'cache background refresh failed', { cache: 'n', key: 'swr', err: broken }]]);
    await noGrace.close();
  });

  it('a disabled cache calls the loader every time with a fresh signal and reports it to the profiler', async () => {
    const records: unknown[][] = [];
    const profiler = { record: (...args: unknown[]) => void records.push(args) };
    const cache = new Cache<string>({
      name: 'p',
      max: 10,
      ttlMs: 1_000,
      enabled: false,
      profiler,
      clock: new ManualClock(),
    });
    const signals: AbortSignal[] = [];
    const own = new AbortController();
    const loader =
      (value: string) =>
      ({ signal }: { signal: AbortSignal }) => {
        signals.push(signal);
        return value;
      };
    expect(await cache.getOrSet('k', loader('a'))).toBe('a');
    expect(await cache.getOrSet('k', loader('b'), { signal: own.signal })).toBe('b');
    await expect(
      cache.getOrSet('k', () => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
    expect(signals[1]).toBe(own.signal);
    expect(signals[0]).not.toBe(own.signal);
    expect(signals[0]?.aborted).toBe(false);
    expect(records.map((args) => [args[0], typeof args[1], args[2]])).toEqual([
      ['cache.p.load', 'number', false],
      ['cache.p.load', 'number', false],
      ['cache.p.load', 'number', true],
    ]);
    expect(cache.stats()).toMatchObject({ misses: 3, loads: 3, loadErrors: 1, size: 0 });
    await cache.close();
  });
});

describe('Cache edges: a plain tier', () => {
  it('a tier answer of null or without a value is a miss; a hit is counted', async () => {
    const tier = new PlainTier();
    const cache = new Cache<string>({ max: 10, ttlMs: 1_000, clock: new ManualClock(), tier });
    tier.answer = null;
    expect(await cache.getOrSet('a', () => 'A')).toBe('A');
    tier.answer = { value: undefined as never, ttlMs: 10 };
    expect(await cache.getOrSet('b', () => 'B')).toBe('B');
    tier.answer = { value: 'T', ttlMs: 10 };
    expect(await cache.getOrSet('c', () => 'C')).toBe('T');
    await settle();
    expect(cache.stats()).toMatchObject({ tierHits: 1, loads: 2 });
    expect(tier.sets).toEqual([
      ['a', 'A', { ttlMs: 1_000, tags: [] }],
      ['b', 'B', { ttlMs: 1_000, tags: [] }],
    ]);
    await cache.close();
  });

  it('tier failures are counted and logged with what failed; reads fall back to the loader', async () => {
    const tier = new PlainTier();
    const { lines, logger } = logSpy();
    const cache = new Cache<string>({ name: 't', max: 10, ttlMs: 1_000, clock: new ManualClock(), tier, logger });
    tier.fail = new Set(['get', 'set', 'deleteTags']);
    expect(await cache.getOrSet('a', () => 'A')).toBe('A');
    await settle();
    await expect(cache.invalidateTags(['x'])).rejects.toThrow('deleteTags failed');
    expect(cache.stats().tierErrors).toBe(3);
    expect(
      lines.map(([level, message, fields]) => [level, message, fields.cache, (fields.err as Error).message]),
    ).toEqual([
      ['warn', 'cache tier read failed; calling the loader', 't', 'get failed'],
      ['warn', 'cache tier write failed', 't', 'set failed'],
      ['warn', 'cache tier tag invalidation failed', 't', 'deleteTags failed'],
    ]);
    expect(lines[0]?.[2].key).toBe('a');
    expect(lines[2]?.[2].tags).toEqual(['x']);
    expect(cache.get('a')).toBe('A');
    await cache.close();
  });

  it('frozen tags reach the tier as they are, others as a frozen copy', async () => {
    const tier = new PlainTier();
    const cache = new Cache<string>({ max: 10, ttlMs: 1_000, clock: new ManualClock(), tier });
    const frozen = Object.freeze(['f']);
    const plain = ['p'];
    cache.set('a', 'A', { tags: frozen });
    cache.set('b', 'B', { tags: plain });
    await settle();
    expect(tier.sets[0]?.[2].tags).toBe(frozen);
    expect(tier.sets[1]?.[2].tags).not.toBe(plain);
    expect(tier.sets[1]?.[2].tags).toEqual(['p']);
    expect(Object.isFrozen(tier.sets[1]?.[2].tags)).toBe(true);
    await cache.close();
  });

  it('close() waits for the tier writes in flight; more than 10,000 pending writes are dropped and counted', async () => {
    const tier = new PlainTier();
    const { lines, logger } = logSpy();
    const hold = deferred();
    tier.hold = hold.promise;
    const cache = new Cache<string>({ name: 'd', max: 10, ttlMs: 1_000, clock: new ManualClock(), tier, logger });
    for (let i = 0; i < 10_001; i++) cache.set(`k${i % 10}`, 'v');
    expect(tier.sets).toHaveLength(10_000);
    expect(cache.stats().tierErrors).toBe(1);
    expect(lines).toEqual([['warn', 'cache tier write dropped: too many pending', { cache: 'd', pending: 10_000 }]]);
    let isClosed = false;
    const closing = cache.close().then(() => {
      isClosed = true;
    });
    await settle();
    expect(isClosed).toBe(false);
    hold.resolve();
    await closing;
    expect(isClosed).toBe(true);
  });

  it('clear() clears a tier that can, in the background', async () => {
    const tier = new MapCacheTier<string>({ clock: new ManualClock() });
    const cache = new Cache<string>({ max: 10, ttlMs: 1_000, clock: new ManualClock(), tier });
    await tier.set('x', 'X', { ttlMs: 1_000, tags: [] });
    cache.clear();
    await settle();
    expect(await tier.get('x')).toBeUndefined();
    await cache.close();
  });
});

describe('MapCacheTier edges', () => {
  it('keeps 10,000 entries by default, drops the least recently read first, and counts', async () => {
    const clock = new ManualClock();
    const tier = new MapCacheTier<number>({ clock });
    for (let i = 0; i < 10_000; i++) await tier.set(`k${i}`, i, { ttlMs: 1_000, tags: [] });
    expect(tier.stats().size).toBe(10_000);
    expect(await tier.get('k0')).toEqual({ value: 0, ttlMs: 1_000, tags: [] });
    await tier.set('new', 1, { ttlMs: 1_000, tags: ['t'] });
    expect(await tier.get('k1')).toBeUndefined(); // k0 was read, so k1 was the oldest
    expect(await tier.get('k0')).toMatchObject({ value: 0 });
    expect(tier.stats()).toEqual({ size: 10_000, gets: 3, hits: 2, sets: 10_001 });
    await clock.advance(400);
    expect(await tier.get('new')).toEqual({ value: 1, ttlMs: 600, tags: ['t'] });
    await clock.advance(600);
    expect(await tier.get('new')).toBeUndefined();
    expect(tier.stats().size).toBe(9_999);
    await tier.deleteTags(['t']);
    expect(() => new MapCacheTier({ max: 0 })).toThrow(ConfigError);
    expect(() => new MapCacheTier({ max: 1.5 })).toThrow(/MapCacheTier\.max/);
  });

  it('overwriting a key drops its old tags', async () => {
    const tier = new MapCacheTier<string>({ max: 2, clock: new ManualClock() });
    await tier.set('a', 'A', { ttlMs: 100, tags: ['old'] });
    await tier.set('a', 'A2', { ttlMs: 100, tags: ['new'] });
    await tier.deleteTags(['old']);
    expect(await tier.get('a')).toMatchObject({ value: 'A2', tags: ['new'] });
    await tier.set('b', 'B', { ttlMs: 100, tags: [] });
    await tier.set('c', 'C', { ttlMs: 100, tags: [] });
    expect(tier.stats().size).toBe(2);
    await tier.deleteTags(['new']);
    expect(tier.stats().size).toBe(2); // 'a' was already dropped as the oldest
  });
});

describe('CacheRegistry edges', () => {
  it('hands its clock, profiler and logger to caches that have none, and can only switch caching off', async () => {
    const clock = new ManualClock();
    const own = new ManualClock();
    const records: unknown[] = [];
    const profiler = { record: (name: string) => void records.push(name) };
    const { lines, logger } = logSpy();
    const registry = new CacheRegistry({ clock, profiler, logger, enabled: true });
    const shared = registry.create<string>('shared', { max: 10, ttlMs: 100, staleWhileRevalidateMs: 1_000 });
    const mine = registry.create<string>('mine', { max: 10, ttlMs: 100, clock: own, enabled: false });
    shared.set('k', 'v');
    mine.set('k', 'v');
    await clock.advance(101);
    expect(shared.get('k')).toBeUndefined();
    await shared.getOrSet('x', () => 'X');
    expect(records).toEqual(['cache.shared.load']);
    // The stale value answers; the failing refresh is logged through the registry's logger.
    expect(await shared.getOrSet('k', () => Promise.reject(new Error('bg')))).toBe('v');
    await settle();
    expect(lines.map((line) => line[1])).toEqual(['cache background refresh failed']);
    expect(mine.get('k')).toBeUndefined(); // disabled by its own option
    await registry.close();
  });

  it('names: validated, unique, at most 1,000, none after close()', async () => {
    const registry = new CacheRegistry();
    expect(caught(() => registry.create('', { max: 1, ttlMs: 1 }))).toMatchObject({
      option: 'CacheRegistry name',
      message: 'CacheRegistry name must not be empty',
    });
    registry.create('a', { max: 1, ttlMs: 1 });
    expect(caught(() => registry.create('a', { max: 1, ttlMs: 1 }))).toMatchObject({
      option: 'CacheRegistry name',
      message: 'a cache named "a" is already registered',
    });
    for (let i = 1; i < 1_000; i++) registry.add(new Cache({ name: `c${i}`, max: 1, ttlMs: 1 }));
    expect(registry.names()).toHaveLength(1_000);
    expect(caught(() => registry.create('one-more', { max: 1, ttlMs: 1 }))).toMatchObject({
      option: 'CacheRegistry',
      message: 'CacheRegistry holds at most 1000 caches',
    });
    await registry.close();
    expect(caught(() => registry.create('late', { max: 1, ttlMs: 1 }))).toMatchObject({
      option: 'CacheRegistry',
      message: 'CacheRegistry is closed',
    });
    expect(registry.get('missing')).toBeUndefined();
  });

  it('sums every counter over its caches', async () => {
    const registry = new CacheRegistry({ clock: new ManualClock() });
    expect(registry.stats().total.hitRate).toBe(0);
    const a = registry.create<string>('a', { max: 10, ttlMs: 100 });
    const b = registry.create<string>('b', { max: 10, ttlMs: 100 });
    a.set('k', 'v', { tags: ['t'] });
    a.get('k');
    b.get('k');
    await b.getOrSet('k', () => 'v');
    const { total, caches } = registry.stats();
    expect(Object.getPrototypeOf(caches)).toBeNull();
    expect(total).toEqual({
      hits: 1,
      misses: 2,
      staleHits: 0,
      loads: 1,
      loadErrors: 0,
      evictions: 0,
      expirations: 0,
      size: 2,
      inflight: 0,
      tags: 1,
      tierHits: 0,
      tierErrors: 0,
      staleLoadsRefused: 0,
      busMessages: 0,
      busErrors: 0,
      hitRate: 1 / 3,
    });
    await registry.close();
  });
});

describe('CappedList edges', () => {
  it('refuses a missing options object, says why, and reports max', () => {
    for (const options of [undefined, null, 3]) {
      expect(caught(() => new CappedList(options as never))).toMatchObject({
        option: 'CappedList.options',
        message: 'CappedList needs an options object with max',
      });
    }
    expect(caught(() => new CappedList({ max: 0 }))).toMatchObject({ option: 'CappedList.max' });
    expect(new CappedList({ max: 10_000_000 }).max).toBe(10_000_000);
  });

  it('wraps around correctly: latest, iteration and clear after the ring has turned', () => {
    const list = new CappedList<number>({ max: 3 });
    list.push(1);
    expect(list.latest()).toBe(1);
    expect(list.size).toBe(1);
    for (const n of [2, 3, 4, 5, 6, 7]) list.push(n);
    expect(list.latest()).toBe(7);
    expect([...list]).toEqual([5, 6, 7]);
    expect(list.dropped).toBe(4);
    list.clear();
    expect(list.size).toBe(0);
    expect(list.latest()).toBeUndefined();
    expect([...list]).toEqual([]);
    list.push(8);
    list.push(9);
    expect(list.toArray()).toEqual([8, 9]);
    expect(list.latest()).toBe(9);
    expect(list.dropped).toBe(4);
  });
});

describe('Cache edges: stale windows', () => {
  it('a stale value is served until exactly staleWhileRevalidateMs after it went stale, then callers wait', async () => {
    const clock = new ManualClock();
    const cache = new Cache<string>({ max: 10, ttlMs: 100, staleWhileRevalidateMs: 50, clock, purgeIntervalMs: 0 });
    cache.set('a', 'A');
    cache.set('b', 'B');
    await clock.advance(149);
    const gate = deferred<string>();
    expect(await cache.getOrSet('a', () => gate.promise)).toBe('A');
    // Joining the refresh in flight inside the window: the stale value too.
    expect(await cache.getOrSet('a', () => 'unused')).toBe('A');
    await clock.advance(1);
    // Now 50 ms past staleness: a joiner waits for the refresh.
    const joined = cache.getOrSet('a', () => 'unused');
    const waiting = cache.getOrSet('b', () => 'B2');
    gate.resolve('A2');
    expect(await joined).toBe('A2');
    expect(await waiting).toBe('B2');
    expect(cache.stats()).toMatchObject({ staleHits: 2, misses: 2, loads: 2 });
    await cache.close();
  });

  it('inside the stale window a remembered error serves the stale value without calling the loader again', async () => {
    const clock = new ManualClock();
    const cache = new Cache<string>({
      max: 10,
      ttlMs: 100,
      staleWhileRevalidateMs: 1_000,
      errorTtlMs: 500,
      clock,
      purgeIntervalMs: 0,
    });
    cache.set('k', 'old');
    await clock.advance(101);
    let calls = 0;
    const failing = () => {
      calls++;
      return Promise.reject(new Error('down'));
    };
    expect(await cache.getOrSet('k', failing)).toBe('old');
    await settle();
    expect(await cache.getOrSet('k', failing)).toBe('old');
    await settle();
    expect(calls).toBe(1);
    expect(cache.stats()).toMatchObject({ staleHits: 2, loads: 1, loadErrors: 1, inflight: 0 });
    await cache.close();
  });

  it('a refresh that answers undefined removes the stale entry', async () => {
    const clock = new ManualClock();
    const cache = new Cache<string>({ max: 10, ttlMs: 100, staleWhileRevalidateMs: 1_000, clock, purgeIntervalMs: 0 });
    cache.set('k', 'old');
    await clock.advance(101);
    expect(await cache.getOrSet('k', () => undefined as unknown as string)).toBe('old');
    await settle();
    expect(cache.stats().size).toBe(0);
    let calls = 0;
    expect(
      await cache.getOrSet('k', () => {
        calls++;
        return 'new';
      }),
    ).toBe('new');
    expect(calls).toBe(1);
    await cache.close();
  });

  it('a load that fails after its key was deleted does not remember the error', async () => {
    const cache = new Cache<string>({ max: 10, ttlMs: 100, errorTtlMs: 10_000, clock: new ManualClock() });
    const gate = deferred<string>();
    const load = cache.getOrSet('k', () => gate.promise);
    cache.delete('k');
    gate.reject(new Error('failed late'));
    await expect(load).rejects.toThrow('failed late');
    expect(await cache.getOrSet('k', () => 'fresh')).toBe('fresh');
    await cache.close();
  });

  it('close() aborts the loaders in flight with the ClosedError their waiters get', async () => {
    const clock = new ManualClock();
    const cache = new Cache<string>({ name: 'z', max: 10, ttlMs: 100, loadTimeoutMs: 1_000, clock });
    let signal: AbortSignal | undefined;
    const load = cache.getOrSet('k', (context) => {
      signal = context.signal;
      return new Promise<string>(() => {});
    });
    const outcome = load.catch((error: unknown) => error);
    await settle();
    await cache.close();
    const error = await outcome;
    expect(error).toBeInstanceOf(ClosedError);
    expect(signal?.reason).toBe(error);
    expect(cache.stats()).toMatchObject({ inflight: 0, size: 0 });
    expect(clock.pendingTimers).toBe(0);
  });
});

describe('Cache edges: loads in flight', () => {
  it('a load detached by delete() that settles later leaves the newer load of the key in place', async () => {
    const cache = new Cache<string>({ max: 10, ttlMs: 1_000, clock: new ManualClock() });
    const first = deferred<string>();
    const second = deferred<string>();
    let calls = 0;
    const loader = () => {
      calls++;
      return calls === 1 ? first.promise : second.promise;
    };
    const a = cache.getOrSet('k', loader);
    cache.delete('k');
    const b = cache.getOrSet('k', loader);
    first.resolve('one');
    expect(await a).toBe('one');
    const c = cache.getOrSet('k', loader); // joins the second load
    second.resolve('two');
    expect(await Promise.all([b, c])).toEqual(['two', 'two']);
    expect(calls).toBe(2);
    expect(cache.get('k')).toBe('two');
    await cache.close();
  });

  it('after loadTimeoutMs without a stale value: TimeoutError, an error record, and the late result is ignored', async () => {
    const clock = new ManualClock();
    const records: unknown[][] = [];
    const profiler = { record: (...args: unknown[]) => void records.push(args) };
    const cache = new Cache<string>({ name: 't', max: 10, ttlMs: 1_000, loadTimeoutMs: 30, clock, profiler });
    const gates = [deferred<string>(), deferred<string>()];
    const late = cache.getOrSet('k', () => gates[0]?.promise as Promise<string>);
    const outcome = late.catch((error: unknown) => error);
    await clock.advance(30);
    const error = await outcome;
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error).toMatchObject({ message: 'Cache "t": load of key "k" took longer than 30 ms', timeoutMs: 30 });
    gates[0]?.resolve('too late');
    await settle();
    expect(cache.get('k')).toBeUndefined();
    const failedLate = cache.getOrSet('f', () => gates[1]?.promise as Promise<string>).catch((e: unknown) => e);
    await clock.advance(30);
    await failedLate;
    gates[1]?.reject(new Error('after the timeout'));
    await settle();
    expect(cache.stats()).toMatchObject({ loadErrors: 2, inflight: 0 });
    expect(records.map((args) => [args[0], args[2]])).toEqual([
      ['cache.t.load', true],
      ['cache.t.load', true],
    ]);
    // A load that finishes in time clears its timer and records a success.
    expect(await cache.getOrSet('ok', () => 'fine')).toBe('fine');
    expect(records.at(-1)?.[2]).toBe(false);
    expect(clock.pendingTimers).toBe(1); // only the purge timer
    await cache.close();
  });

  it('a value from the tier is not a loader call: nothing is recorded; the load’s own tags apply when the tier has none', async () => {
    const records: unknown[][] = [];
    const profiler = { record: (...args: unknown[]) => void records.push(args) };
    const tier = new PlainTier();
    tier.answer = { value: 'T', ttlMs: 1_000 };
    const cache = new Cache<string>({ max: 10, ttlMs: 1_000, clock: new ManualClock(), tier, profiler });
    expect(await cache.getOrSet('k', () => 'L', { tags: ['mine'] })).toBe('T');
    expect(records).toEqual([]);
    expect(await cache.invalidateTags(['mine'])).toBe(1);
    await cache.close();
  });

  it('close() gives back a lease held by a loader still running', async () => {
    const calls: string[] = [];
    const tier = {
      get: async () => undefined,
      set: async () => {},
      delete: async () => {},
      deleteTags: async () => {},
      lookup: async () => ({ kind: 'lease', stamp: 's', token: 'held' }) as const,
      fill: async () => true,
      release: async (key: string, token: string) => void calls.push(`release ${key} ${token}`),
    };
    const cache = new Cache<string>({ max: 10, ttlMs: 1_000, clock: new ManualClock(), tier });
    const load = cache.getOrSet('k', () => new Promise<string>(() => {})).catch((e: unknown) => e);
    await settle();
    await cache.close();
    expect(await load).toBeInstanceOf(ClosedError);
    expect(calls).toEqual(['release k held']);
  });

  it('after purgeStale(), stale entries kept for their window are still not served by get()', async () => {
    const clock = new ManualClock();
    const cache = new Cache<string>({ max: 10, ttlMs: 100, graceMs: 1_000, clock, purgeIntervalMs: 0 });
    cache.set('k', 'v');
    await clock.advance(101);
    expect(cache.purgeStale()).toBe(0);
    expect(cache.get('k')).toBeUndefined();
    expect(cache.has('k')).toBe(false);
    expect(cache.stats().size).toBe(1);
    await cache.close();
  });
});

describe('Cache edges: after the first scored run', () => {
  it('the tag index forgets invalidated tags and everything on clear()', async () => {
    const cache = new Cache<string>({ max: 10, ttlMs: 1_000, clock: new ManualClock() });
    cache.set('a', 'A', { tags: ['x', 'y'] });
    cache.set('b', 'B', { tags: ['y'] });
    expect(cache.stats().tags).toBe(2);
    expect(await cache.invalidateTags(['x'])).toBe(1);
    expect(cache.stats().tags).toBe(1);
    expect(await cache.invalidateTags(['x'])).toBe(0);
    cache.clear();
    expect(cache.stats().tags).toBe(0);
    cache.set('c', 'C', { tags: ['y'] });
    expect(await cache.invalidateTags(['y'])).toBe(1);
    await cache.close();
  });

  it('a plain tier answering nothing is no error; with a bus, a plain-tier fill announces nothing', async () => {
    const tier = new PlainTier();
    const published: unknown[] = [];
    const bus = {
      subscribe: () => () => {},
      publish: async (_name: string, message: unknown) => void published.push(message),
    };
    const cache = new Cache<string>({ max: 10, ttlMs: 1_000, clock: new ManualClock(), tier, bus });
    tier.answer = undefined;
    expect(await cache.getOrSet('a', () => 'A')).toBe('A');
    tier.answer = null;
    expect(await cache.getOrSet('b', () => 'B')).toBe('B');
    await settle();
    expect(cache.stats()).toMatchObject({ tierErrors: 0, tierHits: 0, loads: 2 });
    expect(published).toEqual([]);
    await cache.close();
  });

  it('a write dropped for too many pending writes is still announced', async () => {
    const tier = new PlainTier();
    const hold = deferred();
    tier.hold = hold.promise;
    const published: unknown[] = [];
    const bus = {
      subscribe: () => () => {},
      publish: async (_name: string, message: unknown) => void published.push(message),
    };
    const cache = new Cache<string>({ max: 10, ttlMs: 1_000, clock: new ManualClock(), tier, bus });
    for (let i = 0; i < 10_000; i++) cache.set('k', 'v');
    cache.set('last', 'v');
    await settle();
    expect(published).toEqual([{ type: 'set', key: 'last' }]);
    hold.resolve();
    await cache.close();
    expect(published).toHaveLength(10_001);
  });
});

describe('CacheRegistry edges: after the first scored run', () => {
  it('a cache’s own clock, profiler and logger win over the registry’s', async () => {
    const registryClock = new ManualClock();
    const ownClock = new ManualClock();
    const registryRecords: unknown[] = [];
    const ownRecords: unknown[] = [];
    const registryLog = logSpy();
    const ownLog = logSpy();
    const registry = new CacheRegistry({
      clock: registryClock,
      profiler: { record: (name: string) => void registryRecords.push(name) },
      logger: registryLog.logger,
    });
    const cache = registry.create<string>('own', {
      max: 10,
      ttlMs: 100,
      staleWhileRevalidateMs: 1_000,
      clock: ownClock,
      profiler: { record: (name: string) => void ownRecords.push(name) },
      logger: ownLog.logger,
    });
    cache.set('k', 'v');
    await registryClock.advance(1_000);
    expect(cache.get('k')).toBe('v');
    await ownClock.advance(101);
    expect(await cache.getOrSet('k', () => Promise.reject(new Error('bg')))).toBe('v');
    await settle();
    expect(ownRecords).toEqual(['cache.own.load']);
    expect(registryRecords).toEqual([]);
    expect(ownLog.lines.map((line) => line[1])).toEqual(['cache background refresh failed']);
    expect(registryLog.lines).toEqual([]);
    // Stale hits count as answered hits in the total hitRate.
    expect(registry.stats().total).toMatchObject({ hits: 1, staleHits: 1, misses: 0, hitRate: 1 });
    await registry[Symbol.asyncDispose]();
    expect(() => cache.get('k')).toThrow(ClosedError);
  });
});

describe('Cache edges: getOrSet counters and load durations', () => {
  it('counts a fresh getOrSet hit as a hit, and a remembered error answered without a load as a miss', async () => {
    const clock = new ManualClock();
    const cache = new Cache<number>({ clock, max: 10, ttlMs: 1_000, errorTtlMs: 60_000 });
    expect(await cache.getOrSet('k', () => 1)).toBe(1);
    const cold = cache.stats();
    expect(await cache.getOrSet('k', () => 2)).toBe(1);
    expect(cache.stats()).toMatchObject({ hits: cold.hits + 1, staleHits: cold.staleHits, misses: cold.misses });
    const boom = new Error('source down');
    await expect(cache.getOrSet('e', () => Promise.reject(boom))).rejects.toBe(boom);
    const afterFailure = cache.stats();
    await expect(cache.getOrSet('e', () => 3)).rejects.toBe(boom); // remembered: no load
    expect(cache.stats()).toMatchObject({
      hits: afterFailure.hits,
      staleHits: afterFailure.staleHits,
      misses: afterFailure.misses + 1,
      loads: afterFailure.loads,
    });
    await cache.close();
  });

  it('records each load’s own duration (never more than the call took), enabled or not, ok or failed', async () => {
    for (const enabled of [true, false]) {
      const records: Array<[string, number, boolean | undefined]> = [];
      const profiler = {
        record: (name: string, ms: number, failed?: boolean) => void records.push([name, ms, failed]),
      };
      const cache = new Cache<number>({ name: 'timed', max: 10, ttlMs: 60_000, enabled, profiler });
      const before = performance.now();
      await cache.getOrSet('a', async () => 1);
      await cache.getOrSet('b', async () => Promise.reject(new Error('no'))).catch(() => {});
      const took = performance.now() - before;
      expect(records.map(([, , failed]) => failed)).toEqual([false, true]);
      for (const [, ms] of records) {
        expect(ms).toBeGreaterThanOrEqual(0);
        expect(ms).toBeLessThanOrEqual(took);
      }
      await cache.close();
    }
  });
});
