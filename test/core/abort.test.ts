import { getEventListeners } from 'node:events';
import { abortable, ManualClock, sleep, TimeoutError, withTimeout } from 'hotpath/core';
import { describe, expect, it } from 'vitest';
import { abortReason, anySignal, throwIfAborted } from '../../src/core/abort.js';

describe('sleep', () => {
  it('resolves after the time on the given clock', async () => {
    const clock = new ManualClock();
    let done = false;
    const waiting = sleep(100, { clock }).then(() => {
      done = true;
    });
    await clock.advance(99);
    expect(done).toBe(false);
    await clock.advance(1);
    await waiting;
    expect(done).toBe(true);
  });

  it('rejects with the signal reason on abort and clears its timer', async () => {
    const clock = new ManualClock();
    const controller = new AbortController();
    const reason = new Error('user cancelled');
    const waiting = sleep(1000, { clock, signal: controller.signal });
    expect(clock.pendingTimers).toBe(1);
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    expect(clock.pendingTimers).toBe(0);
  });

  it('rejects at once when already aborted', async () => {
    const reason = new Error('already');
    await expect(sleep(10, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
  });
});

describe('withTimeout', () => {
  it('aborts the inner work through its signal and rejects with TimeoutError', async () => {
    const clock = new ManualClock();
    let innerSignal: AbortSignal | undefined;
    const running = withTimeout(
      (signal) => {
        innerSignal = signal;
        return new Promise<string>(() => {});
      },
      50,
      { clock },
    );
    const outcome = running.catch((error: unknown) => error);
    await clock.advance(50);
    const error = await outcome;
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as TimeoutError).timeoutMs).toBe(50);
    expect(innerSignal?.aborted).toBe(true);
    expect(innerSignal?.reason).toBe(error);
  });

  it('returns the value when the work finishes first and leaves no timer', async () => {
    const clock = new ManualClock();
    await expect(withTimeout(async () => 'ok', 50, { clock })).resolves.toBe('ok');
    expect(clock.pendingTimers).toBe(0);
  });

  it('propagates the caller abort to the inner signal', async () => {
    const controller = new AbortController();
    let innerSignal: AbortSignal | undefined;
    const running = withTimeout(
      (signal) => {
        innerSignal = signal;
        return new Promise<void>(() => {});
      },
      10_000,
      { signal: controller.signal },
    );
    const reason = new Error('shutdown');
    controller.abort(reason);
    await expect(running).rejects.toBe(reason);
    expect(innerSignal?.aborted).toBe(true);
  });

  it('propagates errors of the inner work', async () => {
    const boom = new Error('boom');
    await expect(
      withTimeout(async () => {
        throw boom;
      }, 100),
    ).rejects.toBe(boom);
  });
});

describe('abortable / anySignal / throwIfAborted', () => {
  it('abortable rejects the wait without cancelling the shared promise', async () => {
    let resolveShared: (value: number) => void = () => {};
    const shared = new Promise<number>((resolve) => {
      resolveShared = resolve;
    });
    const controller = new AbortController();
    const mine = abortable(shared, controller.signal);
    const theirs = abortable(shared, undefined);
    controller.abort(new Error('mine only'));
    await expect(mine).rejects.toThrow('mine only');
    resolveShared(7);
    await expect(theirs).resolves.toBe(7);
  });

  it('anySignal fires when any input fires', () => {
    const a = new AbortController();
    const b = new AbortController();
    const any = anySignal([a.signal, undefined, b.signal]);
    expect(any?.aborted).toBe(false);
    b.abort('b');
    expect(any?.aborted).toBe(true);
    expect(anySignal([undefined])).toBeUndefined();
  });

  it('throwIfAborted throws the reason', () => {
    expect(() => throwIfAborted(AbortSignal.abort(new Error('r')))).toThrow('r');
    expect(() => throwIfAborted(undefined)).not.toThrow();
  });
});

describe('no listener outlives its wait (pinned by mutation testing)', () => {
  const listeners = (signal: AbortSignal) => getEventListeners(signal, 'abort').length;

  it('sleep removes its listener when it resolves and when it is aborted', async () => {
    const clock = new ManualClock();
    const controller = new AbortController();
    const done = sleep(10, { clock, signal: controller.signal });
    expect(listeners(controller.signal)).toBe(1);
    await clock.advance(10);
    await done;
    expect(listeners(controller.signal)).toBe(0);
    const aborted = new AbortController();
    const waiting = sleep(10, { clock, signal: aborted.signal }).catch((error: unknown) => error);
    aborted.abort(new Error('stop'));
    expect(((await waiting) as Error).message).toBe('stop');
    expect(listeners(aborted.signal)).toBe(0);
    expect(clock.pendingTimers).toBe(0);
  });

  it('abortable removes its listener on value, on error and on abort; calls onAbort once', async () => {
    const controller = new AbortController();
    await expect(abortable(Promise.resolve(1), controller.signal)).resolves.toBe(1);
    expect(listeners(controller.signal)).toBe(0);
    await expect(abortable(Promise.reject(new Error('x')), controller.signal)).rejects.toThrow('x');
    expect(listeners(controller.signal)).toBe(0);
    let abandoned = 0;
    const waiting = abortable(new Promise(() => {}), controller.signal, () => abandoned++).catch((e: unknown) => e);
    controller.abort(new Error('gone'));
    expect(((await waiting) as Error).message).toBe('gone');
    expect(listeners(controller.signal)).toBe(0);
    expect(abandoned).toBe(1);
    // Already aborted: rejects at once and still reports the abandoned wait.
    await expect(abortable(Promise.resolve(2), controller.signal, () => abandoned++)).rejects.toThrow('gone');
    expect(abandoned).toBe(2);
    expect(await abortable(Promise.resolve(3), undefined)).toBe(3);
  });

  it('withTimeout: default and custom messages, caller signal listener removed, aborted caller never runs fn', async () => {
    const clock = new ManualClock();
    const slow = () => new Promise<never>(() => {});
    const first = withTimeout(slow, 50, { clock }).catch((e: unknown) => e);
    await clock.advance(50);
    expect(((await first) as Error).message).toBe('operation timed out after 50 ms');
    const second = withTimeout(slow, 20, { clock, message: 'quote lookup timed out' }).catch((e: unknown) => e);
    await clock.advance(20);
    expect(((await second) as Error).message).toBe('quote lookup timed out');

    const controller = new AbortController();
    await expect(withTimeout(async () => 'ok', 50, { clock, signal: controller.signal })).resolves.toBe('ok');
    expect(listeners(controller.signal)).toBe(0);
    const third = withTimeout(slow, 50, { clock, signal: controller.signal }).catch((e: unknown) => e);
    controller.abort(new Error('caller left'));
    expect(((await third) as Error).message).toBe('caller left');
    expect(listeners(controller.signal)).toBe(0);
    let ran = false;
    await expect(
      withTimeout(
        async () => {
          ran = true;
        },
        50,
        { clock, signal: controller.signal },
      ),
    ).rejects.toThrow('caller left');
    expect(ran).toBe(false);
  });

  it('abortReason falls back to an AbortError; anySignal passes a single signal through', () => {
    const reason = abortReason({ aborted: true, reason: undefined } as AbortSignal) as DOMException;
    expect(reason.name).toBe('AbortError');
    expect(reason.message).toBe('This operation was aborted');
    const only = new AbortController().signal;
    expect(anySignal([undefined, only, undefined])).toBe(only);
    expect(anySignal([undefined])).toBeUndefined();
  });
});
