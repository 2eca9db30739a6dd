/**
 * Identifier rules for collection, field and channel names. Names end up inside SQL text (as table
 * names, JSON paths and index names), so they are checked against a strict pattern instead of being
 * escaped: anything that is not a plain identifier is refused with a `ConfigError` before any SQL is built.
 * @module
 */
import { ConfigError } from '../core/errors.js';
import { describeValue } from '../core/options.js';

/**
 * Collection names: a letter or underscore, then letters, digits and underscores; at most 48 characters
 * so that the table name (prefix + name) stays below PostgreSQL's 63-byte identifier limit.
 */
export const COLLECTION_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,47}$/;
/** Field names usable in `where`, `orderBy` and `ensureIndex`: plain identifiers, at most 63 characters. */
export const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
/** Longest accepted document id, in characters. */
export const MAX_ID_LENGTH = 512;

/**
 * Checks a collection name.
 * @throws ConfigError when it does not match {@link COLLECTION_NAME}.
 */
export function checkCollection(name: unknown): string {
  if (typeof name !== 'string' || !COLLECTION_NAME.test(name)) {
    throw new ConfigError(
      'collection',
      `collection name must match ${COLLECTION_NAME} (letters, digits, underscore; at most 48), got ${describeValue(name)}`,
    );
  }
  return name;
}

/**
 * Checks a top-level field name.
 * @throws ConfigError when it does not match {@link FIELD_NAME}.
 */
export function checkField(name: unknown, option = 'field'): string {
  if (typeof name !== 'string' || !FIELD_NAME.test(name)) {
    throw new ConfigError(
      option,
      `${option} must be a top-level field name matching ${FIELD_NAME}, got ${describeValue(name)}`,
    );
  }
  return name;
}

/**
 * Checks a document id: a non-empty string of at most {@link MAX_ID_LENGTH} characters without U+0000.
 * Any other characters are allowed because ids are always bound as parameters.
 * @throws ConfigError otherwise.
 */
export function checkId(id: unknown, option = 'id'): string {
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID_LENGTH) {
    throw new ConfigError(
      option,
      `${option} must be a non-empty string of at most ${MAX_ID_LENGTH} characters, got ${describeValue(id)}`,
    );
  }
  // PostgreSQL text cannot hold U+0000: refused on every backend so data can move between them.
  if (id.includes('\u0000')) throw new ConfigError(option, `${option} must not contain the character U+0000`);
  return id;
}

/** Double-quotes an identifier that already passed one of the patterns above. */
export function quoteIdent(name: string): string {
  return `"${name}"`;
}
