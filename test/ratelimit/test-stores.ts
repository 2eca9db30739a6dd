/** Stores and a logger that record what a RateLimiter asks of them, for the RateLimiter tests. */
import { MemoryRateLimitStore, type RateLimitStore } from 'hotpath/ratelimit';

export interface LogLine {
  level: 'info' | 'warn';
  fields: Record<string, unknown>;
  msg: string | undefined;
}

/** A logger keeping its info and warn lines. */
export function recordingLogger(): { logger: never; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = {
    debug: () => {},
    info: (fields: Record<string, unknown>, msg?: string) => void lines.push({ level: 'info', fields, msg }),
    warn: (fields: Record<string, unknown>, msg?: string) => void lines.push({ level: 'warn', fields, msg }),
    error: () => {},
  };
  return { logger: logger as never, lines };
}

/**
 * A memory store that answers synchronously, or with a promise settled by the test while `deferNext` is
 * above 0, and records its releases.
 */
export class SwitchableStore implements RateLimitStore {
  readonly inner = new MemoryRateLimitStore();
  readonly pending: { settle: () => void; fail: (error: unknown) => void }[] = [];
  readonly releases: string[] = [];
  deferNext = 0;
  reserve(key: string, weight: number, limit: number, windowMs: number, nowMs: number): number | Promise<number> {
    if (this.deferNext === 0) return this.inner.reserve(key, weight, limit, windowMs, nowMs);
    this.deferNext--;
    return new Promise<number>((resolve, reject) => {
      this.pending.push({
        settle: () => resolve(this.inner.reserve(key, weight, limit, windowMs, nowMs)),
        fail: reject,
      });
    });
  }
  release(key: string, weight: number, reservedAtMs: number): void {
    this.releases.push(`${key} ${weight} ${reservedAtMs}`);
    this.inner.release(key, weight, reservedAtMs);
  }
  next(): { settle: () => void; fail: (error: unknown) => void } {
    const entry = this.pending.shift();
    if (entry === undefined) throw new Error('no reservation in flight');
    return entry;
  }
}
