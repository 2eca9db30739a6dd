/**
 * Inbound rate limits: an Express middleware (`requestLimiter`), a Fastify plugin (`fastifyLimiter`) and a
 * `node:http` wrapper (`limitRequests`), all built on one {@link KeyedRateLimiter} — the same exact sliding
 * window as outbound limits, shared across processes when `store` is a shared store (Redis).
 * @module
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { ResponseLike } from '../core/collaborators.js';
import { ConfigError } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { validateOptions } from '../core/options.js';
import { KeyedRateLimiter, type RateLimitStore } from '../ratelimit/index.js';
import { ClientResolver, type TrustedProxies } from './request-limiter-client.js';

/** Options of {@link requestLimiter}, {@link fastifyLimiter} and {@link limitRequests}. */
export interface RequestLimiterOptions {
  /** Requests allowed per client in any window of `intervalMs` (a sliding window, not a fixed one). */
  limit: number;
  /** Window length in milliseconds. */
  intervalMs: number;
  /**
   * The bucket of a request (an API key, a user id). Default: the client address (see `trustedProxies`
   * and `ipv6Prefix`). Returning `undefined` falls back to the client address. Keys longer than 256
   * characters are hashed.
   */
  key?: (req: IncomingMessage) => string | undefined | Promise<string | undefined>;
  /**
   * Proxies whose `X-Forwarded-For` / `Forwarded` headers are believed (default: none — the socket's peer
   * is the client). Addresses, CIDR ranges, `"loopback"`, `"private"`, `"linklocal"`, or a function.
   * The chain is walked from the right and stops at the first address that is not a trusted proxy.
   */
  trustedProxies?: TrustedProxies;
  /** IPv6 clients share a bucket per prefix of this many bits (default 56). */
  ipv6Prefix?: number;
  /** Where the windows live (default: an in-process store holding up to `maxKeys` clients); a Redis store shares them. */
  store?: RateLimitStore;
  /** Most clients the default in-process store holds at once (default 100,000; ~540 bytes each, key included, so ~54 MB at the cap); idle ones are dropped first. */
  maxKeys?: number;
  /** Prefix of the keys in `store` (default `"req:"`), so several limiters can share one store. */
  keyPrefix?: string;
  /**
   * Quota headers: `'ietf'` (default) — `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers);
   * `'legacy'` — `X-RateLimit-Limit`, `-Remaining`, `-Reset` (epoch seconds); `'both'`; `'none'`.
   * A refused request always carries `Retry-After` (seconds).
   */
  headers?: 'ietf' | 'legacy' | 'both' | 'none';
  /**
   * Milliseconds a request may wait for its turn instead of being refused (default 0: refuse at once).
   * Meant for internal callers that prefer latency to a 429; a request whose wait would be longer is refused.
   */
  waitMs?: number;
  /**
   * What happens when the store fails (Redis unreachable with the store's own `failMode: 'closed'`):
   * `'closed'` (default) answers 503 with `Retry-After: 1`; `'open'` lets the request through. Logged.
   */
  failMode?: 'open' | 'closed';
  /** Name of the quota policy in the IETF headers (default `"<limit>-in-<seconds>s"`). */
  policyName?: string;
  /** Status of a refused request (default 429). */
  statusCode?: number;
  /** Body of a refused request (default `"Too Many Requests"`, text/plain). */
  message?: string;
  /** Requests for which this returns true are not counted (health checks, an allow-list). */
  skip?: (req: IncomingMessage) => boolean;
  /** Receives store failures. */
  logger?: Logger;
}

/** Counters of an inbound limiter; plain numbers. */
export interface RequestLimiterStats {
  /** Requests let through (including those that waited). */
  allowed: number;
  /** Requests refused with `statusCode` (429). */
  limited: number;
  /** Requests that waited for their turn (`waitMs`) and were let through. */
  waited: number;
  /** Requests answered by `failMode` because the store failed. */
  storeFailures: number;
  /** Per-client limiters held in memory now. */
  clients: number;
}

/** What an inbound limiter decided for one request. */
export interface RequestLimitDecision {
  /** True when the request may proceed. */
  allowed: boolean;
  /** Status to answer with when not allowed (429, or 503 when the store failed closed). */
  status: number;
  /** Headers to set, on allowed and refused responses alike. */
  headers: [string, string][];
  /** Milliseconds after which a retry makes sense (0 when allowed). */
  retryAfterMs: number;
  /** Body of a refusal (the `message`, or "Service Unavailable" when the store failed closed); "" when allowed. */
  body: string;
}

