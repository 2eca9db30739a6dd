/**
 * `aggregate`: validation, the reference computation (the memory backend) and the decoding of SQL rows,
 * so the three backends give identical rows. Groups are formed by the typed sort key of documents.ts
 * (10 and "10" are two groups; missing and null are one); `sum`/`avg`/`min`/`max` take numeric values only.
 * @module
 */
import { ConfigError } from '../core/errors.js';
import { describeValue } from '../core/options.js';
import {
  compareKeys,
  matchesWhere,
  type NormalClause,
  normaliseWhere,
  Rank,
  type SortKey,
  sortKeyOf,
} from './documents.js';
import { checkField } from './names.js';
import type { AggregateOptions, AggregateRow } from './types.js';

/** The aggregate functions over numeric field values. */
export const AGGREGATE_FUNCTIONS = ['sum', 'avg', 'min', 'max'] as const;
/** One of {@link AGGREGATE_FUNCTIONS}. */
export type AggregateFunction = (typeof AGGREGATE_FUNCTIONS)[number];

/** Default and largest number of rows of `aggregate`. */
export const DEFAULT_AGGREGATE_LIMIT = 1000;
export const MAX_AGGREGATE_LIMIT = 10_000;
/** Most group fields, and most aggregated fields per function. */
const MAX_GROUP_FIELDS = 8;
const MAX_AGGREGATE_FIELDS = 32;

/** What the rows are ordered by. */
export type AggregateOrder =
  | { kind: 'group'; index: number }
  | { kind: 'count' }
  | { kind: 'value'; fn: AggregateFunction; index: number };

/** Validated `aggregate` options. */
export interface NormalAggregate {
  clauses: NormalClause[];
  groupBy: string[];
  count: boolean;
  fields: Record<AggregateFunction, string[]>;
  /** Undefined: by the group fields only. */
  order: AggregateOrder | undefined;
  descending: boolean;
  limit: number;
}

const KNOWN = new Set(['where', 'groupBy', 'count', 'sum', 'avg', 'min', 'max', 'orderBy', 'limit', 'signal']);

function fieldList(value: unknown, option: string, most: number): string[] {
  const list = typeof value === 'string' && option === 'groupBy' ? [value] : value;
  if (!Array.isArray(list) || list.length > most) {
    throw new ConfigError(
      option,
      `${option} must be an array of at most ${most} field names${option === 'groupBy' ? ' (or one name)' : ''}, got ${describeValue(value)}`,
    );
  }
  const fields = list.map((field) => checkField(field, `${option}[]`));
  if (new Set(fields).size !== fields.length) throw new ConfigError(option, `${option} names a field twice`);
  return fields;
}

/**
 * Validates `aggregate` options.
 * @throws ConfigError on unknown options, bad field names, an orderBy that names nothing requested, or a bad limit.
 */
