/**
 * `JobQueue` options: their schemas, defaults, and the resolved settings the engine's parts read.
 * @module
 */
import { hostname } from 'node:os';
import { DEFAULT_RETRY, type ResolvedRetryOptions, type RetryOptions, resolveRetryOptions } from '../core/backoff.js';
import { type Clock, systemClock } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import { sortableId } from '../core/ids.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { validateOptions } from '../core/options.js';
import type { LatencyRecorder } from '../core/recorder.js';
import type { QueueBackend } from './backend.js';
import { backoffJson, checkJobType, MAX_PRIORITY, MAX_TIMER_MS } from './job-validation.js';
import type { JobBackoff, JobHandler, JobQueueOptions, JobQueueStats, JobTypeOptions } from './types.js';

const OPTIONS_SCHEMA = {
  storage: { type: 'object' },
  concurrency: { type: 'number', integer: true, min: 1, max: 10_000 },
  pollIntervalMs: { type: 'number', min: 1, max: 3_600_000 },
  leaseMs: { type: 'number', min: 50, max: 86_400_000 },
  heartbeatMs: { type: 'number', min: 10, max: 86_400_000 },
  resultTtlMs: { type: 'number', min: 0, max: 365 * 86_400_000 },
  sweepIntervalMs: { type: 'number', min: 10, max: 86_400_000 },
  priorityAgingMs: { type: 'number', min: 1, exclusiveMin: false, max: 365 * 86_400_000 },
  claimBatchSize: { type: 'number', integer: true, min: 1, max: 10_000 },
  progressIntervalMs: { type: 'number', min: 0, max: 3_600_000 },
  stallGraceMs: { type: 'number', min: 0, max: MAX_TIMER_MS },
  defaults: { type: 'object' },
  knownTypes: { type: 'object' },
  workerId: { type: 'string', nonEmpty: true, maxLength: 200 },
  clock: { type: 'object' },
  logger: { type: 'object' },
  profiler: { type: 'object' },
} as const;

const DEFAULTS_SCHEMA = {
  attempts: { type: 'number', integer: true, min: 1, max: 1000 },
  backoff: { type: 'object' },
  timeoutMs: { type: 'number', min: 0, exclusiveMin: true, max: MAX_TIMER_MS },
  keyRetentionMs: { type: 'number', min: 0 },
} as const;

/** Options of `register`. */
export const TYPE_OPTIONS_SCHEMA = {
  attempts: DEFAULTS_SCHEMA.attempts,
  backoff: DEFAULTS_SCHEMA.backoff,
  timeoutMs: DEFAULTS_SCHEMA.timeoutMs,
} as const;

/** Options of `schedule`. */
export const SCHEDULE_OPTIONS_SCHEMA = {
  priority: { type: 'number', integer: true, min: -MAX_PRIORITY, max: MAX_PRIORITY },
  attempts: DEFAULTS_SCHEMA.attempts,
  timeoutMs: DEFAULTS_SCHEMA.timeoutMs,
} as const;

/** Backoff of failing jobs unless configured: 1 s doubling to 5 min, full jitter. */
const DEFAULT_JOB_BACKOFF: ResolvedRetryOptions = {
  ...DEFAULT_RETRY,
  baseDelayMs: 1_000,
  maxDelayMs: 300_000,
};

/** A registered job type. */
export interface TypeConfig {
  handler: JobHandler<never, unknown>;
  attempts: number;
  backoff: ResolvedRetryOptions;
  timeoutMs: number | undefined;
}

/** Every `JobQueue` option resolved, with defaults filled in. */
export interface QueueSettings {
  clock: Clock;
  logger: Logger;
  profiler: LatencyRecorder | undefined;
  concurrency: number;
  pollIntervalMs: number;
  leaseMs: number;
  heartbeatMs: number;
  resultTtlMs: number;
  sweepIntervalMs: number;
  agingMs: number;
  claimBatchSize: number;
  progressIntervalMs: number;
  stallGraceMs: number;
  defaultAttempts: number;
  defaultBackoff: ResolvedRetryOptions;
  defaultTimeoutMs: number | undefined;
  defaultKeyRetentionMs: number;
  /** Job types that may be enqueued (undefined: any). */
  knownTypes: ReadonlySet<string> | undefined;
  workerId: string;
  /**
   * Delays while the backend is down (claims, completion writes): 100 ms doubling to the poll
   * interval, no jitter (reconnects happen in the driver; this only paces the attempts).
   */
  backendDownBackoff: ResolvedRetryOptions;
}

/**
 * Validates and resolves `JobQueue` options.
 * @throws ConfigError for unknown or out-of-range options.
 */
