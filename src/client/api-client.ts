/**
 * APIClient: JSON over a bounded keep-alive undici pool, with per-attempt and total timeouts that
 * really abort the socket, retries on the core backoff policy that never start earlier than the
 * server asked, server rate-limit feedback to a shared limiter, a circuit breaker, in-flight GET
 * dedupe and GET response caching.
 * @module
 */
import { setMaxListeners } from 'node:events';
import { type Dispatcher, Pool } from 'undici';
import { abortable, abortReason, sleep } from '../core/abort.js';
import {
  backoffDelay,
  DEFAULT_RETRY,
  type ResolvedRetryOptions,
  type RetryOptions,
  resolveRetryOptions,
} from '../core/backoff.js';
import { type Clock, systemClock, type TimerHandle } from '../core/clock.js';
import type { LimiterAcquireOptions } from '../core/collaborators.js';
import {
  ClosedError,
  ConfigError,
  HttpError,
  isHotpathError,
  RateLimitError,
  redactUrl,
  TimeoutError,
} from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { describeValue, validateOptions } from '../core/options.js';
import type { LatencyRecorder } from '../core/recorder.js';
import { responseTtlMs } from './cache-policy.js';
import { CircuitBreaker, type CircuitBreakerOptions } from './circuit-breaker.js';
import type { CachedResponse, ClientRateLimiter, ResponseCache } from './collaborators.js';
import { ConcurrencyGate } from './concurrency-gate.js';
import { BodyTooLargeSignal, Exchange } from './exchange.js';
import { appendQuery, type BaseUrl, joinPath, parseBaseUrl, type Query, routeTemplate } from './request-url.js';
import { ResponseParseError } from './response-parse-error.js';
import type { ClientResponse, ResponseHeaders } from './response-types.js';
import { hasServerFeedback, parseServerFeedback } from './server-feedback.js';

/** Retry options of the client: the shared backoff shape plus which requests may be retried. */
export interface ClientRetryOptions extends Partial<RetryOptions> {
  /** Methods retried (default GET, HEAD, OPTIONS, PUT, DELETE — the idempotent ones). */
  methods?: readonly string[];
  /** Statuses retried (default 408, 425, 429, 500, 502, 503, 504). */
  statusCodes?: readonly number[];
  /**
   * Retry POST (and PATCH) too (default false). A POST or PATCH carrying an `Idempotency-Key` header
   * is retried without this flag, because the server can then tell a repeat from a new request.
   */
  retryPost?: boolean;
}

/** Options of {@link APIClient}. */
export interface APIClientOptions {
  /** Absolute http(s) URL; its path is kept (`https://api.x.com/v2` + `/users` → `/v2/users`). */
  baseUrl: string;
  /** Headers sent with every request (e.g. `authorization`); never logged or put in errors. */
  headers?: Record<string, string>;
  /** Budget for a whole call, including retries, backoff and limiter waits, in ms (default 30,000). */
  timeoutMs?: number;
  /** Budget for one attempt, from sending to the last body byte, in ms (default 10,000). */
  attemptTimeoutMs?: number;
  /** Retry policy, or `false` for none (default: 3 retries, 100 ms base, 10 s cap, full jitter). */
  retry?: false | ClientRetryOptions;
  /** Limiter every attempt (retries included) takes a slot from; receives 429/503 and `RateLimit` feedback. */
  rateLimiter?: ClientRateLimiter;
  /** Cache for GET responses (hotpath `Cache` fits); respects `Cache-Control: no-store`, `no-cache`, `max-age`. */
  cache?: ResponseCache;
  /** Longest a cached response is kept, in ms; a shorter `max-age` wins (default 60,000). */
  cacheTtlMs?: number;
  /** Breaker options, or a shared {@link CircuitBreaker} instance (default: none). */
  circuitBreaker?: CircuitBreakerOptions | CircuitBreaker;
  /** Attempts in flight at once; the rest wait in line, bounded by `maxQueued` (default Infinity). */
  maxConcurrent?: number;
  /** Attempts that may wait for `maxConcurrent`; one more fails with `RateLimitError` (default 10,000). */
  maxQueued?: number;
  /** Keep-alive sockets to the origin (integer 1–4,096, default 32). */
  connections?: number;
  /** Idle time after which a keep-alive socket is closed, in ms (default 4,000). */
  keepAliveTimeoutMs?: number;
  /** TCP/TLS connect budget, in ms (default 10,000). */
  connectTimeoutMs?: number;
  /** Identical GETs in flight at once share one request (default false). */
  dedupe?: boolean;
  /** Largest success body read, in bytes; a larger one fails with `ResponseParseError` (default 64 MiB). */
  maxResponseBytes?: number;
  /** Receives `client.request <METHOD> <route>` latencies (whole call, retries included). */
  profiler?: LatencyRecorder;
  /** Receives debug lines for retries (URLs redacted, never headers). */
  logger?: Logger;
  /** Time source for deadlines, backoff and `Retry-After` dates (default: the system clock). */
  clock?: Clock;
}

/** Options of one request. */
export interface RequestOptions {
  /** Query parameters, encoded and appended. */
  query?: Query;
  /** Body sent as JSON (`content-type: application/json`). */
  json?: unknown;
  /** Raw body; set `content-type` yourself. */
  body?: string | Uint8Array;
  /** Extra headers for this request (override the client's). */
  headers?: Record<string, string>;
  /** Aborts the call (waits, the attempt and its socket); rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** Overrides the client's `timeoutMs` for this call. */
  timeoutMs?: number;
  /** Overrides the client's `attemptTimeoutMs` for this call. */
  attemptTimeoutMs?: number;
  /** Overrides the client's retry options (merged over them), or `false` for no retries. */
  retry?: false | ClientRetryOptions;
  /** Route template for metrics, e.g. `/users/:id` (default: derived from the path, ids → `:id`). */
  route?: string;
  /** How to read a success body: `json` (default; empty body → `undefined`), `text` or `bytes`. */
  responseType?: 'json' | 'text' | 'bytes';
  /** Throw {@link HttpError} on status ≥ 400 (default true); with false, the response is returned. */
  throwHttpErrors?: boolean;
  /** Use the response cache for this GET (default true when the client has one). */
  cache?: boolean;
  /** Limiter priority (higher first). */
  priority?: number;
  /** Limiter weight (units this request consumes). */
  weight?: number;
}

