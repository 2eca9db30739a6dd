/**
 * Backend-independent document rules: how ids are chosen, how documents are serialised, how `where`
 * and `orderBy` are validated and normalised, and the typed sort key that makes comparisons identical
 * in memory, SQLite and PostgreSQL.
 *
 * The sort key of a field value is `(rank, num, str)`: rank 0 = missing or null, 1 = number,
 * 2 = string, 3 = boolean, 4 = object or array; `num` holds the number (booleans: 0/1, else 0) and
 * `str` the string (else ''). Numbers therefore compare as numbers and strings as strings (by code
 * point, which is SQLite's BINARY and PostgreSQL's "C" order), and a number never equals a string.
 * @module
 */
import { ConfigError } from '../core/errors.js';
import { sortableId } from '../core/ids.js';
import { describeValue } from '../core/options.js';
import { checkField, checkId } from './names.js';
import type { FieldCondition, FindOptions, FindResult, StoredDocument, Where } from './types.js';

/** Type rank of a value in the sort key (see module docs). */
export const Rank = { Null: 0, Number: 1, String: 2, Boolean: 3, Other: 4 } as const;
/** One of the values of {@link Rank}. */
export type Rank = (typeof Rank)[keyof typeof Rank];

/** The typed sort key of one field value. */
export interface SortKey {
  rank: Rank;
  num: number;
  str: string;
}

/** The sort key of a JSON value. */
export function sortKeyOf(value: unknown): SortKey {
  switch (typeof value) {
    case 'number':
      return { rank: Rank.Number, num: value, str: '' };
    case 'string':
      return { rank: Rank.String, num: 0, str: value };
    case 'boolean':
      return { rank: Rank.Boolean, num: value ? 1 : 0, str: '' };
    default:
      return value === null || value === undefined
        ? { rank: Rank.Null, num: 0, str: '' }
        : { rank: Rank.Other, num: 0, str: '' };
  }
}

/** Compares strings by Unicode code point (UTF-8 byte order), like SQLite BINARY and PostgreSQL "C". */
export function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (0xD800–0xDFFF) encode code points above 0xFFFF, which sort after 0xE000–0xFFFF.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

/** Compares two sort keys. */
export function compareKeys(a: SortKey, b: SortKey): number {
  if (a.rank !== b.rank) return a.rank - b.rank;
  if (a.num !== b.num) return a.num < b.num ? -1 : 1;
  return compareCodePoints(a.str, b.str);
}

/**
 * One normalised comparison: `op` against one key (or several for `in`). For `startsWith`/`contains`
 * the key is the string operand; `caseInsensitive` contains compares ASCII-lowercased text (the operand
 * is lowercased already).
 */
export interface NormalCondition {
  op: 'eq' | 'ne' | 'gt' | 'gte' | 'lt' | 'lte' | 'in' | 'startsWith' | 'contains';
  keys: SortKey[];
  caseInsensitive?: boolean;
}

/** All conditions on one field (AND-ed). `field === 'id'` targets the id column. */
export interface NormalClause {
  field: string;
  conditions: NormalCondition[];
}

const RANGE_OPS = ['gt', 'gte', 'lt', 'lte'] as const;
const CONDITION_OPS = new Set(['gt', 'gte', 'lt', 'lte', 'ne', 'in', 'startsWith', 'contains', 'caseInsensitive']);
/** Most values accepted by one `in` list (keeps statements below parameter limits). */
export const MAX_IN_VALUES = 1000;
/** Longest `startsWith` / `contains` operand, in characters. */
export const MAX_TEXT_OPERAND = 1000;

/**
 * Lowercases A–Z only. `caseInsensitive` means exactly this on every backend: SQLite's `lower()` and
 * PostgreSQL's `lower()` under the "C" collation both fold ASCII letters only.
 */
export function asciiLower(text: string): string {
  return /[A-Z]/.test(text) ? text.replace(/[A-Z]+/g, (run) => run.toLowerCase()) : text;
}