export function resolveQueueSettings(options: JobQueueOptions): QueueSettings {
  validateOptions('JobQueue', options, OPTIONS_SCHEMA);
  validateOptions('JobQueue.defaults', options.defaults, DEFAULTS_SCHEMA);
  const concurrency = options.concurrency ?? 1;
  const pollIntervalMs = options.pollIntervalMs ?? 1_000;
  const leaseMs = options.leaseMs ?? 30_000;
  const heartbeatMs = options.heartbeatMs ?? leaseMs / 3;
  if (heartbeatMs >= leaseMs) {
    throw new ConfigError(
      'JobQueue.heartbeatMs',
      `JobQueue.heartbeatMs (${heartbeatMs}) must be below leaseMs (${leaseMs}) or leases expire between renewals`,
    );
  }
  const defaults = options.defaults ?? {};
  return {
    clock: options.clock ?? systemClock,
    logger: options.logger ?? silentLogger,
    profiler: options.profiler,
    concurrency,
    pollIntervalMs,
    leaseMs,
    heartbeatMs,
    resultTtlMs: options.resultTtlMs ?? 86_400_000,
    sweepIntervalMs: options.sweepIntervalMs ?? 60_000,
    agingMs: options.priorityAgingMs ?? 0,
    claimBatchSize: options.claimBatchSize ?? Math.min(concurrency, 500),
    progressIntervalMs: options.progressIntervalMs ?? 250,
    stallGraceMs: options.stallGraceMs ?? 5_000,
    defaultAttempts: defaults.attempts ?? 3,
    defaultBackoff: resolveBackoff('JobQueue.defaults.backoff', defaults.backoff, DEFAULT_JOB_BACKOFF),
    defaultTimeoutMs: defaults.timeoutMs,
    defaultKeyRetentionMs: defaults.keyRetentionMs ?? 0,
    knownTypes: resolveKnownTypes(options.knownTypes),
    workerId: options.workerId ?? `${hostname()}:${process.pid}:${sortableId().slice(-6)}`,
    backendDownBackoff: { retries: 0, baseDelayMs: 100, maxDelayMs: pollIntervalMs, factor: 2, jitter: false },
  };
}

function resolveKnownTypes(types: readonly string[] | undefined): ReadonlySet<string> | undefined {
  if (types === undefined) return undefined;
  if (!Array.isArray(types) || types.some((type) => typeof type !== 'string')) {
    throw new ConfigError('JobQueue.knownTypes', 'JobQueue.knownTypes must be an array of job type names');
  }
  return new Set(types);
}

/**
 * Refuses a job type outside `knownTypes` (a typo would write a job no worker ever claims).
 * @throws ConfigError naming the type and the known ones.
 */
export function checkKnownType(settings: QueueSettings, type: string, what: string): void {
  const known = settings.knownTypes;
  if (known === undefined || known.has(type)) return;
  throw new ConfigError(what, `unknown job type "${type}" (JobQueue.knownTypes: ${[...known].join(', ')})`);
}

/** The counters of `stats()` (the live `running` and `idleSlots` are added on read). */
export type QueueCounters = Omit<JobQueueStats, 'running' | 'idleSlots'>;

/**
 * What every part of the engine shares: the backend, the resolved settings, the counters, whether the
 * worker is started, and where background failures go (counted, logged, emitted; the part retries).
 */
export interface QueueContext {
  readonly backend: QueueBackend;
  readonly settings: QueueSettings;
  readonly stats: QueueCounters;
  isStarted(): boolean;
  onError(what: string, error: unknown): void;
}

/** Counters of `stats()` at construction (the live `running` and `idleSlots` are added on read). */
export function emptyQueueStats(): QueueCounters {
  return {
    enqueued: 0,
    claimed: 0,
    succeeded: 0,
    failedAttempts: 0,
    failed: 0,
    retried: 0,
    cancelled: 0,
    timedOut: 0,
    stalled: 0,
    leasesLost: 0,
    released: 0,
    reaped: 0,
    swept: 0,
    scheduledFired: 0,
    backgroundErrors: 0,
  };
}

/**
 * Validates `register`'s arguments and resolves the type's settings over the queue defaults.
 * @throws ConfigError for a bad type name, handler or options.
 */
export function resolveTypeConfig(
  settings: QueueSettings,
  type: string,
  handler: JobHandler<never, unknown>,
  options: JobTypeOptions,
  sandboxTimeoutMs?: number,
): TypeConfig {
  checkJobType(type, 'JobQueue.register.type');
  if (typeof handler !== 'function') {
    throw new ConfigError('JobQueue.register.handler', 'JobQueue.register.handler must be a function or { file }');
  }
  validateOptions('JobQueue.register', options, TYPE_OPTIONS_SCHEMA);
  return {
    handler,
    attempts: options.attempts ?? settings.defaultAttempts,
    backoff: resolveBackoff('JobQueue.register.backoff', options.backoff, settings.defaultBackoff),
    timeoutMs: options.timeoutMs ?? sandboxTimeoutMs ?? settings.defaultTimeoutMs,
  };
}

/**
 * A job backoff (`JobBackoff`) resolved over `defaults`.
 * @throws ConfigError for a bad backoff.
 */
export function resolveBackoff(
  scope: string,
  backoff: JobBackoff | undefined,
  defaults: ResolvedRetryOptions,
): ResolvedRetryOptions {
  if (backoff === undefined) return defaults;
  backoffJson(backoff, scope);
  return resolveRetryOptions(scope, backoff as Partial<RetryOptions>, defaults);
}
