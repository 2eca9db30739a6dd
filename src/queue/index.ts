/**
 * hotpath/queue: a priority job queue over memory, SQLite and PostgreSQL with leases, fencing,
 * retries, timeouts, cancellation, progress, recurring jobs and a staged shutdown, plus the
 * `QueueManager` facade with framework-agnostic HTTP handlers.
 * @module
 */
export {
  type AcceptedPayload,
  type ClientOptions,
  createJobHttpHandlers,
  type HttpHandlerOptions,
  type HttpRequestLike,
  type HttpResponseLike,
  type JobAction,
  type JobEndpoints,
  type JobHttpHandlers,
  type JobStatusPayload,
} from './http-handlers.js';
export { JobQueue } from './job-queue.js';
export {
  type QueueLatencySummary,
  QueueManager,
  type QueueManagerOptions,
  type QueueManagerStats,
  type StorageAdapterHolder,
} from './queue-manager.js';
export { MIN_EVERY_MS } from './recurrence.js';
export type { SandboxedHandlerSpec } from './sandboxed-handler.js';
export { handleShutdownSignals, type ShutdownSignalOptions, type StoppableQueue } from './shutdown-signals.js';
export {
  type CronSpec,
  type EnqueueManyEntry,
  type EnqueueOptions,
  type EverySpec,
  JOB_STATUSES,
  type JobBackoff,
  type JobContext,
  type JobDefaults,
  type JobErrorInfo,
  type JobEventInfo,
  type JobHandler,
  type JobInfo,
  type JobPage,
  type JobProgress,
  type JobQueueEvents,
  type JobQueueHealth,
  type JobQueueOptions,
  type JobQueueStats,
  type JobStatus,
  type JobTypeOptions,
  type ListOptions,
  type PurgeOptions,
  type QueueBackendKind,
  type ScheduleOptions,
  type ScheduleSpec,
  type StopOptions,
  type WaitForJobOptions,
} from './types.js';