// PostgreSQL text cannot hold U+0000, so a string with one could be stored or matched on SQLite and
// memory but not there: refused everywhere, so data stays portable between backends.
function checkNoNul(option: string, value: string): void {
  if (value.includes('\u0000')) throw new ConfigError(option, `${option} must not contain the character U+0000`);
}

function textOperand(field: string, op: string, value: unknown): string {
  const option = `where.${field}.${op}`;
  if (typeof value !== 'string' || value.length > MAX_TEXT_OPERAND) {
    throw new ConfigError(
      option,
      `${option} must be a string of at most ${MAX_TEXT_OPERAND} characters, got ${describeValue(value)}`,
    );
  }
  checkNoNul(option, value);
  return value;
}

function scalarKey(field: string, op: string, value: unknown, isId: boolean): SortKey {
  const option = `where.${field}${op === 'eq' ? '' : `.${op}`}`;
  if (typeof value === 'number' && !Number.isFinite(value)) {
    throw new ConfigError(option, `${option} must be a finite number, got ${describeValue(value)}`);
  }
  const ok =
    value === null ||
    typeof value === 'string' ||
    typeof value === 'number' ||
    (typeof value === 'boolean' && op !== 'gt' && op !== 'gte' && op !== 'lt' && op !== 'lte');
  if (!ok || (isId && typeof value !== 'string')) {
    const allowed = isId
      ? 'a string'
      : op.startsWith('g') || op.startsWith('l')
        ? 'a number or string'
        : 'a JSON scalar';
    throw new ConfigError(option, `${option} must be ${allowed}, got ${describeValue(value)}`);
  }
  if ((op.startsWith('g') || op.startsWith('l')) && value === null) {
    throw new ConfigError(option, `${option} must be a number or string, got null`);
  }
  if (typeof value === 'string') checkNoNul(option, value);
  return sortKeyOf(value);
}

/**
 * Validates and normalises a `where` object.
 * @throws ConfigError on bad field names, unknown operators or values of the wrong type.
 */
export function normaliseWhere(where: Where | undefined): NormalClause[] {
  if (where === undefined) return [];
  if (where === null || typeof where !== 'object' || Array.isArray(where)) {
    throw new ConfigError('where', `where must be an object, got ${describeValue(where)}`);
  }
  const clauses: NormalClause[] = [];
  for (const field of Object.keys(where)) {
    checkField(field, `where field ${JSON.stringify(field).slice(0, 80)}`);
    const isId = field === 'id';
    const value = (where as Record<string, unknown>)[field];
    if (value === undefined) continue;
    if (value === null || typeof value !== 'object') {
      clauses.push({ field, conditions: [{ op: 'eq', keys: [scalarKey(field, 'eq', value, isId)] }] });
      continue;
    }
    if (Array.isArray(value)) {
      throw new ConfigError(`where.${field}`, `where.${field} must be a scalar or a condition object, got an array`);
    }
    const condition = value as FieldCondition;
    const ops = Object.keys(condition);
    if (ops.length === 0) throw new ConfigError(`where.${field}`, `where.${field} is an empty condition`);
    const conditions: NormalCondition[] = [];
    for (const op of ops) {
      if (!CONDITION_OPS.has(op)) {
        throw new ConfigError(
          `where.${field}`,
          `where.${field}: unknown operator ${JSON.stringify(op).slice(0, 40)} (allowed: gt, gte, lt, lte, ne, in, startsWith, contains, caseInsensitive)`,
        );
      }
      const operand = (condition as Record<string, unknown>)[op];
      if (operand === undefined || op === 'caseInsensitive') continue;
      if (op === 'startsWith') {
        conditions.push({ op, keys: [sortKeyOf(textOperand(field, op, operand))] });
      } else if (op === 'contains') {
        const caseInsensitive = caseInsensitiveOf(field, condition);
        const text = textOperand(field, op, operand);
        conditions.push({ op, keys: [sortKeyOf(caseInsensitive ? asciiLower(text) : text)], caseInsensitive });
      } else if (op === 'in') {
        if (!Array.isArray(operand) || operand.length > MAX_IN_VALUES) {
          throw new ConfigError(
            `where.${field}.in`,
            `where.${field}.in must be an array of at most ${MAX_IN_VALUES} scalars, got ${describeValue(operand)}`,
          );
        }
        conditions.push({ op: 'in', keys: operand.map((item) => scalarKey(field, 'in', item, isId)) });
      } else {
        conditions.push({
          op: op as NormalCondition['op'],
          keys: [scalarKey(field, op, operand, isId)],
        });
      }
    }
    if (condition.caseInsensitive !== undefined && condition.contains === undefined) {
      throw new ConfigError(`where.${field}.caseInsensitive`, `where.${field}.caseInsensitive needs contains`);
    }
    if (conditions.length > 0) clauses.push({ field, conditions });
  }
  return clauses;
}

