/**
 * Networks that stall, through a TCP proxy between hotpath and PostgreSQL: latency, cut connections and a
 * blackhole (sockets open, nothing arrives). `connectionTimeoutMs` and `statementTimeoutMs` fire, no call
 * hangs past its deadline, errors are typed, and the pool returns to its baseline afterwards.
 */
import { isHotpathError, StorageError } from 'hotpath/core';
import { PostgresStorage } from 'hotpath/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshPgSchema, needsPostgres } from '../helpers/services.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

const hasPostgres = await needsPostgres();

/** Runs `call` and resolves with how long it took and what it threw (it must not hang past `limitMs`). */
async function timed(call: () => Promise<unknown>, limitMs: number): Promise<{ ms: number; error: unknown }> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`call still pending after ${limitMs} ms`)), limitMs);
  });
  try {
    await Promise.race([call(), hung]);
    return { ms: performance.now() - started, error: undefined };
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('call still pending')) throw error;
    return { ms: performance.now() - started, error };
  } finally {
    clearTimeout(timer);
  }
}

describe.runIf(hasPostgres)('PostgreSQL behind a stalling network', () => {
  let proxy: TcpProxy;
  let schema: Awaited<ReturnType<typeof freshPgSchema>>;
  let proxiedUrl: string;

  beforeAll(async () => {
    schema = await freshPgSchema('hp_net');
    const target = new URL(schema.url);
    proxy = await TcpProxy.start(target.hostname, Number(target.port || 5432));
    target.port = String(proxy.port);
    proxiedUrl = target.toString();
  });
  afterAll(async () => {
    await proxy.close();
    await schema.drop();
  });

  it('a blackholed server: connectionTimeoutMs fires with a StorageError, and the pool recovers after', async () => {
    const storage = new PostgresStorage({ connectionString: proxiedUrl, max: 2, connectionTimeoutMs: 500 });
    try {
      await storage.put('items', { id: 'before', v: 1 });
      proxy.cut();
      proxy.setMode('blackhole');
      const outcome = await timed(() => storage.get('items', 'before'), 5_000);
      expect(outcome.error).toBeInstanceOf(StorageError);
      expect(outcome.ms).toBeLessThan(3_000);
      proxy.setMode('pass');
      expect(await storage.get('items', 'before')).toEqual({ id: 'before', v: 1 });
      expect(storage.stats().waiting).toBe(0);
      expect(storage.stats().total).toBeLessThanOrEqual(2);
    } finally {
      proxy.setMode('pass');
      await storage.close();
    }
  });

  it('a blackhole on open connections: statementTimeoutMs bounds the call, and no client leaks', async () => {
    const storage = new PostgresStorage({
      connectionString: proxiedUrl,
      max: 2,
      connectionTimeoutMs: 500,
      statementTimeoutMs: 400,
    });
    try {
      await storage.put('items', { id: 'warm', v: 1 });
      const baseline = storage.stats().total;
      proxy.setMode('blackhole');
      const outcomes = await Promise.all([1, 2, 3].map(() => timed(() => storage.get('items', 'warm'), 10_000)));
      for (const outcome of outcomes) {
        expect(isHotpathError(outcome.error)).toBe(true);
        expect(outcome.ms).toBeLessThan(5_000);
      }
      proxy.setMode('pass');
      proxy.cut(); // the stalled sockets are dead weight; a real partition ends the same way
      expect(await storage.get('items', 'warm')).toEqual({ id: 'warm', v: 1 });
      const after = storage.stats();
      expect(after.waiting).toBe(0);
      expect(after.total).toBeLessThanOrEqual(Math.max(baseline, 2));
    } finally {
      proxy.setMode('pass');
      await storage.close();
    }
  });

  it("a blackhole with no statement timeout: the caller's signal ends the call at once, and no client leaks", async () => {
    const storage = new PostgresStorage({ connectionString: proxiedUrl, max: 2, connectionTimeoutMs: 500 });
    try {
      await storage.put('items', { id: 'signalled', v: 1 });
      proxy.setMode('blackhole');
      const controller = new AbortController();
      setTimeout(() => controller.abort(new Error('caller gave up')), 200);
      const outcome = await timed(() => storage.get('items', 'signalled', { signal: controller.signal }), 5_000);
      expect((outcome.error as Error).message).toBe('caller gave up');
      expect(outcome.ms).toBeLessThan(1_500);
      proxy.setMode('pass');
      proxy.cut();
      expect(await storage.get('items', 'signalled')).toEqual({ id: 'signalled', v: 1 });
      expect(storage.stats().waiting).toBe(0);
      expect(storage.stats().total).toBeLessThanOrEqual(2);
    } finally {
      proxy.setMode('pass');
      await storage.close();
    }
  });

  it('cut connections: the calls in flight fail typed, the next ones reconnect', async () => {
    const storage = new PostgresStorage({ connectionString: proxiedUrl, max: 4 });
    try {
      await storage.putMany(
        'cut_items',
        Array.from({ length: 50 }, (_, i) => ({ id: `c${i}`, i })),
      );
      proxy.setLatency(50);
      const inflight = Array.from({ length: 8 }, (_, i) =>
        storage.get('cut_items', `c${i}`).then(
          () => undefined,
          (error) => error,
        ),
      );
      await new Promise((resolve) => setTimeout(resolve, 20));
      proxy.cut();
      proxy.setLatency(0);
      const errors = (await Promise.all(inflight)).filter((error) => error !== undefined);
      for (const error of errors) expect(error).toBeInstanceOf(StorageError);
      expect(await storage.count('cut_items')).toBe(50);
      expect(storage.stats().waiting).toBe(0);
    } finally {
      proxy.setLatency(0);
      await storage.close();
    }
  });
});
