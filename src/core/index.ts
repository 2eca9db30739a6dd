/**
 * hotpath/core: errors, option validation, clock, abort and timeout helpers, the backoff policy,
 * typed events, ids, and the logger and latency-recorder interfaces shared by every module.
 * @module
 */
export {
  abortable,
  abortReason,
  anySignal,
  sleep,
  throwIfAborted,
  type WaitOptions,
  type WithTimeoutOptions,
  withTimeout,
} from './abort.js';
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
  isSecretHeader,
  JobCancelledError,
  JobFailedError,
  RateLimitError,
  redactHeaders,
  redactUrl,
  StorageError,
  TimeoutError,
} from './errors.js';
export { type EventMap, TypedEmitter } from './events.js';
export { Heap, type HeapEntry } from './heap.js';
export { sortableId } from './ids.js';
export { createConsoleLogger, type Logger, type LogLevel, silentLogger } from './logger.js';
export {
  checkNumber,
  checkString,
  describeValue,
  type NumberRule,
  type OptionRule,
  type OptionSchema,
  type StringRule,
  type TypeRule,
  validateOptions,
} from './options.js';
export {
  escapeHelp,
  escapeLabelValue,
  formatLabels,
  formatSampleValue,
  isValidLabelName,
  sanitizeMetricName,
} from './prometheus-text.js';
export { elapsedMs, type LatencyRecorder } from './recorder.js';
