/**
 * Framework-agnostic HTTP handlers for the submit → 202 Accepted → poll status → cancel flow. They
 * take Node's `(req, res)` (or anything shaped like it: Express, Fastify's raw objects, tests).
 *
 * Clients are not trusted: job options in a body are honoured only when `clientOptions` names them
 * (within its bounds), `owner(req)` records the submitter and scopes dedupe keys to it, `authorize`
 * guards reads and cancels (default with `owner`: the owner only), a refused id answers exactly like
 * an unknown one (404), and hostile bodies (deep nesting, huge strings, `__proto__`/`constructor`
 * keys) are refused with a typed 4xx before anything is enqueued.
 * @module
 */
import type { ResponseLike } from '../core/collaborators.js';
import { ConfigError, isHotpathError } from '../core/errors.js';
import { validateOptions } from '../core/options.js';
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
  /** Who submitted it (the handlers' `owner(req)`), when known. */
  owner?: string | undefined;
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
  /** Current time in epoch ms, for `clientOptions.runAt` (default: the system clock). */
  now?(): number;
}

/** Job options a client may set in a submitted body, each with its bounds (none by default). */
export interface ClientOptions {
  /** Priority within `[min, max]` (each within ±1,000). */
  priority?: {
    /** Lowest priority a client may ask for. */
    min: number;
    /** Highest priority a client may ask for. */
    max: number;
  };
  /** Attempts in all, 1 to `max`. */
  attempts?: {
    /** Most attempts a client may ask for (≤ 1,000). */
    max: number;
  };
  /** Per-attempt time limit, up to `max` ms. */
  timeoutMs?: {
    /** Longest time limit a client may ask for, in ms. */
    max: number;
  };
  /** Delay before the job runs, up to `max` ms. */
  delayMs?: {
    /** Longest delay a client may ask for, in ms. */
    max: number;
  };
  /** A start time at most `maxAheadMs` in the future. */
  runAt?: {
    /** How far ahead of now a client may schedule, in ms. */
    maxAheadMs: number;
  };
  /**
   * Dedupe keys. With `owner`, a key is scoped to its owner: two clients using the same key get two jobs.
   */
  key?: {
    /** Longest key a client may send, in characters (default 128, at most 200). */
    maxLength?: number;
  };
}

/** What a client asks to do with an existing job. */
export type JobAction = 'status' | 'cancel';

/** Options of the HTTP handlers. */
export interface HttpHandlerOptions {
  /** Path under which jobs are addressed; the status URL is `${basePath}/${id}` (default `/jobs`). */
  basePath?: string;
  /** Largest request body read, in bytes (default 1 MiB); larger → 413. */
  maxBodyBytes?: number;
  /** Job options clients may set, with bounds (default: none; any option in a body is refused, 400). */
  clientOptions?: ClientOptions;
  /**
   * Who is asking (a user or tenant id from your auth layer, 1–200 characters). Recorded with each job
   * and used to scope dedupe keys; a request without one is refused (401).
   */
  owner?: (req: HttpRequestLike) => string | undefined | Promise<string | undefined>;
  /**
   * Whether `req` may read or cancel `job` (default with `owner`: only its owner; without: anyone). A
   * refused job answers exactly like an unknown one: 404.
   */
  authorize?: (req: HttpRequestLike, action: JobAction, job: JobStatusPayload) => boolean | Promise<boolean>;
}

/** The 202 body of a submitted job. */
export interface AcceptedPayload {
  /** The job's id. */
  id: string;
  /** Always `queued` at submit time. */
  state: 'queued';
  /** Where to poll its status. */
  statusUrl: string;
}

/** The handlers: each writes the whole response and never throws. */
export interface JobHttpHandlers {
  /**
   * `POST {basePath}` with `{ type, data, …clientOptions }` → 202 + `Location`. Resolves to the new job's
   * id (undefined when the request was refused), so a resource route can record it.
   */
  submit(req: HttpRequestLike, res: HttpResponseLike): Promise<string | undefined>;
  /**
   * The 202 body for a job you enqueued yourself (e.g. `POST /scenarios/:id/calculate`): send it with
   * status 202 and `Location: statusUrl`.
   */
  accepted(id: string): AcceptedPayload;
  /** `GET {basePath}/{id}` → 200 with a {@link JobStatusPayload}, or 404. */
  status(req: HttpRequestLike, res: HttpResponseLike): Promise<void>;
  /** `DELETE {basePath}/{id}` (or `POST {basePath}/{id}/cancel`) → 202, 409 when already finished, or 404. */
  cancel(req: HttpRequestLike, res: HttpResponseLike): Promise<void>;
  /** Routes a request to one of the above; resolves false (writing nothing) when the path is not ours. */
  handle(req: HttpRequestLike, res: HttpResponseLike): Promise<boolean>;
}

