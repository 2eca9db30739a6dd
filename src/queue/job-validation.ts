/**
 * Enqueue-time validation: a job that could not be stored faithfully (data that is not JSON, a bad
 * type name, a negative delay, a priority out of range) is refused with `ConfigError` before anything
 * is written.
 * @module
 */

import { resolveRetryOptions } from '../core/backoff.js';
import { ConfigError } from '../core/errors.js';
import { sortableId } from '../core/ids.js';
import { checkNumber, checkString, describeValue } from '../core/options.js';
import type { NewJob } from './backend.js';
import type { EnqueueManyEntry, EnqueueOptions, JobBackoff, JobErrorInfo } from './types.js';

/** Longest job type name, in characters. */
export const MAX_TYPE_LENGTH = 128;
/** Longest dedupe key, in characters. */
export const MAX_KEY_LENGTH = 256;
/** Priorities are integers in [-MAX_PRIORITY, MAX_PRIORITY]. */
export const MAX_PRIORITY = 1000;
/** Largest time limit: Node timers overflow above 2^31-1 ms (about 24.8 days). */
export const MAX_TIMER_MS = 2_147_483_647;
/** Longest stored error stack, in characters (a deep stack is rarely useful beyond this). */
const MAX_STACK_CHARS = 8_000;

const ENQUEUE_KEYS = new Set([
  'priority',
  'delayMs',
  'runAt',
  'attempts',
  'backoff',
  'timeoutMs',
  'key',
  'keyRetentionMs',
  'owner',
  'tx',
  'type',
  'data',
]);

/**
 * Serialises `value` as JSON, refusing what would not come back equal: functions, symbols, BigInt,
 * non-finite numbers, Maps/Sets/class instances and cycles. `undefined` object properties are dropped
 * (as JSON does); top-level `undefined` is stored as `null`.
 * @throws ConfigError naming `what` and the offending path.
 */
export function toJson(value: unknown, what: string): string {
  if (value === undefined) return 'null';
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new ConfigError(what, `${what} must be JSON-serialisable, got ${value}`);
    return JSON.stringify(value);
  }
  if (isFlatPlainObject(value)) return JSON.stringify(value);
  let text: string | undefined;
  try {
    text = JSON.stringify(value, jsonGuard);
  } catch (error) {
    if (error instanceof ConfigError) throw new ConfigError(what, `${what} ${error.message}`);
    throw new ConfigError(what, `${what} must be JSON-serialisable: ${(error as Error).message}`, { cause: error });
  }
  if (text === undefined) throw new ConfigError(what, `${what} must be JSON-serialisable, got ${describeValue(value)}`);
  return text;
}

/**
 * The JSON of values that cannot fail (null, strings, booleans, finite numbers, flat plain records),
 * or undefined for anything that needs the full check. Hot paths try this first so that they build
 * the name `toJson` puts in its errors only when there could be one.
 */
export function fastJson(value: unknown): string | undefined {
  if (value === undefined || value === null) return 'null';
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : undefined;
    case 'object':
      return isFlatPlainObject(value) ? JSON.stringify(value) : undefined;
    default:
      return undefined;
  }
}

/**
 * Fast path: a plain object whose values are all strings, booleans, null or finite numbers
 * serialises losslessly without the guarding replacer, which makes JSON.stringify about 3× slower
 * (it is called back for every value). Most job payloads are such flat records.
 */
function isFlatPlainObject(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  for (const key in value) {
    const field = (value as Record<string, unknown>)[key];
    switch (typeof field) {
      case 'string':
      case 'boolean':
        continue;
      case 'number':
        if (Number.isFinite(field)) continue;
        return false;
      case 'object':
        if (field === null) continue;
        return false;
      default:
        return false;
    }
  }
  return true;
}

// Replacer run on every value JSON.stringify visits; `this` is the holder. Throws on lossy values.
function jsonGuard(this: unknown, key: string, value: unknown): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (!Number.isFinite(value)) throw new ConfigError('', `must be JSON-serialisable, "${key}" is ${value}`);
      return value;
    case 'object': {
      if (value === null || Array.isArray(value)) return value;
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        throw new ConfigError('', `must be JSON-serialisable plain data, "${key}" is a ${describeCtor(value)}`);
      }
      return value;
    }
    case 'undefined':
      if (Array.isArray(this))
        throw new ConfigError('', `must be JSON-serialisable, "${key}" is undefined in an array`);
      return value;
    default:
      throw new ConfigError('', `must be JSON-serialisable, "${key}" is ${describeValue(value)}`);
  }
}

function describeCtor(value: object): string {
  const name = (value as { constructor?: { name?: string } }).constructor?.name;
  return name ? `${name} instance` : 'non-plain object';
}

/** Checks a job type name. @throws ConfigError for non-strings, empty or over-long names. */
export function checkJobType(type: unknown, what = 'type'): string {
  if (typeof type === 'string' && type.length > 0 && type.length <= MAX_TYPE_LENGTH) return type;
  return checkString(what, type, { nonEmpty: true, maxLength: MAX_TYPE_LENGTH });
}

/** Validates backoff options and returns their JSON. @throws ConfigError */
export function backoffJson(backoff: JobBackoff | undefined, what: string): string | null {
  if (backoff === undefined) return null;
  if (backoff === null || typeof backoff !== 'object' || 'retries' in backoff) {
    throw new ConfigError(what, `${what} must be { baseDelayMs?, maxDelayMs?, factor?, jitter? }`);
  }
  resolveRetryOptions(what, backoff);
  return JSON.stringify(backoff);
}

/** `scope` or `scope[index]`, built only where a name is needed (errors, present options). */
function named(scope: string, index: number | undefined): string {
  return index === undefined ? scope : `${scope}[${index}]`;
}

