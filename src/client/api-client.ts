/**
 * APIClient: JSON over a bounded keep-alive undici pool, with per-attempt and total timeouts that
 * really abort the socket, retries on the core backoff policy that never start earlier than the
 * server asked, server rate-limit feedback to a shared limiter, a circuit breaker, in-flight GET
 * dedupe and GET response caching.
 * @module
 */
import { setMaxListeners } from 'node:events';
import { type Dispatcher, Pool } from 'undici';
import { abortReason } from '../core/abort.js';
import {
  backoffDelay,
  DEFAULT_RETRY,
  type ResolvedRetryOptions,
  type RetryDecision,
  retryAsync,
} from '../core/backoff.js';
import { type Clock, systemClock } from '../core/clock.js';
import type { LimiterAcquireOptions } from '../core/collaborators.js';
import {
  CircuitOpenError,
  ClosedError,
  ConfigError,
  HttpError,
  isHotpathError,
  RateLimitError,
  redactUrl,
  TimeoutError,
} from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { clearLongTimeout, setLongTimeout } from '../core/long-timeout.js';
import { describeValue, validateOptions } from '../core/options.js';
import type { LatencyRecorder } from '../core/recorder.js';
import { Admission, type AdmissionTicket } from './admission.js';
import { responseTtlMs } from './cache-policy.js';
import { CircuitBreaker, type CircuitVerdict } from './circuit-breaker.js';
import {
  type APIClientOptions,
  type APIClientStats,
  CLIENT_SCHEMA,
  checkHeaders,
  checkMethod,
  REQUEST_SCHEMA,
  type RequestOptions,
  type RetryPlan,
  resolveRetryPlan,
} from './client-options.js';
import type { CachedResponse, ClientRateLimiter, ResponseCache } from './collaborators.js';
import { ConcurrencyGate } from './concurrency-gate.js';
import { BodyTooLargeSignal, Exchange } from './exchange.js';
import { MetricNames } from './metric-names.js';
import { appendQuery, type BaseUrl, joinPath, parseBaseUrl } from './request-url.js';
import { ResponseParseError } from './response-parse-error.js';
import type { ClientResponse, ResponseHeaders } from './response-types.js';
import { hasServerFeedback, parseRateLimitHeaders } from './server-feedback.js';
import { SharedGets } from './shared-gets.js';

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

interface AttemptResult extends ClientResponse<unknown> {
  /** Body text of an error response (bounded). */
  errorBody: string | undefined;
  /** Wait the server asked for, in ms. */
  serverWaitMs: number | undefined;
}

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

/** What undici accepts in a request path (printable Latin-1, no spaces). */
const INVALID_PATH = /[^\u0021-\u00ff]/;

const EMPTY_OPTIONS: RequestOptions = Object.freeze({});

function errorCode(error: unknown): string | undefined {
  if (error === null || typeof error !== 'object') return undefined;
  const { code, cause } = error as { code?: unknown; cause?: unknown };
  if (typeof code === 'string') return code;
  return cause === undefined ? undefined : errorCode(cause);
}

/** An error response the retry policy may retry; `retryAsync` retries errors, so it travels as one until the retries end. */
class RetryableResponse extends Error {
  constructor(readonly result: AttemptResult) {
    super(`HTTP ${result.status}`);
  }
}

