/**
 * Event-loop delay monitor on Node's `monitorEventLoopDelay`, reporting in milliseconds.
 * @module
 */
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import { validateOptions } from '../core/options.js';

/** Options of {@link EventLoopMonitor}. */
export interface EventLoopMonitorOptions {
  /**
   * Sampling resolution in ms (default 10, 1 … 1000): a timer fires this often and the lateness of each
   * firing is recorded. Lower sees shorter stalls and costs more wake-ups.
   */
  resolutionMs?: number | undefined;
}

/** Event-loop delay percentiles in ms since the monitor started or was last reset. */
export interface EventLoopStats {
  /** Number of delay samples taken. */
  count: number;
  /** Smallest delay, ms (0 before the first sample). */
  min: number;
  /** Mean delay, ms. */
  mean: number;
  /** Largest delay, ms. */
  max: number;
  /** Standard deviation of the delay, ms. */
  stddev: number;
  /** Median delay, ms. */
  p50: number;
  /** 90th percentile delay, ms. */
  p90: number;
  /** 99th percentile delay, ms. */
  p99: number;
  /** 99.9th percentile delay, ms. */
  p999: number;
}

const NS_PER_MS = 1e6;

/**
 * Measures how late the event loop runs timers (a blocked loop shows as high p99). Started on
 * construction; `close()` stops it (idempotent). Made by `Profiler.monitorEventLoop()`, or directly.
 */
export class EventLoopMonitor {
  readonly #histogram: IntervalHistogram;
  readonly #onClose: ((monitor: EventLoopMonitor) => void) | undefined;
  #isClosed = false;

  /** @throws ConfigError when `resolutionMs` is not an integer in 1–1000 or an option is unknown. */
  constructor(options: EventLoopMonitorOptions = {}, onClose?: (monitor: EventLoopMonitor) => void) {
    validateOptions('EventLoopMonitor', options, {
      resolutionMs: { type: 'number', integer: true, min: 1, max: 1000 },
    });
    this.#histogram = monitorEventLoopDelay({ resolution: options.resolutionMs ?? 10 });
    this.#histogram.enable();
    this.#onClose = onClose;
  }

  /** True once `close()` was called. */
  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** Delay percentiles in ms (all 0 before the first sample). Still readable after `close()`. */
  stats(): EventLoopStats {
    const h = this.#histogram;
    // Node 20 exposes `count`; before the first sample min is a sentinel (2^63), so report zeros.
    const count = h.count;
    if (count === 0) return { count: 0, min: 0, mean: 0, max: 0, stddev: 0, p50: 0, p90: 0, p99: 0, p999: 0 };
    return {
      count,
      min: h.min / NS_PER_MS,
      mean: h.mean / NS_PER_MS,
      max: h.max / NS_PER_MS,
      stddev: h.stddev / NS_PER_MS,
      p50: h.percentile(50) / NS_PER_MS,
      p90: h.percentile(90) / NS_PER_MS,
      p99: h.percentile(99) / NS_PER_MS,
      p999: h.percentile(99.9) / NS_PER_MS,
    };
  }

  /** Forgets the samples taken so far. */
  reset(): void {
    this.#histogram.reset();
  }

  /** Stops sampling (idempotent); the last stats stay readable. */
  close(): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.#histogram.disable();
    this.#onClose?.(this);
  }

  /** Same as `close()`, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Same as `close()`, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }
}
