/**
 * Compiles normalised `where` / `orderBy` / cursor conditions to SQL for SQLite and PostgreSQL.
 *
 * A field is compared through three expressions that mirror the JS sort key (see documents.ts):
 * R (type rank), N (number, booleans 0/1) and S (string, "C"/BINARY collation). All three are never
 * NULL, so `NOT (…)`, row-value comparisons and ORDER BY behave the same in both databases. `ensureIndex`
 * creates one composite expression index on (R, N, S, id), which serves equality, ranges, `in`,
 * ORDER BY and the keyset cursor of that field. Field names are strict identifiers (names.ts) and are
 * the only non-parameter text; every value is a bound parameter.
 * @module
 */
import type { NormalClause, NormalCondition, NormalFind, SortKey } from '../documents.js';
import { Rank } from '../documents.js';

/** Which SQL flavour to emit. */
export type SqlDialect = 'sqlite' | 'postgres';

/** The three key expressions of a field. */
export interface KeyExpressions {
  rank: string;
  num: string;
  str: string;
}

/** Key expressions of a top-level JSON field (field already validated). */
export function keyExpressions(dialect: SqlDialect, field: string): KeyExpressions {
  if (dialect === 'sqlite') {
    const path = `'$.${field}'`;
    const type = `json_type(data, ${path})`;
    const value = `json_extract(data, ${path})`;
    return {
      rank: `(CASE ${type} WHEN 'integer' THEN 1 WHEN 'real' THEN 1 WHEN 'text' THEN 2 WHEN 'true' THEN 3 WHEN 'false' THEN 3 WHEN 'object' THEN 4 WHEN 'array' THEN 4 ELSE 0 END)`,
      num: `(CASE ${type} WHEN 'integer' THEN ${value} WHEN 'real' THEN ${value} WHEN 'true' THEN 1 ELSE 0 END)`,
      str: `(CASE ${type} WHEN 'text' THEN ${value} ELSE '' END)`,
    };
  }
  const node = `(data -> '${field}')`;
  const type = `jsonb_typeof${node}`;
  return {
    rank: `(CASE ${type} WHEN 'number' THEN 1 WHEN 'string' THEN 2 WHEN 'boolean' THEN 3 WHEN 'object' THEN 4 WHEN 'array' THEN 4 ELSE 0 END)`,
    // float8, not numeric: JS numbers are doubles, and SQLite compares REAL/INTEGER the same way.
    num: `(CASE ${type} WHEN 'number' THEN (data ->> '${field}')::float8 WHEN 'boolean' THEN (CASE WHEN ${node} = 'true'::jsonb THEN 1::float8 ELSE 0::float8 END) ELSE 0::float8 END)`,
    str: `((CASE ${type} WHEN 'string' THEN (data ->> '${field}') ELSE '' END) COLLATE "C")`,
  };
}

/** Collects bound parameters and renders placeholders (`?` or `$n`). */
export class Params {
  readonly values: unknown[] = [];
  readonly #dialect: SqlDialect;
  constructor(dialect: SqlDialect) {
    this.#dialect = dialect;
  }
  /** Adds a value and returns its placeholder. */
  add(value: unknown): string {
    this.values.push(value);
    return this.#dialect === 'sqlite' ? '?' : `$${this.values.length}`;
  }
}

const RANGE_SQL: Record<string, string> = { gt: '>', gte: '>=', lt: '<', lte: '<=' };

function equalsKey(e: KeyExpressions, key: SortKey, p: Params): string {
  switch (key.rank) {
    case Rank.Null:
      return `${e.rank} = 0`;
    case Rank.Number:
      return `${e.rank} = 1 AND ${e.num} = ${p.add(key.num)}`;
    case Rank.String:
      return `${e.rank} = 2 AND ${e.num} = 0 AND ${e.str} = ${p.add(key.str)}`;
    default:
      return `${e.rank} = 3 AND ${e.num} = ${p.add(key.num)}`;
  }
}

