/**
 * A market-data service on Express 5, wired with one createHotpath() call:
 *   GET    /quotes/:symbol    cached (stampede-safe) read; misses call the rate-limited quotes API
 *   POST   /jobs/forecast     { symbol, horizonDays?, paths? } → 202 Accepted + Location of the job
 *   GET    /jobs/:id          status polling: state, progress, total, stage, result or error
 *   DELETE /jobs/:id          cancel (also POST /jobs/:id/cancel)
 *   GET    /health, /metrics  health JSON and Prometheus text
 *   GET    /dashboard/        live dashboard (actions only from this machine); every route timed by template
 *
 * Run (the first command starts a stand-in quotes API on port 8081):
 *   node --import tsx examples/shared/quotes-upstream.ts &
 *   QUOTES_API_URL=http://127.0.0.1:8081/v1 PORT=3000 node --import tsx examples/express/server.ts
 */
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import { createHotpath, dashboardHandler, healthHandler, metricsHandler, requestProfiler } from 'hotpath/app';
import { forecastSubmission } from '../shared/forecast.js';
import { errorResponse } from '../shared/http-errors.js';
import { hotpathConfig, onShutdownSignal, readServiceEnv, startForecastService } from '../shared/service.js';

const env = readServiceEnv();
const app = await createHotpath(hotpathConfig);
const { quotes, jobs } = await startForecastService(app, env);

const web = express();
web.disable('x-powered-by');
// Every request is timed under its route template (`http GET /quotes/:symbol`), with N+1 detection per request.
web.use(requestProfiler(app));

// The dashboard: anyone who reaches it may look; retry / cancel / purge / invalidate only from this machine
// (e.g. through `kubectl port-forward`). Put your own auth in `authorize` for anything wider.
const dashboard = dashboardHandler(app, {
  basePath: '/dashboard',
  authorize: (req, action) => action === 'view' || ['127.0.0.1', '::1'].includes(req.socket.remoteAddress ?? ''),
});
web.use('/dashboard', (req, res) => dashboard(req, res));

// The hotpath handlers take Node's (req, res); Express's objects extend them, so they mount as they are.
web.get('/health', healthHandler(app));
web.get('/metrics', metricsHandler(app));

web.get('/quotes/:symbol', async (req, res) => {
  res.set('cache-control', 'max-age=5').json(await quotes.get(req.params.symbol));
});

// Express 5 forwards thrown errors and rejected promises to the error handler below.
web.post('/jobs/forecast', express.json({ limit: '16kb' }), (req, res) =>
  jobs.submit({ headers: req.headers, body: forecastSubmission(req.body) }, res),
);
// `req.params.id` is what the queue's handlers read the job id from.
web.get('/jobs/:id', (req, res) => jobs.status(req, res));
web.delete('/jobs/:id', (req, res) => jobs.cancel(req, res));
web.post('/jobs/:id/cancel', (req, res) => jobs.cancel(req, res));

web.use((req, res) => {
  res.status(404).json({ error: { code: 'ERR_NOT_FOUND', message: `no route ${req.method} ${req.path}` } });
});
web.use((error: unknown, req: Request, res: Response, next: NextFunction) => {
  if (res.headersSent) return next(error);
  const answer = errorResponse(error);
  if (answer.status >= 500) app.logger.error({ err: error, url: req.originalUrl }, 'request failed');
  res.status(answer.status).set(answer.headers).json(answer.body);
});

const server = web.listen(env.port, '127.0.0.1', (error?: Error) => {
  if (error) throw error;
  console.log(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});

onShutdownSignal(app, async () => {
  // Stop taking requests and let those in flight finish, then the queue (gracefully), storage, timers;
  // the quotes client last, since running forecasts use it until the queue has stopped.
  await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  await app.close();
  await quotes.close();
});
