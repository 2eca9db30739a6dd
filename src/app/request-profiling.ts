/**
 * Request middleware: each request runs inside a profiler scope named `http <METHOD> <route template>`, so its
 * latency is recorded per route (never per raw URL — cardinality stays bounded), queries it notes are checked for
 * N+1 patterns per request, a slow request is reported with its route, and responses are counted by status class.
 * `requestProfiler` (Express), `fastifyProfiler` (Fastify plugin) and `profileRequests` (node:http).
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ConfigError } from '../core/errors.js';
import type { Profiler, ScopeHandle } from '../profiling/index.js';

/** The status classes counted per route. */
export type StatusClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx';

/** One row of {@link RequestCounters.entries}. */
export interface RequestCount {
  /** HTTP method (`GET` … or `OTHER`). */
  method: string;
  /** Route template (`/users/:id`), `(unmatched)`, or `(other)` past the route cap. */
  route: string;
  /** Status class of the responses counted. */
  statusClass: StatusClass;
  /** Responses since start. */
  count: number;
}

const CLASSES: readonly StatusClass[] = ['1xx', '2xx', '3xx', '4xx', '5xx'];
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT']);

/** Route used for requests no route matched (404s of random URLs must not each become a metric). */
export const UNMATCHED_ROUTE = '(unmatched)';
/** Route used past the route cap. */
export const OTHER_ROUTE = '(other)';

/** Responses per method, route and status class; at most `maxRoutes` method+route pairs (then `(other)`). */
export class RequestCounters {
  readonly #maxRoutes: number;
  readonly #counts = new Map<string, { method: string; route: string; byClass: Float64Array }>();

  /** @param maxRoutes - most distinct method+route pairs kept (default 1,000). */
  constructor(maxRoutes = 1_000) {
    this.#maxRoutes = maxRoutes;
  }

  /** Counts one response. */
  add(method: string, route: string, status: number): void {
    this.slot(method, route)(status);
  }

  /**
   * A counter for one method and route (the `(other)` one past the cap): call it with each response's status.
   * The middleware takes one per route up front, so a response costs one array increment.
   */
  slot(method: string, route: string): (status: number) => void {
    const byClass = this.#entry(method, route).byClass;
    return (status) => {
      const index = Math.min(4, Math.max(0, Math.floor(status / 100) - 1));
      byClass[index] = (byClass[index] as number) + 1;
    };
  }

  #entry(method: string, route: string): { method: string; route: string; byClass: Float64Array } {
    let key = `${method} ${route}`;
    let entry = this.#counts.get(key);
    if (entry === undefined) {
      if (this.#counts.size >= this.#maxRoutes) {
        key = `${method} ${OTHER_ROUTE}`;
        entry = this.#counts.get(key);
        route = OTHER_ROUTE;
      }
      if (entry === undefined) {
        entry = { method, route, byClass: new Float64Array(CLASSES.length) };
        this.#counts.set(key, entry);
      }
    }
    return entry;
  }

  /** Every non-zero count. */
  entries(): RequestCount[] {
    const out: RequestCount[] = [];
    for (const { method, route, byClass } of this.#counts.values()) {
      for (let i = 0; i < CLASSES.length; i++) {
        const count = byClass[i] as number;
        if (count > 0) out.push({ method, route, statusClass: CLASSES[i] as StatusClass, count });
      }
    }
    return out;
  }
}

/** What the middleware needs of the app: its profiler and request counters (any `Hotpath` has both). */
export interface RequestProfilingTarget {
  /** Where request scopes and latencies go. */
  readonly profiler: Profiler;
  /** Where responses are counted by status class. */
  readonly requests: RequestCounters;
}

function methodOf(req: { method?: string | undefined }): string {
  const method = (req.method ?? 'GET').toUpperCase();
  return METHODS.has(method) ? method : 'OTHER';
}

/** Options every request middleware takes. */
export interface RequestProfilingOptions {
  /**
   * Run each request inside a profiler scope (AsyncLocalStorage), so N+1 detection and `currentScope()` work per
   * request (default `true`). `false` only times requests and counts status classes: on Node 20 an
   * AsyncLocalStorage makes every promise of the process pay a hook, which on a trivial route is most of the
   * middleware's cost (see docs/benchmarks.md, app).
   */
  scope?: boolean;
}

type Finish = (route: string, status: number, isComplete: boolean) => void;
type Rename = (route: string) => void;

