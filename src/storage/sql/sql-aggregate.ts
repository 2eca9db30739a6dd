/**
 * `aggregate` as one SQL statement for SQLite and PostgreSQL, and its rows back as `AggregateRow`s.
 *
 * Groups are formed on the same three key expressions (rank, number, string) that `ensureIndex`
 * indexes, in the index's column order, so a `groupBy` on an indexed field can walk that index in order
 * instead of sorting. Aggregates read only numeric values: `CASE WHEN rank = 1 THEN number END`.
 * @module
 */
import {
  AGGREGATE_FUNCTIONS,
  type AggregateFunction,
  buildRow,
  type KeyedRow,
  type NormalAggregate,
} from '../aggregation.js';
import type { Rank, SortKey } from '../documents.js';
import type { AggregateRow } from '../types.js';
import {
  compileWhere,
  type KeyExpressions,
  keyExpressions,
  Params,
  type SqlDialect,
  type Statement,
} from './sql-query.js';

function valueColumn(fn: AggregateFunction, index: number): string {
  return `${fn}_${index}`;
}

function aggregateSql(dialect: SqlDialect, fn: AggregateFunction, e: KeyExpressions): string {
  const numeric = `(CASE WHEN ${e.rank} = 1 THEN ${e.num} END)`;
  // SQLite's sum() of integers is exact but fails on overflow; total() is a double like PostgreSQL's
  // sum(float8) and JavaScript's, and is NULL-ed when the group has no numeric value (as sum() would be).
  if (fn === 'sum' && dialect === 'sqlite') return `(CASE WHEN count(${numeric}) > 0 THEN total(${numeric}) END)`;
  return `${fn}(${numeric})`;
}

/** The `aggregate` statement over `table`. */
export function aggregateStatement(dialect: SqlDialect, table: string, agg: NormalAggregate): Statement {
  const p = new Params(dialect);
  const columns: string[] = [];
  const groupKeys: string[] = [];
  agg.groupBy.forEach((field, i) => {
    const e = keyExpressions(dialect, field);
    columns.push(`${e.rank} AS g${i}r`, `${e.num} AS g${i}n`, `${e.str} AS g${i}s`);
    groupKeys.push(e.rank, e.num, e.str);
  });
  columns.push('count(*) AS n');
  for (const fn of AGGREGATE_FUNCTIONS) {
    agg.fields[fn].forEach((field, i) => {
      columns.push(`${aggregateSql(dialect, fn, keyExpressions(dialect, field))} AS ${valueColumn(fn, i)}`);
    });
  }
  const where = compileWhere(dialect, agg.clauses, p);
  let text = `SELECT ${columns.join(', ')} FROM ${table} WHERE ${where}`;
  if (groupKeys.length > 0) {
    const dir = agg.descending ? 'DESC' : 'ASC';
    const nulls = agg.descending ? 'NULLS LAST' : 'NULLS FIRST';
    const order = agg.order;
    const first: string[] = [];
    if (order === undefined) first.push(...groupKeys.map((key) => `${key} ${dir}`));
    else if (order.kind === 'group')
      first.push(...groupKeys.slice(order.index * 3, order.index * 3 + 3).map((k) => `${k} ${dir}`));
    else if (order.kind === 'count') first.push(`n ${dir}`);
    else first.push(`${valueColumn(order.fn, order.index)} ${dir} ${nulls}`);
    // Ties: by the group fields ascending, so every backend returns the same order.
    const orderBy = [...first, ...groupKeys.map((key) => `${key} ASC`)];
    text += ` GROUP BY ${groupKeys.join(', ')} ORDER BY ${orderBy.join(', ')} LIMIT ${p.add(agg.limit)}`;
  }
  return { text, values: p.values };
}

function numberOrNull(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value);
}

/** The rows of the `aggregate` statement as `AggregateRow`s, in the statement's order. */
export function aggregateRows(rows: readonly Record<string, unknown>[], agg: NormalAggregate): AggregateRow[] {
  return rows.map((row): AggregateRow => {
    const keys: SortKey[] = agg.groupBy.map((_, i) => ({
      rank: Number(row[`g${i}r`]) as Rank,
      num: Number(row[`g${i}n`]),
      str: String(row[`g${i}s`] ?? ''),
    }));
    const built: KeyedRow = buildRow(agg, keys, Number(row.n), (fn, field) =>
      numberOrNull(row[valueColumn(fn, agg.fields[fn].indexOf(field))]),
    );
    return built.row;
  });
}
