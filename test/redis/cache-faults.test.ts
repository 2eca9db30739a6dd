/**
 * A cache on a private redis-server (own port) that is killed mid-run and restarted: reads fall back to
 * L1 or the loader, nothing rejects unhandled, and tier, bus and L1 coherence come back. Never touches
 * the shared Redis server.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cache } from 'hotpath/cache';
import { RedisCacheTier, RedisInvalidationBus } from 'hotpath/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { needsRedis } from '../helpers/services.js';

const hasRedis = await needsRedis();

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(20);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function startServer(port: number, dir: string): Promise<ChildProcess> {
  const server = spawn('redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: 'ignore',
  });
  await eventually(
    () =>
      new Promise<boolean>((resolve) => {
        const socket = net.connect({ port, host: '127.0.0.1' });
        socket.once('connect', () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => resolve(false));
      }),
  );
  return server;
}

async function kill(server: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => server.once('exit', resolve));
  server.kill('SIGKILL');
  await exited;
}

// redis-server must be installed; the shared server's presence says this machine runs Redis tests.
describe.runIf(hasRedis)('Cache with a Redis tier while Redis dies and comes back', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hp-cache-faults-'));
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  let port = 0;
  let server: ChildProcess | undefined;

  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    port = await freePort();
    server = await startServer(port, dir);
  });

  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    if (server && server.exitCode === null && server.signalCode === null) await kill(server);
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves L1, falls back to the loader, recovers, and clears L1 after the bus reconnects', async () => {
    const url = `redis://127.0.0.1:${port}`;
    const make = () => {
      const tier = new RedisCacheTier<string>({ redis: url, prefix: 'faults', commandTimeoutMs: 200 });
      const bus = new RedisInvalidationBus({ redis: url });
      const cache = new Cache<string>({ name: 'c', max: 100, ttlMs: 60_000, tier, bus });
      return { tier, bus, cache };
    };
    const a = make();
    const b = make();
    await Promise.all([a.bus.ready(), b.bus.ready()]);
    expect(await a.cache.getOrSet('warm', () => 'w1')).toBe('w1');
    await eventually(async () => (await b.tier.get('warm').catch(() => undefined)) !== undefined);

    await kill(server as ChildProcess);
    // L1 hit: no Redis involved.
    expect(await a.cache.getOrSet('warm', () => 'unused')).toBe('w1');
    // L1 miss: the tier fails within commandTimeoutMs and the loader answers.
    let loads = 0;
    const loader = () => {
      loads++;
      return `fresh-${loads}`;
    };
    expect(await a.cache.getOrSet('cold', loader)).toBe('fresh-1');
    expect(a.cache.stats().tierErrors).toBeGreaterThanOrEqual(1);
    // Writes and invalidations while down are counted, never thrown from sync methods or left unhandled.
    a.cache.set('written-while-down', 'x');
    a.cache.delete('warm');
    await expect(a.cache.invalidateTags(['t'])).rejects.toBeDefined();

    server = await startServer(port, dir);
    // Both buses reconnect and drop their L1 (messages were lost while away).
    await eventually(() => a.bus.stats().reconnects >= 1 && b.bus.stats().reconnects >= 1);
    expect(a.cache.has('written-while-down')).toBe(false);
    // Back to shared behaviour: one process loads, the other gets it from L2.
    await eventually(async () => {
      try {
        return (await a.tier.get('probe')) === undefined;
      } catch {
        return false;
      }
    });
    expect(await a.cache.getOrSet('after', () => 'from-a')).toBe('from-a');
    await eventually(async () => (await b.tier.get('after')) !== undefined);
    expect(await b.cache.getOrSet('after', () => 'from-b')).toBe('from-a');
    b.cache.delete('after');
    await eventually(() => !a.cache.has('after'));

    for (const { cache, bus, tier } of [a, b]) {
      await cache.close();
      await bus.close();
      await tier.close();
    }
    await sleep(50);
    expect(unhandled).toEqual([]);
  });
});
