/**
 * Option validation used by every module: a bad option throws {@link ConfigError} naming the option,
 * the value and what is allowed, before any state is created.
 * @module
 */
import { ConfigError } from './errors.js';

/** Rule for a numeric option. */
export interface NumberRule {
  /** Rule kind. */
  type: 'number';
  /** Smallest allowed value (inclusive). */
  min?: number;
  /** Largest allowed value (inclusive). */
  max?: number;
  /** Require a whole number. */
  integer?: boolean;
  /** Allow `Infinity` (e.g. "no limit"). */
  allowInfinity?: boolean;
  /** Require a value strictly greater than `min`. */
  exclusiveMin?: boolean;
}
/** Rule for a string option. */
export interface StringRule {
  /** Rule kind. */
  type: 'string';
  /** Allowed values. */
  oneOf?: readonly string[];
  /** Pattern the value must match. */
  pattern?: RegExp;
  /** Longest allowed length in characters. */
  maxLength?: number;
  /** Reject the empty string. */
  nonEmpty?: boolean;
}
/** Rule for options that are booleans, functions or objects (checked for type only). */
export interface TypeRule {
  /** Expected `typeof` (`any` accepts every value). */
  type: 'boolean' | 'function' | 'object' | 'any';
}
/** A validation rule; `required` makes `undefined` an error. */
export type OptionRule = (NumberRule | StringRule | TypeRule) & {
  /** Reject `undefined`. */
  required?: boolean;
};
/** Map from option name to its rule; options not listed are rejected as unknown. */
export type OptionSchema = Record<string, OptionRule>;

/** Formats a value for an error message without dumping huge objects. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === undefined || value === null) {
    return String(value);
  }
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'bigint') return `${value}n`;
  return typeof value;
}

function rangeText(rule: NumberRule): string {
  const kind = rule.integer ? 'an integer' : 'a number';
  const low = rule.min === undefined ? '' : `${rule.exclusiveMin ? '>' : '>='} ${rule.min}`;
  const high = rule.max === undefined ? (rule.allowInfinity ? 'or Infinity' : '') : `<= ${rule.max}`;
  return [kind, low, high].filter(Boolean).join(' ');
}

/**
 * Checks one numeric value. `name` appears in the error (e.g. `RateLimiter.limit`).
 * @throws ConfigError when the value is not a finite number in range.
 */
export function checkNumber(name: string, value: unknown, rule: Omit<NumberRule, 'type'> = {}): number {
  const full: NumberRule = { type: 'number', ...rule };
  const isNumber = typeof value === 'number' && !Number.isNaN(value);
  const ok =
    isNumber &&
    (Number.isFinite(value) || (full.allowInfinity === true && value === Number.POSITIVE_INFINITY)) &&
    (!full.integer || !Number.isFinite(value) || Number.isInteger(value)) &&
    (full.min === undefined || (full.exclusiveMin ? value > full.min : value >= full.min)) &&
    (full.max === undefined || value <= full.max);
  if (!ok) throw new ConfigError(name, `${name} must be ${rangeText(full)}, got ${describeValue(value)}`);
  return value as number;
}

/**
 * Checks one string value.
 * @throws ConfigError when it is not a string, is empty (with `nonEmpty`), too long, or not allowed.
 */
export function checkString(name: string, value: unknown, rule: Omit<StringRule, 'type'> = {}): string {
  if (typeof value !== 'string') throw new ConfigError(name, `${name} must be a string, got ${describeValue(value)}`);
  if (rule.nonEmpty && value.length === 0) throw new ConfigError(name, `${name} must not be empty`);
  if (rule.maxLength !== undefined && value.length > rule.maxLength) {
    throw new ConfigError(name, `${name} must be at most ${rule.maxLength} characters, got ${value.length}`);
  }
  if (rule.oneOf && !rule.oneOf.includes(value)) {
    throw new ConfigError(
      name,
      `${name} must be one of ${rule.oneOf.map((v) => JSON.stringify(v)).join(', ')}, got ${describeValue(value)}`,
    );
  }
  if (rule.pattern && !rule.pattern.test(value)) {
    throw new ConfigError(name, `${name} must match ${rule.pattern}, got ${describeValue(value)}`);
  }
  return value;
}

function checkType(name: string, value: unknown, type: TypeRule['type']): void {
  if (type === 'any') return;
  const ok = type === 'object' ? value !== null && typeof value === 'object' : typeof value === type;
  if (!ok)
    throw new ConfigError(
      name,
      `${name} must be ${type === 'object' ? 'an object' : `a ${type}`}, got ${describeValue(value)}`,
    );
}

/**
 * Validates an options object against a schema: unknown keys, wrong types, NaN, out-of-range numbers
 * and missing required options all throw {@link ConfigError} naming `${scope}.${key}`.
 * `undefined` values count as absent.
 */
export function validateOptions(scope: string, options: unknown, schema: OptionSchema): void {
  if (options === undefined) options = {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new ConfigError(scope, `${scope} options must be an object, got ${describeValue(options)}`);
  }
  const record = options as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!Object.hasOwn(schema, key)) {
      const known = Object.keys(schema).join(', ');
      throw new ConfigError(`${scope}.${key}`, `${scope}.${key} is not a known option (known options: ${known})`);
    }
  }
  for (const [key, rule] of Object.entries(schema)) {
    const value = record[key];
    const name = `${scope}.${key}`;
    if (value === undefined) {
      if (rule.required) throw new ConfigError(name, `${name} is required`);
      continue;
    }
    if (rule.type === 'number') checkNumber(name, value, rule);
    else if (rule.type === 'string') checkString(name, value, rule);
    else checkType(name, value, rule.type);
  }
}