/** Counters of an {@link APIClient}; plain numbers. */
export interface APIClientStats {
  /** Calls that went to the network (cache hits and dedupe followers excluded). */
  requests: number;
  /** Calls that ended with a status < 400 (or were returned with `throwHttpErrors: false`). */
  succeeded: number;
  /** Calls that ended with an error. */
  failed: number;
  /** Attempts sent (first tries plus retries). */
  attempts: number;
  /** Retries scheduled. */
  retries: number;
  /** Attempt or total timeouts that fired. */
  timeouts: number;
  /** 429 and 503 responses seen. */
  throttled: number;
  /** Calls refused by the open circuit. */
  circuitRejected: number;
  /** GETs answered from the cache. */
  cacheHits: number;
  /** GETs that looked in the cache and missed. */
  cacheMisses: number;
  /** Response-cache `get`/`set` calls that threw (the request went on without the cache). */
  cacheErrors: number;
  /** GETs that joined an identical request already in flight. */
  deduped: number;
  /** Calls in progress. */
  inFlight: number;
  /** Attempts waiting for `maxConcurrent`. */
  queued: number;
  /** Breaker state: 0 closed (or no breaker), 1 open, 2 half-open. */
  circuitState: number;
}

interface RetryPlan {
  policy: ResolvedRetryOptions;
  methods: ReadonlySet<string>;
  statusCodes: ReadonlySet<number>;
  retryPost: boolean;
}

/** Everything one call needs, resolved once. */
interface Call {
  method: string;
  /** Path with prefix and query, as sent to the pool. */
  path: string;
  headers: Record<string, string>;
  body: string | Uint8Array | undefined;
  signal: AbortSignal | undefined;
  timeoutMs: number;
  attemptTimeoutMs: number;
  deadline: number;
  plan: RetryPlan | undefined;
  isRetryable: boolean;
  responseType: 'json' | 'text' | 'bytes';
  throwHttpErrors: boolean;
  limiterOptions: LimiterAcquireOptions | undefined;
  /** Set when the total budget ran out. */
  isExpired: boolean;
}

/** A GET in flight that identical GETs join (`dedupe`). */
interface SharedCall {
  promise: Promise<ClientResponse<unknown>>;
  controller: AbortController;
  /** Callers still waiting; the last to abort cancels the request. */
  waiters: number;
}

interface AttemptResult extends ClientResponse<unknown> {
  /** Body text of an error response (bounded). */
  errorBody: string | undefined;
  /** Wait the server asked for, in ms. */
  serverWaitMs: number | undefined;
}

const DEFAULT_METHODS = ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'] as const;
const DEFAULT_STATUS_CODES = [408, 425, 429, 500, 502, 503, 504] as const;
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'POST', 'PATCH', 'TRACE']);
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Transport errors worth another attempt: the connection broke or never formed; nothing was processed. */
const RETRYABLE_ERROR_CODES = new Set([
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'EAI_AGAIN',
]);
/** Deadline buckets for limiter/gate waits share one AbortSignal per 50 ms (see #deadlineSignal). */
const DEADLINE_BUCKET_MS = 50;
/** Marks a TimeoutError raised by the total budget (as opposed to one attempt's). */
const TOTAL = Symbol('hotpath.client.totalTimeout');
/** Profiler names per client: 256 distinct routes is plenty for one upstream API; more means ids leak in. */
const MAX_ROUTE_NAMES = 256;
const MAX_ROUTE_MEMO = 2048;
/** Distinct GETs that can share a request at once; beyond, calls run on their own (memory bound). */
const MAX_SHARED = 10_000;

const CLIENT_SCHEMA = {
  baseUrl: { type: 'string', required: true, nonEmpty: true, maxLength: 2048 },
  headers: { type: 'object' },
  timeoutMs: { type: 'number', min: 0, exclusiveMin: true, allowInfinity: true },
  attemptTimeoutMs: { type: 'number', min: 0, exclusiveMin: true, allowInfinity: true },
  retry: { type: 'any' },
  rateLimiter: { type: 'object' },
  cache: { type: 'object' },
  cacheTtlMs: { type: 'number', min: 0, exclusiveMin: true, max: 31_536_000_000 },
  circuitBreaker: { type: 'object' },
  maxConcurrent: { type: 'number', min: 1, integer: true, allowInfinity: true },
  maxQueued: { type: 'number', min: 0, integer: true, max: 10_000_000 },
  connections: { type: 'number', min: 1, max: 4096, integer: true },
  keepAliveTimeoutMs: { type: 'number', min: 1, max: 3_600_000 },
  connectTimeoutMs: { type: 'number', min: 1, max: 600_000 },
  dedupe: { type: 'boolean' },
  maxResponseBytes: { type: 'number', min: 1, integer: true, max: 2_147_483_647 },
  profiler: { type: 'object' },
  logger: { type: 'object' },
  clock: { type: 'object' },
} as const;

const REQUEST_SCHEMA = {
  query: { type: 'object' },
  json: { type: 'any' },
  body: { type: 'any' },
  headers: { type: 'object' },
  signal: { type: 'object' },
  timeoutMs: CLIENT_SCHEMA.timeoutMs,
  attemptTimeoutMs: CLIENT_SCHEMA.attemptTimeoutMs,
  retry: { type: 'any' },
  route: { type: 'string', nonEmpty: true, maxLength: 200 },
  responseType: { type: 'string', oneOf: ['json', 'text', 'bytes'] },
  throwHttpErrors: { type: 'boolean' },
  cache: { type: 'boolean' },
  priority: { type: 'number' },
  weight: { type: 'number', min: 0 },
} as const;

