/**
 * Helper of bench/request-limiter.bench.ts: a node:cluster of 4 workers behind one port, each limiting
 * "100 per 10 s" per client on Redis (KIND=hotpath: limitRequests + RedisRateLimitStore; KIND=express-rate-limit:
 * Express + express-rate-limit + rate-limit-redis). Answers 200 with the admission time (epoch ms). The primary
 * sends the port to its parent over IPC.
 */
import cluster from 'node:cluster';
import { createServer, type Server } from 'node:http';
import express from 'express';
import { rateLimit } from 'express-rate-limit';
import { Redis } from 'ioredis';
import { RedisStore } from 'rate-limit-redis';
import { limitRequests } from '../src/app/index.js';
import { RedisRateLimitStore } from '../src/redis/index.js';

const env = process.env;
if (cluster.isPrimary) {
  let listening = 0;
  for (let i = 0; i < 4; i++) {
    const worker = cluster.fork();
    worker.on('listening', (address) => {
      if (++listening === 4) process.send?.(address.port);
    });
  }
  process.on('SIGTERM', () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill();
    process.exit(0);
  });
} else {
  const answer = (res: { end(body: string): unknown }) => res.end(String(Date.now()));
  let server: Server;
  if (env.KIND === 'hotpath') {
    const store = new RedisRateLimitStore({ redis: env.REDIS_URL as string, prefix: env.PREFIX });
    server = createServer(limitRequests((_req, res) => answer(res), { limit: 100, intervalMs: 10_000, store }));
  } else {
    const redis = new Redis(env.REDIS_URL as string);
    const app = express();
    app.use(
      rateLimit({
        windowMs: 10_000,
        limit: 100,
        store: new RedisStore({
          prefix: env.PREFIX,
          sendCommand: (command: string, ...args: string[]) => redis.call(command, ...args) as never,
        }),
      }),
    );
    app.get('/', (_req, res) => {
      answer(res);
    });
    server = createServer(app);
  }
  server.listen(Number(env.PORT ?? 0), '127.0.0.1');
}
