/**
 * Background jobs the way the seeds run them: submit over HTTP → 202 Accepted with a status URL →
 * poll status (progress, stage) → result; a failing job retried with backoff, then dead-lettered
 * and redriven; a cancelled job. Jobs live in a SQLite file, so they survive a restart.
 * Run: node --import tsx examples/queue/background-jobs.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QueueManager } from 'hotpath/queue';
import { SqliteStorage } from 'hotpath/storage';

const dir = mkdtempSync(join(tmpdir(), 'hotpath-jobs-'));
const storage = new SqliteStorage({ filename: join(dir, 'jobs.db') });
const jobs = new QueueManager({ storage, concurrency: 4, pollIntervalMs: 50, progressIntervalMs: 0 });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// A Monte Carlo estimate of pi in stages, reporting progress and stopping when cancelled.
jobs.register('simulate', async (data, job) => {
  const { samples } = data as { samples: number };
  let inside = 0;
  for (let done = 0; done < samples; done += 10_000) {
    job.signal.throwIfAborted();
    for (let i = 0; i < 10_000; i++) if (Math.random() ** 2 + Math.random() ** 2 <= 1) inside++;
    job.progress(done + 10_000, samples, 'sampling');
    await sleep(1);
  }
  return { pi: (4 * inside) / samples };
});

let upstreamHealthy = false;
jobs.register(
  'report',
  async () => {
    if (!upstreamHealthy) throw new Error('upstream unavailable');
    return 'report sent';
  },
  { attempts: 2, backoff: { baseDelayMs: 20, maxDelayMs: 20 } },
);

await jobs.start();
const server = createServer(async (req, res) => {
  if (!(await jobs.http.handle(req, res))) {
    res.statusCode = 404;
    res.end();
  }
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

// 1. Submit over HTTP and poll the status URL.
const submitted = await fetch(`${base}/jobs`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ type: 'simulate', data: { samples: 200_000 } }),
});
const { statusUrl } = (await submitted.json()) as { statusUrl: string };
console.log(`submitted: HTTP ${submitted.status}, status at ${statusUrl}`);
let stagesSeen = 0;
for (;;) {
  const status = (await (await fetch(`${base}${statusUrl}`)).json()) as Record<string, unknown>;
  if (status.state === 'running' && status.stage === 'sampling') stagesSeen++;
  if (status.state === 'succeeded') {
    const pi = (status.result as { pi: number }).pi;
    console.log(`succeeded: pi ≈ ${pi.toFixed(1)} (progress ${status.progress}/${status.total})`);
    break;
  }
  await sleep(10);
}
console.log(`progress polled while running: ${stagesSeen > 0 ? 'yes' : 'no'}`);

// 2. A job that keeps failing is retried with backoff, then dead-lettered; retry(id) redrives it.
const reportId = await jobs.enqueue('report', { to: 'ops' });
await jobs.wait(reportId).catch((error: Error) => console.log(`failed after retries: ${error.message}`));
const dead = await jobs.queue.list({ status: 'failed' });
console.log(`dead letters: ${dead.items.length}`);
upstreamHealthy = true;
await jobs.queue.retry(reportId);
console.log(`redriven: ${await jobs.wait(reportId)}`);

// 3. Cancel a running job over HTTP.
const long = await jobs.enqueue('simulate', { samples: 50_000_000 });
while ((await jobs.status(long))?.state !== 'running') await sleep(5);
const cancelled = await fetch(`${base}/jobs/${long}`, { method: 'DELETE' });
console.log(`cancel: HTTP ${cancelled.status}`);
await jobs.wait(long).catch((error: Error) => console.log(`cancelled: ${error.name}`));

const stats = await jobs.stats();
console.log(
  `stats: ${stats.counts.succeeded} succeeded, ${stats.counts.cancelled} cancelled, run p50 ${stats.runMs.p50 >= 0 ? 'measured' : '?'}`,
);

server.close();
await jobs.stop();
await jobs.close();
await storage.close();
rmSync(dir, { recursive: true, force: true });