function caseInsensitiveOf(field: string, condition: FieldCondition): boolean {
  const flag = condition.caseInsensitive ?? false;
  if (typeof flag !== 'boolean') {
    throw new ConfigError(
      `where.${field}.caseInsensitive`,
      `where.${field}.caseInsensitive must be a boolean, got ${describeValue(flag)}`,
    );
  }
  return flag;
}

function matchOne(condition: NormalCondition, actual: SortKey, key: SortKey): boolean {
  const op = condition.op;
  if (op === 'eq' || op === 'in') return compareKeys(actual, key) === 0;
  if (op === 'startsWith') return actual.rank === Rank.String && actual.str.startsWith(key.str);
  if (op === 'contains') {
    if (actual.rank !== Rank.String) return false;
    return (condition.caseInsensitive ? asciiLower(actual.str) : actual.str).includes(key.str);
  }
  if (op === 'ne') return compareKeys(actual, key) !== 0;
  // Ranges only match values of the same type (a number is never "greater" than a string).
  if (actual.rank !== key.rank) return false;
  const c = compareKeys(actual, key);
  return op === 'gt' ? c > 0 : op === 'gte' ? c >= 0 : op === 'lt' ? c < 0 : c <= 0;
}

/** The reference semantics of a normalised where, used by the memory backend. */
export function matchesWhere(doc: Record<string, unknown>, clauses: readonly NormalClause[]): boolean {
  for (const clause of clauses) {
    const actual = sortKeyOf(doc[clause.field]);
    for (const condition of clause.conditions) {
      if (condition.op === 'in') {
        if (!condition.keys.some((key) => compareKeys(actual, key) === 0)) return false;
      } else if (!matchOne(condition, actual, condition.keys[0] as SortKey)) {
        return false;
      }
    }
  }
  return true;
}

export { RANGE_OPS };

/** Default and largest page size of `find`. */
export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 10_000;

/** A decoded cursor: the sort key and id of the last item of the previous page. */
export interface CursorPosition {
  key: SortKey;
  id: string;
}

/** Validated `find` options. */
export interface NormalFind {
  clauses: NormalClause[];
  /** Sort field; 'id' sorts by the id column alone. */
  orderField: string;
  descending: boolean;
  limit: number;
  after: CursorPosition | undefined;
}

function cursorTag(orderField: string, descending: boolean): string {
  return `${orderField}:${descending ? 'd' : 'a'}`;
}

/** Encodes the position after `doc` as an opaque cursor string. */
export function encodeCursor(find: NormalFind, doc: Record<string, unknown>, id: string): string {
  const key = find.orderField === 'id' ? sortKeyOf(null) : sortKeyOf(doc[find.orderField]);
  const payload = [cursorTag(find.orderField, find.descending), key.rank, key.num, key.str, id];
  return Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url');
}

/**
 * The page of a find from up to `limit + 1` matching documents in order: the extra one only says that
 * another page follows, and the cursor points after the last document kept.
 */
export function pageOf<T extends object>(docs: StoredDocument<T>[], find: NormalFind): FindResult<T> {
  const hasMore = docs.length > find.limit;
  if (hasMore) docs.length = find.limit;
  const last = docs[docs.length - 1];
  return {
    items: docs,
    nextCursor: hasMore && last ? encodeCursor(find, last as Record<string, unknown>, last.id) : undefined,
  };
}

