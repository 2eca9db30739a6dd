/**
 * `dashboardHandler(app, options)`: a framework-agnostic `(req, res)` handler that serves a live dashboard page
 * (queue, caches, limiters, profiler, storage) under `basePath`: the page, its assets (shipped in the package, no
 * CDN), a JSON snapshot, a bounded Server-Sent Events stream, and POST actions (retry, cancel, purge, invalidate)
 * that need `authorize` and a CSRF token issued with the page.
 * @module
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ConfigError } from '../../core/errors.js';
import { validateOptions } from '../../core/options.js';
import type { Hotpath } from '../create-hotpath.js';
import type { NodeResponseLike } from '../http-endpoints.js';
import { readAsset } from './assets.js';
import { renderPage } from './page.js';
import { DEFAULT_REDACTED_FIELDS, Redactor } from './redact.js';
import { DashboardData } from './snapshot.js';

/** What a request to the dashboard wants to do; `authorize` is asked with it. */
export type DashboardAction = 'view' | 'retry' | 'cancel' | 'purge' | 'invalidate';

/** Options of {@link dashboardHandler}. */
export interface DashboardOptions {
  /** Path the dashboard is mounted at (default `/dashboard`); every URL it serves starts with it. */
  basePath?: string;
  /**
   * Decides each request: `view` for the page, its data and assets; `retry` / `cancel` / `purge` / `invalidate`
   * for actions. Without it the page is viewable and **every action is refused** (read-only). Exceptions count
   * as "no".
   */
  authorize?: (req: IncomingMessage, action: DashboardAction) => boolean | Promise<boolean>;
  /** `true` refuses every action whatever `authorize` says (default `false`). */
  readOnly?: boolean;
  /**
   * Field names whose values are shown as `[redacted]` in job data and results, at any depth, compared
   * case-insensitively without `-`/`_` (default: password, secret, token, apiKey, authorization, cookie, …).
   */
  redactFields?: readonly string[];
  /** Characters shown of one job's data, result, error message or stack (default 2,000; 100 … 100,000). */
  maxValueChars?: number;
  /** How often connected pages get a fresh snapshot, in ms (default 2,000; 250 … 60,000). */
  refreshMs?: number;
  /** How often the chart history is sampled, in ms (default 5,000; 250 … 3,600,000). */
  historyIntervalMs?: number;
  /**
   * Samples kept per chart series (default 720 = one hour at 5 s; 10 … 100,000). Memory: `points × (series + 1)
   * × 8` bytes, series ≤ 64 — 720 points with 20 series is 120 KB.
   */
  historyPoints?: number;
  /** Most pages connected to the live stream at once (default 100; 1 … 10,000); more are answered 503. */
  maxClients?: number;
}

const OPTIONS_SCHEMA = {
  basePath: { type: 'string' },
  authorize: { type: 'function' },
  readOnly: { type: 'boolean' },
  redactFields: { type: 'object' },
  maxValueChars: { type: 'number', integer: true, min: 100, max: 100_000 },
  refreshMs: { type: 'number', integer: true, min: 250, max: 60_000 },
  historyIntervalMs: { type: 'number', integer: true, min: 250, max: 3_600_000 },
  historyPoints: { type: 'number', integer: true, min: 10, max: 100_000 },
  maxClients: { type: 'number', integer: true, min: 1, max: 10_000 },
} as const;

/** How long a page's CSRF token is accepted: a dashboard left open over a working day keeps working. */
const CSRF_TTL_MS = 12 * 60 * 60 * 1000;
/** Largest action body read. */
const MAX_BODY_BYTES = 16 * 1024;
/** A page whose socket holds this much unsent data is too slow to follow; it is dropped, not buffered. */
const MAX_CLIENT_BACKLOG_BYTES = 4 * 1024 * 1024;
/** Jobs cancelled by one purge at most. */
const MAX_PURGE = 10_000;

/** A `(req, res)` handler for the dashboard; it answers 404 for paths outside `basePath`. */
export type DashboardHandler = (req: IncomingMessage, res: NodeResponseLike | ServerResponse) => Promise<void>;

