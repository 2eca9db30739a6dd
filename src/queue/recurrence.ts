/**
 * Fire times of recurring jobs: fixed intervals (`every`) or cron patterns parsed by croner.
 * @module
 */
import { Cron } from 'croner';
import { ConfigError } from '../core/errors.js';
import { checkNumber, checkString, describeValue } from '../core/options.js';
import type { ScheduleSpec } from './types.js';

/** Smallest interval of an `every` schedule, in ms: below this a queue row per tick is the wrong tool. */
export const MIN_EVERY_MS = 10;

/** A validated schedule spec that computes fire times. */
export interface Recurrence {
  /** Canonical JSON of the spec (stored, compared across processes). */
  readonly json: string;
  /** First fire time strictly after `after` (epoch ms). */
  nextAfter(after: number): number;
}

/**
 * Validates a schedule spec.
 * @throws ConfigError for a spec that is neither `{ every }` nor a valid `{ cron }`.
 */
export function parseRecurrence(spec: ScheduleSpec, what: string): Recurrence {
  if (spec === null || typeof spec !== 'object') {
    throw new ConfigError(what, `${what} must be { every: ms } or { cron: pattern }, got ${describeValue(spec)}`);
  }
  const keys = Object.keys(spec);
  if ('every' in spec) {
    if (keys.length !== 1)
      throw new ConfigError(what, `${what}: { every } takes no other keys, got ${keys.join(', ')}`);
    const every = checkNumber(`${what}.every`, spec.every, { integer: true, min: MIN_EVERY_MS });
    return {
      json: JSON.stringify({ every }),
      // Ticks are aligned to multiples of `every` since the epoch, so every process computes the same ones.
      nextAfter: (after) => (Math.floor(after / every) + 1) * every,
    };
  }
  if ('cron' in spec) {
    for (const key of keys) {
      if (key !== 'cron' && key !== 'timezone')
        throw new ConfigError(`${what}.${key}`, `${what}: unknown key "${key}"`);
    }
    const pattern = checkString(`${what}.cron`, spec.cron, { nonEmpty: true, maxLength: 200 });
    const timezone =
      spec.timezone === undefined ? undefined : checkString(`${what}.timezone`, spec.timezone, { nonEmpty: true });
    let cron: Cron;
    try {
      cron = new Cron(pattern, { paused: true, ...(timezone ? { timezone } : {}) });
      cron.nextRun(new Date(0));
    } catch (error) {
      throw new ConfigError(`${what}.cron`, `${what}.cron is not a valid cron pattern: ${(error as Error).message}`, {
        cause: error,
      });
    }
    return {
      json: JSON.stringify(timezone ? { cron: pattern, timezone } : { cron: pattern }),
      nextAfter(after) {
        const next = cron.nextRun(new Date(after));
        if (next === null) throw new ConfigError(`${what}.cron`, `${what}.cron has no fire time after ${after}`);
        return next.getTime();
      },
    };
  }
  throw new ConfigError(what, `${what} must be { every: ms } or { cron: pattern }`);
}