function decodeCursor(cursor: unknown, orderField: string, descending: boolean): CursorPosition {
  const bad = () => new ConfigError('cursor', 'cursor is not a cursor returned by find() with the same orderBy');
  if (typeof cursor !== 'string' || cursor.length > 4096) throw bad();
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  if (!Array.isArray(payload) || payload.length !== 5) throw bad();
  const [tag, rank, num, str, id] = payload as unknown[];
  if (tag !== cursorTag(orderField, descending)) throw bad();
  if (rank !== 0 && rank !== 1 && rank !== 2 && rank !== 3 && rank !== 4) throw bad();
  if (typeof num !== 'number' || !Number.isFinite(num) || typeof str !== 'string' || typeof id !== 'string') {
    throw bad();
  }
  return { key: { rank, num, str }, id };
}

/**
 * Validates `find` options.
 * @throws ConfigError on bad where, orderBy, limit or cursor.
 */
export function normaliseFind(options: FindOptions | undefined): NormalFind {
  if (options === undefined) options = {};
  if (options === null || typeof options !== 'object') {
    throw new ConfigError('find', `find options must be an object, got ${describeValue(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (key !== 'where' && key !== 'orderBy' && key !== 'limit' && key !== 'cursor' && key !== 'signal') {
      throw new ConfigError(
        `find.${key.slice(0, 40)}`,
        `find: unknown option ${JSON.stringify(key).slice(0, 40)} (known: where, orderBy, limit, cursor, signal)`,
      );
    }
  }
  const clauses = normaliseWhere(options.where);
  let orderField = 'id';
  let descending = false;
  if (options.orderBy !== undefined) {
    const orderBy = options.orderBy;
    if (orderBy === null || typeof orderBy !== 'object') {
      throw new ConfigError('orderBy', `orderBy must be { field, direction? }, got ${describeValue(orderBy)}`);
    }
    orderField = checkField(orderBy.field, 'orderBy.field');
    if (orderBy.direction !== undefined && orderBy.direction !== 'asc' && orderBy.direction !== 'desc') {
      throw new ConfigError(
        'orderBy.direction',
        `orderBy.direction must be "asc" or "desc", got ${describeValue(orderBy.direction)}`,
      );
    }
    descending = orderBy.direction === 'desc';
  }
  const limit = options.limit ?? DEFAULT_LIMIT;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw new ConfigError('limit', `limit must be an integer >= 1 <= ${MAX_LIMIT}, got ${describeValue(limit)}`);
  }
  const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor, orderField, descending);
  return { clauses, orderField, descending, limit, after };
}

/**
 * Chooses the id of a document being written: `options.id`, else `doc.id`, else a new sortable id.
 * @throws ConfigError when the document is not a plain object or an id is invalid.
 */
export function resolveId(doc: unknown, explicitId: string | undefined, nowMs: number): string {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError('doc', `document must be a plain object, got ${describeValue(doc)}`);
  }
  if (explicitId !== undefined) return checkId(explicitId, 'options.id');
  const own = (doc as { id?: unknown }).id;
  if (own !== undefined) return checkId(own, 'doc.id');
  return sortableId(nowMs);
}

/**
 * Serialises a document with its id as the `id` field. JSON rules apply: `undefined` fields are dropped,
 * `Date`s become ISO strings.
 * @throws ConfigError when the document cannot be serialised (cycles, BigInt).
 */
export function encodeDocument(doc: object, id: string): string {
  const value = (doc as { id?: unknown }).id === id ? doc : { ...doc, id };
  let json: string;
  try {
    json = JSON.stringify(value);
  } catch (error) {
    throw new ConfigError('doc', `document is not JSON-serialisable: ${(error as Error).message}`, { cause: error });
  }
  checkStorable(json, value, 'doc');
  return json;
}

/**
 * Refuses values JSON would store as something else or PostgreSQL cannot store: `NaN`/`±Infinity`
 * (JSON.stringify writes `null`) and strings with U+0000 (jsonb refuses them). The text is searched
 * first — a document without `null` or `\u0000` in its JSON has neither — so the walk runs only on a hit.
 * @throws ConfigError naming the path of the first such value.
 */
function checkStorable(json: string, value: unknown, what: string): void {
  if (!json.includes('null') && !json.includes('\\u0000')) return;
  const path = unstorablePath(value, what, 0);
  if (path !== undefined) {
    throw new ConfigError(what, `${path} cannot be stored: NaN, Infinity and the character U+0000 are refused`);
  }
}

function unstorablePath(value: unknown, path: string, depth: number): string | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : `${path} (${value})`;
  if (typeof value === 'string') return value.includes('\u0000') ? path : undefined;
  if (value === null || typeof value !== 'object' || depth > 200) return undefined;
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = unstorablePath(value[i], `${path}[${i}]`, depth + 1);
      if (found) return found;
    }
    return undefined;
  }
  for (const key of Object.keys(value)) {
    if (key.includes('\u0000')) return `${path} key ${JSON.stringify(key)}`;
    const found = unstorablePath((value as Record<string, unknown>)[key], `${path}.${key}`, depth + 1);
    if (found) return found;
  }
  return undefined;
}

/**
 * Serialises a patch for `update`; `id` may only repeat the document's own id.
 * @throws ConfigError when the patch is not a plain object, changes the id or cannot be serialised.
 */
export function encodePatch(patch: unknown, id: string): Record<string, unknown> {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) {
    throw new ConfigError('patch', `patch must be a plain object, got ${describeValue(patch)}`);
  }
  const own = (patch as { id?: unknown }).id;
  if (own !== undefined && own !== id) {
    throw new ConfigError('patch.id', 'patch must not change the document id');
  }
  let json: string;
  try {
    json = JSON.stringify(patch);
  } catch (error) {
    throw new ConfigError('patch', `patch is not JSON-serialisable: ${(error as Error).message}`, { cause: error });
  }
  checkStorable(json, patch, 'patch');
  return JSON.parse(json) as Record<string, unknown>;
}

/**
 * Validates the patch of `updateMany`: a plain object whose keys are top-level field names other than
 * `id` (they become JSON paths in the SQL statement), with storable values.
 * @throws ConfigError otherwise.
 */
export function encodeManyPatch(patch: unknown): Record<string, unknown> {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) {
    throw new ConfigError('patch', `patch must be a plain object, got ${describeValue(patch)}`);
  }
  for (const key of Object.keys(patch)) {
    checkField(key, 'patch field');
    if (key === 'id') throw new ConfigError('patch.id', 'updateMany cannot change document ids');
  }
  return encodePatch(patch, '');
}

/** A batch ready to write: ids and JSON texts in input order. */
export interface PreparedBatch {
  ids: string[];
  jsons: string[];
}

/**
 * Resolves ids and serialises a batch, validating every document before anything is written. The
 * batch is applied in input order, as if each document were put one after the other (an id written
 * twice ends with the later document and version + 2). No duplicate detection here: a Set over 100,000
 * ids cost 30–120 ms on the bench machine, a quarter of the whole SQLite insert; only PostgreSQL, which
 * cannot upsert one row twice in one statement, checks per chunk.
 * @throws ConfigError when `docs` is not an array or a document/id is invalid.
 */
export function prepareBatch(docs: readonly object[], nowMs: number): PreparedBatch {
  if (!Array.isArray(docs)) throw new ConfigError('docs', `docs must be an array, got ${describeValue(docs)}`);
  const n = docs.length;
  const ids: string[] = new Array(n);
  const jsons: string[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const doc = docs[i] as object;
    const id = resolveId(doc, undefined, nowMs);
    ids[i] = id;
    jsons[i] = encodeDocument(doc, id);
  }
  return { ids, jsons };
}

/** Wraps a driver error as a `StorageError` naming the operation and collection (cause kept). */
export function describeFailure(op: string, collection: string | undefined, error: unknown): string {
  const reason = error instanceof Error ? error.message : String(error);
  return `storage.${op}${collection ? ` on "${collection}"` : ''} failed: ${reason}`;
}
