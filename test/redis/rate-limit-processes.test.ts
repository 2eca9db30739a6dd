/**
 * One limit shared by several processes through Redis: their start times merged never put more than the
 * limit in any window, and a penalty in one process pauses the others. Child: rate-limit-child.ts.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { needsRedis, REDIS_URL, uniqueName } from '../helpers/services.js';

const hasRedis = await needsRedis();

const CHILD = join(import.meta.dirname, 'rate-limit-child.ts');

interface Child {
  process: ChildProcess;
  output: Promise<string>;
}

async function startChild(env: Record<string, string>): Promise<Child> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  let onReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    onReady = resolve;
  });
  child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    if (out.startsWith('ready\n')) onReady();
  });
  const output = new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => {
      if (code === 0) resolve(out.slice('ready\n'.length).trim());
      else reject(new Error(`child exited with ${code}`));
    });
  });
  await Promise.race([ready, output]);
  return { process: child, output };
}

function send(child: Child, line: string): void {
  child.process.stdin?.write(`${line}\n`);
}

/** Most weight started in any window of `windowMs` (half-open: [t, t + windowMs)). */
function busiestWindow(starts: [number, number][], windowMs: number): number {
  const sorted = [...starts].sort((a, b) => a[0] - b[0]);
  let most = 0;
  let sum = 0;
  let tail = 0;
  for (let head = 0; head < sorted.length; head++) {
    sum += (sorted[head] as [number, number])[1];
    while ((sorted[tail] as [number, number])[0] <= (sorted[head] as [number, number])[0] - windowMs) {
      sum -= (sorted[tail] as [number, number])[1];
      tail++;
    }
    most = Math.max(most, sum);
  }
  return most;
}

describe.runIf(hasRedis)('RedisRateLimitStore across processes', () => {
  const prefix = `${uniqueName('rlproc')}:`;
  const admin = new Redis(REDIS_URL);
  afterAll(async () => {
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length > 0) await admin.del(...keys);
    await admin.quit();
  });

  async function runJobs(extra: Record<string, string>): Promise<[number, number][]> {
    const env = {
      REDIS_URL,
      PREFIX: prefix,
      KEY: uniqueName('shared'),
      MODE: 'jobs',
      LIMIT: '20',
      INTERVAL_MS: '200',
      JOBS: '100',
      ...extra,
    };
    const children = await Promise.all(Array.from({ length: 8 }, () => startChild(env)));
    for (const child of children) send(child, 'go');
    const outputs = await Promise.all(children.map((child) => child.output));
    return outputs.flatMap((line) => (JSON.parse(line) as { starts: [number, number][] }).starts);
  }

  it('8 processes × 100 jobs share 20 per 200 ms: no 200 ms window of their merged starts holds more than 20', async () => {
    const starts = await runJobs({});
    expect(starts).toHaveLength(800);
    expect(busiestWindow(starts, 200)).toBeLessThanOrEqual(20);
    expect(busiestWindow(starts, 400)).toBeGreaterThan(20); // the limit is used, not starved
  }, 120_000);

  it('the same with weights 1–3 and mixed priorities (weights counted, not calls)', async () => {
    const starts = await runJobs({ MAX_WEIGHT: '3', MIXED: '1', JOBS: '40' });
    expect(starts).toHaveLength(320);
    expect(busiestWindow(starts, 200)).toBeLessThanOrEqual(20);
    expect(busiestWindow(starts, 400)).toBeGreaterThan(20);
  }, 120_000);

  it('penalize in one process pauses the next start in every other process', async () => {
    const key = uniqueName('penalized');
    const base = { REDIS_URL, PREFIX: prefix, KEY: key, LIMIT: '100000', INTERVAL_MS: '1000' };
    const watchers = await Promise.all(Array.from({ length: 3 }, () => startChild({ ...base, MODE: 'watch' })));
    const penalizer = await startChild({ ...base, MODE: 'penalize', PAUSE_MS: '600' });
    for (const watcher of watchers) send(watcher, 'go');
    await new Promise((resolve) => setTimeout(resolve, 300));
    send(penalizer, 'go');
    const { at } = JSON.parse(await penalizer.output) as { at: number };
    await new Promise((resolve) => setTimeout(resolve, 1200));
    for (const watcher of watchers) send(watcher, 'stop');
    for (const watcher of watchers) {
      const { starts } = JSON.parse(await watcher.output) as { starts: [number, number][] };
      const times = starts.map(([t]) => t);
      expect(times.some((t) => t < at)).toBe(true); // it was running before
      expect(times.filter((t) => t >= at + 40 && t < at + 600)).toEqual([]); // paused
      expect(times.some((t) => t >= at + 600)).toBe(true); // and resumed
    }
  }, 60_000);
});
