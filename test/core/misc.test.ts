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