/** Times one request without a scope: the elapsed time is recorded under the final route's name. */
function timer(target: RequestProfilingTarget, method: string): Finish {
  const startedAt = performance.now();
  let isDone = false;
  return (route, status, isComplete) => {
    if (isDone) return;
    isDone = true;
    target.profiler.record(`http ${method} ${route}`, performance.now() - startedAt, status >= 500 || !isComplete);
    target.requests.add(method, route, status);
  };
}

/**
 * Times one request. With `useScope` it runs inside a profiler scope until `finish` is called (renamed to the
 * final route then); without, it records the elapsed time under the final name. Either way the response is
 * counted by status class, and a 5xx or a response the client never got whole counts as an error of the route.
 */
function profile(
  target: RequestProfilingTarget,
  useScope: boolean,
  method: string,
  initialRoute: string,
  run: (finish: Finish, rename: Rename) => void,
): void {
  if (!useScope) {
    run(timer(target, method), () => undefined);
    return;
  }
  target.profiler
    .scope(`http ${method} ${initialRoute}`, (scope: ScopeHandle) => {
      return new Promise<void>((resolve) => {
        let isDone = false;
        let current = initialRoute;
        const rename = (route: string) => {
          if (route === current || isDone) return;
          current = route;
          scope.rename(`http ${method} ${route}`);
        };
        run((route, status, isComplete) => {
          if (isDone) return;
          rename(route);
          isDone = true;
          if (status >= 500 || !isComplete) scope.markFailed();
          target.requests.add(method, route, status);
          resolve();
        }, rename);
      });
    })
    .catch(() => undefined);
}

function checkTarget(target: RequestProfilingTarget, who: string): void {
  if (typeof target?.profiler?.scope !== 'function' || typeof target?.requests?.add !== 'function') {
    throw new ConfigError(who, `${who}: pass the app from createHotpath (it needs profiler and requests)`);
  }
}

/** The structural slice of Express's `req` the middleware reads. */
interface ExpressRequestLike extends IncomingMessage {
  baseUrl?: string;
  route?: { path?: unknown };
}

/**
 * Express middleware (`web.use(requestProfiler(app))`, before the routes): each request is timed under
 * `http <METHOD> <baseUrl + route.path>` (`http GET /users/:id`), `(unmatched)` when no route answered.
 * @throws ConfigError when `app` is not a hotpath app.
 */
