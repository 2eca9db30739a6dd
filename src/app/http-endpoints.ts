/**
 * Framework-agnostic `/health` and `/metrics` handlers: plain `(req, res)` functions for `node:http`
 * that Express and Fastify (`reply.raw`) can call as they are.
 * @module
 */

import type { IncomingMessage } from 'node:http';
import type { ResponseLike } from '../core/collaborators.js';
import type { Hotpath } from './create-hotpath.js';

/** The response members the handlers write: the shared {@link ResponseLike} from `hotpath/core`. */
export type NodeResponseLike = ResponseLike;

/** A `(req, res)` handler that writes the whole response. */
export type NodeHandler = (req: IncomingMessage, res: NodeResponseLike) => Promise<void>;

/**
 * A handler that answers health JSON: 200 when storage and queue are healthy, 503 otherwise.
 * Never throws: a failing probe becomes a 503 with the error message.
 */
export function healthHandler(app: Pick<Hotpath, 'health'>): NodeHandler {
  return async (_req, res) => {
    let status = 200;
    let body: string;
    try {
      const health = await app.health();
      status = health.ok ? 200 : 503;
      body = JSON.stringify(health);
    } catch (error) {
      status = 503;
      body = JSON.stringify({ ok: false, error: error instanceof Error ? error.message : String(error) });
    }
    res.statusCode = status;
    res.setHeader('content-type', 'application/json; charset=utf-8');
    res.setHeader('cache-control', 'no-store');
    res.end(body);
  };
}

/** A handler that answers Prometheus text exposition (version 0.0.4). */
export function metricsHandler(app: Pick<Hotpath, 'metrics'>): NodeHandler {
  return async (_req, res) => {
    try {
      const text = await app.metrics();
      res.statusCode = 200;
      res.setHeader('content-type', 'text/plain; version=0.0.4; charset=utf-8');
      res.end(text);
    } catch (error) {
      res.statusCode = 500;
      res.setHeader('content-type', 'text/plain; charset=utf-8');
      res.end(`# metrics failed: ${error instanceof Error ? error.message : String(error)}\n`);
    }
  };
}
