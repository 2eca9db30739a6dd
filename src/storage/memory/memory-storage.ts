/**
 * In-memory backend: the reference semantics of the storage contract, for tests and single-process
 * tools. Documents are kept as JSON text (so callers never share objects with the store) plus a parsed
 * copy for queries. Transactions hold a lock like SQLite's and keep an undo log.
 * @module
 */
import { abortReason, throwIfAborted } from '../../core/abort.js';
import { type Clock, systemClock } from '../../core/clock.js';
import { ClosedError, ConflictError, StorageError } from '../../core/errors.js';
import { checkNumber, type OptionSchema, validateOptions } from '../../core/options.js';
import type { LatencyRecorder } from '../../core/recorder.js';
import { aggregateDocuments, normaliseAggregate } from '../aggregation.js';
import type { StorageCommonOptions } from '../common-options.js';
import {
  compareCodePoints,
  compareKeys,
  encodeDocument,
  encodeManyPatch,
  encodePatch,
  matchesWhere,
  normaliseFind,
  normaliseWhere,
  pageOf,
  prepareBatch,
  resolveId,
  type SortKey,
  sortKeyOf,
} from '../documents.js';
import { checkCollection, checkField, checkId } from '../names.js';
import type {
  AggregateOptions,
  AggregateRow,
  DocumentWithMeta,
  FindOptions,
  FindResult,
  PutOptions,
  StorageAdapter,
  StorageCallOptions,
  StorageHealth,
  StorageStats,
  StoredDocument,
  UpdateOptions,
  Where,
} from '../types.js';
import { WriteLock } from '../write-lock.js';

/** Options of {@link MemoryStorage}. */
export interface MemoryStorageOptions extends Omit<StorageCommonOptions, 'tablePrefix'> {
  /** Most documents held across all collections; writes beyond it fail with StorageError (default 1,000,000). */
  maxDocuments?: number;
}

const SCHEMA: OptionSchema = {
  clock: { type: 'object' },
  profiler: { type: 'object' },
  logger: { type: 'object' },
  maxDocuments: { type: 'number', min: 1, max: 1e9, integer: true, allowInfinity: true },
} as const;

interface Entry {
  json: string;
  value: Record<string, unknown>;
  version: number;
  createdAt: number;
  updatedAt: number;
}

interface MemoryShared {
  collections: Map<string, Map<string, Entry>>;
  indexes: Map<string, Set<string>>;
  lock: WriteLock;
  clock: Clock;
  profiler: LatencyRecorder | undefined;
  maxDocuments: number;
  size: number;
  closed: boolean;
}

type Undo = { collection: string; id: string; previous: Entry | undefined } | { collection: string; created: true };

interface TxState {
  finished: boolean;
  undo: Undo[];
}

class MemorySession implements StorageAdapter {
  readonly kind = 'memory' as const;
  readonly sql = undefined;
  readonly #shared: MemoryShared;
  readonly #tx: TxState | undefined;

  constructor(shared: MemoryShared, tx: TxState | undefined) {
    this.#shared = shared;
    this.#tx = tx;
  }

  /** True once `close()` was called. */
  get isClosed(): boolean {
    return this.#shared.closed;
  }

  #check(): void {
    if (this.#tx?.finished) throw new StorageError('storage: this transaction has already finished');
    if (this.#shared.closed) throw new ClosedError('MemoryStorage');
  }

  #run<T>(op: string, signal: AbortSignal | undefined, fn: () => T): Promise<T> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    const profiler = this.#shared.profiler;
    const start = profiler ? performance.now() : 0;
    const finish = (isError: boolean): void => {
      if (!profiler) return;
      profiler.record(`storage.${op}`, performance.now() - start, isError);
      profiler.noteQuery?.(`memory:${op}`);
    };
    const now = (): T => {
      this.#check();
      try {
        const result = fn();
        finish(false);
        return result;
      } catch (error) {
        finish(true);
        throw error;
      }
    };
    if (this.#tx || !this.#shared.lock.isHeld) {
      try {
        return Promise.resolve(now());
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return this.#shared.lock.acquire(signal).then(() => {
      try {
        return now();
      } finally {
        this.#shared.lock.release();
      }
    });
  }