function inKeys(e: KeyExpressions, keys: readonly SortKey[], p: Params): string {
  if (keys.length === 0) return '1 = 0';
  const parts: string[] = [];
  const strings = keys.filter((k) => k.rank === Rank.String);
  const numbers = keys.filter((k) => k.rank === Rank.Number);
  const booleans = keys.filter((k) => k.rank === Rank.Boolean);
  if (keys.some((k) => k.rank === Rank.Null)) parts.push(`${e.rank} = 0`);
  if (strings.length > 0) {
    parts.push(`(${e.rank} = 2 AND ${e.num} = 0 AND ${e.str} IN (${strings.map((k) => p.add(k.str)).join(', ')}))`);
  }
  if (numbers.length > 0) {
    parts.push(`(${e.rank} = 1 AND ${e.num} IN (${numbers.map((k) => p.add(k.num)).join(', ')}))`);
  }
  if (booleans.length > 0) {
    parts.push(`(${e.rank} = 3 AND ${e.num} IN (${booleans.map((k) => p.add(k.num)).join(', ')}))`);
  }
  return parts.length === 1 ? (parts[0] as string) : `(${parts.join(' OR ')})`;
}

function rangeKey(e: KeyExpressions, op: string, key: SortKey, p: Params): string {
  const sqlOp = RANGE_SQL[op] as string;
  if (key.rank === Rank.Number) return `${e.rank} = 1 AND ${e.num} ${sqlOp} ${p.add(key.num)}`;
  return `${e.rank} = 2 AND ${e.num} = 0 AND ${e.str} ${sqlOp} ${p.add(key.str)}`;
}

/**
 * The least string above every string that starts with `prefix` (by code point, which is UTF-8 byte
 * order: SQLite BINARY and PostgreSQL "C"), or undefined when there is none (an empty prefix, or one of
 * U+10FFFF only). `startsWith` becomes `S >= prefix AND S < upper`, a range the field's index serves —
 * exact without `LIKE`, so `%`, `_` and `\` in the prefix are plain characters.
 */
export function prefixUpperBound(prefix: string): string | undefined {
  const points = Array.from(prefix, (c) => c.codePointAt(0) as number);
  while (points.length > 0 && points[points.length - 1] === 0x10ffff) points.pop();
  if (points.length === 0) return undefined;
  let last = (points.pop() as number) + 1;
  if (last === 0xd800) last = 0xe000; // surrogate code points are not characters
  points.push(last);
  return String.fromCodePoint(...points);
}

function textCondition(dialect: SqlDialect, column: string, condition: NormalCondition, p: Params): string {
  const operand = (condition.keys[0] as SortKey).str;
  if (condition.op === 'startsWith') {
    const upper = prefixUpperBound(operand);
    return `${column} >= ${p.add(operand)}${upper === undefined ? '' : ` AND ${column} < ${p.add(upper)}`}`;
  }
  // A plain substring search (no LIKE, so no wildcard characters to escape); the operand of a
  // case-insensitive search is lowercased (ASCII) already, and lower() folds ASCII only in both databases.
  const haystack = condition.caseInsensitive ? `lower(${column})` : column;
  return dialect === 'sqlite'
    ? `instr(${haystack}, ${p.add(operand)}) > 0`
    : `strpos(${haystack}, ${p.add(operand)}) > 0`;
}

function idCondition(dialect: SqlDialect, condition: NormalCondition, p: Params): string {
  const keys = condition.keys;
  switch (condition.op) {
    case 'startsWith':
    case 'contains':
      return textCondition(dialect, 'id', condition, p);
    case 'eq':
      return `id = ${p.add((keys[0] as SortKey).str)}`;
    case 'ne':
      return `id <> ${p.add((keys[0] as SortKey).str)}`;
    case 'in':
      return keys.length === 0 ? '1 = 0' : `id IN (${keys.map((k) => p.add(k.str)).join(', ')})`;
    default:
      return `id ${RANGE_SQL[condition.op]} ${p.add((keys[0] as SortKey).str)}`;
  }
}