const CLIENT_OPTION_NAMES = ['priority', 'attempts', 'timeoutMs', 'delayMs', 'runAt', 'key'] as const;
const ID_PATTERN = /^[A-Za-z0-9_.:-]{1,200}$/;
/** Deepest nesting of a submitted body (objects and arrays). */
const MAX_BODY_DEPTH = 32;
/** Longest string anywhere in a submitted body, in characters. */
const MAX_BODY_STRING = 65_536;
/** Most values (of any kind) in a submitted body. */
const MAX_BODY_VALUES = 100_000;
/** Keys that can reach an object's prototype when code downstream merges the data. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

const CLIENT_OPTIONS_SCHEMA = {
  priority: { type: 'object' },
  attempts: { type: 'object' },
  timeoutMs: { type: 'object' },
  delayMs: { type: 'object' },
  runAt: { type: 'object' },
  key: { type: 'object' },
} as const;

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
 * Refuses bodies built to hurt: nesting deeper than 32, strings over 64 Ki characters, more than
 * 100,000 values, or `__proto__` / `constructor` / `prototype` keys. Iterative with a depth cap, so a
 * hostile body cannot overflow the stack either.
 */
function checkBody(body: unknown): void {
  const stack: Array<[unknown, number]> = [[body, 0]];
  let values = 0;
  while (stack.length > 0) {
    const [value, depth] = stack.pop() as [unknown, number];
    if (++values > MAX_BODY_VALUES)
      throw new HttpProblem(413, 'ERR_BODY_TOO_LARGE', `body has over ${MAX_BODY_VALUES} values`);
    if (typeof value === 'string') {
      if (value.length > MAX_BODY_STRING) {
        throw new HttpProblem(413, 'ERR_BODY_TOO_LARGE', `a string in the body is over ${MAX_BODY_STRING} characters`);
      }
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (depth >= MAX_BODY_DEPTH) throw new HttpProblem(400, 'ERR_BODY', `body is nested deeper than ${MAX_BODY_DEPTH}`);
    if (Array.isArray(value)) {
      for (const item of value) stack.push([item, depth + 1]);
      continue;
    }
    for (const key of Object.keys(value)) {
      if (FORBIDDEN_KEYS.has(key)) throw new HttpProblem(400, 'ERR_BODY', `key "${key}" is not allowed in a body`);
      stack.push([(value as Record<string, unknown>)[key], depth + 1]);
    }
  }
}

const refuse = (name: string, why: string): never => {
  throw new HttpProblem(400, 'ERR_OPTION', `${name} ${why}`);
};

/** A number option within `[min, max]`. */
function bounded(name: string, value: unknown, min: number, max: number, integer: boolean): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    return refuse(name, `must be ${integer ? 'an integer' : 'a number'}`);
  }
  if (value < min || value > max) refuse(name, `must be between ${min} and ${max}`);
  return value;
}

/** The job options of a body, each allowed by `allowed` and within its bounds. */
function clientEnqueueOptions(
  fields: Record<string, unknown>,
  allowed: ClientOptions,
  now: () => number,
): EnqueueOptions {
  const options: EnqueueOptions = {};
  for (const name of Object.keys(fields)) {
    if (name === 'type' || name === 'data') continue;
    if (!(CLIENT_OPTION_NAMES as readonly string[]).includes(name)) {
      throw new HttpProblem(400, 'ERR_BODY', `unknown field "${name.slice(0, 100)}"`);
    }
    if (allowed[name as keyof ClientOptions] === undefined) {
      throw new HttpProblem(400, 'ERR_OPTION', `clients may not set "${name}" here`);
    }
  }
  const { priority, attempts, timeoutMs, delayMs, runAt, key } = fields;
  if (priority !== undefined && allowed.priority) {
    options.priority = bounded('priority', priority, allowed.priority.min, allowed.priority.max, true);
  }
  if (attempts !== undefined && allowed.attempts)
    options.attempts = bounded('attempts', attempts, 1, allowed.attempts.max, true);
  if (timeoutMs !== undefined && allowed.timeoutMs) {
    options.timeoutMs = bounded('timeoutMs', timeoutMs, 1, allowed.timeoutMs.max, false);
  }
  if (delayMs !== undefined && allowed.delayMs)
    options.delayMs = bounded('delayMs', delayMs, 0, allowed.delayMs.max, false);
  if (runAt !== undefined && allowed.runAt) {
    const at = now();
    options.runAt = bounded('runAt', runAt, 0, at + allowed.runAt.maxAheadMs, false);
  }
  if (key !== undefined && allowed.key) {
    const maxLength = allowed.key.maxLength ?? 128;
    if (typeof key !== 'string' || key.length === 0 || key.length > maxLength) {
      refuse('key', `must be a string of 1 to ${maxLength} characters`);
    }
    options.key = key as string;
  }
  return options;
}

