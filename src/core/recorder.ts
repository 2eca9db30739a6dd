/**
 * The interface through which modules report latencies. `Profiler` (hotpath/profiling) implements it;
 * modules depend only on this interface, so `cache` or `storage` never import `profiling`.
 * @module
 */

/** Receives latency samples from primitives. */
export interface LatencyRecorder {
  /**
   * Records one sample of `ms` milliseconds (fractional welcome) under `name`.
   * @param isError - true when the operation failed; counted in `errors`.
   */
  record(name: string, ms: number, isError?: boolean): void;
  /**
   * Notes one query of the given shape (e.g. a SQL statement without values) in the current request
   * scope, for N+1 detection. Optional.
   */
  noteQuery?(shape: string): void;
}

/** Milliseconds elapsed since `start` (a `performance.now()` value), fractional. */
export function elapsedMs(start: number): number {
  return performance.now() - start;
}
