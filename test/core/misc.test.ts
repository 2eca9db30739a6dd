import { spawnSync } from 'node:child_process';
import { createConsoleLogger } from 'hotpath/core';
import { describe, expect, it } from 'vitest';
import { TypedEmitter } from '../../src/core/events.js';
import { Heap } from '../../src/core/heap.js';
import { sortableId } from '../../src/core/ids.js';

describe('Heap', () => {
  it('pops in order and supports removal by handle', () => {
    const heap = new Heap<{ priority: number; seq: number }>(
      (a, b) => a.priority > b.priority || (a.priority === b.priority && a.seq < b.seq),
    );
    const handles = [];
    let seq = 0;
    for (const priority of [1, 5, 3, 5, 0, 3, 9]) handles.push(heap.push({ priority, seq: seq++ }));
    expect(heap.remove(handles[6]!)).toBe(true);
    expect(heap.remove(handles[6]!)).toBe(false);
    const out: string[] = [];
    while (heap.size > 0) {
      const next = heap.pop()!;
      out.push(`${next.priority}:${next.seq}`);
    }
    expect(out).toEqual(['5:1', '5:3', '3:2', '3:5', '1:0', '0:4']);
  });

  it('matches a sort on random input with random removals', () => {
    const heap = new Heap<number>((a, b) => a < b);
    const kept: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const value = Math.floor(Math.random() * 1000);
      const handle = heap.push(value);
      if (i % 7 === 0) heap.remove(handle);
      else kept.push(value);
    }
    const out: number[] = [];
    while (heap.size) out.push(heap.pop()!);
    expect(out).toEqual(kept.sort((a, b) => a - b));
  });
});

describe('sortableId', () => {
  it('is a UUIDv7 whose order is creation order, even within one millisecond', () => {
    const ids = Array.from({ length: 10_000 }, () => sortableId(1_700_000_000_000));
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    for (const id of ids.slice(0, 50))
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(sortableId(1_800_000_000_000) > ids.at(-1)!).toBe(true);
  });
});

describe('TypedEmitter', () => {
  it('delivers typed events', () => {
    class Emitter extends TypedEmitter<{ done: [id: string, ms: number] }> {
      fire(id: string) {
        this.emit('done', id, 5);
      }
    }
    const emitter = new Emitter();
    const got: string[] = [];
    const listener = (id: string, ms: number) => got.push(`${id}:${ms}`);
    emitter.on('done', listener);
    emitter.fire('a');
    emitter.off('done', listener);
    emitter.fire('b');
    expect(got).toEqual(['a:5']);
  });
});

describe('createConsoleLogger', () => {
  it('writes JSON lines at or above its level and serialises errors', () => {
    const lines: string[] = [];
    const logger = createConsoleLogger('warn', (line) => lines.push(line));
    logger.info({ a: 1 }, 'dropped');
    logger.warn({ err: new Error('boom') }, 'kept');
    expect(lines).toHaveLength(1);
    const parsed = JSON.parse(lines[0]!);
    expect(parsed).toMatchObject({ level: 'warn', msg: 'kept', err: { message: 'boom' } });
  });
});

describe('examples/core', () => {
  it('retry-with-timeout runs', () => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'examples/core/retry-with-timeout.ts'], {
      encoding: 'utf8',
    });
    expect(result.stderr).toBe('');
    expect(result.stdout.trim()).toBe('answer after 3 attempts');
    expect(result.status).toBe(0);
  });
});

describe('core helpers, edge behaviour (pinned by mutation testing)', () => {
  it('Heap: peek, pop on empty, clear invalidates handles, values, removal of a gone entry', () => {
    const heap = new Heap<number>((a, b) => a < b);
    expect(heap.peek()).toBeUndefined();
    expect(heap.pop()).toBeUndefined();
    const handles = [5, 3, 8, 1, 9, 2].map((n) => heap.push(n));
    expect(heap.peek()).toBe(1);
    expect([...heap.values()].sort((a, b) => a - b)).toEqual([1, 2, 3, 5, 8, 9]);
    const first = handles[0]!;
    expect(heap.remove(first)).toBe(true);
    expect(heap.remove(first)).toBe(false); // already gone: index -1
    expect(heap.pop()).toBe(1);
    // Sift down must stop where the order already holds: the rest still pops sorted.
    expect([heap.pop(), heap.pop(), heap.pop(), heap.pop(), heap.pop()]).toEqual([2, 3, 8, 9, undefined]);
    const again = heap.push(4);
    heap.push(6);
    heap.clear();
    expect(heap.size).toBe(0);
    expect(heap.peek()).toBeUndefined();
    expect(heap.remove(again)).toBe(false);
    expect([...heap.values()]).toEqual([]);
  });

  it('TypedEmitter: once fires once, listenerCount counts, many listeners do not warn', () => {
    class Emitter extends TypedEmitter<{ tick: [n: number] }> {
      fire(n: number) {
        return this.emit('tick', n);
      }
      reset() {
        this.removeAllListeners();
      }
    }
    const emitter = new Emitter();
    const got: number[] = [];
    emitter.once('tick', (n) => got.push(n));
    expect(emitter.listenerCount('tick')).toBe(1);
    expect(emitter.fire(1)).toBe(true);
    expect(emitter.fire(2)).toBe(false);
    expect(got).toEqual([1]);
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.name);
    process.on('warning', onWarning);
    for (let i = 0; i < 20; i++) emitter.on('tick', () => {});
    expect(emitter.listenerCount('tick')).toBe(20);
    emitter.reset();
    expect(emitter.listenerCount('tick')).toBe(0);
    process.off('warning', onWarning);
    expect(warnings).not.toContain('MaxListenersExceededWarning');
  });

  it('createConsoleLogger: every level has its own name; errors with toJSON use it', () => {
    const lines: string[] = [];
    const logger = createConsoleLogger('debug', (line) => lines.push(line));
    logger.debug({}, 'd');
    logger.info({}, 'i');
    logger.warn({}, 'w');
    logger.error({ err: { toJSON: () => 'x' } }, 'e');
    class Coded extends Error {
      toJSON() {
        return { code: 'E1' };
      }
    }
    logger.error({ err: new Coded('hidden') }, 'coded');
    expect(lines.map((line) => JSON.parse(line).level)).toEqual(['debug', 'info', 'warn', 'error', 'error']);
    expect(JSON.parse(lines[4]!).err).toEqual({ code: 'E1' });
    const silent: string[] = [];
    createConsoleLogger('silent', (line) => silent.push(line)).error({}, 'never');
    expect(silent).toEqual([]);
  });

  it('sortableId: ids stay ordered past 4,096 ids in one millisecond and across the random pool refill', () => {
    const ids = Array.from({ length: 10_000 }, () => sortableId(1_850_000_000_000));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    // More than 4,096 in one ms borrows the next millisecond.
    const ms = (id: string) => Number.parseInt(id.replace(/-/g, '').slice(0, 12), 16);
    expect(ms(ids[0]!)).toBe(1_850_000_000_000);
    expect(ms(ids[4_095]!)).toBe(1_850_000_000_000);
    expect(ms(ids[4_096]!)).toBe(1_850_000_000_001);
    const later = sortableId(1_900_000_000_000);
    expect(ms(later)).toBe(1_900_000_000_000);
  });
});