/** Node timers cannot wait longer (2^31-1 ms, about 24.8 days; longer fires at once): longer budgets arm no timer. */
const MAX_TIMER_MS = 2_147_483_647;
/** What undici accepts in a request path (printable Latin-1, no spaces). */
const INVALID_PATH = /[^\u0021-\u00ff]/;

const EMPTY_OPTIONS: RequestOptions = Object.freeze({});

function checkHeaders(name: string, headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of Object.keys(headers)) {
    const value = headers[key];
    if (!TOKEN.test(key)) throw new ConfigError(name, `${name}: invalid header name ${describeValue(key)}`);
    // The value is never echoed: it may be a credential.
    if (typeof value !== 'string') throw new ConfigError(name, `${name}["${key}"] must be a string`);
    out[key.toLowerCase()] = value;
  }
  return out;
}

function resolveRetryPlan(
  scope: string,
  input: false | ClientRetryOptions | undefined,
  base: RetryPlan | undefined,
): RetryPlan | undefined {
  if (input === false) return undefined;
  if (input === undefined) input = {};
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new ConfigError(scope, `${scope} must be false or an object, got ${describeValue(input)}`);
  }
  const { methods, statusCodes, retryPost, ...backoff } = input;
  const policy = resolveRetryOptions(scope, backoff, base?.policy ?? DEFAULT_RETRY);
  let methodSet = base?.methods ?? new Set<string>(DEFAULT_METHODS);
  if (methods !== undefined) {
    if (!Array.isArray(methods) || methods.some((m) => typeof m !== 'string' || !TOKEN.test(m))) {
      throw new ConfigError(`${scope}.methods`, `${scope}.methods must be an array of HTTP method names`);
    }
    methodSet = new Set(methods.map((m) => m.toUpperCase()));
  }
  let statusSet = base?.statusCodes ?? new Set<number>(DEFAULT_STATUS_CODES);
  if (statusCodes !== undefined) {
    if (!Array.isArray(statusCodes) || statusCodes.some((s) => !Number.isInteger(s) || s < 100 || s > 599)) {
      throw new ConfigError(`${scope}.statusCodes`, `${scope}.statusCodes must be an array of integers 100–599`);
    }
    statusSet = new Set(statusCodes);
  }
  if (retryPost !== undefined && typeof retryPost !== 'boolean') {
    throw new ConfigError(
      `${scope}.retryPost`,
      `${scope}.retryPost must be a boolean, got ${describeValue(retryPost)}`,
    );
  }
  return { policy, methods: methodSet, statusCodes: statusSet, retryPost: retryPost ?? base?.retryPost ?? false };
}

function checkMethod(method: string): string {
  if (KNOWN_METHODS.has(method)) return method;
  if (typeof method !== 'string' || !TOKEN.test(method)) {
    throw new ConfigError(
      'APIClient.request.method',
      `APIClient.request.method must be an HTTP method, got ${describeValue(method)}`,
    );
  }
  const upper = method.toUpperCase();
  if (upper === 'CONNECT')
    throw new ConfigError('APIClient.request.method', 'APIClient.request.method CONNECT is not supported');
  return upper;
}

function errorCode(error: unknown): string | undefined {
  if (error === null || typeof error !== 'object') return undefined;
  const { code, cause } = error as { code?: unknown; cause?: unknown };
  if (typeof code === 'string') return code;
  return cause === undefined ? undefined : errorCode(cause);
}

function isCachedResponse(value: unknown): value is CachedResponse {
  return value !== null && typeof value === 'object' && typeof (value as CachedResponse).status === 'number';
}

/**
 * An HTTP/1.1 JSON client for one upstream origin. Create one per upstream and reuse it: it keeps up
 * to `connections` sockets alive. `request()` resolves with `{ status, headers, data }`; the verb
 * helpers resolve with `data`.
 *
 * @example
 * ```ts
 * await using api = new APIClient({ baseUrl: 'https://api.example.com/v2', rateLimiter, retry: { retries: 3 } });
 * const user = await api.get<User>('/users/42', { route: '/users/:id' });
 * ```
 */
export class APIClient implements AsyncDisposable {
  readonly #pool: Pool;
  readonly #base: BaseUrl;
  readonly #headers: Record<string, string>;
  readonly #timeoutMs: number;
  readonly #attemptTimeoutMs: number;
  readonly #retry: RetryPlan | undefined;
  /** Jitter-free backoff used to pause the limiter after a 429/503 that named no wait. */
  readonly #penaltyPolicy: ResolvedRetryOptions;
  readonly #limiter: ClientRateLimiter | undefined;
  readonly #cache: ResponseCache | undefined;
  readonly #cacheTtlMs: number;
  readonly #breaker: CircuitBreaker | undefined;
  readonly #gate: ConcurrencyGate | undefined;
  readonly #shared: Map<string, SharedCall> | undefined;
  readonly #profiler: LatencyRecorder | undefined;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #pathNames = new Map<string, Map<string, string>>();
  readonly #routeNames = new Map<string, Map<string, string>>();
  readonly #distinctNames = new Set<string>();
  readonly #deadlineBuckets = new Map<number, { controller: AbortController; timer: TimerHandle }>();
  readonly #maxResponseBytes: number;
  #closing: Promise<void> | undefined;
  #closeController: AbortController | undefined;
  #isClosed = false;
  #requests = 0;
  #succeeded = 0;
  #failed = 0;
  #attempts = 0;
  #retries = 0;
  #timeouts = 0;
  #throttled = 0;
  #circuitRejected = 0;
  #cacheHits = 0;
  #cacheMisses = 0;
  #cacheErrors = 0;
  #deduped = 0;
  #inFlight = 0;

