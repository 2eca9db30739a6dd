import { describe, expect, it } from 'vitest';
import { type Waiter, WaitLine } from '../../src/ratelimit/wait-line.js';

/** Takes every waiter in start order and returns the names given as their `fn` results. */
function drainNames(line: WaitLine): string[] {
  const names: string[] = [];
  for (let head = line.peek(); head !== undefined; head = line.peek()) {
    names.push(String(head.fn?.()));
    line.take(head);
  }
  return names;
}

describe('WaitLine', () => {
  it('higher priority first, then call order within a priority', () => {
    const line = new WaitLine(() => {});
    const push = (name: string, priority: number) => line.push(() => name, 1, priority, undefined, 0);
    push('a0', 0);
    push('b1', 1);
    push('c0', 0);
    push('d2', 2);
    push('e1', 1);
    push('f0', 0);
    push('g-1', -1);
    push('h1', 1);
    expect(drainNames(line)).toEqual(['d2', 'b1', 'e1', 'h1', 'a0', 'c0', 'f0', 'g-1']);
  });

  it('keeps call order over many equal priorities', () => {
    const line = new WaitLine(() => {});
    for (let i = 0; i < 50; i++) line.push(() => i, 1, 0, undefined, 0);
    expect(drainNames(line)).toEqual(Array.from({ length: 50 }, (_, i) => String(i)));
  });

  it('records each waiter as pushed, with increasing sequence numbers', () => {
    const line = new WaitLine(() => {});
    const fn = () => 1;
    const first = line.push(fn, 2.5, 3, undefined, 1234).waiter;
    const second = line.push(undefined, 1, 0, undefined, 1240).waiter;
    expect(first).toMatchObject({
      priority: 3,
      weight: 2.5,
      fn,
      enqueuedAt: 1234,
      signal: undefined,
      onAbort: undefined,
    });
    expect(second.fn).toBeUndefined();
    expect(second.seq).toBe(first.seq + 1);
    expect(line.size).toBe(2);
    expect(line.weight).toBe(3.5);
    expect(line.peek()).toBe(first);
  });

  it('has() is true while a waiter is in line, including at the head', () => {
    const line = new WaitLine(() => {});
    const { waiter: head } = line.push(undefined, 1, 0, undefined, 0);
    const { waiter: next } = line.push(undefined, 1, 0, undefined, 0);
    expect(line.has(head)).toBe(true);
    expect(line.has(next)).toBe(true);
    line.take(head);
    expect(line.has(head)).toBe(false);
    expect(line.has(next)).toBe(true);
    expect(line.has({ entry: undefined } as Waiter)).toBe(false);
  });

  it('take() removes a waiter from anywhere in the line and its weight from the sum', () => {
    const line = new WaitLine(() => {});
    const a = line.push(() => 'a', 1, 0, undefined, 0).waiter;
    const b = line.push(() => 'b', 2, 0, undefined, 0).waiter;
    line.push(() => 'c', 4, 0, undefined, 0);
    line.take(b);
    expect(line.size).toBe(2);
    expect(line.weight).toBe(5);
    expect(line.peek()).toBe(a);
    expect(drainNames(line)).toEqual(['a', 'c']);
    expect(line.weight).toBe(0);
  });

  it('calls onAbort once with the waiter when its signal aborts, and stops listening once taken', () => {
    const aborted: Waiter[] = [];
    const line = new WaitLine((waiter) => aborted.push(waiter));
    const first = new AbortController();
    const second = new AbortController();
    const { waiter: w1, promise } = line.push(undefined, 1, 0, first.signal, 0);
    const { waiter: w2 } = line.push(undefined, 1, 0, second.signal, 0);
    expect(typeof w1.onAbort).toBe('function');
    first.abort();
    first.signal.dispatchEvent(new Event('abort'));
    expect(aborted).toEqual([w1]);
    line.take(w2);
    expect(w2.onAbort).toBeUndefined();
    second.abort();
    expect(aborted).toEqual([w1]);
    w1.resolve('done');
    return expect(promise).resolves.toBe('done');
  });

  it('the promise rejects with what the limiter rejects the waiter with', async () => {
    const line = new WaitLine(() => {});
    const { waiter, promise } = line.push(undefined, 1, 0, undefined, 0);
    waiter.reject(new Error('refused'));
    await expect(promise).rejects.toThrow('refused');
  });

  it('clear() returns the waiters, empties the line and stops listening to their signals', () => {
    const aborted: Waiter[] = [];
    const line = new WaitLine((waiter) => aborted.push(waiter));
    const controller = new AbortController();
    const a = line.push(undefined, 2, 0, controller.signal, 0).waiter;
    const b = line.push(undefined, 3, 1, undefined, 0).waiter;
    const cleared = line.clear();
    expect(new Set(cleared)).toEqual(new Set([a, b]));
    expect(cleared).toHaveLength(2);
    expect(line.size).toBe(0);
    expect(line.weight).toBe(0);
    expect(line.peek()).toBeUndefined();
    expect(line.has(a)).toBe(false);
    expect(a.onAbort).toBeUndefined();
    controller.abort();
    expect(aborted).toEqual([]);
    expect(line.clear()).toEqual([]);
  });
});