/** Checks `clientOptions` once, at construction. */
function checkClientOptions(options: ClientOptions): void {
  validateOptions('clientOptions', options, CLIENT_OPTIONS_SCHEMA);
  const check = (name: string, value: unknown, min: number, max: number) => {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
      throw new ConfigError(`clientOptions.${name}`, `clientOptions.${name} must be a number in [${min}, ${max}]`);
    }
  };
  if (options.priority) {
    check('priority.min', options.priority.min, -1000, 1000);
    check('priority.max', options.priority.max, options.priority.min, 1000);
  }
  if (options.attempts) check('attempts.max', options.attempts.max, 1, 1000);
  if (options.timeoutMs) check('timeoutMs.max', options.timeoutMs.max, 1, 2_147_483_647);
  if (options.delayMs) check('delayMs.max', options.delayMs.max, 0, 2_147_483_647);
  if (options.runAt) check('runAt.maxAheadMs', options.runAt.maxAheadMs, 0, 2_147_483_647);
  if (options.key?.maxLength !== undefined) check('key.maxLength', options.key.maxLength, 1, 200);
}

/** A dedupe key scoped to its owner (length-prefixed, so no two owner/key pairs collide). */
function scopedKey(owner: string, key: string): string {
  return `${owner.length}:${owner}:${key}`;
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
  const allowed = options.clientOptions ?? {};
  checkClientOptions(allowed);
  const ownerOf = options.owner;
  if (ownerOf !== undefined && typeof ownerOf !== 'function')
    throw new ConfigError('owner', 'owner must be a function');
  if (options.authorize !== undefined && typeof options.authorize !== 'function') {
    throw new ConfigError('authorize', 'authorize must be a function');
  }
  const now = () => endpoints.now?.() ?? Date.now();

  /** The requester's owner id (undefined without `owner`); a request without one is refused. */
  const requester = async (req: HttpRequestLike): Promise<string | undefined> => {
    if (ownerOf === undefined) return undefined;
    const owner = await ownerOf(req);
    if (typeof owner !== 'string' || owner.length === 0 || owner.length > 200) {
      throw new HttpProblem(401, 'ERR_UNAUTHENTICATED', 'who is asking is unknown');
    }
    return owner;
  };

  /** May `req` do `action` on `job`? (default with `owner`: its owner only). */
  const mayAccess = async (req: HttpRequestLike, action: JobAction, job: JobStatusPayload): Promise<boolean> => {
    if (options.authorize !== undefined) return (await options.authorize(req, action, job)) === true;
    if (ownerOf === undefined) return true;
    return job.owner !== undefined && job.owner === (await requester(req));
  };

  /** The job, or 404 when it is unknown or `req` may not see it (the two answer alike). */
  const visibleJob = async (req: HttpRequestLike, action: JobAction, id: string): Promise<JobStatusPayload> => {
    await requester(req); // who is asking must be known before anything is looked up
    const job = await endpoints.status(id);
    if (job === undefined || !(await mayAccess(req, action, job))) {
      throw new HttpProblem(404, 'ERR_NOT_FOUND', 'no such job');
    }
    return job;
  };

  const accepted = (id: string): AcceptedPayload => ({
    id,
    state: 'queued',
    statusUrl: `${basePath}/${encodeURIComponent(id)}`,
  });

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

  const submit = async (req: HttpRequestLike, res: HttpResponseLike): Promise<string | undefined> => {
    try {
      const owner = await requester(req);
      const body = await readJson(req, maxBodyBytes);
      if (body === null || typeof body !== 'object' || Array.isArray(body)) {
        throw new HttpProblem(400, 'ERR_BODY', 'body must be a JSON object { type, data, ... }');
      }
      checkBody(body);
      const fields = body as Record<string, unknown>;
      const type = fields.type;
      if (typeof type !== 'string' || !endpoints.accepts(type)) {
        throw new HttpProblem(400, 'ERR_TYPE', `unknown job type ${JSON.stringify(type)?.slice(0, 130)}`);
      }
      const enqueueOptions = clientEnqueueOptions(fields, allowed, now);
      if (owner !== undefined) {
        enqueueOptions.owner = owner;
        if (enqueueOptions.key !== undefined) enqueueOptions.key = scopedKey(owner, enqueueOptions.key);
      }
      const id = await endpoints.enqueue(type, fields.data, enqueueOptions);
      const payload = accepted(id);
      send(res, 202, payload, { location: payload.statusUrl });
      return id;
    } catch (error) {
      sendError(res, error);
      return undefined;
    }
  };

  const status = async (req: HttpRequestLike, res: HttpResponseLike): Promise<void> => {
    try {
      const payload = await visibleJob(req, 'status', idOf(req));
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
      const before = await visibleJob(req, 'cancel', id);
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

  return { submit, accepted, status, cancel, handle };
}