  #collection(name: string, create: boolean): Map<string, Entry> | undefined {
    let docs = this.#shared.collections.get(name);
    if (docs === undefined && create) {
      checkCollection(name);
      docs = new Map();
      this.#shared.collections.set(name, docs);
      this.#tx?.undo.push({ collection: name, created: true });
    }
    return docs;
  }

  #write(collection: string, docs: Map<string, Entry>, id: string, json: string, now: number): void {
    const previous = docs.get(id);
    if (previous === undefined && this.#shared.size >= this.#shared.maxDocuments) {
      throw new StorageError(
        `storage.put on "${collection}" failed: MemoryStorage is full (${this.#shared.maxDocuments} documents)`,
      );
    }
    this.#tx?.undo.push({ collection, id, previous });
    if (previous === undefined) this.#shared.size++;
    docs.set(id, {
      json,
      value: JSON.parse(json) as Record<string, unknown>,
      version: (previous?.version ?? 0) + 1,
      createdAt: previous?.createdAt ?? now,
      updatedAt: now,
    });
  }

  get<T extends object = Record<string, unknown>>(
    collection: string,
    id: string,
    options?: StorageCallOptions,
  ): Promise<StoredDocument<T> | undefined> {
    return this.#run('get', options?.signal, () => {
      checkCollection(collection);
      checkId(id);
      const entry = this.#shared.collections.get(collection)?.get(id);
      return entry === undefined ? undefined : (JSON.parse(entry.json) as StoredDocument<T>);
    });
  }

  getWithMeta<T extends object = Record<string, unknown>>(
    collection: string,
    id: string,
    options?: StorageCallOptions,
  ): Promise<DocumentWithMeta<T> | undefined> {
    return this.#run('getWithMeta', options?.signal, () => {
      checkCollection(collection);
      checkId(id);
      const entry = this.#shared.collections.get(collection)?.get(id);
      if (entry === undefined) return undefined;
      return {
        doc: JSON.parse(entry.json) as StoredDocument<T>,
        version: entry.version,
        createdAt: entry.createdAt,
        updatedAt: entry.updatedAt,
      };
    });
  }

  put<T extends object>(collection: string, doc: T, options?: PutOptions): Promise<string> {
    return this.#run('put', options?.signal, () => {
      checkCollection(collection);
      const now = this.#shared.clock.now();
      const id = resolveId(doc, options?.id, now);
      const json = encodeDocument(doc, id);
      this.#write(collection, this.#collection(collection, true) as Map<string, Entry>, id, json, now);
      return id;
    });
  }

  putMany<T extends object>(collection: string, docs: readonly T[], options?: StorageCallOptions): Promise<string[]> {
    return this.#run('putMany', options?.signal, () => {
      checkCollection(collection);
      const now = this.#shared.clock.now();
      const { ids, jsons } = prepareBatch(docs, now);
      if (ids.length === 0) return ids;
      const target = this.#collection(collection, true) as Map<string, Entry>;
      const added = new Set(ids.filter((id) => !target.has(id))).size;
      if (this.#shared.size + added > this.#shared.maxDocuments) {
        throw new StorageError(
          `storage.putMany on "${collection}" failed: MemoryStorage is full (${this.#shared.maxDocuments} documents)`,
        );
      }
      for (let i = 0; i < ids.length; i++) this.#write(collection, target, ids[i] as string, jsons[i] as string, now);
      return ids;
    });
  }

  update<T extends object = Record<string, unknown>>(
    collection: string,
    id: string,
    patch: Partial<T>,
    options?: UpdateOptions,
  ): Promise<StoredDocument<T> | undefined> {
    return this.#run('update', options?.signal, () => {
      checkCollection(collection);
      checkId(id);
      const clean = encodePatch(patch, id);
      const expected = options?.expectedVersion;
      if (expected !== undefined) checkNumber('expectedVersion', expected, { min: 0, integer: true });
      const docs = this.#shared.collections.get(collection);
      const entry = docs?.get(id);
      if (docs === undefined || entry === undefined) return undefined;
      if (expected !== undefined && entry.version !== expected) {
        throw new ConflictError(
          `storage.update on "${collection}": document ${JSON.stringify(id).slice(0, 80)} is at version ${entry.version}, expected ${expected}`,
          expected,
          entry.version,
        );
      }
      const merged = { ...(JSON.parse(entry.json) as object), ...clean, id };
      this.#write(collection, docs, id, JSON.stringify(merged), this.#shared.clock.now());
      return merged as StoredDocument<T>;
    });
  }

  updateMany(
    collection: string,
    where: Where,
    patch: Record<string, unknown>,
    options?: StorageCallOptions,
  ): Promise<number> {
    return this.#run('updateMany', options?.signal, () => {
      checkCollection(collection);
      const clauses = normaliseWhere(where);
      const clean = encodeManyPatch(patch);
      const docs = this.#shared.collections.get(collection);
      if (docs === undefined) return 0;
      const now = this.#shared.clock.now();
      const matching = [...docs].filter(([, entry]) => matchesWhere(entry.value, clauses));
      for (const [id, entry] of matching) {
        this.#write(collection, docs, id, JSON.stringify({ ...(JSON.parse(entry.json) as object), ...clean, id }), now);
      }
      return matching.length;
    });
  }

  delete(collection: string, id: string, options?: StorageCallOptions): Promise<boolean> {
    return this.#run('delete', options?.signal, () => {
      checkCollection(collection);
      checkId(id);
      const docs = this.#shared.collections.get(collection);
      const previous = docs?.get(id);
      if (docs === undefined || previous === undefined) return false;
      this.#tx?.undo.push({ collection, id, previous });
      docs.delete(id);
      this.#shared.size--;
      return true;
    });
  }

  find<T extends object = Record<string, unknown>>(collection: string, options?: FindOptions): Promise<FindResult<T>> {
    return this.#run('find', options?.signal, () => {
      checkCollection(collection);
      const find = normaliseFind(options);
      const docs = this.#shared.collections.get(collection);
      if (docs === undefined) return { items: [], nextCursor: undefined };
      const field = find.orderField;
      const sign = find.descending ? -1 : 1;
      const byId = field === 'id';
      const matches: Array<{ id: string; key: SortKey; entry: Entry }> = [];
      const after = find.after;
      for (const [id, entry] of docs) {
        if (!matchesWhere(entry.value, find.clauses)) continue;
        const key = byId ? sortKeyOf(null) : sortKeyOf(entry.value[field]);
        if (after) {
          const c = compareKeys(key, after.key) || compareCodePoints(id, after.id);
          if (c * sign <= 0) continue;
        }
        matches.push({ id, key, entry });
      }
      matches.sort((a, b) => sign * (compareKeys(a.key, b.key) || compareCodePoints(a.id, b.id)));
      const page = matches.slice(0, find.limit + 1).map((m) => JSON.parse(m.entry.json) as StoredDocument<T>);
      return pageOf(page, find);
    });
  }

  count(collection: string, where?: Where, options?: StorageCallOptions): Promise<number> {
    return this.#run('count', options?.signal, () => {
      checkCollection(collection);
      const clauses = normaliseWhere(where);
      const docs = this.#shared.collections.get(collection);
      if (docs === undefined) return 0;
      if (clauses.length === 0) return docs.size;
      let n = 0;
      for (const entry of docs.values()) if (matchesWhere(entry.value, clauses)) n++;
      return n;
    });
  }

  aggregate(collection: string, options: AggregateOptions): Promise<AggregateRow[]> {
    return this.#run('aggregate', options?.signal, () => {
      checkCollection(collection);
      const agg = normaliseAggregate(options);
      const docs = this.#shared.collections.get(collection);
      return aggregateDocuments(docs ? Array.from(docs.values(), (entry) => entry.value) : [], agg);
    });
  }

  ensureIndex(collection: string, field: string, options?: StorageCallOptions): Promise<void> {
    return this.#run('ensureIndex', options?.signal, () => {
      checkCollection(collection);
      checkField(field);
      this.#collection(collection, true);
      let fields = this.#shared.indexes.get(collection);
      if (!fields) {
        fields = new Set();
        this.#shared.indexes.set(collection, fields);
      }
      fields.add(field);
    });
  }

  collections(options?: StorageCallOptions): Promise<string[]> {
    return this.#run('collections', options?.signal, () =>
      [...this.#shared.collections.keys()].sort(compareCodePoints),
    );
  }

  /** Runs `fn` in a transaction: outside callers wait until it ends; a throw undoes its writes. */
  async transaction<T>(fn: (tx: StorageAdapter) => Promise<T>, options?: StorageCallOptions): Promise<T> {
    throwIfAborted(options?.signal);
    this.#check();
    if (this.#tx) {
      // Nested: undo only this level's writes on throw.
      const mark = this.#tx.undo.length;
      try {
        return await fn(this);
      } catch (error) {
        this.#rollback(this.#tx.undo, mark);
        throw error;
      }
    }
    await this.#shared.lock.acquire(options?.signal);
    const state: TxState = { finished: false, undo: [] };
    try {
      this.#check();
      const tx = new MemorySession(this.#shared, state);
      const result = await this.#shared.lock.runHolding(() => fn(tx));
      state.finished = true;
      return result;
    } catch (error) {
      state.finished = true;
      this.#rollback(state.undo, 0);
      throw error;
    } finally {
      state.finished = true;
      this.#shared.lock.release();
    }
  }

  #rollback(undo: Undo[], mark: number): void {
    for (let i = undo.length - 1; i >= mark; i--) {
      const step = undo[i] as Undo;
      if ('created' in step) {
        const docs = this.#shared.collections.get(step.collection);
        if (docs) this.#shared.size -= docs.size;
        this.#shared.collections.delete(step.collection);
        this.#shared.indexes.delete(step.collection);
        continue;
      }
      const docs = this.#shared.collections.get(step.collection);
      if (!docs) continue;
      const had = docs.has(step.id);
      if (step.previous) {
        docs.set(step.id, step.previous);
        if (!had) this.#shared.size++;
      } else if (had) {
        docs.delete(step.id);
        this.#shared.size--;
      }
    }
    undo.length = mark;
  }

  async health(): Promise<StorageHealth> {
    return { ok: !this.#shared.closed, latencyMs: 0, ...(this.#shared.closed ? { error: 'closed' } : {}) };
  }

  stats(): StorageStats {
    return {
      total: 1,
      idle: this.#shared.lock.isHeld ? 0 : 1,
      waiting: this.#shared.lock.waiting,
      documents: this.#shared.size,
      collections: this.#shared.collections.size,
    };
  }

  async close(): Promise<void> {
    if (this.#tx || this.#shared.closed) return;
    await this.#shared.lock.acquire();
    this.#shared.closed = true;
    this.#shared.lock.release();
  }

  /** Same as {@link close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * In-memory document storage with the same semantics as the SQL backends (ordering, comparisons,
 * cursors, versions, transactions). Data lives as long as the instance.
 *
 * @example
 * ```ts
 * const storage = new MemoryStorage();
 * await storage.put('projects', { id: 'p1', name: 'Atlas' });
 * ```
 * @throws ConfigError on invalid options.
 */
export class MemoryStorage extends MemorySession {
  constructor(options: MemoryStorageOptions = {}) {
    validateOptions('MemoryStorage', options, SCHEMA);
    super(
      {
        collections: new Map(),
        indexes: new Map(),
        lock: new WriteLock(),
        clock: options.clock ?? systemClock,
        profiler: options.profiler,
        maxDocuments: options.maxDocuments ?? 1_000_000,
        size: 0,
        closed: false,
      },
      undefined,
    );
  }
}
