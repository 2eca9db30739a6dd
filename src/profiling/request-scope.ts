/**
 * The state of one `Profiler.scope()` run (a request, a job): what was recorded inside it and which query
 * shapes it issued, for attribution and N+1 detection. Internal to the profiler; the public shapes are
 * {@link ScopeSnapshot} and {@link ScopeStats}.
 * @module
 */

/** Distinct query shapes remembered per scope run; more are counted in `droppedShapes`, not stored. */
export const MAX_SHAPES_PER_SCOPE = 1024;
/** Longest query shape kept, in characters; longer shapes are truncated (they key a map). */
export const MAX_SHAPE_LENGTH = 1000;

/** Count, errors and total time of one operation name inside a scope. */
export interface ScopeOperation {
  /** Times the operation was recorded. */
  count: number;
  /** How many of them failed. */
  errors: number;
  /** Summed duration in ms. */
  totalMs: number;
}

/** The live state of the scope the caller is running in, from `Profiler.currentScope()`. */
export interface ScopeSnapshot {
  /** The name given to `scope(name, fn)`. */
  name: string;
  /** Milliseconds since the scope started. */
  elapsedMs: number;
  /** Names of the enclosing scopes, outermost first (empty for a top-level scope). */
  parents: string[];
  /** Operations recorded so far inside this scope (including nested scopes), by name. */
  operations: Record<string, ScopeOperation>;
  /** Queries noted so far, by shape. */
  queries: Record<string, number>;
}

/** Per-operation totals across every finished run of a scope name. */
export interface ScopeOperationStats extends ScopeOperation {
  /** Mean duration of the operation in ms. */
  meanMs: number;
  /** Mean number of times the operation ran per scope run (e.g. queries per request). */
  perScope: number;
}

/** Totals over every finished run of one scope name, from `Profiler.scopeStats(name)`. */
export interface ScopeStats {
  /** Finished runs of the scope. */
  count: number;
  /** Runs that threw or rejected. */
  errors: number;
  /** Queries noted across all runs. */
  queries: number;
  /** N+1 patterns reported across all runs (at most one per shape per run). */
  nPlusOne: number;
  /** What the runs did, by operation name. */
  operations: Record<string, ScopeOperationStats>;
}

/** Mutable state of one scope run; the AsyncLocalStorage store. */
export class ScopeState {
  /** Mutable: `ScopeHandle.rename` sets it once a router knows the route template. */
  name: string;
  /** Set by `ScopeHandle.markFailed` (an HTTP 5xx whose handler did not throw). */
  isFailed = false;
  readonly parent: ScopeState | undefined;
  readonly startedAt: number;
  /** Set when the scope's function settled; late work started inside it is no longer attributed. */
  ended = false;
  readonly operations = new Map<string, ScopeOperation>();
  readonly shapes = new Map<string, number>();
  queries = 0;
  droppedShapes = 0;
  nPlusOne = 0;

  constructor(name: string, parent: ScopeState | undefined, startedAt: number) {
    this.name = name;
    this.parent = parent;
    this.startedAt = startedAt;
  }

  /** Adds one operation sample; `maxOperations` bounds the distinct names kept. */
  addOperation(name: string, ms: number, isError: boolean, maxOperations: number): void {
    let operation = this.operations.get(name);
    if (operation === undefined) {
      if (this.operations.size >= maxOperations) return;
      operation = { count: 0, errors: 0, totalMs: 0 };
      this.operations.set(name, operation);
    }
    operation.count++;
    operation.totalMs += ms;
    if (isError) operation.errors++;
  }

  /** Counts one query of `shape`; returns true exactly when the count reaches `threshold`. */
  noteQuery(shape: string, threshold: number): boolean {
    this.queries++;
    const seen = this.shapes.get(shape);
    if (seen === undefined) {
      if (this.shapes.size >= MAX_SHAPES_PER_SCOPE) {
        this.droppedShapes++;
        return false;
      }
      this.shapes.set(shape, 1);
      return threshold <= 1;
    }
    this.shapes.set(shape, seen + 1);
    return seen + 1 === threshold;
  }

  parentNames(): string[] {
    const names: string[] = [];
    for (let scope = this.parent; scope !== undefined; scope = scope.parent) names.unshift(scope.name);
    return names;
  }
}

/** Running totals per scope name (bounded by the profiler's `maxMetrics`). */
export class ScopeAggregate {
  count = 0;
  errors = 0;
  queries = 0;
  nPlusOne = 0;
  readonly operations = new Map<string, ScopeOperation>();

  add(run: ScopeState, isError: boolean, maxOperations: number): void {
    this.count++;
    if (isError) this.errors++;
    this.queries += run.queries;
    this.nPlusOne += run.nPlusOne;
    for (const [name, op] of run.operations) {
      let total = this.operations.get(name);
      if (total === undefined) {
        if (this.operations.size >= maxOperations) continue;
        total = { count: 0, errors: 0, totalMs: 0 };
        this.operations.set(name, total);
      }
      total.count += op.count;
      total.errors += op.errors;
      total.totalMs += op.totalMs;
    }
  }

  toStats(): ScopeStats {
    const operations: Record<string, ScopeOperationStats> = {};
    for (const [name, op] of this.operations) {
      operations[name] = {
        ...op,
        meanMs: op.count === 0 ? 0 : op.totalMs / op.count,
        perScope: this.count === 0 ? 0 : op.count / this.count,
      };
    }
    return { count: this.count, errors: this.errors, queries: this.queries, nPlusOne: this.nPlusOne, operations };
  }
}
