/**
 * Error classes shared by every hotpath module. Each carries a stable `code` and a brand, so
 * {@link isHotpathError} recognises them even when two copies of the package are installed.
 * @module
 */

/** Stable error codes; `err.code` is always one of these. */
export const ErrorCode = {
  /** {@link ConfigError} */
  Config: 'ERR_HOTPATH_CONFIG',
  /** {@link TimeoutError} */
  Timeout: 'ERR_HOTPATH_TIMEOUT',
  /** {@link RateLimitError} */
  RateLimit: 'ERR_HOTPATH_RATE_LIMIT',
  /** {@link HttpError} */
  Http: 'ERR_HOTPATH_HTTP',
  /** {@link CircuitOpenError} */
  CircuitOpen: 'ERR_HOTPATH_CIRCUIT_OPEN',
  /** {@link StorageError} */
  Storage: 'ERR_HOTPATH_STORAGE',
  /** {@link ConflictError} */
  Conflict: 'ERR_HOTPATH_CONFLICT',
  /** {@link JobFailedError} */
  JobFailed: 'ERR_HOTPATH_JOB_FAILED',
  /** {@link JobCancelledError} */
  JobCancelled: 'ERR_HOTPATH_JOB_CANCELLED',
  /** {@link ClosedError} */
  Closed: 'ERR_HOTPATH_CLOSED',
} as const;

/** One of the values of {@link ErrorCode}. */
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Options accepted by every hotpath error constructor. */
export interface HotpathErrorOptions {
  /** The underlying error, kept as `err.cause`. */
  cause?: unknown;
}

/** Base class of every error hotpath throws on purpose. */
export class HotpathError extends Error {
  /** Brand checked by {@link isHotpathError}; survives duplicate package copies. */
  readonly isHotpathError = true as const;
  /** Stable machine-readable code, see {@link ErrorCode}. */
  readonly code: ErrorCodeValue;

  constructor(code: ErrorCodeValue, message: string, options?: HotpathErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.name = new.target.name;
  }

  /** A plain object for logs and JSON responses. */
  toJSON(): Record<string, unknown> {
    return { name: this.name, code: this.code, message: this.message };
  }
}

/** Bad options or arguments; thrown at construction or call time, before any state changes. */
export class ConfigError extends HotpathError {
  /** The option or argument that was rejected, e.g. `Cache.max`. */
  readonly option: string;
  constructor(option: string, message: string, options?: HotpathErrorOptions) {
    super(ErrorCode.Config, message, options);
    this.option = option;
  }
  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), option: this.option };
  }
}

/** An operation did not finish within its time budget. */
export class TimeoutError extends HotpathError {
  /** The budget that was exceeded, in milliseconds. */
  readonly timeoutMs: number;
  constructor(message: string, timeoutMs: number, options?: HotpathErrorOptions) {
    super(ErrorCode.Timeout, message, options);
    this.timeoutMs = timeoutMs;
  }
  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), timeoutMs: this.timeoutMs };
  }
}

/** A rate limit refused the call; `retryAfterMs` says when trying again makes sense. */
export class RateLimitError extends HotpathError {
  /** Milliseconds to wait before trying again (0 when unknown). */
  readonly retryAfterMs: number;
  constructor(message: string, retryAfterMs: number, options?: HotpathErrorOptions) {
    super(ErrorCode.RateLimit, message, options);
    this.retryAfterMs = retryAfterMs;
  }
  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), retryAfterMs: this.retryAfterMs };
  }
}

/** Header names whose values never appear in messages, `toJSON()` or logs. */
const SECRET_HEADER =
  /^(authorization|proxy-authorization|cookie|set-cookie|x-api-key|api-key|x-auth-token|x-access-token|x-csrf-token)$|(secret|token|password|api[-_]?key)/i;
/** Query parameters whose values are masked in URLs carried by errors. */
const SECRET_QUERY = /(token|secret|password|passwd|api[-_]?key|apikey|signature|sig|auth|key)$/i;
const MAX_BODY_CHARS = 2048;

/** True when a header of this name carries credentials and must be redacted. */
export function isSecretHeader(name: string): boolean {
  return SECRET_HEADER.test(name);
}

/** Returns a copy of `headers` with secret values replaced by `[REDACTED]`. */
export function redactHeaders(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    out[name] = isSecretHeader(name) ? '[REDACTED]' : value;
  }
  return out;
}

/** Masks user info and secret-looking query parameters in a URL string. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.username || parsed.password) {
      parsed.username = parsed.username ? '[REDACTED]' : '';
      parsed.password = parsed.password ? '[REDACTED]' : '';
    }
    for (const key of [...parsed.searchParams.keys()]) {
      if (SECRET_QUERY.test(key)) parsed.searchParams.set(key, '[REDACTED]');
    }
    return parsed.toString();
  } catch {
    return url;
  }
}

/** Fields of an {@link HttpError}. */
export interface HttpErrorInit {
  /** HTTP status code. */
  status: number;
  /** Request method. */
  method: string;
  /** Request URL (redacted by the constructor). */
  url: string;
  /** Response body as text; truncated to 2,048 characters. */
  body?: string;
  /** Response headers; secret ones are redacted. */
  headers?: Record<string, string | string[] | undefined>;
  /** Milliseconds the server asked us to wait (`Retry-After`), when it said so. */
  retryAfterMs?: number;
  /** Underlying error, if any. */
  cause?: unknown;
}