/** What a response says about the upstream's health: 5xx is a failure; a 429 is throttling, not ill health. */
function breakerVerdict(result: AttemptResult): CircuitVerdict {
  if (result.status >= 500) return 'failure';
  return result.status === 429 ? 'ignore' : 'success';
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
  /** Gate and limiter every attempt passes; undefined when the client has neither. */
  readonly #admission: Admission | undefined;
  readonly #shared: SharedGets | undefined;
  readonly #profiler: LatencyRecorder | undefined;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #metricNames = new MetricNames();
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
    const gate =
      maxConcurrent === Number.POSITIVE_INFINITY
        ? undefined
        : new ConcurrencyGate(maxConcurrent, options.maxQueued ?? 10_000);
    this.#admission =
      gate === undefined && limiter === undefined ? undefined : new Admission(gate, limiter, this.#clock);
    this.#shared = options.dedupe ? new SharedGets() : undefined;
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
    const name = this.#profiler === undefined ? '' : this.#metricNames.name(verb, path, options.route);

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
    return this.#shared.join(responseKey, run, signal);
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
      deduped: this.#shared?.deduped ?? 0,
      inFlight: this.#inFlight,
      queued: this.#admission?.queued ?? 0,
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
      this.#admission?.close();
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
      let result: AttemptResult | undefined;
      let failure: unknown;
      try {
        result = await this.#attempt(call, 1);
      } catch (error) {
        failure = error;
      }
      // The first attempt runs outside retryAsync (which allocates per call), as in batch: only a
      // failure pays for the retry machinery, with the first outcome as its attempt 1.
      if (result === undefined) result = await this.#retryAfter(call, failure);
      else if (result.status >= 400 && call.plan?.statusCodes.has(result.status)) {
        result = await this.#retryAfter(call, new RetryableResponse(result));
      }
      if (result.status >= 400 && call.throwHttpErrors) throw this.#httpError(call, result);
      isError = result.status >= 400;
      return { status: result.status, headers: result.headers, data: result.data };
    } catch (error) {
      if (error instanceof CircuitOpenError) this.#circuitRejected++;
      throw error;
    } finally {
      this.#inFlight--;
      if (isError) this.#failed++;
      else this.#succeeded++;
      profiler?.record(name, performance.now() - started, isError);
    }
  }

  /**
   * Retries a call whose first attempt failed, on core's `retryAsync`: never earlier than the server
   * asked, never past the deadline. Resolves with the last response (a retryable status that ran out
   * of retries included); rejects with the last error.
   */
  async #retryAfter(call: Call, firstFailure: unknown): Promise<AttemptResult> {
    const plan = call.plan;
    try {
      if (plan === undefined || !call.isRetryable || this.#isClosed) throw firstFailure;
      // close() wakes sleeping retries at once (ClosedError) instead of letting them hold the process.
      const closed = this.#closedSignal();
      return await retryAsync(
        (attempt) => (attempt === 1 ? Promise.reject(firstFailure) : this.#retryAttempt(call, attempt)),
        {
          retry: plan.policy,
          signal: call.signal === undefined ? closed : AbortSignal.any([call.signal, closed]),
          clock: this.#clock,
          shouldRetry: (error, attempt) => this.#retryDecision(call, error, attempt),
          onRetry: (error, attempt, delayMs) => this.#onRetry(call, error, attempt, delayMs),
        },
      );
    } catch (error) {
      if (error instanceof RetryableResponse) return error.result;
      throw error;
    }
  }

  /** A retry's attempt: a status the plan retries becomes an error, so that `retryAsync` retries it. */
  async #retryAttempt(call: Call, attempt: number): Promise<AttemptResult> {
    const result = await this.#attempt(call, attempt);
    if (result.status >= 400 && call.plan?.statusCodes.has(result.status)) throw new RetryableResponse(result);
    return result;
  }

  #closedSignal(): AbortSignal {
    if (this.#closeController === undefined) {
      this.#closeController = new AbortController();
      setMaxListeners(0, this.#closeController.signal); // every sleeping retry listens
      if (this.#isClosed) this.#closeController.abort(new ClosedError('APIClient'));
    }
    return this.#closeController.signal;
  }

  /**
   * Whether to retry after `failure` (a {@link RetryableResponse} or an error), and after how long:
   * `max(backoff, what the server asked)`.
   * @throws RateLimitError when the server asks to wait past the deadline; TimeoutError when the
   *   backoff would start the next attempt after it.
   */
  #retryDecision(call: Call, failure: unknown, attempt: number): RetryDecision {
    if (this.#isClosed) return false;
    const response = failure instanceof RetryableResponse ? failure.result : undefined;
    if (response === undefined && !this.#isRetryableError(call, failure)) return false;
    const serverWaitMs = response?.serverWaitMs;
    const remainingMs = call.deadline - this.#clock.now();
    const url = (): string => redactUrl(this.#base.origin + call.path);
    const cause = (): unknown => (response === undefined ? failure : this.#httpError(call, response));
    if (serverWaitMs !== undefined && serverWaitMs > remainingMs) {
      // Retrying earlier than asked earns another 429; sleeping past the deadline helps nobody.
      throw new RateLimitError(
        `${call.method} ${url()}: the server asked to wait ${serverWaitMs} ms, more than the ${Math.max(0, Math.round(remainingMs))} ms left of timeoutMs ${call.timeoutMs}`,
        serverWaitMs,
        { cause: cause() },
      );
    }
    // Never earlier than the server asked (a full-jitter draw can be near 0).
    const delayMs = Math.max(backoffDelay(attempt, (call.plan as RetryPlan).policy), serverWaitMs ?? 0);
    if (delayMs >= remainingMs) {
      this.#timeouts++;
      throw new TimeoutError(
        `${call.method} ${url()} timed out: the next retry (in ${Math.round(delayMs)} ms) would start after timeoutMs ${call.timeoutMs} ran out`,
        call.timeoutMs,
        { cause: cause() },
      );
    }
    return { retry: true, delayMs };
  }

  #onRetry(call: Call, failure: unknown, attempt: number, delayMs: number): void {
    this.#retries++;
    const response = failure instanceof RetryableResponse ? failure.result : undefined;
    this.#logger.debug(
      {
        method: call.method,
        url: redactUrl(this.#base.origin + call.path),
        attempt,
        delayMs: Math.round(delayMs),
        status: response?.status,
        error: response === undefined ? (errorCode(failure) ?? (failure as Error)?.name) : undefined,
      },
      'APIClient: retrying request',
    );
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

  /** One attempt, through the circuit breaker when there is one. */
  #attempt(call: Call, attempt: number): Promise<AttemptResult> {
    if (this.#isClosed) return Promise.reject(new ClosedError('APIClient'));
    const exchange = new Exchange(this.#maxResponseBytes);
    const breaker = this.#breaker;
    if (breaker === undefined) return this.#admitAndSend(call, attempt, exchange);
    return breaker.execute(() => this.#admitAndSend(call, attempt, exchange), call.signal, {
      result: breakerVerdict,
      // Refused before sending (line full, budget spent waiting) or a body we could not read: the
      // upstream's health is not in question.
      error: (error) => (exchange.isSent && !(error instanceof ResponseParseError) ? 'failure' : 'ignore'),
    });
  }

  /** Waits for admission, sends, and reads the response. Timers and the caller's signal abort the exchange. */
  async #admitAndSend(call: Call, attempt: number, exchange: Exchange): Promise<AttemptResult> {
    const callerSignal = call.signal;
    const onCallerAbort = callerSignal === undefined ? undefined : () => exchange.abort(abortReason(callerSignal));
    if (onCallerAbort !== undefined) callerSignal?.addEventListener('abort', onCallerAbort, { once: true });
    let ticket: AdmissionTicket | undefined;
    try {
      if (this.#admission !== undefined) {
        this.#armTimer(exchange, call, attempt, true); // waiting in line counts against the total budget only
        ticket = await this.#admission.admit(exchange, call);
      }
      this.#armTimer(exchange, call, attempt, false);
      if (this.#isClosed) throw new ClosedError('APIClient'); // closed while this attempt waited for a slot
      this.#attempts++;
      await exchange.send(this.#pool, {
        path: call.path,
        method: call.method as Dispatcher.HttpMethod,
        headers: call.headers,
        body: call.body,
      });
      return this.#readResponse(call, exchange, attempt);
    } catch (error) {
      const reason = exchange.abortReason ?? error;
      throw reason instanceof BodyTooLargeSignal ? this.#tooLarge(call, exchange, reason) : reason;
    } finally {
      if (exchange.timer !== undefined) clearLongTimeout(this.#clock, exchange.timer);
      if (onCallerAbort !== undefined) callerSignal?.removeEventListener('abort', onCallerAbort);
      ticket?.();
    }
  }

  /**
   * Arms the exchange's timer: while waiting in line, the total budget; once admitted, the attempt's
   * own budget, or what is left of the total when that is shorter.
   * @throws TimeoutError when the total budget is already spent.
   */
  #armTimer(exchange: Exchange, call: Call, attempt: number, isWaiting: boolean): void {
    const remainingMs = call.deadline - this.#clock.now();
    if (!isWaiting && remainingMs <= 0) {
      this.#timeouts++;
      throw new TimeoutError(this.#timeoutMessage(call, attempt, true, call.timeoutMs), call.timeoutMs);
    }
    const isTotal = isWaiting || remainingMs <= call.attemptTimeoutMs;
    if (isTotal && exchange.isTimerTotal) return; // the total budget's timer already runs
    const budgetMs = isTotal ? remainingMs : call.attemptTimeoutMs;
    if (exchange.timer !== undefined) clearLongTimeout(this.#clock, exchange.timer);
    exchange.isTimerTotal = isTotal;
    exchange.timer =
      budgetMs === Number.POSITIVE_INFINITY
        ? undefined
        : setLongTimeout(
            this.#clock,
            () => {
              this.#timeouts++;
              if (isTotal) call.isExpired = true;
              // The message (and its URL redaction) is built only when a timeout really fires.
              exchange.abort(
                new TimeoutError(
                  this.#timeoutMessage(call, attempt, isTotal, budgetMs),
                  isTotal ? call.timeoutMs : budgetMs,
                ),
              );
            },
            budgetMs,
          );
  }

  #timeoutMessage(call: Call, attempt: number, isTotal: boolean, budgetMs: number): string {
    const url = redactUrl(this.#base.origin + call.path);
    return isTotal
      ? `${call.method} ${url} timed out after timeoutMs ${call.timeoutMs} (attempt ${attempt})`
      : `${call.method} ${url}: attempt ${attempt} timed out after attemptTimeoutMs ${Math.round(budgetMs)}`;
  }

  /** Reads a complete response: feedback to the limiter, then the body per `responseType`. */
  #readResponse(call: Call, exchange: Exchange, attempt: number): AttemptResult {
    const { status, headers } = exchange;
    const serverWaitMs =
      status === 429 || status === 503 || hasServerFeedback(headers)
        ? this.#applyFeedback(status, headers, attempt)
        : undefined;
    if (status < 400)
      return { status, headers, data: this.#readBody(call, exchange), errorBody: undefined, serverWaitMs };
    const errorBody = exchange.text();
    let data: unknown = errorBody;
    if (!call.throwHttpErrors && call.responseType === 'json') {
      try {
        data = errorBody === '' ? undefined : JSON.parse(errorBody);
      } catch {
        data = errorBody;
      }
    }
    return { status, headers, data, errorBody, serverWaitMs };
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
    const feedback = parseRateLimitHeaders(headers, this.#clock.now());
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
        // The limiter let this call through, yet the upstream refused it: slow the rate down (first,
        // before the pause below makes later 429s of the same burst look expected).
        if (status === 429) limiter.reportOverLimit?.();
        // One 429 slows every caller sharing the limiter, not just this one.
        const pauseMs = serverWaitMs ?? backoffDelay(attempt, this.#penaltyPolicy);
        if (pauseMs > 0) limiter.penalize(pauseMs);
      }
    }
    return serverWaitMs;
  }
}
