/**
 * A market-data service on plain node:http, wired with one createHotpath() call:
 *   GET    /quotes/:symbol    cached (stampede-safe) read; misses call the rate-limited quotes API
 *   POST   /jobs/forecast     { symbol, horizonDays?, paths? } → 202 Accepted + Location of the job
 *   GET    /jobs/:id          status polling: state, progress, total, stage, result or error
 *   DELETE /jobs/:id          cancel (also POST /jobs/:id/cancel)
 *   GET    /health, /metrics  health JSON and Prometheus text
 *   GET    /dashboard/        live dashboard (actions only from this machine); every route timed by template
 *
 * Run (the first command starts a stand-in quotes API on port 8081):
 *   node --import tsx examples/shared/quotes-upstream.ts &
 *   QUOTES_API_URL=http://127.0.0.1:8081/v1 PORT=3000 node --import tsx examples/http-node/server.ts
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHotpath, dashboardHandler, healthHandler, metricsHandler, profileRequests } from 'hotpath/app';
import { forecastSubmission } from '../shared/forecast.js';
import { errorResponse, InputError } from '../shared/http-errors.js';
import { hotpathConfig, onShutdownSignal, readServiceEnv, startForecastService } from '../shared/service.js';

const env = readServiceEnv();
const app = await createHotpath(hotpathConfig);
const { quotes, jobs } = await startForecastService(app, env);
const health = healthHandler(app);
const metrics = metricsHandler(app);
// Anyone who reaches the dashboard may look; retry / cancel / purge / invalidate only from this machine.
const dashboard = dashboardHandler(app, {
  basePath: '/dashboard',
  authorize: (req, action) => action === 'view' || ['127.0.0.1', '::1'].includes(req.socket.remoteAddress ?? ''),
});

/** The route template of a request, for per-route latency (node:http has no router to ask). */
function routeTemplate(req: IncomingMessage): string {
  const path = (req.url ?? '/').split('?')[0] as string;
  if (path.startsWith('/quotes/')) return '/quotes/:symbol';
  if (path.startsWith('/dashboard')) return '/dashboard';
  if (/^\/jobs\/[^/]+\/cancel$/.test(path)) return '/jobs/:id/cancel';
  if (/^\/jobs\/[^/]+$/.test(path) && path !== '/jobs/forecast') return '/jobs/:id';
  return ['/health', '/metrics', '/jobs/forecast'].includes(path) ? path : '(unmatched)';
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}

/** node:http has no body parser: read at most 16 KiB of JSON (a forecast request is under 100 bytes). */
async function readJson(req: IncomingMessage): Promise<unknown> {
  let text = '';
  for await (const chunk of req) {
    text += chunk;
    if (text.length > 16_384) throw new InputError('body over 16 KiB');
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new InputError('body must be JSON');
  }
}

async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0] as string;
  const method = req.method ?? 'GET';
  if (method === 'GET' && path === '/health') return health(req, res);
  if (method === 'GET' && path === '/metrics') return metrics(req, res);
  if (path === '/dashboard' || path.startsWith('/dashboard/')) return dashboard(req, res);

  const symbol = /^\/quotes\/([^/]+)$/.exec(path)?.[1];
  if (method === 'GET' && symbol !== undefined) {
    return sendJson(res, 200, await quotes.get(decodeURIComponent(symbol)), { 'cache-control': 'max-age=5' });
  }
  if (method === 'POST' && path === '/jobs/forecast') {
    await jobs.submit({ headers: req.headers, body: forecastSubmission(await readJson(req)) }, res);
    return;
  }
  // The queue's handlers read the id from the path themselves.
  if (/^\/jobs\/[^/]+$/.test(path) && method === 'GET') return jobs.status(req, res);
  if (/^\/jobs\/[^/]+$/.test(path) && method === 'DELETE') return jobs.cancel(req, res);
  if (/^\/jobs\/[^/]+\/cancel$/.test(path) && method === 'POST') return jobs.cancel(req, res);
  sendJson(res, 404, { error: { code: 'ERR_NOT_FOUND', message: `no route ${method} ${path}` } });
}

// profileRequests runs each request in a profiler scope named `http <METHOD> <template>`.
const server = createServer(
  profileRequests(
    (req, res) => {
      route(req, res).catch((error: unknown) => {
        const answer = errorResponse(error);
        if (answer.status >= 500) app.logger.error({ err: error, url: req.url }, 'request failed');
        if (!res.headersSent) sendJson(res, answer.status, answer.body, answer.headers);
        else res.destroy();
      });
    },
    app,
    { route: routeTemplate },
  ),
);
server.listen(env.port, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});

onShutdownSignal(app, async () => {
  // Stop taking requests and let those in flight finish, then the queue (gracefully), storage, timers;
  // the quotes client last, since running forecasts use it until the queue has stopped.
  await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  await app.close();
  await quotes.close();
});
