/**
 * One cache shared by 4 processes through Redis (RedisCacheTier + RedisInvalidationBus): an L2 hit in a
 * process that never loaded, one loader call for 4 × 250 concurrent cold requests, invalidations seen by
 * every L1, and a load holder killed mid-load.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { needsRedis, REDIS_URL, uniqueName } from '../helpers/services.js';

const hasRedis = await needsRedis();

const CHILD = join(import.meta.dirname, 'cache-child.ts');
const LEASE_MS = 1_000;

interface Reply {
  id?: number;
  event?: string;
  error?: string;
  [field: string]: unknown;
}

/** A child process and a request/reply channel to it. */
class Child {
  readonly process: ChildProcess;
  readonly events: Reply[] = [];
  #nextId = 1;
  readonly #pending = new Map<number, (reply: Reply) => void>();
  readonly #eventWaiters: Array<{ match: (r: Reply) => boolean; resolve: (r: Reply) => void }> = [];

  constructor(env: Record<string, string>) {
    this.process = spawn(process.execPath, ['--import', 'tsx', CHILD], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.process.on('message', (reply: Reply) => {
      if (reply.id !== undefined) {
        this.#pending.get(reply.id)?.(reply);
        this.#pending.delete(reply.id);
        return;
      }
      const waiter = this.#eventWaiters.findIndex((w) => w.match(reply));
      if (waiter === -1) this.events.push(reply);
      else this.#eventWaiters.splice(waiter, 1)[0]?.resolve(reply);
    });
  }

  request(command: Record<string, unknown>): Promise<Reply> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, (reply) => (reply.error ? reject(new Error(reply.error)) : resolve(reply)));
      this.process.send({ id, ...command });
    });
  }

  event(match: (reply: Reply) => boolean): Promise<Reply> {
    const index = this.events.findIndex(match);
    if (index !== -1) return Promise.resolve(this.events.splice(index, 1)[0] as Reply);
    return new Promise((resolve) => this.#eventWaiters.push({ match, resolve }));
  }

  async stop(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const exited = new Promise((resolve) => this.process.once('exit', resolve));
    this.process.kill('SIGKILL');
    await exited;
  }
}

describe.runIf(hasRedis)('Cache shared by 4 processes through Redis', () => {
  const prefix = uniqueName('hp_cache_proc');
  const children: Child[] = [];
  const admin = new Redis(REDIS_URL);

  beforeAll(async () => {
    const env = { REDIS_URL, PREFIX: prefix, CHANNEL: `${prefix}:bus`, LEASE_MS: String(LEASE_MS) };
    for (let i = 0; i < 4; i++) children.push(new Child(env));
    await Promise.all(children.map((child) => child.event((r) => r.event === 'ready')));
  }, 60_000);

  afterAll(async () => {
    await Promise.all(children.map((child) => child.stop()));
    const keys = await admin.keys(`{${prefix}}*`);
    if (keys.length > 0) await admin.unlink(...keys);
    await admin.quit();
  });

  const loaderCalls = async () =>
    (await Promise.all(children.map((child) => child.request({ op: 'stats' })))).map((r) => r.loaderCalls as number);

  it('serves an L2 hit in a process that never loaded the key', async () => {
    const [loader, reader] = children as [Child, Child];
    const first = await loader.request({ op: 'getOrSet', key: 'l2', value: 'from-0' });
    const before = await loaderCalls();
    const second = await reader.request({ op: 'getOrSet', key: 'l2', value: 'from-1' });
    expect(second.results).toEqual(first.results);
    expect(await loaderCalls()).toEqual(before);
  });

  it('runs ONE loader for 4 processes × 250 concurrent getOrSet of a cold key', async () => {
    const before = await loaderCalls();
    const replies = await Promise.all(
      children.map((child, i) =>
        child.request({ op: 'getOrSet', key: 'cold', value: `from-${i}`, concurrency: 250, loaderMs: 50 }),
      ),
    );
    const results = new Set(replies.flatMap((r) => r.results as string[]));
    expect(results.size).toBe(1);
    const after = await loaderCalls();
    expect(after.reduce((a, b) => a + b, 0) - before.reduce((a, b) => a + b, 0)).toBe(1);
  });

  it('evicts every other L1 within 100 ms of a delete (p99 over 50 rounds × 3 processes)', async () => {
    const latencies: number[] = [];
    const [deleter, ...watchers] = children as [Child, ...Child[]];
    for (let round = 0; round < 50; round++) {
      const key = `inv:${round}`;
      for (const child of children) await child.request({ op: 'getOrSet', key, value: 'v' });
      for (const child of watchers) expect((await child.request({ op: 'watch', key })).armed).toBe(true);
      const evicted = watchers.map((child) => child.event((r) => r.event === 'evicted' && r.key === key));
      const { at } = (await deleter.request({ op: 'delete', key })) as { at: number };
      for (const reply of await Promise.all(evicted)) latencies.push((reply.at as number) - at);
    }
    latencies.sort((a, b) => a - b);
    const p50 = latencies[Math.floor(latencies.length * 0.5)] as number;
    const p99 = latencies[Math.ceil(latencies.length * 0.99) - 1] as number;
    console.info(
      `cross-process L1 invalidation: p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms (n=${latencies.length})`,
    );
    expect(latencies).toHaveLength(150);
    expect(p99).toBeLessThan(100);
  });

  it('never stores a load that began before a delete in another process (no stale resurrection)', async () => {
    const [loader, deleter, reader] = children as [Child, Child, Child];
    // The loader starts a slow load of the old value; while it runs, another process deletes the key.
    const loading = loader.request({ op: 'getOrSet', key: 'stale', value: 'old', loaderMs: 300 });
    const leaseKey = `{${prefix}}:l:stale`;
    while ((await admin.exists(leaseKey)) === 0) await new Promise((resolve) => setTimeout(resolve, 2));
    await deleter.request({ op: 'delete', key: 'stale' });
    const loaded = await loading;
    expect((loaded.results as string[])[0]).toMatch(/^old@/); // its own callers asked before the delete
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Not stored: the bus told the loader to drop it, and the tier's stamp would have refused it anyway.
    expect(await admin.get(`{${prefix}}:v:stale`)).toBeNull();
    const fresh = await reader.request({ op: 'getOrSet', key: 'stale', value: 'fresh' });
    expect((fresh.results as string[])[0]).toMatch(/^fresh@/);
  });

  it('lets another process load after the lease when the holder is killed mid-load', async () => {
    const [, one, two, holder] = children as [Child, Child, Child, Child];
    await holder.request({ op: 'hold', key: 'orphan' });
    await holder.event((r) => r.event === 'loading' && r.key === 'orphan');
    const before = await Promise.all([one, two].map((c) => c.request({ op: 'stats' })));
    // Both ask while the holder still owns the lease: they wait for it rather than loading.
    const waiting = [one, two].map((c) => c.request({ op: 'getOrSet', key: 'orphan', value: 'recovered' }));
    await holder.stop();
    const replies = await Promise.all(waiting);
    expect(new Set(replies.flatMap((r) => r.results as string[])).size).toBe(1);
    const after = await Promise.all([one, two].map((c) => c.request({ op: 'stats' })));
    const calls = after.reduce((sum, r, i) => sum + (r.loaderCalls as number) - (before[i]?.loaderCalls as number), 0);
    expect(calls).toBe(1);
    const busy = after.reduce((sum, r) => sum + ((r.tier as { busy: number }).busy > 0 ? 1 : 0), 0);
    expect(busy).toBeGreaterThanOrEqual(1);
  });
});
