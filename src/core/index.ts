/**
 * hotpath/core: the contract every module shares — errors with stable codes, the clock, abort and
 * timeout helpers, the backoff policy, and the logger and latency-recorder interfaces. Internal helpers
 * (option validation, the heap, Prometheus text, typed events, ids) are imported by file inside the
 * package and are not part of the public face.
 * @module
 */
export { abortable, sleep, type WaitOptions, type WithTimeoutOptions, withTimeout } from './abort.js';
export {
  backoffDelay,
  DEFAULT_RETRY,
  type JitterMode,
  type ResolvedRetryOptions,
  type RetryAsyncOptions,
  type RetryDecision,
  type RetryOptions,
  resolveRetryOptions,
  retryAsync,
} from './backoff.js';
export { type Clock, ManualClock, systemClock, type TimerHandle } from './clock.js';
export type { CacheLike, LimiterAcquireOptions, LimiterLike, ResponseLike } from './collaborators.js';
export { parseDurationMs } from './durations.js';
export {
  CircuitOpenError,
  ClosedError,
  ConfigError,
  ConflictError,
  ErrorCode,
  type ErrorCodeValue,
  HotpathError,
  type HotpathErrorOptions,
  HttpError,
  type HttpErrorInit,
  isHotpathError,
  JobCancelledError,
  JobFailedError,
  RateLimitError,
  StorageError,
  type StorageErrorOptions,
  TimeoutError,
} from './errors.js';
export { createConsoleLogger, type Logger, type LogLevel, silentLogger } from './logger.js';
export type { LatencyRecorder } from './recorder.js';
