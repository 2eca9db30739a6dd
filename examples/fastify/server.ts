/**
 * A market-data service on Fastify 5, wired with one createHotpath() call:
 *   GET    /quotes/:symbol    cached (stampede-safe) read; misses call the rate-limited quotes API
 *   POST   /jobs/forecast     { symbol, horizonDays?, paths? } → 202 Accepted + Location of the job
 *   GET    /jobs/:id          status polling: state, progress, total, stage, result or error
 *   DELETE /jobs/:id          cancel (also POST /jobs/:id/cancel)
 *   GET    /health, /metrics  health JSON and Prometheus text
 *   GET    /dashboard/        live dashboard (actions only from this machine); every route timed by template
 *
 * Run (the first command starts a stand-in quotes API on port 8081):
 *   node --import tsx examples/shared/quotes-upstream.ts &
 *   QUOTES_API_URL=http://127.0.0.1:8081/v1 PORT=3000 node --import tsx examples/fastify/server.ts
 */
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import {
  createHotpath,
  dashboardHandler,
  fastifyProfiler,
  healthHandler,
  metricsHandler,
  type NodeResponseLike,
} from 'hotpath/app';
import { forecastSubmission } from '../shared/forecast.js';
import { errorResponse } from '../shared/http-errors.js';
import { hotpathConfig, onShutdownSignal, readServiceEnv, startForecastService } from '../shared/service.js';

const env = readServiceEnv();
const app = await createHotpath(hotpathConfig);
const { quotes, jobs } = await startForecastService(app, env);
const health = healthHandler(app);
const metrics = metricsHandler(app);

/**
 * The hotpath handlers write to a Node-style response; this one answers through Fastify's `reply`, so
 * Fastify's hooks and logging still see every response (writing to `reply.raw` would need `reply.hijack()`).
 */
function replyAsResponse(reply: FastifyReply): NodeResponseLike {
  return {
    get statusCode() {
      return reply.statusCode;
    },
    set statusCode(status: number) {
      reply.code(status);
    },
    setHeader: (name, value) => reply.header(name, value),
    end: (body) => reply.send(body),
  };
}

const web = Fastify({ logger: false, bodyLimit: 16_384 });
// Every request runs in a profiler scope named by its route template (`http GET /quotes/:symbol`).
await web.register(fastifyProfiler, { app });

// The dashboard: anyone who reaches it may look; actions only from this machine. It streams (SSE), so it
// takes over the raw response (`reply.hijack()`); Fastify has already parsed an action's JSON body.
const dashboard = dashboardHandler(app, {
  basePath: '/dashboard',
  authorize: (req, action) => action === 'view' || ['127.0.0.1', '::1'].includes(req.socket.remoteAddress ?? ''),
});
const serveDashboard = (request: FastifyRequest, reply: FastifyReply) => {
  reply.hijack();
  return dashboard(Object.assign(request.raw, { body: request.body }), reply.raw);
};
web.all('/dashboard', serveDashboard);
web.all('/dashboard/*', serveDashboard);

web.get('/health', (request, reply) => health(request.raw, replyAsResponse(reply)));
web.get('/metrics', (request, reply) => metrics(request.raw, replyAsResponse(reply)));

web.get<{ Params: { symbol: string } }>('/quotes/:symbol', async (request, reply) => {
  reply.header('cache-control', 'max-age=5');
  return quotes.get(request.params.symbol);
});

// Fastify parses the JSON body; thrown errors go to the error handler below.
web.post('/jobs/forecast', (request, reply) =>
  jobs.submit({ headers: request.headers, body: forecastSubmission(request.body) }, replyAsResponse(reply)),
);
// `params.id` is what the queue's handlers read the job id from.
web.get<{ Params: { id: string } }>('/jobs/:id', (request, reply) =>
  jobs.status({ headers: request.headers, params: request.params }, replyAsResponse(reply)),
);
web.delete<{ Params: { id: string } }>('/jobs/:id', (request, reply) =>
  jobs.cancel({ headers: request.headers, params: request.params }, replyAsResponse(reply)),
);
web.post<{ Params: { id: string } }>('/jobs/:id/cancel', (request, reply) =>
  jobs.cancel({ headers: request.headers, params: request.params }, replyAsResponse(reply)),
);

web.setNotFoundHandler((request, reply) => {
  reply.code(404).send({ error: { code: 'ERR_NOT_FOUND', message: `no route ${request.method} ${request.url}` } });
});
web.setErrorHandler((error, request, reply) => {
  const answer = errorResponse(error);
  if (answer.status >= 500) app.logger.error({ err: error, url: request.url }, 'request failed');
  reply.code(answer.status).headers(answer.headers).send(answer.body);
});

await web.listen({ port: env.port, host: '127.0.0.1' });
const address = web.server.address();
console.log(`listening on http://127.0.0.1:${typeof address === 'object' && address ? address.port : env.port}`);

onShutdownSignal(app, async () => {
  // Stop taking requests and let those in flight finish, then the queue (gracefully), storage, timers;
  // the quotes client last, since running forecasts use it until the queue has stopped.
  await web.close();
  await app.close();
  await quotes.close();
});
