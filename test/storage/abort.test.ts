/**
 * `{ signal }` on storage methods: an aborted signal rejects before anything happens; a call waiting
 * for a transaction (memory, SQLite) or a pooled connection / a row lock (PostgreSQL) stops waiting,
 * and on PostgreSQL the statement is cancelled on the server.
 */
import type { PostgresStorage, StorageAdapter } from 'hotpath/storage';
import { describe, expect, it } from 'vitest';
import { deferred, eventually } from '../helpers/async.js';
import { BACKENDS, openPostgres } from '../helpers/backends.js';
import { needsPostgres } from '../helpers/services.js';

const hasPostgres = await needsPostgres();

const reason = new Error('caller gave up');

function aborted(): AbortSignal {
  const controller = new AbortController();
  controller.abort(reason);
  return controller.signal;
}

for (const backend of BACKENDS) {
  describe.runIf(backend.available)(`abort: ${backend.name}`, () => {
    it('an aborted signal rejects every method with its reason, and nothing is written', async () => {
      const { storage, cleanup } = await backend.open({ label: 'hp_abort' });
      try {
        await storage.put('items', { id: 'a', n: 1 });
        const signal = aborted();
        const calls: Array<() => Promise<unknown>> = [
          () => storage.get('items', 'a', { signal }),
          () => storage.getWithMeta('items', 'a', { signal }),
          () => storage.put('items', { id: 'b' }, { signal }),
          () => storage.putMany('items', [{ id: 'c' }], { signal }),
          () => storage.update('items', 'a', { n: 2 }, { signal }),
          () => storage.updateMany('items', {}, { n: 3 }, { signal }),
          () => storage.delete('items', 'a', { signal }),
          () => storage.find('items', { signal }),
          () => storage.count('items', {}, { signal }),
          () => storage.aggregate('items', { count: true, signal }),
          () => storage.ensureIndex('items', 'n', { signal }),
          () => storage.collections({ signal }),
          () => storage.transaction(async (tx) => tx.put('items', { id: 'd' }), { signal }),
        ];
        for (const call of calls) await expect(call(), String(call)).rejects.toBe(reason);
        expect((await storage.find('items')).items).toEqual([{ id: 'a', n: 1 }]);
      } finally {
        await cleanup();
      }
    });

    it.runIf(backend.name !== 'postgres')(
      'a call waiting for an open transaction stops waiting when aborted',
      async () => {
        const { storage, cleanup } = await backend.open({ label: 'hp_abort' });
        try {
          const release = deferred();
          const inside = storage.transaction(async (tx) => {
            await tx.put('items', { id: 'in-tx' });
            await release.promise;
          });
          const controller = new AbortController();
          const waiting = storage.get('items', 'in-tx', { signal: controller.signal });
          const waitingTx = storage.transaction(async () => 'never', { signal: controller.signal });
          const other = storage.count('items'); // no signal: waits for the transaction
          expect(storage.stats().waiting).toBe(3);
          controller.abort(reason);
          await expect(waiting).rejects.toBe(reason);
          await expect(waitingTx).rejects.toBe(reason);
          expect(storage.stats().waiting).toBe(1); // the aborted ones left the queue
          release.resolve();
          await inside;
          expect(await other).toBe(1);
          expect(storage.stats().waiting).toBe(0);
          expect(await storage.get('items', 'in-tx')).toEqual({ id: 'in-tx' });
        } finally {
          await cleanup();
        }
      },
    );
  });
}

describe.runIf(hasPostgres)('abort on PostgreSQL: waiting for a connection and running statements', () => {
  async function backendsWaitingOnLocks(storage: StorageAdapter): Promise<number> {
    const rows = await storage.sql?.query<{ n: string }>(
      "SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database() AND application_name = 'hp_abort_test'",
    );
    return Number(rows?.[0]?.n ?? 0);
  }

  it('a statement blocked on a row lock is cancelled on the server and the call rejects at once', async () => {
    const opened = await openPostgres({ label: 'hp_abort', max: 4, applicationName: 'hp_abort_test' });
    const storage: PostgresStorage = opened.storage;
    const release = deferred();
    try {
      await storage.put('items', { id: 'a', n: 1 });
      const locked = deferred();
      const holder = storage.transaction(async (tx) => {
        await tx.update('items', 'a', { n: 2 }); // holds the row lock until commit
        locked.resolve();
        await release.promise;
      });
      await locked.promise;
      const controller = new AbortController();
      const blocked = storage.update('items', 'a', { n: 99 }, { signal: controller.signal });
      await eventually(async () => (await backendsWaitingOnLocks(storage)) === 1 || undefined);
      controller.abort(reason);
      await expect(blocked).rejects.toBe(reason);
      // Cancelled on the server: nobody waits on the lock any more, while the holder still holds it.
      await eventually(async () => (await backendsWaitingOnLocks(storage)) === 0 || undefined);
      await eventually(() => storage.stats().cancelled === 1 || undefined);
      release.resolve();
      await holder;
      expect(await storage.get('items', 'a')).toEqual({ id: 'a', n: 2 }); // the aborted update never applied
      await eventually(() => storage.stats().idle === storage.stats().total || undefined);
    } finally {
      release.resolve();
      await opened.cleanup();
    }
  });

  it('a call waiting for a pooled connection stops waiting; the connection is not leaked', async () => {
    const opened = await openPostgres({ label: 'hp_abort', max: 1 });
    const storage = opened.storage;
    const release = deferred();
    try {
      await storage.put('items', { id: 'a' });
      const busy = deferred();
      const holder = storage.transaction(async () => {
        busy.resolve();
        await release.promise;
      });
      await busy.promise;
      const controller = new AbortController();
      const waiting = storage.find('items', { signal: controller.signal });
      const waitingTx = storage.transaction(async () => 'never', { signal: controller.signal });
      await eventually(() => storage.stats().waiting === 2 || undefined);
      controller.abort(reason);
      await expect(waiting).rejects.toBe(reason);
      await expect(waitingTx).rejects.toBe(reason);
      release.resolve();
      await holder;
      // The one connection comes back to the pool and serves the next call.
      expect((await storage.find('items')).items).toEqual([{ id: 'a' }]);
      await eventually(() => (storage.stats().total === 1 && storage.stats().idle === 1) || undefined);
      expect(storage.stats().waiting).toBe(0);
    } finally {
      release.resolve();
      await opened.cleanup();
    }
  });
});
