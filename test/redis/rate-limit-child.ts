/**
 * A child process of the cross-process limiter tests. Environment: REDIS_URL, PREFIX, KEY, MODE.
 * MODE=jobs: LIMIT per INTERVAL_MS shared through Redis; after "go" on stdin, schedules JOBS tasks (weights
 *   1–MAX_WEIGHT and priorities 0–2 when MIXED=1) and prints one JSON line `{ starts: [[epochMs, weight], …] }`.
 * MODE=watch: schedules a task every few ms (limit far above the rate) until "stop", then prints its starts.
 * MODE=penalize: after "go", calls penalize(PAUSE_MS) and prints `{ at }` (epoch ms before the call).
 * Prints "ready" once connected.
 */
import { createInterface } from 'node:readline';
import { RateLimiter } from 'hotpath/ratelimit';
import { RedisRateLimitStore } from 'hotpath/redis';

const env = process.env;
const store = new RedisRateLimitStore({ redis: env.REDIS_URL as string, prefix: env.PREFIX as string });
const limiter = new RateLimiter({
  key: env.KEY as string,
  limit: Number(env.LIMIT ?? 20),
  intervalMs: Number(env.INTERVAL_MS ?? 200),
  store,
});
const lines = createInterface({ input: process.stdin });
const nextLine = (): Promise<string> => new Promise((resolve) => lines.once('line', resolve));

async function main(): Promise<void> {
  await store.reserve('warm-up', 1, 1_000_000, 1, 0); // connected before "ready"
  process.stdout.write('ready\n');
  await nextLine();
  const starts: [number, number][] = [];
  if (env.MODE === 'jobs') {
    const jobs = Number(env.JOBS ?? 100);
    const maxWeight = Number(env.MAX_WEIGHT ?? 1);
    const tasks: Promise<void>[] = [];
    for (let i = 0; i < jobs; i++) {
      const weight = maxWeight > 1 ? 1 + (i % maxWeight) : 1;
      const priority = env.MIXED === '1' ? (i * 7) % 3 : 0;
      tasks.push(
        limiter.schedule(
          () => {
            starts.push([Date.now(), weight]);
          },
          { weight, priority },
        ),
      );
    }
    await Promise.all(tasks);
    process.stdout.write(`${JSON.stringify({ starts })}\n`);
  } else if (env.MODE === 'watch') {
    let stopped = false;
    void nextLine().then(() => {
      stopped = true;
    });
    while (!stopped) {
      await limiter.schedule(() => {
        starts.push([Date.now(), 1]);
      });
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    process.stdout.write(`${JSON.stringify({ starts })}\n`);
  } else if (env.MODE === 'penalize') {
    const at = Date.now();
    limiter.penalize(Number(env.PAUSE_MS));
    await new Promise((resolve) => setTimeout(resolve, 50));
    process.stdout.write(`${JSON.stringify({ at })}\n`);
  }
  await limiter.close();
  await store.close();
  lines.close();
}

main().catch((error) => {
  process.stderr.write(`${String(error?.stack ?? error)}\n`);
  process.exit(1);
});
