/**
 * hotpath/profiling: fixed-memory latency histograms, the `Profiler` every primitive reports into
 * (percentiles, slow operations, request scopes with N+1 detection, Prometheus/JSON export), and
 * event-loop and memory monitors.
 * @module
 */

export type { MetricFamily, MetricSample, MetricType } from '../core/prometheus-text.js';
export {
  EventLoopMonitor,
  type EventLoopMonitorOptions,
  type EventLoopStats,
} from './event-loop-monitor.js';
export { LatencyHistogram, type LatencyHistogramOptions, type LatencySummary } from './latency-histogram.js';
export {
  type MemoryStats,
  type NPlusOneEvent,
  type OperationStats,
  Profiler,
  type ProfilerJSON,
  type ProfilerOptions,
  type PrometheusOptions,
  type ScopeHandle,
  type SlowOperation,
  type StopTimer,
} from './profiler.js';
export type { ScopeOperation, ScopeOperationStats, ScopeSnapshot, ScopeStats } from './request-scope.js';
