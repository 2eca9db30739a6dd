import { ClosedError, ConfigError, ManualClock, RateLimitError } from 'hotpath/core';
import { KeyedRateLimiter, MemoryRateLimitStore, RateLimiter, type Release } from 'hotpath/ratelimit';
import { describe, expect, it } from 'vitest';

function configErrorOf(create: () => unknown): ConfigError {
  try {
    create();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('no error thrown');
}

describe('KeyedRateLimiter constructor', () => {
  it.each([
    [null, 'KeyedRateLimiter', 'KeyedRateLimiter options must be an object'],
    ['limit', 'KeyedRateLimiter', 'KeyedRateLimiter options must be an object'],
    [
      { limit: 1, intervalMs: 10, key: 'x' },
      'KeyedRateLimiter.key',
      'KeyedRateLimiter: use keyPrefix; the key comes from for(key)',
    ],
    [
      { limit: 1, intervalMs: 10, maxKeys: 1.5 },
      'KeyedRateLimiter.maxKeys',
      'KeyedRateLimiter.maxKeys must be an integer >= 1, got 1.5',
    ],
    [
      { limit: 1, intervalMs: 10, maxKeys: 0 },
      'KeyedRateLimiter.maxKeys',
      'KeyedRateLimiter.maxKeys must be an integer >= 1, got 0',
    ],
    [
      { limit: 1, intervalMs: 10, keyPrefix: 3 },
      'KeyedRateLimiter.keyPrefix',
      'KeyedRateLimiter.keyPrefix must be a string, got 3',
    ],
    [
      { limit: 0, intervalMs: 10 },
      'KeyedRateLimiter.limit',
      'KeyedRateLimiter.limit must be a number > 0 or Infinity, got 0',
    ],
  ])('%j → ConfigError %s: %s', (options, option, message) => {
    const error = configErrorOf(() => new KeyedRateLimiter(options as never));
    expect(error.option).toBe(option);
    expect(error.message).toBe(message);
  });

  it('maxKeys bounds the windows of its own store', () => {
    const clock = new ManualClock();
    const keyed = new KeyedRateLimiter({ limit: 1, intervalMs: 1000, clock, maxKeys: 2 });
    for (const key of ['a', 'b', 'c']) expect(keyed.tryAcquire(key).ok).toBe(true);
    expect(keyed.storeKeys).toBe(2);
    // 'a' was forgotten by the store: it may start again early.
    expect(keyed.tryAcquire('a').ok).toBe(true);
  });

  it('without keyPrefix the store key is the key itself; with one it is prefixed', () => {
    const clock = new ManualClock();
    const store = new MemoryRateLimitStore();
    const plain = new KeyedRateLimiter({ limit: 5, intervalMs: 100, clock, store });
    const prefixed = new KeyedRateLimiter({ limit: 5, intervalMs: 100, clock, store, keyPrefix: 'p:' });
    expect(plain.tryAcquire('x').ok).toBe(true);
    expect(prefixed.tryAcquire('x', 2).ok).toBe(true);
    expect(store.used('x', 0)).toBe(1);
    expect(store.used('p:x', 0)).toBe(2);
    expect(store.stats().keys).toBe(2);
    const single = new RateLimiter({ limit: 1, intervalMs: 100, clock, store, key: 'x' });
    expect(single.tryAcquire().ok).toBe(false);
    expect(plain.storeKeys).toBe(0); // a custom store is not counted
  });

  it('names each per-key limiter after the keyed one and the key', async () => {
    const clock = new ManualClock();
    const keyed = new KeyedRateLimiter({ limit: 1, intervalMs: 100, clock, maxQueued: 0, name: 'hosts' });
    const release = await keyed.acquire('a');
    const refused = keyed.acquire('a');
    await expect(refused).rejects.toBeInstanceOf(RateLimitError);
    await expect(refused).rejects.toThrow('hosts[a]: 0 waiters already in line (maxQueued 0)');
    release();
    const limiter = keyed.for('a');
    await limiter.close();
    await expect(limiter.acquire()).rejects.toThrow('hosts[a] is closed');
  });
});

describe('KeyedRateLimiter keys', () => {
  it('accepts a key of 1,024 characters and names the rule it breaks otherwise', () => {
    const keyed = new KeyedRateLimiter({ limit: 1, intervalMs: 10, clock: new ManualClock() });
    expect(keyed.tryAcquire('x'.repeat(1024)).ok).toBe(true);
    expect(configErrorOf(() => keyed.for('x'.repeat(1025))).message).toBe(
      'KeyedRateLimiter.key must be at most 1024 characters, got 1025',
    );
    expect(configErrorOf(() => keyed.for('')).message).toBe('KeyedRateLimiter.key must not be empty');
    expect(keyed.stats()).toMatchObject({ keys: 1, created: 1 });
  });

  it('the promise-returning shorthands reject (never throw) for a bad key or after close', async () => {
    const keyed = new KeyedRateLimiter({ limit: 1, intervalMs: 10, clock: new ManualClock() });
    let acquired: Promise<Release> | undefined;
    expect(() => {
      acquired = keyed.acquire('');
    }).not.toThrow();
    await expect(acquired).rejects.toBeInstanceOf(ConfigError);
    let tried: Promise<unknown> | undefined;
    expect(() => {
      tried = keyed.tryAcquireAsync('');
    }).not.toThrow();
    await expect(tried).rejects.toBeInstanceOf(ConfigError);
    await keyed.close();
    await expect(keyed.acquire('a')).rejects.toThrow('KeyedRateLimiter is closed');
    await expect(keyed.tryAcquireAsync('a')).rejects.toBeInstanceOf(ClosedError);
    expect(() => keyed.tryAcquire('a')).toThrow(ClosedError);
    expect(() => keyed.penalize('a', 1)).toThrow(ClosedError);
  });

  it('passes weight, options and retryAfterMs through to the per-key limiter', async () => {
    const clock = new ManualClock();
    const keyed = new KeyedRateLimiter({ limit: 3, intervalMs: 100, clock });
    expect(keyed.tryAcquire('a', 2)).toMatchObject({ ok: true, retryAfterMs: 0 });
    expect(await keyed.tryAcquireAsync('a', 1)).toMatchObject({ ok: true, remaining: 0 });
    expect(keyed.tryAcquire('a', 1)).toMatchObject({ ok: false, retryAfterMs: 100 });
    const release = await keyed.acquire('b', { weight: 3 });
    expect(keyed.tryAcquire('b').ok).toBe(false);
    release();
    keyed.penalize('c', 250);
    expect(keyed.tryAcquire('c')).toMatchObject({ ok: false, retryAfterMs: 250 });
    await expect(keyed.schedule('d', () => 1, { weight: 4 })).rejects.toThrow(ConfigError);
  });
});

describe('KeyedRateLimiter sweep', () => {
  it('sweeps idle limiters when the 65th key arrives', () => {
    const clock = new ManualClock();
    const keyed = new KeyedRateLimiter({ limit: 10, intervalMs: 100, clock });
    for (let i = 0; i < 64; i++) keyed.tryAcquire(`k${i}`).release();
    expect(keyed.stats()).toMatchObject({ keys: 64, created: 64, dropped: 0 });
    keyed.tryAcquire('k64').release();
    expect(keyed.stats()).toMatchObject({ keys: 1, created: 65, dropped: 64 });
  });

  it('after a sweep that frees nothing, waits for twice the busy limiters', async () => {
    const clock = new ManualClock();
    const keyed = new KeyedRateLimiter({ limit: 10, intervalMs: 100, clock });
    const releases: Release[] = [];
    for (let i = 0; i < 64; i++) releases.push(await keyed.acquire(`busy${i}`));
    keyed.tryAcquire('idle0').release(); // sweep: nothing idle, next at 128
    for (let i = 1; i <= 10; i++) keyed.tryAcquire(`idle${i}`).release();
    expect(keyed.stats()).toMatchObject({ keys: 75, created: 75, dropped: 0, running: 64 });
    for (const release of releases) release();
    for (let i = 11; i <= 63; i++) keyed.tryAcquire(`idle${i}`).release();
    expect(keyed.stats()).toMatchObject({ keys: 128, dropped: 0, running: 0 });
    keyed.tryAcquire('idle64').release();
    expect(keyed.stats()).toMatchObject({ keys: 1, created: 129, dropped: 128 });
  });

  it('stats() sums running and queued over the keys', async () => {
    const clock = new ManualClock();
    const keyed = new KeyedRateLimiter({ limit: 1, intervalMs: 100, clock });
    const a = await keyed.acquire('a');
    const b = await keyed.acquire('b');
    const waiting = [keyed.acquire('a'), keyed.acquire('b'), keyed.acquire('b')];
    expect(keyed.stats()).toEqual({ keys: 2, created: 2, dropped: 0, running: 2, queued: 3 });
    a();
    b();
    await keyed.close();
    for (const promise of waiting) await expect(promise).rejects.toBeInstanceOf(ClosedError);
  });
});

describe('KeyedRateLimiter close', () => {
  it('empties its own store and the limiters; asyncDispose closes too', async () => {
    const clock = new ManualClock();
    const keyed = new KeyedRateLimiter({ limit: 1, intervalMs: 100, clock });
    keyed.tryAcquire('a');
    keyed.tryAcquire('b');
    expect(keyed.storeKeys).toBe(2);
    const limiter = keyed.for('a');
    await keyed[Symbol.asyncDispose]();
    expect(keyed.storeKeys).toBe(0);
    expect(keyed.stats()).toMatchObject({ keys: 0, created: 2 });
    expect(limiter.isClosed).toBe(true);
    expect(() => keyed.for('a')).toThrow('KeyedRateLimiter is closed');
  });
});