type Response = Omit<NodeResponseLike, 'end'> & {
  end(body?: string | Buffer): void;
  headersSent?: boolean;
  write?: (chunk: string) => boolean;
  writableLength?: number;
  flushHeaders?: () => void;
  once?: (event: 'close', listener: () => void) => unknown;
};

function send(res: Response, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  res.statusCode = status;
  res.setHeader('content-type', type);
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('cache-control', 'no-store');
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.end(body);
}

function sendJson(res: Response, status: number, value: unknown): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(value));
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const preParsed = (req as { body?: unknown }).body;
  if (preParsed !== undefined && typeof preParsed === 'object') return preParsed;
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new ConfigError('body', `request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  return text === '' ? {} : JSON.parse(text);
}

/**
 * A handler serving the dashboard of `app` under `options.basePath`. Mount it for every method and every path
 * under the base path (`web.use('/dashboard', …)` in Express, `all('/dashboard/*')` in Fastify). Creating it
 * starts an event-loop monitor and a history sampler (unref'd timer, stopped when the app's profiler closes);
 * without a dashboard nothing of this runs.
 * @throws ConfigError for bad options.
 */
export function dashboardHandler(app: Hotpath, options: DashboardOptions = {}): DashboardHandler {
  validateOptions('dashboardHandler', options, OPTIONS_SCHEMA);
  const basePath = (options.basePath ?? '/dashboard').replace(/\/+$/, '');
  if (basePath !== '' && !/^\/[A-Za-z0-9._~\-/]*$/.test(basePath)) {
    throw new ConfigError(
      'dashboardHandler.basePath',
      `basePath must be a plain absolute path, got ${JSON.stringify(basePath)}`,
    );
  }
  const fields = options.redactFields ?? DEFAULT_REDACTED_FIELDS;
  if (!Array.isArray(fields) || fields.some((field) => typeof field !== 'string')) {
    throw new ConfigError('dashboardHandler.redactFields', 'redactFields must be an array of field names');
  }
  const authorize = options.authorize;
  const readOnly = options.readOnly === true;
  const refreshMs = options.refreshMs ?? 2_000;
  const maxClients = options.maxClients ?? 100;
  const data = new DashboardData(app, {
    historyPoints: options.historyPoints ?? 720,
    maxSeries: 64,
    maxJobRows: 50,
    maxOperations: 100,
    redactor: new Redactor(fields, options.maxValueChars ?? 2_000),
  });
  const secret = randomBytes(32);

  // History sampling: an unref'd timer; it stops (and the monitor closes) once the app's profiler is closed.
  const historyIntervalMs = options.historyIntervalMs ?? 5_000;
  let sampling = false;
  const sampler = setInterval(() => {
    if (app.profiler.isClosed) {
      clearInterval(sampler);
      clearInterval(pusher);
      data.close();
      for (const client of clients) client.end();
      clients.clear();
      return;
    }
    if (sampling) return;
    sampling = true;
    data.sample().finally(() => (sampling = false));
  }, historyIntervalMs);
  sampler.unref();

  // Live stream: one snapshot per refresh for every connected page, serialised once.
  const clients = new Set<Response>();
  let pushing = false;
  // Every connected page has the history up to here (a new page gets it whole when it connects).
  let pushedSeq = 0;
  const pusher = setInterval(() => {
    if (clients.size === 0 || pushing) return;
    pushing = true;
    const afterSeq = pushedSeq;
    data
      .snapshot(readOnly || authorize === undefined, afterSeq)
      .then((snapshot) => {
        pushedSeq = snapshot.history.seq;
        const message = `event: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`;
        for (const client of clients) {
          if ((client.writableLength ?? 0) > MAX_CLIENT_BACKLOG_BYTES) {
            clients.delete(client);
            client.end();
            continue;
          }
          client.write?.(message);
        }
      })
      .finally(() => (pushing = false));
  }, refreshMs);
  pusher.unref();

  const issueToken = (): string => {
    const payload = `${Date.now()}.${randomBytes(16).toString('base64url')}`;
    return `${payload}.${createHmac('sha256', secret).update(payload).digest('base64url')}`;
  };
  const isValidToken = (token: unknown): boolean => {
    if (typeof token !== 'string' || token.length > 200) return false;
    const at = token.lastIndexOf('.');
    if (at < 0) return false;
    const payload = token.slice(0, at);
    const expected = Buffer.from(createHmac('sha256', secret).update(payload).digest('base64url'));
    const given = Buffer.from(token.slice(at + 1));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return false;
    const issuedAt = Number(payload.split('.')[0]);
    return Number.isFinite(issuedAt) && Date.now() - issuedAt < CSRF_TTL_MS;
  };
  const allows = async (req: IncomingMessage, action: DashboardAction): Promise<boolean> => {
    if (authorize === undefined) return action === 'view';
    try {
      return (await authorize(req, action)) === true;
    } catch {
      return false;
    }
  };

  return async (req, rawRes) => {
    const res = rawRes as Response;
    const url = new URL(req.url ?? '/', 'http://dashboard.invalid');
    // Express strips the mount path from req.url (and keeps it in originalUrl); accept both.
    const original = (req as { originalUrl?: string }).originalUrl;
    let path = original !== undefined ? new URL(original, 'http://dashboard.invalid').pathname : url.pathname;
    if (basePath !== '' && path !== basePath && !path.startsWith(`${basePath}/`)) {
      if (original === undefined) return send(res, 404, 'text/plain; charset=utf-8', 'not found');
      path = basePath + url.pathname;
    }
    const route = path.slice(basePath.length) || '/';
    const method = req.method ?? 'GET';

    try {
      if (!(await allows(req, 'view'))) return send(res, 403, 'text/plain; charset=utf-8', 'forbidden');
      if (method === 'GET' || method === 'HEAD') {
        if (route === '/') {
          if (path === basePath && basePath !== '') {
            return send(res, 308, 'text/plain; charset=utf-8', '', { location: `${basePath}/` });
          }
          const page = renderPage({ basePath, csrfToken: issueToken(), canAct: !readOnly && authorize !== undefined });
          return send(res, 200, 'text/html; charset=utf-8', page.html, {
            'content-security-policy': page.contentSecurityPolicy,
            'referrer-policy': 'no-referrer',
            'x-frame-options': 'DENY',
          });
        }
        if (route.startsWith('/assets/')) {
          const asset = readAsset(route.slice('/assets/'.length));
          if (!asset) return send(res, 404, 'text/plain; charset=utf-8', 'not found');
          res.statusCode = 200;
          res.setHeader('content-type', asset.type);
          res.setHeader('x-content-type-options', 'nosniff');
          res.setHeader('cache-control', 'public, max-age=300');
          return void res.end(asset.body);
        }
        if (route === '/api/state') {
          return sendJson(res, 200, await data.snapshot(readOnly || authorize === undefined));
        }
        if (route === '/api/events') {
          if (clients.size >= maxClients) {
            return send(res, 503, 'text/plain; charset=utf-8', 'too many dashboard pages', { 'retry-after': '5' });
          }
          if (typeof res.write !== 'function') {
            return send(res, 501, 'text/plain; charset=utf-8', 'this response cannot stream');
          }
          res.statusCode = 200;
          res.setHeader('content-type', 'text/event-stream; charset=utf-8');
          res.setHeader('cache-control', 'no-store');
          res.setHeader('x-accel-buffering', 'no');
          res.flushHeaders?.();
          clients.add(res);
          res.once?.('close', () => clients.delete(res));
          req.once('close', () => clients.delete(res));
          // The first snapshot at once, so the page fills without waiting a refresh.
          res.write(`retry: ${refreshMs}\n\n`);
          const first = await data.snapshot(readOnly || authorize === undefined);
          if (clients.has(res)) res.write(`event: snapshot\ndata: ${JSON.stringify(first)}\n\n`);
          return;
        }
        return send(res, 404, 'text/plain; charset=utf-8', 'not found');
      }
      if (method !== 'POST')
        return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed', { allow: 'GET, POST' });
      return await act(req, res, route);
    } catch (error) {
      if (res.headersSent === true) return void res.end();
      const status = error instanceof SyntaxError || error instanceof ConfigError ? 400 : 500;
      return sendJson(res, status, { error: error instanceof Error ? error.message : String(error) });
    }
  };

  async function act(req: IncomingMessage, res: Response, route: string): Promise<void> {
    const action = actionOf(route);
    if (action === undefined) return send(res, 404, 'text/plain; charset=utf-8', 'not found');
    if (readOnly || !(await allows(req, action.kind))) {
      return sendJson(res, 403, { error: 'this dashboard is read-only for you' });
    }
    // CSRF: the token issued with the page, in a header a cross-site form cannot set, on a JSON request (which a
    // cross-site page cannot send without a CORS preflight), from this origin when the browser says where from.
    if (!isValidToken(req.headers['x-csrf-token']))
      return sendJson(res, 403, { error: 'missing or expired CSRF token' });
    if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) {
      return sendJson(res, 415, { error: 'actions are JSON requests' });
    }
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== 'null') {
      let host: string | undefined;
      try {
        host = new URL(origin).host;
      } catch {
        host = undefined;
      }
      if (host !== req.headers.host) return sendJson(res, 403, { error: 'cross-origin action refused' });
    } else if (req.headers['sec-fetch-site'] === 'cross-site') {
      return sendJson(res, 403, { error: 'cross-origin action refused' });
    }
    const body = (await readBody(req)) as Record<string, unknown>;
    const queue = app.queue;
    switch (action.kind) {
      case 'retry':
      case 'cancel': {
        if (!queue) return sendJson(res, 404, { error: 'no queue' });
        const done = action.kind === 'retry' ? await queue.queue.retry(action.id) : await queue.cancel(action.id);
        return sendJson(res, done ? 200 : 409, { ok: done });
      }
      case 'purge': {
        if (!queue) return sendJson(res, 404, { error: 'no queue' });
        const type = body.type;
        if (type !== undefined && typeof type !== 'string') throw new ConfigError('type', 'type must be a string');
        let purged = 0;
        // Purge = cancel every queued job (of `type`), as Celery's purge discards waiting tasks; bounded per call.
        while (purged < MAX_PURGE) {
          const page = await queue.queue.list({ status: 'queued', limit: 1000, ...(type ? { type } : {}) });
          if (page.items.length === 0) break;
          let cancelled = 0;
          for (const job of page.items) if (await queue.cancel(job.id)) cancelled++;
          purged += cancelled;
          if (cancelled === 0) break;
        }
        return sendJson(res, 200, { ok: true, purged });
      }
      case 'invalidate': {
        const cache = app.caches.get(action.name);
        if (!cache) return sendJson(res, 404, { error: 'no such cache' });
        if (typeof body.key === 'string')
          return sendJson(res, 200, { ok: true, removed: cache.delete(body.key) ? 1 : 0 });
        if (typeof body.tag === 'string')
          return sendJson(res, 200, { ok: true, removed: await cache.invalidateTags([body.tag]) });
        if (body.all === true) {
          const size = cache.stats().size;
          cache.clear();
          return sendJson(res, 200, { ok: true, removed: size });
        }
        throw new ConfigError('body', 'give { key }, { tag } or { all: true }');
      }
    }
  }
}

type ParsedAction = { kind: 'retry' | 'cancel'; id: string } | { kind: 'purge' } | { kind: 'invalidate'; name: string };

function actionOf(route: string): ParsedAction | undefined {
  const job = /^\/api\/jobs\/([^/]{1,200})\/(retry|cancel)$/.exec(route);
  if (job) return { kind: job[2] as 'retry' | 'cancel', id: decodeURIComponent(job[1] as string) };
  if (route === '/api/queue/purge') return { kind: 'purge' };
  const cache = /^\/api\/caches\/([^/]{1,300})\/invalidate$/.exec(route);
  if (cache) return { kind: 'invalidate', name: decodeURIComponent(cache[1] as string) };
  return undefined;
}
