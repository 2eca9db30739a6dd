import { backoffDelay, ConfigError, ManualClock, resolveRetryOptions, retryAsync } from 'hotpath/core';
import { describe, expect, it } from 'vitest';

describe('backoff policy', () => {
  it('grows exponentially up to the cap without jitter', () => {
    const policy = resolveRetryOptions('t', { retries: 10, baseDelayMs: 100, maxDelayMs: 1000, jitter: false });
    expect([1, 2, 3, 4, 5, 6].map((retry) => backoffDelay(retry, policy))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it('is fixed with factor 1', () => {
    const policy = resolveRetryOptions('t', {
      retries: 3,
      baseDelayMs: 250,
      maxDelayMs: 250,
      factor: 1,
      jitter: false,
    });
    expect([1, 2, 3].map((retry) => backoffDelay(retry, policy))).toEqual([250, 250, 250]);
  });

  it('full jitter stays within [0, delay], equal jitter within [delay/2, delay]', () => {
    const full = resolveRetryOptions('t', { retries: 5, baseDelayMs: 100, maxDelayMs: 10_000 });
    const equal = resolveRetryOptions('t', { retries: 5, baseDelayMs: 100, maxDelayMs: 10_000, jitter: 'equal' });
    expect(backoffDelay(3, full, () => 0)).toBe(0);
    expect(backoffDelay(3, full, () => 0.5)).toBe(200);
    expect(backoffDelay(3, equal, () => 0)).toBe(200);
    expect(backoffDelay(3, equal, () => 0.999)).toBeCloseTo(399.8, 1);
    for (let i = 0; i < 1000; i++) {
      const delay = backoffDelay(4, full);
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThanOrEqual(800);
    }
  });

  it('never overflows for huge retry numbers', () => {
    const policy = resolveRetryOptions('t', { retries: 1000, baseDelayMs: 1000, maxDelayMs: 60_000, jitter: false });
    expect(backoffDelay(1000, policy)).toBe(60_000);
  });

  it.each([
    [{ retries: -1 }, 't.retries'],
    [{ retries: 1.5 }, 't.retries'],
    [{ baseDelayMs: Number.NaN }, 't.baseDelayMs'],
    [{ maxDelayMs: Infinity }, 't.maxDelayMs'],
    [{ factor: 0.5 }, 't.factor'],
    [{ jitter: 'lots' }, 't.jitter'],
    [{ baseDelayMs: 500, maxDelayMs: 100 }, 't.maxDelayMs'],
    [{ retriez: 3 }, 't.retriez'],
  ])('rejects %j', (input, option) => {
    expect(() => resolveRetryOptions('t', input as never)).toThrow(ConfigError);
    try {
      resolveRetryOptions('t', input as never);
    } catch (error) {
      expect((error as ConfigError).option).toBe(option);
    }
  });
});

describe('retryAsync', () => {
  it('retries until success, waiting the computed delays on the clock', async () => {
    const clock = new ManualClock();
    const policy = resolveRetryOptions('t', { retries: 3, baseDelayMs: 100, maxDelayMs: 1000, jitter: false });
    const attempts: number[] = [];
    const delays: number[] = [];
    const running = retryAsync(
      async (attempt) => {
        attempts.push(attempt);
        if (attempt < 3) throw new Error(`fail ${attempt}`);
        return 'done';
      },
      { retry: policy, clock, onRetry: (_error, _attempt, delayMs) => delays.push(delayMs) },
    );
    await clock.advance(100);
    await clock.advance(200);
    await expect(running).resolves.toBe('done');
    expect(attempts).toEqual([1, 2, 3]);
    expect(delays).toEqual([100, 200]);
  });

  it('gives up after `retries` and throws the last error', async () => {
    const policy = resolveRetryOptions('t', { retries: 2, baseDelayMs: 0, maxDelayMs: 0 });
    let calls = 0;
    await expect(
      retryAsync(
        async () => {
          calls++;
          throw new Error(`fail ${calls}`);
        },
        { retry: policy },
      ),
    ).rejects.toThrow('fail 3');
    expect(calls).toBe(3);
  });

  it('stops when shouldRetry says no, and honours a forced delay', async () => {
    const clock = new ManualClock();
    const policy = resolveRetryOptions('t', { retries: 5, baseDelayMs: 1, maxDelayMs: 1 });
    let calls = 0;
    const running = retryAsync(
      async () => {
        calls++;
        throw new Error(calls === 1 ? 'retry-later' : 'fatal');
      },
      {
        retry: policy,
        clock,
        shouldRetry: (error) => ((error as Error).message === 'retry-later' ? { retry: true, delayMs: 5000 } : false),
      },
    );
    const outcome = running.catch((error: unknown) => error);
    await clock.advance(4999);
    expect(calls).toBe(1);
    await clock.advance(1);
    expect(((await outcome) as Error).message).toBe('fatal');
    expect(calls).toBe(2);
  });

  it('aborts a wait between attempts', async () => {
    const policy = resolveRetryOptions('t', { retries: 5, baseDelayMs: 60_000, maxDelayMs: 60_000, jitter: false });
    const controller = new AbortController();
    const running = retryAsync(
      async () => {
        throw new Error('x');
      },
      { retry: policy, signal: controller.signal },
    );
    setTimeout(() => controller.abort(new Error('stop')), 10);
    await expect(running).rejects.toThrow('stop');
  });
});

describe('retry options and decisions, exactly (pinned by mutation testing)', () => {
  it('resolveRetryOptions: defaults with no input, maxDelayMs grows to a larger baseDelayMs, jitter checked', () => {
    expect(resolveRetryOptions('R', undefined)).toEqual({
      retries: 3,
      baseDelayMs: 100,
      maxDelayMs: 10_000,
      factor: 2,
      jitter: true,
    });
    expect(resolveRetryOptions('R', { baseDelayMs: 20_000 }).maxDelayMs).toBe(20_000);
    expect(resolveRetryOptions('R', { retries: 0, factor: 3, jitter: 'equal' })).toMatchObject({
      retries: 0,
      factor: 3,
      jitter: 'equal',
    });
    for (const jitter of [true, false, 'full', 'equal'] as const) {
      expect(resolveRetryOptions('R', { jitter }).jitter).toBe(jitter);
    }
    expect(() => resolveRetryOptions('R', { baseDelayMs: 500, maxDelayMs: 100 })).toThrow(
      'R.maxDelayMs (100) must be >= baseDelayMs (500)',
    );
    expect(() => resolveRetryOptions('R', { jitter: 'half' as never })).toThrow(
      'R.jitter must be true, false, "full" or "equal"',
    );
  });

  it('retryAsync: a boolean or object decision; false and { retry: false } stop at once', async () => {
    const clock = new ManualClock();
    const retry = resolveRetryOptions('R', { retries: 5, baseDelayMs: 10, jitter: false });
    const failing = async () => {
      throw new Error('nope');
    };
    let calls = 0;
    const counted = async () => {
      calls++;
      return failing();
    };
    await expect(retryAsync(counted, { retry, clock, shouldRetry: () => false })).rejects.toThrow('nope');
    expect(calls).toBe(1);
    await expect(retryAsync(counted, { retry, clock, shouldRetry: () => ({ retry: false }) })).rejects.toThrow('nope');
    expect(calls).toBe(2);
    const delays: number[] = [];
    const running = retryAsync(counted, {
      retry: { ...retry, retries: 1 },
      clock,
      shouldRetry: () => ({ retry: true }),
      onRetry: (_error, _attempt, delayMs) => delays.push(delayMs),
    }).catch((e: unknown) => e);
    await clock.advance(10);
    expect(((await running) as Error).message).toBe('nope');
    expect(delays).toEqual([10]); // no delayMs in the decision: the policy's delay
  });
});