/** The engine shared by the three adapters: one `KeyedRateLimiter` and the header policy. */
export class InboundLimiter {
  /** The per-client limiter (for `stats()`, or to `penalize` a client). */
  readonly limiter: KeyedRateLimiter;
  readonly #limit: number;
  readonly #intervalMs: number;
  readonly #resolver: ClientResolver;
  readonly #key: RequestLimiterOptions['key'];
  readonly #skip: RequestLimiterOptions['skip'];
  readonly #ietf: boolean;
  readonly #legacy: boolean;
  readonly #waitMs: number;
  readonly #isFailOpen: boolean;
  readonly #statusCode: number;
  readonly #message: string;
  readonly #policyName: string;
  readonly #policyHeader: string;
  readonly #logger: Logger;
  #allowed = 0;
  #limited = 0;
  #waited = 0;
  #storeFailures = 0;

  /** @throws ConfigError for a missing, unknown or out-of-range option. */
  constructor(scope: string, options: RequestLimiterOptions) {
    validateOptions(scope, options, {
      limit: { type: 'number', required: true, exclusiveMin: true, min: 0 },
      intervalMs: { type: 'number', required: true, exclusiveMin: true, min: 0 },
      key: { type: 'function' },
      trustedProxies: { type: 'any' },
      ipv6Prefix: { type: 'number', integer: true, min: 1, max: 128 },
      store: { type: 'object' },
      maxKeys: { type: 'number', integer: true, min: 1 },
      keyPrefix: { type: 'string' },
      headers: { type: 'string', oneOf: ['ietf', 'legacy', 'both', 'none'] },
      waitMs: { type: 'number', min: 0 },
      failMode: { type: 'string', oneOf: ['open', 'closed'] },
      policyName: { type: 'string', nonEmpty: true, maxLength: 100 },
      statusCode: { type: 'number', integer: true, min: 400, max: 599 },
      message: { type: 'string' },
      skip: { type: 'function' },
      logger: { type: 'object' },
    });
    if (options.policyName !== undefined && !/^[\w.-]+$/.test(options.policyName)) {
      throw new ConfigError(
        `${scope}.policyName`,
        `${scope}.policyName may hold letters, digits, "_", "-" and "." only`,
      );
    }
    this.#limit = options.limit;
    this.#intervalMs = options.intervalMs;
    this.#resolver = new ClientResolver(scope, options.trustedProxies, options.ipv6Prefix ?? 56);
    this.#key = options.key;
    this.#skip = options.skip;
    const headers = options.headers ?? 'ietf';
    this.#ietf = headers === 'ietf' || headers === 'both';
    this.#legacy = headers === 'legacy' || headers === 'both';
    this.#waitMs = options.waitMs ?? 0;
    this.#isFailOpen = options.failMode === 'open';
    this.#statusCode = options.statusCode ?? 429;
    this.#message = options.message ?? 'Too Many Requests';
    this.#logger = options.logger ?? silentLogger;
    const windowSeconds = Math.max(1, Math.ceil(options.intervalMs / 1000));
    this.#policyName = options.policyName ?? `${options.limit}-in-${windowSeconds}s`;
    this.#policyHeader = `"${this.#policyName}";q=${options.limit};w=${windowSeconds}`;
    this.limiter = new KeyedRateLimiter({
      limit: options.limit,
      intervalMs: options.intervalMs,
      keyPrefix: options.keyPrefix ?? 'req:',
      maxKeys: options.maxKeys ?? 100_000,
      // Waiters only exist with waitMs; bound them so a flood cannot queue unbounded work.
      maxQueued: this.#waitMs > 0 ? options.limit : 0,
      // The margin spaces our own requests for an upstream that counts arrivals; an inbound limit counts
      // arrivals itself, so it has none (and Retry-After stays exact).
      marginMs: 0,
      name: scope,
      logger: this.#logger,
      ...(options.store === undefined ? {} : { store: options.store }),
    });
  }