export function requestProfiler(
  app: RequestProfilingTarget,
  options: RequestProfilingOptions = {},
): (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void {
  checkTarget(app, 'requestProfiler');
  const useScope = options.scope !== false;
  return (req, res, next) => {
    const request = req as ExpressRequestLike;
    profile(app, useScope, methodOf(req), UNMATCHED_ROUTE, (finish, rename) => {
      // The scope is named when Express assigns req.route (the route's handlers run next), so N+1 reports made
      // inside the handler already carry the template; req.baseUrl is the router's mount path at that moment.
      let route = UNMATCHED_ROUTE;
      let matched: ExpressRequestLike['route'];
      Object.defineProperty(request, 'route', {
        configurable: true,
        enumerable: true,
        get: () => matched,
        set: (value: ExpressRequestLike['route']) => {
          matched = value;
          const path = value?.path;
          if (path === undefined) return;
          route = `${request.baseUrl ?? ''}${typeof path === 'string' ? path : String(path)}`;
          rename(route);
        },
      });
      const done = () => finish(route, res.statusCode, res.writableFinished);
      res.once('finish', done);
      res.once('close', done);
      next();
    });
  };
}

/** The structural slice of Fastify the plugin uses (no dependency on `fastify`). */
interface FastifyLike {
  addHook(name: 'onRoute', hook: (route: FastifyRouteLike) => void): unknown;
  addHook(name: 'onRequest', hook: FastifyHook): unknown;
  addHook(name: 'onResponse', hook: FastifyHook): unknown;
  addHook(name: 'onRequestAbort', hook: (request: FastifyRequestLike, done: () => void) => void): unknown;
  decorateRequest(name: string, value: unknown): unknown;
}
type FastifyHook = (
  request: FastifyRequestLike,
  reply: { statusCode: number; elapsedTime: number },
  done: () => void,
) => void;
interface FastifyRouteLike {
  method: string | string[];
  url: string;
  onRequest?: FastifyHook | FastifyHook[] | undefined;
  onResponse?: FastifyHook | FastifyHook[] | undefined;
}
interface FastifyRequestLike {
  method: string;
  is404: boolean;
  raw: IncomingMessage;
  /** Decorated by the plugin: how to end the request's scope. */
  hotpathFinish: Finish | null;
}

/** Options of {@link fastifyProfiler}. */
export interface FastifyProfilerOptions extends RequestProfilingOptions {
  /** The app from `createHotpath`. */
  app: RequestProfilingTarget;
}

/** A Fastify plugin; the instance is typed loosely so any Fastify 4/5 instance is accepted without importing it. */
export type FastifyPlugin = ((
  fastify: object,
  options: FastifyProfilerOptions,
  done: (error?: Error) => void,
) => void) & {
  [key: symbol]: unknown;
};

function appendHook(existing: FastifyHook | FastifyHook[] | undefined, hook: FastifyHook): FastifyHook[] {
  if (existing === undefined) return [hook];
  return Array.isArray(existing) ? [...existing, hook] : [existing, hook];
}

/**
 * Fastify plugin (`await web.register(fastifyProfiler, { app })`, before the routes): each route gets an
 * `onRequest` hook that opens the request's scope (AsyncLocalStorage, so the handler and everything it awaits
 * report into it — N+1 detection works per request) named by the route template, and an `onResponse` hook that
 * closes it; requests no route matched are timed as `(unmatched)`. The hooks are attached per route (`onRoute`),
 * so the name is built once per route and nothing is looked up per request. Not encapsulated: it applies to
 * every route registered after it.
 */
export const fastifyProfiler: FastifyPlugin = Object.assign(
  function fastifyProfiler(instance: object, options: FastifyProfilerOptions, done: (error?: Error) => void) {
    const fastify = instance as FastifyLike;
    const app = options?.app;
    try {
      checkTarget(app, 'fastifyProfiler');
    } catch (error) {
      return done(error as Error);
    }
    const useScope = options.scope !== false;
    // Fixed request shape (Fastify's advice): a decorated field instead of a WeakMap or a property per request.
    if (useScope) fastify.decorateRequest('hotpathFinish', null);

    /** Hooks for one route template (and its method, when the route has one: then the name is built once). */
    const hooksFor = (
      template: string,
      routeMethod?: string,
    ): { onRequest: FastifyHook | undefined; onResponse: FastifyHook } => {
      if (!useScope) {
        const fixedMethod = routeMethod === undefined ? undefined : methodOf({ method: routeMethod });
        const fixedName = fixedMethod === undefined ? undefined : `http ${fixedMethod} ${template}`;
        const fixedCount = fixedMethod === undefined ? undefined : app.requests.slot(fixedMethod, template);
        // Timing only: Fastify already notes when each request started (reply.elapsedTime), so one onResponse
        // hook per route is all it takes — every extra hook invocation costs ~0.4 µs on a bare route.
        return {
          onRequest: undefined,
          onResponse: (request, reply, next) => {
            const status = reply.statusCode;
            const elapsed = reply.elapsedTime;
            if (fixedName !== undefined && fixedCount !== undefined) {
              app.profiler.record(fixedName, elapsed, status >= 500);
              fixedCount(status);
            } else {
              const method = methodOf(request);
              app.profiler.record(`http ${method} ${template}`, elapsed, status >= 500);
              app.requests.add(method, template, status);
            }
            next();
          },
        };
      }
      return {
        onRequest: (request, _reply, next) => {
          profile(app, true, methodOf(request), template, (finish) => {
            request.hotpathFinish = finish;
            next(); // inside the scope: the rest of the request runs in its AsyncLocalStorage context
          });
        },
        onResponse: (request, reply, next) => {
          request.hotpathFinish?.(template, reply.statusCode, true);
          next();
        },
      };
    };

    fastify.addHook('onRoute', (route) => {
      const hooks = hooksFor(route.url, typeof route.method === 'string' ? route.method : undefined);
      if (hooks.onRequest !== undefined) route.onRequest = appendHook(route.onRequest, hooks.onRequest);
      route.onResponse = appendHook(route.onResponse, hooks.onResponse);
    });
    // Requests no route matched (404s of any URL) share one name.
    const unmatched = hooksFor(UNMATCHED_ROUTE);
    const unmatchedOnRequest = unmatched.onRequest;
    if (unmatchedOnRequest !== undefined) {
      fastify.addHook('onRequest', (request, reply, next) =>
        request.is404 ? unmatchedOnRequest(request, reply, next) : next(),
      );
    }
    fastify.addHook('onResponse', (request, reply, next) =>
      request.is404 ? unmatched.onResponse(request, reply, next) : next(),
    );
    // An aborted request gets no onResponse: its scope must still end (counted as failed).
    if (useScope) {
      fastify.addHook('onRequestAbort', (request, next) => {
        request.hotpathFinish?.(UNMATCHED_ROUTE, 499, false);
        next();
      });
    }
    done();
  },
  {
    // What `fastify-plugin` sets: register into the parent context, so the hooks see every route.
    [Symbol.for('skip-override')]: true,
    [Symbol.for('fastify.display-name')]: 'hotpath-profiler',
  },
);

/** Options of {@link profileRequests}. */
export interface ProfileRequestsOptions extends RequestProfilingOptions {
  /**
   * The route template of a request (`/users/:id`), from your router. Default: the path with id-like segments
   * (numbers, UUIDs, long hex or mixed tokens) replaced by `:id`, and past `maxRoutes` distinct routes `(other)`.
   */
  route?: (req: IncomingMessage) => string | undefined;
  /** Distinct default routes kept before `(other)` (default 100; 1 … 10,000). */
  maxRoutes?: number;
}

/** `/users/42/orders/0f8c…` → `/users/:id/orders/:id`: segments that look like ids become `:id`. */
export function routeOfPath(path: string): string {
  const segments = path.split('/').map((segment) => {
    if (segment === '') return segment;
    if (/^\d+$/.test(segment)) return ':id';
    if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(segment)) return ':id';
    if (/^[0-9a-f]{16,}$/i.test(segment)) return ':id';
    if (segment.length >= 16 && /\d/.test(segment)) return ':id';
    if (segment.length > 64) return ':id';
    return segment;
  });
  return segments.join('/') || '/';
}

