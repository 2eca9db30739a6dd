/**
 * `RecentActivity`: what the app saw lately that counters cannot show — the last slow operations, N+1 reports,
 * failed jobs and what each upstream last said about its rate limit — in small fixed-size rings, for the
 * dashboard and for logs. Recording allocates one small object per event; nothing grows.
 * @module
 */
import type { NPlusOneEvent, SlowOperation } from '../profiling/index.js';
import { RateLimiter } from '../ratelimit/index.js';

/** A slow operation with the time it was seen. */
export interface RecentSlowOperation extends SlowOperation {
  /** When it was reported, epoch ms. */
  at: number;
}

/** An N+1 report with the time it was seen. */
export interface RecentNPlusOne extends NPlusOneEvent {
  /** When it was reported, epoch ms. */
  at: number;
}

/** What an upstream last reported through its rate-limit headers (via `updateRemaining`). */
export interface UpstreamReport {
  /** Units it said were left in its window. */
  remaining: number;
  /** When its window resets, epoch ms. */
  resetAt: number;
  /** When it said so, epoch ms. */
  at: number;
}

/** A fixed-capacity ring; `toArray()` is newest first. */
export class Ring<T> {
  readonly #items: Array<T | undefined>;
  #next = 0;
  #count = 0;

  /** @param capacity - items kept; the oldest is overwritten. */
  constructor(readonly capacity: number) {
    this.#items = new Array<T | undefined>(capacity);
  }

  /** Adds an item, overwriting the oldest when full. */
  push(item: T): void {
    this.#items[this.#next] = item;
    this.#next = (this.#next + 1) % this.capacity;
    if (this.#count < this.capacity) this.#count++;
  }

  /** Items, newest first. */
  toArray(): T[] {
    const out: T[] = [];
    for (let i = 1; i <= this.#count; i++) out.push(this.#items[(this.#next - i + this.capacity) % this.capacity] as T);
    return out;
  }
}

/** Most events of each kind kept. */
const RECENT_EVENTS = 50;

/** The app's recent slow operations, N+1 reports, failed job ids and upstream rate-limit reports. */
export class RecentActivity {
  /** The last 50 slow operations, newest first via `toArray()`. */
  readonly slowOperations = new Ring<RecentSlowOperation>(RECENT_EVENTS);
  /** The last 50 N+1 reports. */
  readonly nPlusOne = new Ring<RecentNPlusOne>(RECENT_EVENTS);
  /** Ids of the last 50 jobs whose attempt failed in this process (their current state is read on demand). */
  readonly failedJobIds = new Ring<string>(RECENT_EVENTS);
  /** Ids of jobs that reported progress in this process and have not settled (at most 10,000). */
  readonly runningHere = new Set<string>();
  readonly #upstream = new Map<string, UpstreamReport>();

  /** Notes that job `id` runs here (it reported progress); forgets the oldest past 10,000. */
  noteRunningHere(id: string): void {
    if (this.runningHere.has(id)) return;
    if (this.runningHere.size >= 10_000) {
      const oldest = this.runningHere.values().next().value;
      if (oldest !== undefined) this.runningHere.delete(oldest);
    }
    this.runningHere.add(id);
  }

  /** What the upstream behind limiter `name` last reported, if it did. */
  upstream(name: string): UpstreamReport | undefined {
    return this.#upstream.get(name);
  }

  /** Notes an upstream report for limiter `name` (one entry per configured limiter). */
  noteUpstream(name: string, report: UpstreamReport): void {
    this.#upstream.set(name, report);
  }
}

/** A `RateLimiter` that also remembers what the upstream last reported, for the dashboard. */
export class ObservedRateLimiter extends RateLimiter {
  readonly #onReport: (remaining: number, resetInMs: number) => void;

  /** @throws ConfigError for bad options (as `RateLimiter`). */
  constructor(
    options: ConstructorParameters<typeof RateLimiter>[0],
    onReport: (remaining: number, resetInMs: number) => void,
  ) {
    super(options);
    this.#onReport = onReport;
  }

  /** As `RateLimiter.updateRemaining`, and records the report. */
  override updateRemaining(remaining: number, resetInMs: number): void {
    super.updateRemaining(remaining, resetInMs);
    this.#onReport(remaining, resetInMs);
  }
}