  /** @throws ConfigError for a missing or bad `baseUrl`, unknown options or out-of-range values. */
  constructor(options: APIClientOptions) {
    validateOptions('APIClient', options, CLIENT_SCHEMA);
    this.#base = parseBaseUrl('APIClient.baseUrl', options.baseUrl);
    this.#headers = { accept: 'application/json', ...checkHeaders('APIClient.headers', options.headers ?? {}) };
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#attemptTimeoutMs = options.attemptTimeoutMs ?? 10_000;
    this.#retry = resolveRetryPlan('APIClient.retry', options.retry, undefined);
    this.#penaltyPolicy = { ...(this.#retry?.policy ?? DEFAULT_RETRY), jitter: false };
    const limiter = options.rateLimiter;
    if (limiter !== undefined && (typeof limiter.acquire !== 'function' || typeof limiter.penalize !== 'function')) {
      throw new ConfigError(
        'APIClient.rateLimiter',
        'APIClient.rateLimiter must have acquire() and penalize() methods',
      );
    }
    this.#limiter = limiter;
    const cache = options.cache;
    if (cache !== undefined && (typeof cache.get !== 'function' || typeof cache.set !== 'function')) {
      throw new ConfigError('APIClient.cache', 'APIClient.cache must have get() and set() methods');
    }
    this.#cache = cache;
    this.#cacheTtlMs = options.cacheTtlMs ?? 60_000;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
    const breaker = options.circuitBreaker;
    this.#breaker =
      breaker === undefined || breaker instanceof CircuitBreaker
        ? breaker
        : new CircuitBreaker({
            clock: this.#clock,
            name: `circuit of ${this.#base.origin}`,
            onStateChange: (state, previous) =>
              this.#logger[state === 'open' ? 'warn' : 'info'](
                { origin: this.#base.origin, state, previous },
                `APIClient: circuit ${state}`,
              ),
            ...breaker,
          });
    const maxConcurrent = options.maxConcurrent ?? Number.POSITIVE_INFINITY;
    this.#gate =
      maxConcurrent === Number.POSITIVE_INFINITY
        ? undefined
        : new ConcurrencyGate(maxConcurrent, options.maxQueued ?? 10_000);
    this.#shared = options.dedupe ? new Map() : undefined;
    this.#maxResponseBytes = options.maxResponseBytes ?? 67_108_864;
    this.#profiler = options.profiler;
    this.#pool = new Pool(this.#base.origin, {
      connections: options.connections ?? 32,
      pipelining: 1,
      keepAliveTimeout: options.keepAliveTimeoutMs ?? 4_000,
      connectTimeout: options.connectTimeoutMs ?? 10_000,
      // Our own attempt/total timers govern; undici's 300 s defaults would only mask them.
      headersTimeout: 0,
      bodyTimeout: 0,
    });
  }

  /**
   * Sends one request (retrying per the policy) and reads the body.
   * @throws HttpError for status ≥ 400 after retries (unless `throwHttpErrors: false`),
   *   ResponseParseError for a body that is not JSON when JSON was expected,
   *   TimeoutError when `timeoutMs` runs out (or the last attempt's `attemptTimeoutMs`),
   *   RateLimitError when the server asks to wait longer than the budget left,
   *   CircuitOpenError when the breaker is open, ClosedError after `close()`,
   *   ConfigError for bad arguments, the signal's reason when aborted, or the transport error.
   */
  request<T = unknown>(
    method: string,
    path: string,
    options: RequestOptions = EMPTY_OPTIONS,
  ): Promise<ClientResponse<T>> {
    // Not an async function: one promise layer less on the hot path; argument errors still reject.
    try {
      return this.#request(method, path, options) as Promise<ClientResponse<T>>;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #request(method: string, path: string, options: RequestOptions): Promise<ClientResponse<unknown>> {
    if (this.#isClosed) throw new ClosedError('APIClient');
    const verb = checkMethod(method);
    if (typeof path !== 'string') {
      throw new ConfigError(
        'APIClient.request.path',
        `APIClient.request.path must be a string, got ${describeValue(path)}`,
      );
    }
    if (options !== EMPTY_OPTIONS) validateOptions('APIClient.request', options, REQUEST_SCHEMA);
    const signal = options.signal;
    if (signal?.aborted) throw abortReason(signal);
    const target = appendQuery(joinPath(this.#base, path), options.query);
    if (INVALID_PATH.test(target)) {
      // undici would throw its own InvalidArgumentError after our breaker and limiter had counted the attempt.
      throw new ConfigError(
        'APIClient.request.path',
        'APIClient.request.path contains invalid characters (encode spaces and control characters)',
      );
    }
    const extraHeaders =
      options.headers === undefined ? undefined : checkHeaders('APIClient.request.headers', options.headers);
    // Names are only built when someone records them.
    const name = this.#profiler === undefined ? '' : this.#metricName(verb, path, options.route);

    if (verb !== 'GET' || (this.#cache === undefined && this.#shared === undefined)) {
      return this.#execute(this.#prepare(verb, target, options, extraHeaders, signal), name);
    }
    const key =
      extraHeaders === undefined ? target : `${target}\n${JSON.stringify(Object.entries(extraHeaders).sort())}`;
    // Callers share a result only when they would read it the same way.
    const responseKey =
      (options.responseType === undefined || options.responseType === 'json'
        ? key
        : `${key}\n${options.responseType}`) + (options.throwHttpErrors === false ? '\nno-throw' : '');
    return this.#cachedGet(responseKey, target, options, extraHeaders, signal, name);
  }

  /** A GET through the response cache and/or in-flight dedupe. */
  async #cachedGet(
    responseKey: string,
    target: string,
    options: RequestOptions,
    extraHeaders: Record<string, string> | undefined,
    signal: AbortSignal | undefined,
    name: string,
  ): Promise<ClientResponse<unknown>> {
    const cache = options.cache === false ? undefined : this.#cache;
    if (cache !== undefined) {
      const cached = await this.#cacheGet(cache, responseKey);
      if (isCachedResponse(cached)) {
        this.#cacheHits++;
        return cached as ClientResponse<unknown>;
      }
      this.#cacheMisses++;
    }
    const run = async (runSignal: AbortSignal | undefined): Promise<ClientResponse<unknown>> => {
      const response = await this.#execute(this.#prepare('GET', target, options, extraHeaders, runSignal), name);
      if (cache !== undefined && response.status < 300) {
        const ttlMs = responseTtlMs(response.headers, this.#cacheTtlMs);
        if (ttlMs > 0) await this.#cacheSet(cache, responseKey, response, ttlMs);
      }
      return response;
    };
    if (this.#shared === undefined) return run(signal);
    return this.#joinShared(responseKey, run, signal);
  }

  /** GET `path`; resolves with the parsed body. Throws as {@link APIClient.request}. */
  async get<T = unknown>(path: string, options?: RequestOptions): Promise<T> {
    return (await this.request<T>('GET', path, options)).data;
  }

  /** POST `path` (body in `options.json` or `options.body`); resolves with the parsed body. Throws as {@link APIClient.request}. */
  async post<T = unknown>(path: string, options?: RequestOptions): Promise<T> {
    return (await this.request<T>('POST', path, options)).data;
  }

  /** PUT `path`; resolves with the parsed body. Throws as {@link APIClient.request}. */
  async put<T = unknown>(path: string, options?: RequestOptions): Promise<T> {
    return (await this.request<T>('PUT', path, options)).data;
  }

  /** PATCH `path`; resolves with the parsed body. Throws as {@link APIClient.request}. */
  async patch<T = unknown>(path: string, options?: RequestOptions): Promise<T> {
    return (await this.request<T>('PATCH', path, options)).data;
  }

  /** DELETE `path`; resolves with the parsed body (often `undefined`). Throws as {@link APIClient.request}. */
  async delete<T = unknown>(path: string, options?: RequestOptions): Promise<T> {
    return (await this.request<T>('DELETE', path, options)).data;
  }

  /** Counters; plain numbers. */
  stats(): APIClientStats {
    return {
      requests: this.#requests,
      succeeded: this.#succeeded,
      failed: this.#failed,
      attempts: this.#attempts,
      retries: this.#retries,
      timeouts: this.#timeouts,
      throttled: this.#throttled,
      circuitRejected: this.#circuitRejected,
      cacheHits: this.#cacheHits,
      cacheMisses: this.#cacheMisses,
      cacheErrors: this.#cacheErrors,
      deduped: this.#deduped,
      inFlight: this.#inFlight,
      queued: this.#gate?.queued ?? 0,
      circuitState: this.#breaker?.stats().state ?? 0,
    };
  }

  /**
   * Stops accepting requests (later calls throw {@link ClosedError}), lets requests in flight finish
   * (each is bounded by its timeouts) and closes every socket. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#isClosed = true;
      this.#closeController?.abort(new ClosedError('APIClient'));
      for (const { timer } of this.#deadlineBuckets.values()) this.#clock.clearTimeout(timer);
      this.#deadlineBuckets.clear();
      this.#closing = this.#pool.close();
    }
    return this.#closing;
  }

  /** Same as {@link APIClient.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #cacheGet(cache: ResponseCache, key: string): Promise<unknown> {
    try {
      return await cache.get(key);
    } catch (error) {
      // A broken cache must not break the API calls it was meant to speed up: count, log, go to the network.
      this.#cacheErrors++;
      this.#logger.warn({ error }, 'APIClient: response cache get failed; fetching instead');
      return undefined;
    }
  }

  async #cacheSet(cache: ResponseCache, key: string, response: CachedResponse, ttlMs: number): Promise<void> {
    try {
      await cache.set(key, response, { ttlMs });
    } catch (error) {
      this.#cacheErrors++;
      this.#logger.warn({ error }, 'APIClient: response cache set failed');
    }
  }

  #prepare(
    method: string,
    path: string,
    options: RequestOptions,
    extraHeaders: Record<string, string> | undefined,
    signal: AbortSignal | undefined,
  ): Call {
    let headers = this.#headers;
    let body: string | Uint8Array | undefined = options.body;
    if (options.json !== undefined && body !== undefined) {
      throw new ConfigError('APIClient.request.json', 'APIClient.request: pass either json or body, not both');
    }
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers = { ...headers, 'content-type': 'application/json', ...extraHeaders };
    } else if (extraHeaders !== undefined) {
      headers = { ...headers, ...extraHeaders };
    }
    if (body !== undefined && typeof body !== 'string' && !(body instanceof Uint8Array)) {
      throw new ConfigError(
        'APIClient.request.body',
        'APIClient.request.body must be a string or Uint8Array (use json for objects)',
      );
    }
    const plan =
      options.retry === undefined
        ? this.#retry
        : resolveRetryPlan('APIClient.request.retry', options.retry, this.#retry);
    const isRetryable =
      plan !== undefined &&
      (plan.methods.has(method) ||
        ((method === 'POST' || method === 'PATCH') &&
          (plan.retryPost || extraHeaders?.['idempotency-key'] !== undefined)));
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const { priority, weight } = options;
    return {
      method,
      path,
      headers,
      body,
      signal,
      timeoutMs,
      attemptTimeoutMs: options.attemptTimeoutMs ?? this.#attemptTimeoutMs,
      deadline: this.#clock.now() + timeoutMs,
      plan,
      isRetryable,
      responseType: options.responseType ?? 'json',
      throwHttpErrors: options.throwHttpErrors ?? true,
      limiterOptions: priority === undefined && weight === undefined ? undefined : { priority, weight },
      isExpired: false,
    };
  }

  async #execute(call: Call, name: string): Promise<ClientResponse<unknown>> {
    const profiler = this.#profiler;
    const started = profiler === undefined ? 0 : performance.now();
    this.#requests++;
    this.#inFlight++;
    let isError = true;
    try {
      for (let attempt = 1; ; attempt++) {
        let result: AttemptResult | undefined;
        let failure: unknown;
        try {
          result = await this.#attempt(call, attempt);
          if (result.status < 400) {
            isError = false;
            return { status: result.status, headers: result.headers, data: result.data };
          }
        } catch (error) {
          failure = error;
        }
        const delayMs = this.#retryDelay(call, attempt, result, failure);
        if (delayMs === undefined) {
          if (result === undefined) throw failure;
          if (!call.throwHttpErrors) return { status: result.status, headers: result.headers, data: result.data };
          throw this.#httpError(call, result);
        }
        this.#retries++;
        this.#logger.debug(
          {
            method: call.method,
            url: redactUrl(this.#base.origin + call.path),
            attempt,
            delayMs: Math.round(delayMs),
            status: result?.status,
            error: result === undefined ? (errorCode(failure) ?? (failure as Error)?.name) : undefined,
          },
          'APIClient: retrying request',
        );
        // close() wakes sleeping retries at once (ClosedError) instead of letting them hold the process.
        const closed = this.#closedSignal();
        const signal = call.signal === undefined ? closed : AbortSignal.any([call.signal, closed]);
        try {
          await sleep(delayMs, { signal, clock: this.#clock });
        } catch (error) {
          if (call.signal?.aborted) throw abortReason(call.signal);
          throw error;
        }
      }
    } finally {
      this.#inFlight--;
      if (isError) this.#failed++;
      else this.#succeeded++;
      profiler?.record(name, performance.now() - started, isError);
    }
  }

  #closedSignal(): AbortSignal {
    if (this.#closeController === undefined) {
      this.#closeController = new AbortController();
      setMaxListeners(0, this.#closeController.signal); // every sleeping retry listens
      if (this.#isClosed) this.#closeController.abort(new ClosedError('APIClient'));
    }
    return this.#closeController.signal;
  }

  /** Delay before the next attempt, or `undefined` when this failure is final. */
  #retryDelay(call: Call, attempt: number, result: AttemptResult | undefined, failure: unknown): number | undefined {
    const plan = call.plan;
    if (plan === undefined || !call.isRetryable || attempt > plan.policy.retries || this.#isClosed) return undefined;
    let serverWaitMs: number | undefined;
    if (result !== undefined) {
      if (!plan.statusCodes.has(result.status)) return undefined;
      serverWaitMs = result.serverWaitMs;
    } else if (!this.#isRetryableError(call, failure)) {
      return undefined;
    }
    const remainingMs = call.deadline - this.#clock.now();
    const url = (): string => redactUrl(this.#base.origin + call.path);
    const cause = (): unknown => (result === undefined ? failure : this.#httpError(call, result));
    if (serverWaitMs !== undefined && serverWaitMs > remainingMs) {
      // Retrying earlier than asked earns another 429; sleeping past the deadline helps nobody.
      throw new RateLimitError(
        `${call.method} ${url()}: the server asked to wait ${serverWaitMs} ms, more than the ${Math.max(0, Math.round(remainingMs))} ms left of timeoutMs ${call.timeoutMs}`,
        serverWaitMs,
        { cause: cause() },
      );
    }
    // Never earlier than the server asked (a full-jitter draw can be near 0).
    const delayMs = Math.max(backoffDelay(attempt, plan.policy), serverWaitMs ?? 0);
    if (delayMs >= remainingMs) {
      this.#timeouts++;
      throw new TimeoutError(
        `${call.method} ${url()} timed out: the next retry (in ${Math.round(delayMs)} ms) would start after timeoutMs ${call.timeoutMs} ran out`,
        call.timeoutMs,
        { cause: cause() },
      );
    }
    return delayMs;
  }

  #isRetryableError(call: Call, error: unknown): boolean {
    if (call.signal?.aborted || call.isExpired) return false;
    if (error instanceof TimeoutError) return true; // an attempt timeout (total ones set isExpired)
    if (isHotpathError(error)) return false; // circuit open, closed, limiter refusal, bad JSON
    const code = errorCode(error);
    return code !== undefined && RETRYABLE_ERROR_CODES.has(code);
  }

  #httpError(call: Call, result: AttemptResult): HttpError {
    return new HttpError({
      status: result.status,
      method: call.method,
      url: this.#base.origin + call.path,
      body: result.errorBody,
      headers: result.headers,
      retryAfterMs: result.serverWaitMs,
    });
  }

  async #attempt(call: Call, attempt: number): Promise<AttemptResult> {
    if (this.#isClosed) throw new ClosedError('APIClient');
    const breaker = this.#breaker;
    let isProbe = false;
    if (breaker !== undefined) {
      try {
        isProbe = breaker.enter();
      } catch (error) {
        this.#circuitRejected++;
        throw error;
      }
    }
    const clock = this.#clock;
    const exchange = new Exchange(this.#maxResponseBytes);
    const callerSignal = call.signal;
    let onCallerAbort: (() => void) | undefined;
    if (callerSignal !== undefined) {
      onCallerAbort = () => exchange.abort(abortReason(callerSignal));
      callerSignal.addEventListener('abort', onCallerAbort, { once: true });
    }
    const gate = this.#gate;
    const limiter = this.#limiter;
    let timer: TimerHandle | undefined;
    let isTotalTimer = false;
    let holdsGate = false;
    let release: (() => void) | undefined;
    let isJudged = breaker === undefined;
    let wasSent = false;
    try {
      if (gate !== undefined || limiter !== undefined) {
        // Waiting in line counts against the total budget only, not the attempt's.
        const waitMs = call.deadline - clock.now();
        if (waitMs <= MAX_TIMER_MS) {
          timer = this.#arm(exchange, call, attempt, waitMs, true);
          isTotalTimer = true;
        }
        const waitSignal = callerSignal ?? this.#deadlineSignal(call.deadline);
        if (gate !== undefined) {
          const wait = gate.enter(waitSignal);
          if (wait !== undefined) await this.#raceWait(exchange, wait, () => gate.release());
          holdsGate = true;
        }
        if (limiter !== undefined) {
          const options = call.limiterOptions;
          const acquiring = limiter.acquire(
            waitSignal === undefined
              ? options
              : options === undefined
                ? { signal: waitSignal }
                : { ...options, signal: waitSignal },
          );
          release = await this.#raceWait(exchange, acquiring, (lateRelease) => lateRelease());
        }
      }
      const remainingMs = call.deadline - clock.now();
      if (remainingMs <= 0) {
        this.#timeouts++;
        throw new TimeoutError(this.#timeoutMessage(call, attempt, true, call.timeoutMs), call.timeoutMs);
      }
      const isTotal = remainingMs <= call.attemptTimeoutMs;
      const budgetMs = isTotal ? remainingMs : call.attemptTimeoutMs;
      if (budgetMs <= MAX_TIMER_MS && !(isTotal && isTotalTimer)) {
        if (timer !== undefined) clock.clearTimeout(timer);
        timer = this.#arm(exchange, call, attempt, budgetMs, isTotal);
      }
      if (this.#isClosed) throw new ClosedError('APIClient'); // closed while this attempt waited for a slot
      this.#attempts++;
      wasSent = true;
      await exchange.send(this.#pool, {
        path: call.path,
        method: call.method as Dispatcher.HttpMethod,
        headers: call.headers,
        body: call.body,
      });
      const status = exchange.status;
      const headers = exchange.headers;
      const serverWaitMs =
        status === 429 || status === 503 || hasServerFeedback(headers)
          ? this.#applyFeedback(status, headers, attempt)
          : undefined;
      if (status < 400) {
        const data = this.#readBody(call, exchange);
        if (!isJudged) {
          isJudged = true;
          breaker?.success(isProbe);
        }
        return { status, headers, data, errorBody: undefined, serverWaitMs };
      }
      const errorBody = exchange.text();
      if (!isJudged) {
        isJudged = true;
        if (status >= 500) breaker?.failure(isProbe);
        else if (status === 429)
          breaker?.cancel(isProbe); // throttling says nothing about health
        else breaker?.success(isProbe);
      }
      let data: unknown = errorBody;
      if (!call.throwHttpErrors && call.responseType === 'json') {
        try {
          data = errorBody === '' ? undefined : JSON.parse(errorBody);
        } catch {
          data = errorBody;
        }
      }
      return { status, headers, data, errorBody, serverWaitMs };
    } catch (error) {
      let reason = exchange.abortReason ?? error;
      if (reason instanceof TimeoutError && (reason as TimeoutError & { [TOTAL]?: boolean })[TOTAL])
        call.isExpired = true;
      if (reason instanceof BodyTooLargeSignal) reason = this.#tooLarge(call, exchange, reason);
      const isCallerAbort = callerSignal?.aborted === true && reason === abortReason(callerSignal);
      if (!isJudged) {
        const isVerdict = wasSent && !isCallerAbort && !(reason instanceof ResponseParseError);
        if (isVerdict) breaker?.failure(isProbe);
        else breaker?.cancel(isProbe);
      }
      throw reason;
    } finally {
      if (timer !== undefined) clock.clearTimeout(timer);
      if (onCallerAbort !== undefined) callerSignal?.removeEventListener('abort', onCallerAbort);
      release?.();
      if (holdsGate) gate?.release();
    }
  }

  /**
   * Waits for `promise` unless the exchange is aborted first. A slot granted after the abort is handed
   * straight back through `giveBack`, so an abandoned wait never holds a limiter or gate slot.
   */
  #raceWait<T>(exchange: Exchange, promise: Promise<T>, giveBack: (value: T) => void): Promise<T> {
    if (exchange.isAborted) {
      promise.then(giveBack, () => {});
      return Promise.reject(exchange.abortReason);
    }
    return new Promise<T>((resolve, reject) => {
      exchange.waitReject = reject;
      promise.then(
        (value) => {
          exchange.waitReject = undefined;
          if (exchange.isAborted) giveBack(value);
          else resolve(value);
        },
        (error: unknown) => {
          exchange.waitReject = undefined;
          reject(exchange.abortReason ?? error);
        },
      );
    });
  }

  /**
   * A signal shared by every call whose deadline falls in the same 50 ms bucket, so limiter and gate
   * waits are cancelled near their deadline without an AbortController per request (the exact
   * deadline is enforced by the attempt's own timer; this only cleans the waiting line up, ≤ 50 ms late).
   */
  #deadlineSignal(deadline: number): AbortSignal | undefined {
    const now = this.#clock.now();
    if (deadline - now > MAX_TIMER_MS) return undefined;
    const bucket = Math.ceil(deadline / DEADLINE_BUCKET_MS) * DEADLINE_BUCKET_MS;
    let entry = this.#deadlineBuckets.get(bucket);
    if (entry === undefined) {
      const controller = new AbortController();
      setMaxListeners(0, controller.signal); // thousands of waiters may share one bucket
      const timer = this.#clock.setTimeout(
        () => {
          this.#deadlineBuckets.delete(bucket);
          controller.abort(new TimeoutError('APIClient: timeoutMs ran out while waiting for a slot', 0));
        },
        bucket - now,
        { unref: true },
      );
      entry = { controller, timer };
      this.#deadlineBuckets.set(bucket, entry);
    }
    return entry.controller.signal;
  }

  #arm(exchange: Exchange, call: Call, attempt: number, budgetMs: number, isTotal: boolean): TimerHandle {
    return this.#clock.setTimeout(
      () => {
        this.#timeouts++;
        // The message (and its URL redaction) is built only when a timeout really fires.
        const error = new TimeoutError(
          this.#timeoutMessage(call, attempt, isTotal, budgetMs),
          isTotal ? call.timeoutMs : budgetMs,
        );
        if (isTotal) (error as TimeoutError & { [TOTAL]?: boolean })[TOTAL] = true;
        exchange.abort(error);
      },
      Math.max(0, budgetMs),
    );
  }

  #timeoutMessage(call: Call, attempt: number, isTotal: boolean, budgetMs: number): string {
    const url = redactUrl(this.#base.origin + call.path);
    return isTotal
      ? `${call.method} ${url} timed out after timeoutMs ${call.timeoutMs} (attempt ${attempt})`
      : `${call.method} ${url}: attempt ${attempt} timed out after attemptTimeoutMs ${Math.round(budgetMs)}`;
  }

  #readBody(call: Call, exchange: Exchange): unknown {
    if (call.responseType === 'bytes') return exchange.bytesView();
    const text = exchange.text();
    if (call.responseType === 'text') return text;
    if (text.length === 0) return undefined;
    try {
      return JSON.parse(text);
    } catch (cause) {
      const contentType = exchange.headers['content-type'];
      throw new ResponseParseError({
        status: exchange.status,
        method: call.method,
        url: this.#base.origin + call.path,
        body: text,
        headers: exchange.headers,
        contentType: typeof contentType === 'string' ? contentType : '',
        cause,
      });
    }
  }

  #tooLarge(call: Call, exchange: Exchange, signal: BodyTooLargeSignal): ResponseParseError {
    const contentType = exchange.headers['content-type'];
    return new ResponseParseError({
      status: exchange.status,
      method: call.method,
      url: this.#base.origin + call.path,
      body: exchange.text(),
      headers: exchange.headers,
      contentType: typeof contentType === 'string' ? contentType : '',
      cause: signal,
      message: `${call.method} ${redactUrl(this.#base.origin + call.path)}: the response body exceeded maxResponseBytes ${signal.limitBytes}`,
    });
  }

  /** Feeds what the server said to the limiter; returns the wait it asked for (ms), if any. */
  #applyFeedback(status: number, headers: ResponseHeaders, attempt: number): number | undefined {
    const feedback = parseServerFeedback(headers, this.#clock.now());
    const isThrottled = status === 429 || status === 503;
    if (isThrottled) this.#throttled++;
    let serverWaitMs = feedback?.retryAfterMs;
    if (serverWaitMs === undefined && isThrottled && feedback?.remaining === 0) serverWaitMs = feedback.resetMs;
    const limiter = this.#limiter;
    if (limiter !== undefined) {
      const remaining = feedback?.remaining;
      const resetMs = feedback?.resetMs;
      if (remaining !== undefined && resetMs !== undefined) {
        if (limiter.updateRemaining !== undefined) limiter.updateRemaining(remaining, resetMs);
        else if (remaining === 0 && resetMs > 0 && !isThrottled) limiter.penalize(resetMs);
      }
      if (isThrottled) {
        // One 429 slows every caller sharing the limiter, not just this one.
        const pauseMs = serverWaitMs ?? backoffDelay(attempt, this.#penaltyPolicy);
        if (pauseMs > 0) limiter.penalize(pauseMs);
      }
    }
    return serverWaitMs;
  }

  /** Profiler name `client.request <METHOD> <route>`; memoised and bounded to 256 distinct names. */
  #metricName(method: string, path: string, route: string | undefined): string {
    const memo = route === undefined ? this.#pathNames : this.#routeNames;
    let byKey = memo.get(method);
    if (byKey === undefined) memo.set(method, (byKey = new Map()));
    const key = route ?? path;
    let name = byKey.get(key);
    if (name !== undefined) return name;
    name = `client.request ${method} ${route ?? routeTemplate(path)}`;
    if (!this.#distinctNames.has(name)) {
      if (this.#distinctNames.size >= MAX_ROUTE_NAMES) return `client.request ${method} (other)`;
      this.#distinctNames.add(name);
    }
    if (byKey.size < MAX_ROUTE_MEMO) byKey.set(key, name);
    return name;
  }

  #joinShared(
    key: string,
    run: (signal: AbortSignal | undefined) => Promise<ClientResponse<unknown>>,
    signal: AbortSignal | undefined,
  ): Promise<ClientResponse<unknown>> {
    const sharedCalls = this.#shared as Map<string, SharedCall>;
    let shared = sharedCalls.get(key);
    if (shared === undefined) {
      if (sharedCalls.size >= MAX_SHARED) return run(signal);
      const controller = new AbortController();
      const entry: SharedCall = {
        promise: undefined as unknown as Promise<ClientResponse<unknown>>,
        controller,
        waiters: 0,
      };
      entry.promise = run(controller.signal).finally(() => {
        if (sharedCalls.get(key) === entry) sharedCalls.delete(key);
      });
      sharedCalls.set(key, entry);
      shared = entry;
    } else {
      this.#deduped++;
    }
    const entry = shared;
    entry.waiters++;
    if (signal === undefined) return entry.promise;
    // One caller giving up must not cancel the others; the last one leaving cancels the request.
    return abortable(entry.promise, signal, () => {
      entry.waiters--;
      if (entry.waiters === 0) entry.controller.abort(abortReason(signal));
    });
  }
}
