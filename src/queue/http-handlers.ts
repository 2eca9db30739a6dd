/**
 * Framework-agnostic HTTP handlers for the submit → 202 Accepted → poll status → cancel flow. They
 * take Node's `(req, res)` (or anything shaped like it: Express, Fastify's raw objects, tests).
 * @module
 */
import type { ResponseLike } from '../core/collaborators.js';
import { ConfigError, isHotpathError } from '../core/errors.js';
import type { EnqueueOptions, JobErrorInfo } from './types.js';

/** The request fields the handlers read; Node's `IncomingMessage` fits, and so does Express's `req`. */
export interface HttpRequestLike {
  /** HTTP method (default GET). */
  method?: string | undefined;
  /** Path and query, e.g. `/jobs/0190…?x=1`. */
  url?: string | undefined;
  /** Request headers (`content-length` is read). */
  headers: Record<string, string | string[] | undefined>;
  /** A body already parsed by a framework (Express `json()`, Fastify); otherwise the stream is read. */
  body?: unknown;
  /** Route parameters from a framework router; `params.id` is used when present. */
  params?: Record<string, string | undefined> | undefined;
  /** The body stream, read when no parsed `body` is present. */
  [Symbol.asyncIterator]?(): AsyncIterator<Uint8Array | string>;
}

/** The response members the handlers write: the shared {@link ResponseLike} from `hotpath/core`. */
export type HttpResponseLike = ResponseLike;

/** What a job's status looks like to a polling client. */
export interface JobStatusPayload {
  /** The job's id. */
  id: string;
  /** The job's type. */
  type: string;
  /** `queued | running | succeeded | failed | cancelled`. */
  state: string;
  /** Units done (undefined until the handler reports progress). */
  progress: number | undefined;
  /** Units in all, when the handler said. */
  total: number | undefined;
  /** Name of the current stage, when the handler said. */
  stage: string | undefined;
  /** The handler's result once `succeeded`. */
  result: unknown;
  /** Name, message and code of the last error (no stack: it stays in the server's logs). */
  error: Pick<JobErrorInfo, 'name' | 'message' | 'code'> | undefined;
  /** Attempts started so far. */
  attempts: number;
  /** Enqueue time, epoch ms. */
  createdAt: number;
  /** Start of the latest attempt, epoch ms. */
  startedAt: number | undefined;
  /** When it reached a final state, epoch ms. */
  finishedAt: number | undefined;
}

/** The operations the handlers need (implemented by `QueueManager`). */
export interface JobEndpoints {
  /** Enqueues a submitted job; returns its id. */
  enqueue(type: string, data: unknown, options: EnqueueOptions): Promise<string>;
  /** The polling payload, or undefined for an unknown id. */
  status(id: string): Promise<JobStatusPayload | undefined>;
  /** Cancels; false when already finished or unknown. */
  cancel(id: string): Promise<boolean>;
  /** Whether clients may submit this type. */
  accepts(type: string): boolean;
}

/** Options of the HTTP handlers. */
export interface HttpHandlerOptions {
  /** Path under which jobs are addressed; the status URL is `${basePath}/${id}` (default `/jobs`). */
  basePath?: string;
  /** Largest request body read, in bytes (default 1 MiB); larger → 413. */
  maxBodyBytes?: number;
}

/** The handlers: each writes the whole response and never throws. */
export interface JobHttpHandlers {
  /** `POST {basePath}` with `{ type, data, priority?, delayMs?, runAt?, key?, attempts?, timeoutMs? }` → 202 + `Location`. */
  submit(req: HttpRequestLike, res: HttpResponseLike): Promise<void>;
  /** `GET {basePath}/{id}` → 200 with a {@link JobStatusPayload}, or 404. */
  status(req: HttpRequestLike, res: HttpResponseLike): Promise<void>;
  /** `DELETE {basePath}/{id}` (or `POST {basePath}/{id}/cancel`) → 202, 409 when already finished, or 404. */
  cancel(req: HttpRequestLike, res: HttpResponseLike): Promise<void>;
  /** Routes a request to one of the above; resolves false (writing nothing) when the path is not ours. */
  handle(req: HttpRequestLike, res: HttpResponseLike): Promise<boolean>;
}

const SUBMIT_KEYS = new Set(['type', 'data', 'priority', 'delayMs', 'runAt', 'key', 'attempts', 'timeoutMs']);
const ID_PATTERN = /^[A-Za-z0-9_.:-]{1,200}$/;

class HttpProblem extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function send(res: HttpResponseLike, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.statusCode = status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('cache-control', 'no-store');
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.end(JSON.stringify(body));
}

function sendError(res: HttpResponseLike, error: unknown): void {
  if (error instanceof HttpProblem) {
    send(res, error.status, { error: { code: error.code, message: error.message } });
  } else if (isHotpathError(error, 'ERR_HOTPATH_CONFIG')) {
    send(res, 400, { error: { code: error.code, message: error.message } });
  } else if (isHotpathError(error, 'ERR_HOTPATH_CLOSED')) {
    send(res, 503, { error: { code: error.code, message: 'the job queue is shutting down' } });
  } else {
    // Storage down or a bug: say so without leaking internals.
    send(res, 503, { error: { code: 'ERR_HOTPATH_UNAVAILABLE', message: 'the job queue is unavailable' } });
  }
}

