/**
 * `hotpath dashboard`: serves the dashboard page (`dashboardHandler`) for the database and Redis the URLs
 * name, on a local port, until SIGTERM/SIGINT — a look at a running system's queue, caches and storage from
 * a terminal without wiring the handler into the service. Read-only unless `--actions`, which allows
 * retry/cancel/purge/invalidate from loopback clients only.
 * @module
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHotpath, dashboardHandler } from '../../app/index.js';
import { databaseUrl, shownUrl } from '../common.js';
import type { Output } from '../output.js';

/** Options of `hotpath dashboard`, as parsed. */
export interface DashboardCommandOptions {
  databaseUrl?: string;
  redisUrl?: string;
  /** Interface to listen on (default 127.0.0.1). */
  host: string;
  /** Port (0: any free port, printed). */
  port: number;
  /** Allow actions from loopback clients. */
  allowActions: boolean;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);
const isLoopback = (req: IncomingMessage): boolean => LOOPBACK.has(req.socket.remoteAddress ?? '');

/** Serves until SIGTERM/SIGINT; resolves with the exit code. */
export async function runDashboard(options: DashboardCommandOptions, output: Output): Promise<number> {
  const url = databaseUrl(options.databaseUrl);
  const redisUrl = options.redisUrl ?? (process.env.HOTPATH_REDIS_URL || undefined);
  // The queue facade reads jobs and counts; it is never started here, so this process claims nothing.
  // The profile only picks defaults; the URL decides the backend (production takes PostgreSQL only).
  const profile = /^postgres(ql)?:/.test(url) ? 'production' : 'development';
  const app = await createHotpath({ profile, databaseUrl: url, ...(redisUrl ? { redisUrl } : {}) });
  const handle = dashboardHandler(app, {
    basePath: '',
    ...(options.allowActions ? { authorize: isLoopback } : { readOnly: true }),
  });
  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.statusCode = 500;
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  const address = `http://${host}:${port}/`;
  if (output.isJson) output.json({ url: address, database: shownUrl(url), readOnly: !options.allowActions });
  else
    output.line(
      `dashboard: ${address} (${options.allowActions ? 'actions from loopback' : 'read-only'}) on ${shownUrl(url)}`,
    );

  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await app.close();
  return 0;
}
