/**
 * Framework-agnostic `/health` and `/metrics` handlers: plain `(req, res)` functions for `node:http`
 * that Express and Fastify (`reply.raw`) can call as they are.
 * @module
 */
import type { IncomingMessage } from 'node:http';
import type { Hotpath } from './create-hotpath.js';

/**
 * The response fields the handlers use. `node:http`'s `ServerResponse`, Express's `res` and Fastify's
 * `reply.raw` fit as they are; it is structural so that a three-line adapter over Fastify's `reply` fits too.
 */
export interface NodeResponseLike {
  /** HTTP status to send. */
  statusCode: number;
  /** Sets one response header. */
  setHeader(name: string, value: string): unknown;
  /** Sends the body and finishes the response. */
  end(body?: string): unknown;
}

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