/** SQL boolean expression for the clauses (`1 = 1` when empty). */
export function compileWhere(dialect: SqlDialect, clauses: readonly NormalClause[], p: Params): string {
  const parts: string[] = [];
  for (const clause of clauses) {
    if (clause.field === 'id') {
      for (const condition of clause.conditions) parts.push(idCondition(dialect, condition, p));
      continue;
    }
    const e = keyExpressions(dialect, clause.field);
    for (const condition of clause.conditions) {
      const key = condition.keys[0] as SortKey;
      if (condition.op === 'eq') parts.push(equalsKey(e, key, p));
      else if (condition.op === 'ne') parts.push(`NOT (${equalsKey(e, key, p)})`);
      else if (condition.op === 'in') parts.push(inKeys(e, condition.keys, p));
      else if (condition.op === 'startsWith' || condition.op === 'contains') {
        parts.push(`${e.rank} = 2 AND ${e.num} = 0 AND ${textCondition(dialect, e.str, condition, p)}`);
      } else parts.push(rangeKey(e, condition.op, key, p));
    }
  }
  return parts.length === 0 ? '1 = 1' : parts.join(' AND ');
}

/** ORDER BY list and keyset condition of a find. */
export function compileOrder(dialect: SqlDialect, find: NormalFind, p: Params): { orderBy: string; after: string } {
  const dir = find.descending ? 'DESC' : 'ASC';
  const cmp = find.descending ? '<' : '>';
  if (find.orderField === 'id') {
    return {
      orderBy: `id ${dir}`,
      after: find.after ? `id ${cmp} ${p.add(find.after.id)}` : '',
    };
  }
  const e = keyExpressions(dialect, find.orderField);
  const orderBy = `${e.rank} ${dir}, ${e.num} ${dir}, ${e.str} ${dir}, id ${dir}`;
  if (!find.after) return { orderBy, after: '' };
  const { key, id } = find.after;
  const after = `(${e.rank}, ${e.num}, ${e.str}, id) ${cmp} (${p.add(key.rank)}, ${p.add(key.num)}, ${p.add(key.str)}, ${p.add(id)})`;
  return { orderBy, after };
}

/** The expression list of the composite index that `ensureIndex(field)` creates. */
export function indexColumns(dialect: SqlDialect, field: string): string {
  const e = keyExpressions(dialect, field);
  return `${e.rank}, ${e.num}, ${e.str}, id`;
}

/** A statement and its bound values. */
export interface Statement {
  text: string;
  values: unknown[];
}

/** The `find` statement: one page plus one row (to know whether another page follows). */
export function findStatement(dialect: SqlDialect, table: string, find: NormalFind): Statement {
  const p = new Params(dialect);
  const where = compileWhere(dialect, find.clauses, p);
  const order = compileOrder(dialect, find, p);
  const limit = p.add(find.limit + 1);
  const text =
    `SELECT data FROM ${table} WHERE ${where}${order.after ? ` AND ${order.after}` : ''} ` +
    `ORDER BY ${order.orderBy} LIMIT ${limit}`;
  return { text, values: p.values };
}

/**
 * The `updateMany` statement: a shallow merge of `patch` into every matching row, one statement.
 * SQLite sets each top-level key with `json_set` (its `json_patch` would merge nested objects and
 * delete keys set to null); PostgreSQL's `data || patch` is a shallow merge already. On PostgreSQL the
 * statement returns the count as `n`; on SQLite the caller reads `changes`.
 */
export function updateManyStatement(
  dialect: SqlDialect,
  table: string,
  clauses: readonly NormalClause[],
  patch: Record<string, unknown>,
  nowMs: number,
): Statement {
  const p = new Params(dialect);
  let data: string;
  if (dialect === 'sqlite') {
    const sets = Object.keys(patch).map((key) => `'$.${key}', json(${p.add(JSON.stringify(patch[key]))})`);
    data = sets.length === 0 ? 'data' : `json_set(data, ${sets.join(', ')})`;
  } else {
    data = `data || ${p.add(JSON.stringify(patch))}::jsonb`;
  }
  const update = `UPDATE ${table} SET data = ${data}, updated_at = ${p.add(nowMs)}, version = version + 1 WHERE ${compileWhere(dialect, clauses, p)}`;
  return {
    text: dialect === 'sqlite' ? update : `WITH u AS (${update} RETURNING 1) SELECT count(*) AS n FROM u`,
    values: p.values,
  };
}

/** The `count` statement (its one column is `n`). */
export function countStatement(dialect: SqlDialect, table: string, clauses: readonly NormalClause[]): Statement {
  const p = new Params(dialect);
  return { text: `SELECT count(*) AS n FROM ${table} WHERE ${compileWhere(dialect, clauses, p)}`, values: p.values };
}
