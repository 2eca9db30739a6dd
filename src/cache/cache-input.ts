/**
 * Checks of the arguments every cache method takes: keys are strings, tags are arrays of strings.
 * @module
 */
import { describeValue } from '../core/options.js';

/** Most tags one entry may carry; keeps the tag index (and tag invalidation) bounded per entry. */
export const MAX_TAGS_PER_ENTRY = 64;

/**
 * Keys are strings only: a second-level tier (Redis, SQL) stores string keys, so letting `1` and `'1'`
 * be different keys in L1 but the same key in L2 would be a silent bug.
 * @throws TypeError when `key` is not a string.
 */
export function checkKey(scope: string, key: unknown): asserts key is string {
  if (typeof key !== 'string') {
    throw new TypeError(`${scope}: key must be a string, got ${describeValue(key)} (convert numbers with String(n))`);
  }
}

/**
 * @throws TypeError when `tags` is not an array of at most {@link MAX_TAGS_PER_ENTRY} strings.
 */
export function checkTags(scope: string, tags: unknown): asserts tags is readonly string[] {
  if (!Array.isArray(tags))
    throw new TypeError(`${scope}: tags must be an array of strings, got ${describeValue(tags)}`);
  if (tags.length > MAX_TAGS_PER_ENTRY) {
    throw new TypeError(`${scope}: at most ${MAX_TAGS_PER_ENTRY} tags per entry, got ${tags.length}`);
  }
  for (const tag of tags) {
    if (typeof tag !== 'string') throw new TypeError(`${scope}: every tag must be a string, got ${describeValue(tag)}`);
  }
}
