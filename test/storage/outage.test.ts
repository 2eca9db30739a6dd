/**
 * PostgreSQL going away and coming back: a read whose pooled connection had died is retried once on a
 * fresh one; errors say whether retrying is safe (`StorageError.isRetrySafe`); `health()` reports down,
 * then up, across a restart of a private cluster (never the shared server), and the pool recovers.
 */
import { StorageError } from 'hotpath/core';
import { PostgresStorage } from 'hotpath/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../helpers/async.js';
import { PRIVATE_PG_BIN, type PrivatePostgres, startPrivatePostgres } from '../helpers/private-servers.js';
import { freshPgSchema, needsPostgres, PG_URL } from '../helpers/services.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

const hasPostgres = await needsPostgres();

async function errorOf(promise: Promise<unknown>): Promise<StorageError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StorageError);
  return error as StorageError;
}

describe.runIf(hasPostgres)('connections that die under the pool (through a TCP proxy)', () => {
  let proxy: TcpProxy;
  let schema: Awaited<ReturnType<typeof freshPgSchema>>;
  let storage: PostgresStorage;

  beforeAll(async () => {
    schema = await freshPgSchema('hp_outage');
    const target = new URL(PG_URL);
    proxy = await TcpProxy.start(target.hostname, Number(target.port || 5432));
    const url = new URL(schema.url);
    url.host = `127.0.0.1:${proxy.port}`;
    storage = new PostgresStorage({ connectionString: url.toString(), max: 2, connectionTimeoutMs: 5000 });
    await storage.putMany('items', [
      { id: 'a', n: 1 },
      { id: 'b', n: 2 },
    ]);
  });
  afterAll(async () => {
    await storage?.close();
    await proxy?.close();
    await schema?.drop();
  });

  it('a read on a pooled connection that died is retried once and succeeds', async () => {
    await storage.get('items', 'a'); // a warm, idle pooled connection
    proxy.breakOnNextWrite();
    const retriesBefore = storage.stats().readRetries ?? 0;
    expect(await storage.get('items', 'a')).toEqual({ id: 'a', n: 1 });
    expect(proxy.doomedCuts).toBeGreaterThanOrEqual(1);
    expect(storage.stats().readRetries).toBe(retriesBefore + 1);
    // The other reads too.
    for (const read of [
      () => storage.find('items'),
      () => storage.count('items'),
      () => storage.aggregate('items', { sum: ['n'] }),
    ]) {
      await storage.get('items', 'a');
      proxy.breakOnNextWrite();
      await expect(read()).resolves.toBeDefined();
    }
    expect(storage.stats().readRetries).toBe(retriesBefore + 4);
  });

  it('a write on a connection that died is not retried, and says retrying is not known to be safe', async () => {
    await storage.get('items', 'a');
    proxy.breakOnNextWrite();
    const error = await errorOf(storage.update('items', 'a', { n: 5 }));
    expect(error.isRetrySafe).toBe(false);
    expect(error.toJSON()).toMatchObject({ code: 'ERR_HOTPATH_STORAGE', isRetrySafe: false });
    // A statement the server refused as a whole had no effect: safe.
    const refused = await errorOf(storage.sql?.query('INSERT INTO no_such_table VALUES (1)') ?? Promise.resolve());
    expect(refused.isRetrySafe).toBe(true);
    // The pool has recovered for everything else.
    expect(await storage.update('items', 'a', { n: 6 })).toEqual({ id: 'a', n: 6 });
  });
});

describe.runIf(PRIVATE_PG_BIN !== undefined)('a private PostgreSQL cluster stopped and started again', () => {
  let server: PrivatePostgres;
  let storage: PostgresStorage;

  beforeAll(async () => {
    server = await startPrivatePostgres();
    storage = new PostgresStorage({ connectionString: server.url, max: 3, connectionTimeoutMs: 3000 });
  }, 120_000);
  afterAll(async () => {
    await storage?.close();
    await server?.destroy();
  });

  it('health reports down then up; outage errors are StorageError with isRetrySafe; the pool recovers', async () => {
    await storage.putMany('items', [
      { id: 'a', n: 1 },
      { id: 'b', n: 2 },
    ]);
    expect((await storage.health()).ok).toBe(true);

    for (const mode of ['fast', 'immediate'] as const) {
      await server.stop(mode);
      const down = await storage.health();
      expect(down.ok).toBe(false);
      expect(down.error).toBeTruthy();
      // While it is down: reads and writes fail with StorageError; nothing reached the server, so
      // retrying is safe for both.
      const read = await errorOf(storage.get('items', 'a'));
      expect(read.isRetrySafe).toBe(true);
      const write = await errorOf(storage.put('items', { id: 'c', n: 3 }));
      expect(write.isRetrySafe).toBe(true);
      expect(write.message).toMatch(/storage\.put on "items" failed/);

      await server.start();
      // Up again without restarting anything here: the pool opens fresh connections.
      await eventually(async () => (await storage.health()).ok || undefined, 30_000);
      expect(await storage.get('items', 'a')).toEqual({ id: 'a', n: 1 });
      await storage.put('items', { id: `after-${mode}`, n: 4 });
      expect(await storage.count('items')).toBeGreaterThanOrEqual(3);
    }
    await eventually(() => storage.stats().waiting === 0 || undefined);
  }, 120_000);
});