async function readJson(req: HttpRequestLike, maxBytes: number): Promise<unknown> {
  if (req.body !== undefined) {
    if (typeof req.body === 'string') return parse(req.body);
    if (req.body instanceof Uint8Array) return parse(Buffer.from(req.body).toString('utf8'));
    return req.body;
  }
  const iterate = req[Symbol.asyncIterator];
  if (iterate === undefined) throw new HttpProblem(400, 'ERR_BODY', 'request body is missing');
  const declared = Number(req.headers['content-length'] ?? Number.NaN);
  if (declared > maxBytes) throw new HttpProblem(413, 'ERR_BODY_TOO_LARGE', `body over ${maxBytes} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Uint8Array | string>) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk);
    size += buffer.length;
    if (size > maxBytes) throw new HttpProblem(413, 'ERR_BODY_TOO_LARGE', `body over ${maxBytes} bytes`);
    chunks.push(buffer);
  }
  return parse(Buffer.concat(chunks).toString('utf8'));
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpProblem(400, 'ERR_BODY', 'request body must be JSON');
  }
}

/**
 * Builds the submit/status/cancel handlers over `endpoints`.
 * @throws ConfigError for a bad `basePath` or `maxBodyBytes`.
 */
export function createJobHttpHandlers(endpoints: JobEndpoints, options: HttpHandlerOptions = {}): JobHttpHandlers {
  const basePath = (options.basePath ?? '/jobs').replace(/\/+$/, '');
  if (!/^(\/[A-Za-z0-9_.~-]+)*$/.test(basePath)) {
    throw new ConfigError('basePath', `basePath must look like "/jobs" or "/api/v1/jobs", got ${options.basePath}`);
  }
  const maxBodyBytes = options.maxBodyBytes ?? 1_048_576;
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes < 1) {
    throw new ConfigError('maxBodyBytes', `maxBodyBytes must be a positive integer, got ${maxBodyBytes}`);
  }

  const pathOf = (req: HttpRequestLike): string => {
    const url = req.url ?? '/';
    const end = url.indexOf('?');
    return end === -1 ? url : url.slice(0, end);
  };

  const idOf = (req: HttpRequestLike): string => {
    const fromRouter = req.params?.id;
    let id = fromRouter;
    if (id === undefined) {
      const parts = pathOf(req).split('/').filter(Boolean);
      if (parts[parts.length - 1] === 'cancel') parts.pop();
      id = parts[parts.length - 1];
    }
    if (id === undefined) throw new HttpProblem(400, 'ERR_ID', 'job id is missing');
    id = decodeURIComponent(id);
    if (!ID_PATTERN.test(id)) throw new HttpProblem(400, 'ERR_ID', 'job id is not valid');
    return id;
  };

  const submit = async (req: HttpRequestLike, res: HttpResponseLike): Promise<void> => {
    try {
      const body = await readJson(req, maxBodyBytes);
      if (body === null || typeof body !== 'object' || Array.isArray(body)) {
        throw new HttpProblem(400, 'ERR_BODY', 'body must be a JSON object { type, data, ... }');
      }
      const fields = body as Record<string, unknown>;
      for (const key of Object.keys(fields)) {
        if (!SUBMIT_KEYS.has(key)) throw new HttpProblem(400, 'ERR_BODY', `unknown field "${key}"`);
      }
      const type = fields.type;
      if (typeof type !== 'string' || !endpoints.accepts(type)) {
        throw new HttpProblem(400, 'ERR_TYPE', `unknown job type ${JSON.stringify(type)?.slice(0, 130)}`);
      }
      const { data, type: _type, ...rest } = fields;
      const id = await endpoints.enqueue(type, data, rest as EnqueueOptions);
      const statusUrl = `${basePath}/${encodeURIComponent(id)}`;
      send(res, 202, { id, state: 'queued', statusUrl }, { location: statusUrl });
    } catch (error) {
      sendError(res, error);
    }
  };

  const status = async (req: HttpRequestLike, res: HttpResponseLike): Promise<void> => {
    try {
      const payload = await endpoints.status(idOf(req));
      if (payload === undefined) throw new HttpProblem(404, 'ERR_NOT_FOUND', 'no such job');
      const isFinal = payload.state === 'succeeded' || payload.state === 'failed' || payload.state === 'cancelled';
      // A hint for polling clients: come back in a second while the job is not done.
      send(res, 200, payload, isFinal ? {} : { 'retry-after': '1' });
    } catch (error) {
      sendError(res, error);
    }
  };

  const cancel = async (req: HttpRequestLike, res: HttpResponseLike): Promise<void> => {
    try {
      const id = idOf(req);
      const before = await endpoints.status(id);
      if (before === undefined) throw new HttpProblem(404, 'ERR_NOT_FOUND', 'no such job');
      const cancelled = await endpoints.cancel(id);
      const after = await endpoints.status(id);
      send(res, cancelled ? 202 : 409, { id, cancelled, state: after?.state ?? before.state });
    } catch (error) {
      sendError(res, error);
    }
  };

  const handle = async (req: HttpRequestLike, res: HttpResponseLike): Promise<boolean> => {
    const path = pathOf(req).replace(/\/+$/, '');
    const method = (req.method ?? 'GET').toUpperCase();
    if (path === basePath) {
      if (method !== 'POST') {
        send(res, 405, { error: { code: 'ERR_METHOD', message: 'use POST to submit a job' } }, { allow: 'POST' });
        return true;
      }
      await submit(req, res);
      return true;
    }
    if (!path.startsWith(`${basePath}/`)) return false;
    const rest = path.slice(basePath.length + 1).split('/');
    if (rest.length === 1 && method === 'GET') await status(req, res);
    else if (rest.length === 1 && method === 'DELETE') await cancel(req, res);
    else if (rest.length === 2 && rest[1] === 'cancel' && method === 'POST') await cancel(req, res);
    else send(res, 405, { error: { code: 'ERR_METHOD', message: 'use GET, DELETE or POST …/cancel' } });
    return true;
  };

  return { submit, status, cancel, handle };
}