  /**
   * Counts one request and says whether it may proceed, with the headers to send.
   * Never rejects: a store failure becomes the `failMode` answer.
   */
  async check(req: IncomingMessage): Promise<RequestLimitDecision> {
    if (this.#skip?.(req) === true) return { allowed: true, status: 200, headers: [], retryAfterMs: 0, body: '' };
    let key: string;
    let answer: { ok: boolean; retryAfterMs: number; remaining?: number | undefined; release: () => void };
    try {
      key = await this.#bucket(req);
      answer = await this.limiter.tryAcquireAsync(key);
    } catch (error) {
      return this.#onStoreFailure(error);
    }
    answer.release();
    if (answer.ok) {
      this.#allowed++;
      return { allowed: true, status: 200, headers: this.#headers(answer.remaining, 0), retryAfterMs: 0, body: '' };
    }
    if (this.#waitMs > 0 && answer.retryAfterMs <= this.#waitMs) {
      try {
        const release = await this.limiter.acquire(key, { signal: AbortSignal.timeout(this.#waitMs) });
        release();
        this.#allowed++;
        this.#waited++;
        return { allowed: true, status: 200, headers: this.#headers(undefined, 0), retryAfterMs: 0, body: '' };
      } catch (error) {
        const name = (error as { name?: unknown })?.name;
        if (
          name !== 'TimeoutError' &&
          name !== 'AbortError' &&
          (error as { code?: unknown })?.code !== 'ERR_HOTPATH_RATE_LIMIT'
        ) {
          return this.#onStoreFailure(error);
        }
      }
    }
    this.#limited++;
    const retryAfterMs = Math.max(1, answer.retryAfterMs);
    const headers = this.#headers(answer.remaining ?? 0, retryAfterMs);
    headers.push(['Retry-After', String(Math.ceil(retryAfterMs / 1000))]);
    return { allowed: false, status: this.#statusCode, headers, retryAfterMs, body: this.#message };
  }

  /** Counters; plain numbers. */
  stats(): RequestLimiterStats {
    return {
      allowed: this.#allowed,
      limited: this.#limited,
      waited: this.#waited,
      storeFailures: this.#storeFailures,
      clients: this.limiter.stats().keys,
    };
  }

  /** Closes the per-client limiter (waiting requests are refused). The store is the caller's to close. */
  close(): Promise<void> {
    return this.limiter.close();
  }

  async #bucket(req: IncomingMessage): Promise<string> {
    const custom = this.#key === undefined ? undefined : await this.#key(req);
    const key = custom === undefined || custom === '' ? this.#resolver.clientKey(req) : String(custom);
    return key.length > 256 ? `#${createHash('sha256').update(key).digest('base64url')}` : key;
  }

  #headers(remaining: number | undefined, retryAfterMs: number): [string, string][] {
    const headers: [string, string][] = [];
    // Allowed: the whole quota is back within one window at the latest. Refused: when a slot frees.
    const resetSeconds = Math.max(0, Math.ceil((retryAfterMs > 0 ? retryAfterMs : this.#intervalMs) / 1000));
    const left = remaining === undefined ? undefined : Math.max(0, Math.floor(remaining));
    if (this.#ietf) {
      headers.push(['RateLimit-Policy', this.#policyHeader]);
      if (left !== undefined) headers.push(['RateLimit', `"${this.#policyName}";r=${left};t=${resetSeconds}`]);
    }
    if (this.#legacy) {
      headers.push(['X-RateLimit-Limit', String(this.#limit)]);
      if (left !== undefined) headers.push(['X-RateLimit-Remaining', String(left)]);
      headers.push(['X-RateLimit-Reset', String(Math.ceil(Date.now() / 1000) + resetSeconds)]);
    }
    return headers;
  }

  #onStoreFailure(error: unknown): RequestLimitDecision {
    this.#storeFailures++;
    this.#logger.warn(
      { err: error, failMode: this.#isFailOpen ? 'open' : 'closed' },
      'request limiter: the rate-limit store failed',
    );
    if (this.#isFailOpen) return { allowed: true, status: 200, headers: [], retryAfterMs: 0, body: '' };
    return {
      allowed: false,
      status: 503,
      headers: [['Retry-After', '1']],
      retryAfterMs: 1000,
      body: 'Service Unavailable',
    };
  }
}

/** Writes a refusal on a Node response. */
function refuse(res: ResponseLike, decision: RequestLimitDecision): void {
  res.statusCode = decision.status;
  for (const [name, value] of decision.headers) res.setHeader(name, value);
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.end(decision.body);
}

/** The Express middleware of {@link requestLimiter}, with the engine's stats and close. */
export interface RequestLimiterMiddleware {
  /** Express/Connect middleware. */
  (req: IncomingMessage, res: ResponseLike, next: (error?: unknown) => void): void;
  /** The engine (stats, the per-client `limiter`). */
  readonly engine: InboundLimiter;
  /** Closes the per-client limiter. */
  close(): Promise<void>;
}

/**
 * Express (or Connect) middleware limiting requests per client. Mount it per route or route group for
 * different limits: `app.use('/api', requestLimiter({ limit: 100, intervalMs: 60_000 }))`.
 *
 * Express's own `trust proxy` setting is not consulted: pass `trustedProxies` here.
 * @throws ConfigError for bad options.
 * @example
 * ```ts
 * app.use('/login', requestLimiter({ limit: 5, intervalMs: 60_000, trustedProxies: ['loopback'] }));
 * ```
 */
export function requestLimiter(options: RequestLimiterOptions): RequestLimiterMiddleware {
  const engine = new InboundLimiter('requestLimiter', options);
  const middleware = ((req, res, next) => {
    engine.check(req).then((decision) => {
      if (!decision.allowed) {
        refuse(res, decision);
        return;
      }
      for (const [name, value] of decision.headers) res.setHeader(name, value);
      next();
    }, next);
  }) as RequestLimiterMiddleware;
  Object.defineProperty(middleware, 'engine', { value: engine });
  middleware.close = () => engine.close();
  return middleware;
}

/** The members of a Node `(req, res)` handler wrapped by {@link limitRequests}. */
export type RequestHandler = (req: IncomingMessage, res: ResponseLike) => unknown;

/** A `node:http` handler wrapped by {@link limitRequests}, with the engine's stats and close. */
export interface LimitedHandler {
  /** The `(req, res)` handler to pass to `http.createServer`. */
  (req: IncomingMessage, res: ResponseLike): void;
  /** The engine (stats, the per-client `limiter`). */
  readonly engine: InboundLimiter;
  /** Closes the per-client limiter. */
  close(): Promise<void>;
}

/**
 * Wraps a `node:http` handler: requests over the limit are answered 429 before `handler` runs.
 * @throws ConfigError for bad options.
 * @example
 * ```ts
 * http.createServer(limitRequests(handler, { limit: 60, intervalMs: 60_000 })).listen(3000);
 * ```
 */
export function limitRequests(handler: RequestHandler, options: RequestLimiterOptions): LimitedHandler {
  if (typeof handler !== 'function')
    throw new ConfigError('limitRequests.handler', 'limitRequests: handler must be a function');
  const engine = new InboundLimiter('limitRequests', options);
  const limited = ((req, res) => {
    void engine.check(req).then((decision) => {
      if (!decision.allowed) {
        refuse(res, decision);
        return;
      }
      for (const [name, value] of decision.headers) res.setHeader(name, value);
      return handler(req, res);
    });
  }) as LimitedHandler;
  Object.defineProperty(limited, 'engine', { value: engine });
  limited.close = () => engine.close();
  return limited;
}

/** The parts of a Fastify instance the plugin uses (structural, so fastify need not be installed). */
export interface FastifyLike {
  /** Adds a lifecycle hook. */
  addHook(name: string, hook: (...args: never[]) => unknown): unknown;
  /** Adds a property to the instance. */
  decorate?(name: string, value: unknown): unknown;
}

interface FastifyRequestLike {
  readonly raw: IncomingMessage;
}

interface FastifyReplyLike {
  header(name: string, value: string): FastifyReplyLike;
  code(status: number): FastifyReplyLike;
  type(contentType: string): FastifyReplyLike;
  send(body: string): FastifyReplyLike;
}

/**
 * Fastify plugin limiting requests per client: `app.register(fastifyLimiter, { limit, intervalMs })`. It
 * applies to the routes of the context it is registered in (it is not encapsulated, like `fastify-plugin`
 * plugins); register it inside a prefixed plugin for a per-route-group limit. The engine is closed with
 * the app. Fastify's `trustProxy` is not consulted: pass `trustedProxies` here.
 * @throws ConfigError for bad options (when registered).
 */
export const fastifyLimiter: ((
  fastify: FastifyLike,
  options: RequestLimiterOptions,
  done: (error?: Error) => void,
) => void) & { readonly [key: symbol]: unknown } = Object.assign(
  (fastify: FastifyLike, options: RequestLimiterOptions, done: (error?: Error) => void): void => {
    let engine: InboundLimiter;
    try {
      engine = new InboundLimiter('fastifyLimiter', options);
    } catch (error) {
      done(error as Error);
      return;
    }
    fastify.addHook('onRequest', (async (request: FastifyRequestLike, reply: FastifyReplyLike) => {
      const decision = await engine.check(request.raw);
      for (const [name, value] of decision.headers) reply.header(name, value);
      if (!decision.allowed) {
        reply.code(decision.status).type('text/plain; charset=utf-8').send(decision.body);
        return reply;
      }
      return undefined;
    }) as (...args: never[]) => unknown);
    fastify.addHook('onClose', (async () => engine.close()) as (...args: never[]) => unknown);
    done();
  },
  {
    // What fastify-plugin sets: the hooks apply to the registering context, not an encapsulated child.
    [Symbol.for('skip-override')]: true,
    [Symbol.for('fastify.display-name')]: 'hotpath-limiter',
  },
);