/** An HTTP response with a non-success status (after retries, if any). */
export class HttpError extends HotpathError {
  /** HTTP status code of the response. */
  readonly status: number;
  /** Request method, upper case. */
  readonly method: string;
  /** Request URL with credentials and secret query parameters masked. */
  readonly url: string;
  /** Response body text, at most 2,048 characters. */
  readonly body: string;
  /** Response headers with secrets redacted. */
  readonly headers: Record<string, string | string[]>;
  /** Server-requested wait in milliseconds, when the response carried one. */
  readonly retryAfterMs: number | undefined;

  constructor(init: HttpErrorInit) {
    const url = redactUrl(init.url);
    super(ErrorCode.Http, `${init.method} ${url} failed with HTTP ${init.status}`, { cause: init.cause });
    this.status = init.status;
    this.method = init.method;
    this.url = url;
    const body = init.body ?? '';
    this.body = body.length > MAX_BODY_CHARS ? `${body.slice(0, MAX_BODY_CHARS)}…` : body;
    this.headers = redactHeaders(init.headers ?? {});
    this.retryAfterMs = init.retryAfterMs;
  }
  override toJSON(): Record<string, unknown> {
    return {
      ...super.toJSON(),
      status: this.status,
      method: this.method,
      url: this.url,
      body: this.body,
      headers: this.headers,
      retryAfterMs: this.retryAfterMs,
    };
  }
}

/** A circuit breaker is open: the call failed fast without reaching the upstream. */
export class CircuitOpenError extends HotpathError {
  /** Milliseconds until the breaker lets a probe through. */
  readonly retryAfterMs: number;
  constructor(message: string, retryAfterMs: number, options?: HotpathErrorOptions) {
    super(ErrorCode.CircuitOpen, message, options);
    this.retryAfterMs = retryAfterMs;
  }
  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), retryAfterMs: this.retryAfterMs };
  }
}

/** Options of {@link StorageError}. */
export interface StorageErrorOptions extends HotpathErrorOptions {
  /** Whether calling the operation again cannot apply anything twice (default false). */
  isRetrySafe?: boolean;
}

/** A storage backend failed (connection lost, constraint, driver error); `cause` holds the driver error. */
export class StorageError extends HotpathError {
  /**
   * True when calling the same operation again is safe: it was a read, or the write certainly had no
   * effect (the statement never reached the database, or the database refused it as a whole). False
   * when a write's outcome is unknown (the connection died after the statement was sent): check first.
   */
  readonly isRetrySafe: boolean;
  constructor(message: string, options?: StorageErrorOptions) {
    super(ErrorCode.Storage, message, options);
    this.isRetrySafe = options?.isRetrySafe ?? false;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), isRetrySafe: this.isRetrySafe };
  }
}

/** An optimistic-concurrency check failed: the stored version differs from the expected one. */
export class ConflictError extends HotpathError {
  /** The version the caller expected. */
  readonly expectedVersion: number | undefined;
  /** The version actually stored (undefined when the document is gone). */
  readonly actualVersion: number | undefined;
  constructor(message: string, expectedVersion?: number, actualVersion?: number) {
    super(ErrorCode.Conflict, message);
    this.expectedVersion = expectedVersion;
    this.actualVersion = actualVersion;
  }
  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), expectedVersion: this.expectedVersion, actualVersion: this.actualVersion };
  }
}

/** A job ended in `failed`; `wait()` rejects with it. */
export class JobFailedError extends HotpathError {
  /** Id of the failed job. */
  readonly jobId: string;
  /** Attempts made before giving up. */
  readonly attempts: number;
  constructor(jobId: string, message: string, attempts: number, options?: HotpathErrorOptions) {
    super(ErrorCode.JobFailed, message, options);
    this.jobId = jobId;
    this.attempts = attempts;
  }
  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), jobId: this.jobId, attempts: this.attempts };
  }
}

/** A job was cancelled; `wait()` rejects with it. */
export class JobCancelledError extends HotpathError {
  /** Id of the cancelled job. */
  readonly jobId: string;
  constructor(jobId: string, message = `job ${jobId} was cancelled`) {
    super(ErrorCode.JobCancelled, message);
    this.jobId = jobId;
  }
  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), jobId: this.jobId };
  }
}

/** The object was used after `close()`. */
export class ClosedError extends HotpathError {
  constructor(what: string) {
    super(ErrorCode.Closed, `${what} is closed`);
  }
}

/**
 * True when `error` is a hotpath error (optionally with the given code). Works across two installed
 * copies of the package because it checks a brand field, not only `instanceof`.
 */
export function isHotpathError(error: unknown, code?: ErrorCodeValue): error is HotpathError {
  if (error === null || typeof error !== 'object') return false;
  const candidate = error as { isHotpathError?: unknown; code?: unknown };
  if (candidate.isHotpathError !== true) return false;
  return code === undefined || candidate.code === code;
}