/**
 * Validates one enqueue call and builds the row to write.
 * @throws ConfigError for any bad input; nothing has been written.
 */
export function buildJob(
  type: unknown,
  data: unknown,
  options: EnqueueOptions | undefined,
  now: number,
  id: string,
  defaultKeyRetentionMs: number,
  scope: string,
  index?: number,
): NewJob {
  if (typeof type !== 'string' || type.length === 0 || type.length > MAX_TYPE_LENGTH) {
    checkJobType(type, `${named(scope, index)}.type`);
  }
  const serialised = fastJson(data) ?? toJson(data, `${named(scope, index)}.data`);
  let priority = 0;
  let runAt = now;
  let maxAttempts: number | null = null;
  let timeoutMs: number | null = null;
  let backoff: string | null = null;
  let key: string | null = null;
  let keyRetentionMs = defaultKeyRetentionMs;
  let owner: string | null = null;
  if (options !== undefined) {
    if (options === null || typeof options !== 'object') {
      throw new ConfigError(
        named(scope, index),
        `${named(scope, index)} options must be an object, got ${describeValue(options)}`,
      );
    }
    for (const name in options) {
      if (!ENQUEUE_KEYS.has(name)) {
        throw new ConfigError(
          `${named(scope, index)}.${name}`,
          `${named(scope, index)}: unknown option "${name}" (known: priority, delayMs, runAt, attempts, backoff, timeoutMs, key, keyRetentionMs, owner, tx)`,
        );
      }
    }
    if (options.priority !== undefined) {
      priority = checkNumber(`${named(scope, index)}.priority`, options.priority, {
        integer: true,
        min: -MAX_PRIORITY,
        max: MAX_PRIORITY,
      });
    }
    if (options.delayMs !== undefined && options.runAt !== undefined) {
      throw new ConfigError(`${named(scope, index)}.runAt`, `${named(scope, index)}: give delayMs or runAt, not both`);
    }
    if (options.delayMs !== undefined)
      runAt = now + checkNumber(`${named(scope, index)}.delayMs`, options.delayMs, { min: 0 });
    if (options.runAt !== undefined) {
      const at = options.runAt instanceof Date ? options.runAt.getTime() : options.runAt;
      runAt = checkNumber(`${named(scope, index)}.runAt`, at, { min: 0 });
    }
    if (options.attempts !== undefined) {
      maxAttempts = checkNumber(`${named(scope, index)}.attempts`, options.attempts, {
        integer: true,
        min: 1,
        max: 1000,
      });
    }
    if (options.timeoutMs !== undefined) {
      timeoutMs = checkNumber(`${named(scope, index)}.timeoutMs`, options.timeoutMs, {
        min: 0,
        exclusiveMin: true,
        max: MAX_TIMER_MS,
      });
    }
    if (options.backoff !== undefined) backoff = backoffJson(options.backoff, `${named(scope, index)}.backoff`);
    if (options.key !== undefined) {
      key = checkString(`${named(scope, index)}.key`, options.key, { nonEmpty: true, maxLength: MAX_KEY_LENGTH });
    }
    if (options.owner !== undefined) {
      owner = checkString(`${named(scope, index)}.owner`, options.owner, { nonEmpty: true, maxLength: 200 });
    }
    if (options.keyRetentionMs !== undefined) {
      keyRetentionMs = checkNumber(`${named(scope, index)}.keyRetentionMs`, options.keyRetentionMs, { min: 0 });
    }
  }
  return {
    id,
    type: type as string,
    data: serialised,
    priority,
    runAt: Math.round(runAt),
    createdAt: Math.round(now),
    maxAttempts,
    timeoutMs,
    backoff,
    key,
    keyRetentionMs: Math.round(keyRetentionMs),
    owner,
  };
}

/**
 * Validates the entries of `enqueueMany` and builds their rows; `check(type, what)` adds the caller's
 * own check of each type.
 * @throws ConfigError for any bad entry; nothing has been written.
 */
export function buildJobs(
  entries: unknown,
  now: number,
  defaultKeyRetentionMs: number,
  check: (type: string, what: string) => void,
): NewJob[] {
  const scope = 'JobQueue.enqueueMany';
  if (!Array.isArray(entries)) throw new ConfigError(scope, `${scope} expects an array of { type, data, ... }`);
  const jobs: NewJob[] = new Array(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i] as EnqueueManyEntry;
    if (entry === null || typeof entry !== 'object') {
      throw new ConfigError(`${scope}[${i}]`, `${scope}[${i}] must be { type, data, ... }`);
    }
    if ('tx' in entry) throw new ConfigError(`${scope}[${i}].tx`, 'pass tx as enqueueMany(entries, { tx })');
    const job = buildJob(entry.type, entry.data, entry, now, sortableId(now), defaultKeyRetentionMs, scope, i);
    check(job.type, `${scope}[${i}].type`);
    jobs[i] = job;
  }
  return jobs;
}

/** The stored form of an error: name, message, stack (capped) and code. */
export function errorJson(error: unknown): string {
  return JSON.stringify(errorInfo(error));
}

/** Describes any thrown value as a {@link JobErrorInfo}. */
export function errorInfo(error: unknown): JobErrorInfo {
  if (error instanceof Error) {
    const info: JobErrorInfo = { name: error.name, message: error.message };
    if (error.stack) info.stack = error.stack.slice(0, MAX_STACK_CHARS);
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string') info.code = code;
    return info;
  }
  if (error instanceof DOMException) return { name: error.name, message: error.message };
  return { name: 'Error', message: typeof error === 'string' ? error : describeValue(error) };
}
