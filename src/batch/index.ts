/**
 * hotpath/batch: bounded, ordered, cancellable bulk work (`BatchProcessor`), DataLoader-style
 * coalescing (`Batcher`) and CPU-bound work in worker threads (`WorkerPool`).
 * @module
 */
export {
  type BatchHandler,
  BatchProcessor,
  type BatchProcessorOptions,
  type BatchProcessorStats,
  type BatchRunOptions,
  type BatchStreamOptions,
  type ItemHandler,
} from './batch-processor.js';
export {
  Batcher,
  type BatcherLoadOptions,
  type BatcherOptions,
  type BatcherStats,
  type LoadManyFn,
} from './batcher.js';
export type {
  BatcherCache,
  BatchProgress,
  BatchRateLimiter,
  HandlerContext,
  ItemFailure,
  ItemResult,
  ItemSuccess,
} from './types.js';
export {
  WorkerPool,
  type WorkerPoolOptions,
  type WorkerPoolStats,
  type WorkerRunOptions,
} from './worker-pool.js';
