/**
 * The options of `APIClient` and of one request: their public shapes, their rules, and the checks that
 * turn them into what a call needs (headers, method, retry plan). Bad input throws `ConfigError`
 * before anything is sent.
 * @module
 */
import { DEFAULT_RETRY, type ResolvedRetryOptions, type RetryOptions, resolveRetryOptions } from '../core/backoff.js';
import type { Clock } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { describeValue } from '../core/options.js';
import type { LatencyRecorder } from '../core/recorder.js';
import type { CircuitBreaker, CircuitBreakerOptions } from './circuit-breaker.js';
import type { ClientRateLimiter, ResponseCache } from './collaborators.js';
import type { Query } from './request-url.js';

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

/** A resolved retry policy plus which requests it applies to. */
export interface RetryPlan {
  policy: ResolvedRetryOptions;
  methods: ReadonlySet<string>;
  statusCodes: ReadonlySet<number>;
  retryPost: boolean;
}

const DEFAULT_METHODS = ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'] as const;
const DEFAULT_STATUS_CODES = [408, 425, 429, 500, 502, 503, 504] as const;
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'POST', 'PATCH', 'TRACE']);
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
export const CLIENT_SCHEMA = {
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

export const REQUEST_SCHEMA = {
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

/** What a header value may not hold: CR and LF would start a new header line; undici refuses NUL too. */
const INVALID_HEADER_VALUE = /[\r\n\0]/;

/**
 * Checks header names (tokens) and values (strings without CR, LF, NUL) and lower-cases the names.
 * @throws ConfigError naming the header, never echoing its value (it may be a credential).
 */
export function checkHeaders(name: string, headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of Object.keys(headers)) {
    const value = headers[key];
    if (!TOKEN.test(key)) throw new ConfigError(name, `${name}: invalid header name ${describeValue(key)}`);
    // The value is never echoed: it may be a credential.
    if (typeof value !== 'string') throw new ConfigError(name, `${name}["${key}"] must be a string`);
    if (INVALID_HEADER_VALUE.test(value)) {
      // Refused here, before the breaker, the limiter or undici (whose InvalidArgumentError is untyped) see it.
      throw new ConfigError(name, `${name}["${key}"] must not contain CR, LF or NUL (header injection)`);
    }
    out[key.toLowerCase()] = value;
  }
  return out;
}

export function resolveRetryPlan(
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

export function checkMethod(method: string): string {
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
