import { ConfigError, ManualClock, silentLogger, systemClock } from 'hotpath/core';
import { MemoryRateLimitStore, RateLimiter } from 'hotpath/ratelimit';
import { describe, expect, it } from 'vitest';
import { checkCallOptions, checkWeight, resolveRateLimiterOptions } from '../../src/ratelimit/rate-limiter-options.js';

function errorOf(call: () => unknown): ConfigError {
  try {
    call();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('no error thrown');
}

const zero = (): number => 0;
const noop = (): void => {};

describe('resolveRateLimiterOptions', () => {
  it('fills in every default', () => {
    expect(resolveRateLimiterOptions('RateLimiter', { limit: 5, intervalMs: 1000 })).toStrictEqual({
      limit: 5,
      intervalMs: 1000,
      maxConcurrent: Number.POSITIVE_INFINITY,
      minTimeMs: 0,
      maxQueued: 100_000,
      marginMs: 40,
      store: undefined,
      key: 'default',
      name: 'RateLimiter',
      clock: systemClock,
      profiler: undefined,
      logger: silentLogger,
    });
  });

  it('keeps every option given', () => {
    const clock = new ManualClock();
    const store = new MemoryRateLimitStore();
    const profiler = { record: () => {} };
    const logger = { ...silentLogger };
    const options = {
      limit: 3,
      intervalMs: 50,
      maxConcurrent: 2,
      minTimeMs: 7,
      maxQueued: 0,
      marginMs: 5,
      store,
      key: 'k',
      name: 'n',
      clock,
      profiler,
      logger,
    };
    expect(resolveRateLimiterOptions('X', options)).toStrictEqual(options);
  });

  it('the default margin is DEFAULT_MARGIN_MS, at most 4% of intervalMs, on the system clock only', () => {
    const marginOf = (options: object) =>
      resolveRateLimiterOptions('RateLimiter', { limit: 1, intervalMs: 1000, ...options }).marginMs;
    expect(marginOf({})).toBe(40);
    expect(marginOf({ intervalMs: 5000 })).toBe(40);
    expect(marginOf({ intervalMs: 200 })).toBe(8);
    expect(marginOf({ clock: systemClock, intervalMs: 500 })).toBe(20);
    expect(marginOf({ clock: new ManualClock() })).toBe(0);
    expect(marginOf({ clock: new ManualClock(), marginMs: 3 })).toBe(3);
    expect(marginOf({ marginMs: 0 })).toBe(0);
  });

  it.each([
    [{ store: { reserve: zero } }, 'S.store', 'S.store must have reserve() and release() methods'],
    [{ store: { release: noop } }, 'S.store', 'S.store must have reserve() and release() methods'],
    [
      { clock: { setTimeout: zero, clearTimeout: noop } },
      'S.clock',
      'S.clock must have now(), setTimeout() and clearTimeout()',
    ],
    [
      { clock: { now: zero, clearTimeout: noop } },
      'S.clock',
      'S.clock must have now(), setTimeout() and clearTimeout()',
    ],
    [{ clock: { now: zero, setTimeout: zero } }, 'S.clock', 'S.clock must have now(), setTimeout() and clearTimeout()'],
    [{ profiler: {} }, 'S.profiler', 'S.profiler must have a record() method'],
    [{ logger: { info: noop } }, 'S.logger', 'S.logger must have debug/info/warn/error methods'],
    [{ marginMs: 3_600_001 }, 'S.marginMs', 'S.marginMs must be a number >= 0 <= 3600000, got 3600001'],
  ])('%j → ConfigError %s', (extra, option, message) => {
    const error = errorOf(() => resolveRateLimiterOptions('S', { limit: 1, intervalMs: 10, ...extra } as never));
    expect(error.option).toBe(option);
    expect(error.message).toBe(message);
  });

  it('accepts a store with reserve() and release(), and a clock with its three methods', () => {
    const store = { reserve: () => 0, release: () => {} };
    const clock = { now: () => 0, setTimeout: () => 0, clearTimeout: () => {} };
    const resolved = resolveRateLimiterOptions('S', { limit: 1, intervalMs: 10, store, clock } as never);
    expect(resolved.store).toBe(store);
    expect(resolved.clock).toBe(clock);
    expect(resolved.marginMs).toBe(0);
  });

  it('the RateLimiter constructor validates under its own name', () => {
    expect(errorOf(() => new RateLimiter({ limit: 1, intervalMs: 10, logger: {} as never })).message).toBe(
      'RateLimiter.logger must have debug/info/warn/error methods',
    );
  });
});

describe('checkWeight', () => {
  it.each([
    [-1, 'RateLimiter.tryAcquire.weight must be a finite number >= 0, got -1'],
    [Number.NaN, 'RateLimiter.tryAcquire.weight must be a finite number >= 0, got NaN'],
    [Number.POSITIVE_INFINITY, 'RateLimiter.tryAcquire.weight must be a finite number >= 0, got Infinity'],
    ['1', 'RateLimiter.tryAcquire.weight must be a finite number >= 0, got "1"'],
    [6, 'RateLimiter.tryAcquire.weight must be <= limit (5); a weight of 6 could never start, got 6'],
  ])('%j → ConfigError: %s', (weight, message) => {
    const error = errorOf(() => checkWeight(5, 'tryAcquire', weight));
    expect(error.option).toBe('RateLimiter.tryAcquire.weight');
    expect(error.message).toBe(message);
  });

  it('accepts 0 and the limit itself', () => {
    expect(() => checkWeight(5, 'acquire', 0)).not.toThrow();
    expect(() => checkWeight(5, 'acquire', 5)).not.toThrow();
    expect(() => checkWeight(Number.POSITIVE_INFINITY, 'acquire', 1e300)).not.toThrow();
  });
});

describe('checkCallOptions', () => {
  it.each([
    [null, 'RateLimiter.schedule', 'RateLimiter.schedule options must be an object, got null'],
    ['fast', 'RateLimiter.schedule', 'RateLimiter.schedule options must be an object, got "fast"'],
    [
      { weight: 1, urgent: true },
      'RateLimiter.schedule.urgent',
      'RateLimiter.schedule: unknown option "urgent" (known options: priority, weight, signal)',
    ],
    [
      { weight: 9 },
      'RateLimiter.schedule.weight',
      'RateLimiter.schedule.weight must be <= limit (5); a weight of 9 could never start, got 9',
    ],
    [
      { priority: 'high' },
      'RateLimiter.schedule.priority',
      'RateLimiter.schedule.priority must be a finite number, got "high"',
    ],
    [
      { priority: Number.POSITIVE_INFINITY },
      'RateLimiter.schedule.priority',
      'RateLimiter.schedule.priority must be a finite number, got Infinity',
    ],
    [{ signal: null }, 'RateLimiter.schedule.signal', 'RateLimiter.schedule.signal must be an AbortSignal, got null'],
    [
      { signal: 'abort' },
      'RateLimiter.schedule.signal',
      'RateLimiter.schedule.signal must be an AbortSignal, got "abort"',
    ],
    [{ signal: {} }, 'RateLimiter.schedule.signal', 'RateLimiter.schedule.signal must be an AbortSignal, got object'],
  ])('%j → ConfigError %s', (options, option, message) => {
    const error = errorOf(() => checkCallOptions(5, 'schedule', options as never));
    expect(error.option).toBe(option);
    expect(error.message).toBe(message);
  });

  it('accepts each known option, and undefined values', () => {
    const signal = new AbortController().signal;
    expect(() => checkCallOptions(5, 'acquire', {})).not.toThrow();
    expect(() => checkCallOptions(5, 'acquire', { priority: -3.5 })).not.toThrow();
    expect(() => checkCallOptions(5, 'acquire', { weight: 5 })).not.toThrow();
    expect(() => checkCallOptions(5, 'acquire', { signal })).not.toThrow();
    const callable = Object.assign(() => {}, { addEventListener: () => {} });
    expect(() => checkCallOptions(5, 'acquire', { signal: callable as never })).toThrow(
      'RateLimiter.acquire.signal must be an AbortSignal, got a function',
    );
    expect(() =>
      checkCallOptions(5, 'acquire', { priority: undefined, weight: undefined, signal: undefined }),
    ).not.toThrow();
  });

  it('the limiter reports the method the options were given to', async () => {
    const limiter = new RateLimiter({ limit: 2, intervalMs: 10, clock: new ManualClock() });
    await expect(limiter.acquire({ weight: 3 })).rejects.toThrow(
      'RateLimiter.acquire.weight must be <= limit (2); a weight of 3 could never start, got 3',
    );
    await expect(limiter.schedule(() => 1, { weight: -1 })).rejects.toThrow(
      'RateLimiter.schedule.weight must be a finite number >= 0, got -1',
    );
    expect(() => limiter.tryAcquire(3)).toThrow('RateLimiter.tryAcquire.weight must be <= limit (2)');
    await expect(limiter.tryAcquireAsync(3)).rejects.toThrow('RateLimiter.tryAcquireAsync.weight must be <= limit (2)');
  });
});