/**
 * Wraps a `node:http` handler: `createServer(profileRequests(handler, app))`. Each request runs inside a scope
 * named `http <METHOD> <route>`; give `route` for exact templates (the default guesses ids and caps the count).
 * @throws ConfigError for bad options or when `app` is not a hotpath app.
 */
export function profileRequests(
  handler: (req: IncomingMessage, res: ServerResponse) => unknown,
  app: RequestProfilingTarget,
  options: ProfileRequestsOptions = {},
): (req: IncomingMessage, res: ServerResponse) => void {
  checkTarget(app, 'profileRequests');
  const useScope = options.scope !== false;
  if (typeof handler !== 'function')
    throw new ConfigError('profileRequests', 'profileRequests: handler must be a function');
  const maxRoutes = options.maxRoutes ?? 100;
  if (!Number.isInteger(maxRoutes) || maxRoutes < 1 || maxRoutes > 10_000) {
    throw new ConfigError(
      'profileRequests.maxRoutes',
      `maxRoutes must be an integer from 1 to 10,000, got ${maxRoutes}`,
    );
  }
  const seen = new Set<string>();
  const routeOf = (req: IncomingMessage): string => {
    const given = options.route?.(req);
    if (given !== undefined) return given;
    const path = routeOfPath((req.url ?? '/').split('?')[0] as string);
    if (seen.has(path)) return path;
    if (seen.size >= maxRoutes) return OTHER_ROUTE;
    seen.add(path);
    return path;
  };
  return (req, res) => {
    const route = routeOf(req);
    profile(app, useScope, methodOf(req), route, (finish) => {
      const done = () => finish(route, res.statusCode, res.writableFinished);
      res.once('finish', done);
      res.once('close', done);
      try {
        const result = handler(req, res);
        if (result !== null && typeof result === 'object' && typeof (result as Promise<unknown>).then === 'function') {
          // A rejection stays unhandled, as without the wrapper; the response is closed so the scope ends.
          (result as Promise<unknown>).then(undefined, (error: unknown) => {
            if (!res.headersSent) res.statusCode = 500;
            res.end();
            return Promise.reject(error);
          });
        }
      } catch (error) {
        if (!res.headersSent) res.statusCode = 500;
        res.end();
        // A throw stays uncaught, as without the wrapper (it would otherwise vanish into the scope's promise).
        process.nextTick(() => {
          throw error;
        });
      }
    });
  };
}