export function normaliseAggregate(options: AggregateOptions | undefined): NormalAggregate {
  if (options === null || typeof options !== 'object') {
    throw new ConfigError('aggregate', `aggregate options must be an object, got ${describeValue(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) {
      throw new ConfigError(
        `aggregate.${key.slice(0, 40)}`,
        `aggregate: unknown option ${JSON.stringify(key).slice(0, 40)} (known: ${[...KNOWN].join(', ')})`,
      );
    }
  }
  const clauses = normaliseWhere(options.where);
  const groupBy = options.groupBy === undefined ? [] : fieldList(options.groupBy, 'groupBy', MAX_GROUP_FIELDS);
  if (options.count !== undefined && typeof options.count !== 'boolean') {
    throw new ConfigError('count', `count must be true, got ${describeValue(options.count)}`);
  }
  const fields = { sum: [], avg: [], min: [], max: [] } as Record<AggregateFunction, string[]>;
  for (const fn of AGGREGATE_FUNCTIONS) {
    if (options[fn] !== undefined) fields[fn] = fieldList(options[fn], fn, MAX_AGGREGATE_FIELDS);
  }
  const count = options.count === true;
  let order: AggregateOrder | undefined;
  let descending = false;
  if (options.orderBy !== undefined) {
    const orderBy = options.orderBy;
    if (orderBy === null || typeof orderBy !== 'object' || typeof orderBy.field !== 'string') {
      throw new ConfigError('orderBy', `orderBy must be { field, direction? }, got ${describeValue(orderBy)}`);
    }
    if (orderBy.direction !== undefined && orderBy.direction !== 'asc' && orderBy.direction !== 'desc') {
      throw new ConfigError(
        'orderBy.direction',
        `orderBy.direction must be "asc" or "desc", got ${describeValue(orderBy.direction)}`,
      );
    }
    descending = orderBy.direction === 'desc';
    order = parseOrder(orderBy.field, groupBy, count, fields);
  }
  const limit = options.limit ?? DEFAULT_AGGREGATE_LIMIT;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_AGGREGATE_LIMIT) {
    throw new ConfigError(
      'limit',
      `limit must be an integer >= 1 <= ${MAX_AGGREGATE_LIMIT}, got ${describeValue(limit)}`,
    );
  }
  return { clauses, groupBy, count, fields, order, descending, limit };
}

function parseOrder(
  field: string,
  groupBy: readonly string[],
  count: boolean,
  fields: Record<AggregateFunction, string[]>,
): AggregateOrder {
  const group = groupBy.indexOf(field);
  if (group !== -1) return { kind: 'group', index: group };
  if (field === 'count' && count) return { kind: 'count' };
  const dot = field.indexOf('.');
  const fn = field.slice(0, dot) as AggregateFunction;
  if (dot > 0 && AGGREGATE_FUNCTIONS.includes(fn)) {
    const index = fields[fn].indexOf(field.slice(dot + 1));
    if (index !== -1) return { kind: 'value', fn, index };
  }
  throw new ConfigError(
    'orderBy.field',
    `orderBy.field must be a groupBy field, "count" (with count: true) or "<sum|avg|min|max>.<field>" that was asked for, got ${describeValue(field)}`,
  );
}

/** The reported value of a group key: numbers, strings and booleans as they are; null for missing, null, objects and arrays. */
export function groupValue(key: SortKey): string | number | boolean | null {
  switch (key.rank) {
    case Rank.Number:
      return key.num;
    case Rank.String:
      return key.str;
    case Rank.Boolean:
      return key.num === 1;
    default:
      return null;
  }
}

/** Compares two aggregate values: `null` first. */
function compareValues(a: number | null | undefined, b: number | null | undefined): number {
  if (a === b) return 0;
  if (a === null || a === undefined) return -1;
  if (b === null || b === undefined) return 1;
  return a < b ? -1 : 1;
}

/** A row being built: the group keys and the rows' values. */
export interface KeyedRow {
  keys: SortKey[];
  row: AggregateRow;
}

/** Sorts rows as `aggregate` promises (the SQL backends do the same in ORDER BY) and cuts them to the limit. */
export function orderRows(rows: KeyedRow[], agg: NormalAggregate): AggregateRow[] {
  const byGroups = (a: KeyedRow, b: KeyedRow): number => {
    for (let i = 0; i < a.keys.length; i++) {
      const c = compareKeys(a.keys[i] as SortKey, b.keys[i] as SortKey);
      if (c !== 0) return c;
    }
    return 0;
  };
  const sign = agg.descending ? -1 : 1;
  const order = agg.order;
  rows.sort((a, b) => {
    let c = 0;
    if (order === undefined) return sign * byGroups(a, b);
    if (order.kind === 'group') c = compareKeys(a.keys[order.index] as SortKey, b.keys[order.index] as SortKey);
    else if (order.kind === 'count') c = compareValues(a.row.count, b.row.count);
    else {
      const field = agg.fields[order.fn][order.index] as string;
      c = compareValues(a.row[order.fn]?.[field], b.row[order.fn]?.[field]);
    }
    return sign * c || byGroups(a, b);
  });
  return rows.slice(0, agg.limit).map((r) => r.row);
}

interface Accumulator {
  keys: SortKey[];
  count: number;
  /** Per aggregated field (sum, avg, min, max in that order of `fields`): numeric count, sum, min, max. */
  stats: Map<string, { n: number; sum: number; min: number; max: number }>;
}

/** Every field any aggregate function reads. */
function aggregatedFields(agg: NormalAggregate): string[] {
  return [...new Set(AGGREGATE_FUNCTIONS.flatMap((fn) => agg.fields[fn]))];
}

/** Builds the output row of one group from its numbers. */
export function buildRow(
  agg: NormalAggregate,
  keys: SortKey[],
  count: number,
  value: (fn: AggregateFunction, field: string) => number | null,
): KeyedRow {
  const group: AggregateRow['group'] = {};
  agg.groupBy.forEach((field, i) => {
    group[field] = groupValue(keys[i] as SortKey);
  });
  const row: AggregateRow = { group };
  if (agg.count) row.count = count;
  for (const fn of AGGREGATE_FUNCTIONS) {
    if (agg.fields[fn].length === 0) continue;
    const values: Record<string, number | null> = {};
    for (const field of agg.fields[fn]) values[field] = value(fn, field);
    row[fn] = values;
  }
  return { keys, row };
}

/** The reference computation over documents (the memory backend). */
export function aggregateDocuments(docs: Iterable<Record<string, unknown>>, agg: NormalAggregate): AggregateRow[] {
  const groups = new Map<string, Accumulator>();
  const numeric = aggregatedFields(agg);
  for (const doc of docs) {
    if (!matchesWhere(doc, agg.clauses)) continue;
    const keys = agg.groupBy.map((field) => sortKeyOf(doc[field]));
    const id = keys.map((k) => `${k.rank}|${k.num}|${k.str}`).join('\u0001');
    let acc = groups.get(id);
    if (!acc) {
      acc = { keys, count: 0, stats: new Map() };
      groups.set(id, acc);
    }
    acc.count++;
    for (const field of numeric) {
      const v = doc[field];
      if (typeof v !== 'number') continue;
      const s = acc.stats.get(field);
      if (!s) acc.stats.set(field, { n: 1, sum: v, min: v, max: v });
      else {
        s.n++;
        s.sum += v;
        if (v < s.min) s.min = v;
        if (v > s.max) s.max = v;
      }
    }
  }
  // Without groupBy there is always one row, as in SQL (count 0 over no documents).
  if (agg.groupBy.length === 0 && groups.size === 0) groups.set('', { keys: [], count: 0, stats: new Map() });
  const rows: KeyedRow[] = [];
  for (const acc of groups.values()) {
    rows.push(
      buildRow(agg, acc.keys, acc.count, (fn, field) => {
        const s = acc.stats.get(field);
        if (!s) return null;
        return fn === 'sum' ? s.sum : fn === 'avg' ? s.sum / s.n : fn === 'min' ? s.min : s.max;
      }),
    );
  }
  return orderRows(rows, agg);
}

/** The rows of an aggregate over a collection that does not exist. */
export function aggregateNothing(agg: NormalAggregate): AggregateRow[] {
  return aggregateDocuments([], agg);
}
