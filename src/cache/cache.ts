/**
 * `Cache<V>`: an in-process LRU + TTL cache (on lru-cache v11) that never stampedes, serves stale values
 * while it refreshes (`staleWhileRevalidateMs`) or when the source fails (`graceMs`), indexes tags, and
 * can sit in front of a shared second level ({@link CacheTier}).
 * @module
 */
import { LRUCache } from 'lru-cache';
import { abortable, abortReason } from '../core/abort.js';
import { type Clock, systemClock, type TimerHandle } from '../core/clock.js';
import { ClosedError, ConfigError, TimeoutError } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { describeValue, validateOptions } from '../core/options.js';
import type { LatencyRecorder } from '../core/recorder.js';
import type { CacheBus, CacheBusMessage } from './cache-bus.js';
import { checkCacheOptions, checkCallOptions, checkKey, checkTags, copyTags, ownTags } from './cache-input.js';
import { Entry, Load } from './cache-load.js';
import type { CacheTier, CacheTierEntry } from './cache-tier.js';
import type {
  CacheLoader,
  CacheOptions,
  CacheSetOptions,
  CacheStats,
  GetOrSetOptions,
  Loaded,
  LoaderContext,
  WrapOptions,
} from './cache-types.js';
import { TagIndex } from './tag-index.js';
import { TierCoordination } from './tier-coordination.js';

interface CachedError {
  error: unknown;
}

/**
 * A stampede-safe in-process cache. Keys are strings; `undefined` is never stored (see {@link CacheLoader}).
 *
 * @example
 * ```ts
 * const quotes = new Cache<Quote>({ name: 'quotes', max: 500, ttlMs: 60_000, staleWhileRevalidateMs: 10_000 });
 * const quote = await quotes.getOrSet(symbol, ({ signal }) => fetchQuote(symbol, { signal }));
 * ```
 */
export class Cache<V = unknown> {
  /** The name given in the options (`"default"` when none). */
  readonly name: string;
  readonly #scope: string;
  readonly #getOrSetScope: string;
  readonly #lru: LRUCache<string, Entry<V>>;
  readonly #errors: LRUCache<string, CachedError> | undefined;
  readonly #inflight = new Map<string, Load<V>>();
  readonly #tagIndex = new TagIndex();
  readonly #clock: Clock;
  readonly #profiler: LatencyRecorder | undefined;
  readonly #logger: Logger;
  readonly #tier: CacheTier<V> | undefined;
  readonly #bus: CacheBus | undefined;
  readonly #remote: TierCoordination<V>;
  #unsubscribe: (() => void) | undefined;
  readonly #loadMetric: string;
  readonly #ttlMs: number;
  readonly #swrMs: number;
  readonly #graceMs: number;
  readonly #retainMs: number;
  readonly #jitter: number;
  readonly #loadTimeoutMs: number | undefined;
  readonly #purgeIntervalMs: number;
  readonly #hasMaxSize: boolean;
  readonly #isEnabled: boolean;
  // Reused for every lru-cache call that needs options, so no call allocates an options object.
  readonly #setOptions: LRUCache.SetOptions<string, Entry<V>, unknown> = { ttl: 0, status: undefined };
  readonly #staleGetOptions: LRUCache.GetOptions<string, Entry<V>, unknown> = {
    allowStale: true,
    noDeleteOnStaleGet: true,
    status: undefined,
  };
  readonly #stalePeekOptions: LRUCache.PeekOptions<string, Entry<V>, unknown> = { allowStale: true, status: undefined };
  #hits = 0;
  #misses = 0;
  #staleHits = 0;
  #loads = 0;
  #loadErrors = 0;
  #evictions = 0;
  #expirations = 0;
  #busMessages = 0;
  #taggedLoads = 0;
  #isPurging = false;
  #isClosed = false;
  #closing: Promise<void> | undefined;
  #purgeTimer: TimerHandle | undefined;

  /**
   * @throws ConfigError for an unknown option, a value out of range, neither `max` nor `maxSize`, or
   * `maxSize` without `sizeOf` (and the reverse).
   */
  constructor(options: CacheOptions<V>) {
    checkCacheOptions(options);
    this.name = options.name ?? 'default';
    this.#scope = `Cache "${this.name}"`;
    this.#getOrSetScope = `${this.#scope}.getOrSet`;
    this.#clock = options.clock ?? systemClock;
    this.#profiler = options.profiler;
    this.#logger = options.logger ?? silentLogger;
    this.#tier = options.tier;
    this.#bus = options.bus;
    this.#remote = new TierCoordination<V>({
      name: this.name,
      tier: options.tier,
      bus: options.bus,
      clock: this.#clock,
      logger: this.#logger,
      onTierHit: (load, found) => this.#finishFromTier(load, found),
      onFillRefused: (key, entry) => {
        this.#stalePeekOptions.status = undefined;
        if (this.#lru.peek(key, this.#stalePeekOptions) === entry) this.#lru.delete(key);
      },
    });
    this.#loadMetric = `cache.${this.name}.load`;
    this.#ttlMs = options.ttlMs;
    this.#swrMs = options.staleWhileRevalidateMs ?? 0;
    this.#graceMs = options.graceMs ?? 0;
    this.#retainMs = Math.max(this.#swrMs, this.#graceMs);
    this.#jitter = options.jitter ?? 0;
    this.#loadTimeoutMs = options.loadTimeoutMs;
    this.#hasMaxSize = options.maxSize !== undefined;
    this.#isEnabled = options.enabled ?? true;
    this.#purgeIntervalMs =
      options.purgeIntervalMs ??
      (Number.isFinite(this.#ttlMs) ? Math.min(Math.max(this.#ttlMs, 1_000), 60_000) : 60_000);
    // lru-cache memoises perf.now() for ttlResolution ms with a real timer; a test clock must be read every time.
    const ttlResolution = this.#clock === systemClock ? 1 : 0;
    const sizeOf = options.sizeOf;
    this.#lru = new LRUCache<string, Entry<V>>({
      max: options.max,
      maxSize: options.maxSize,
      sizeCalculation: sizeOf === undefined ? undefined : (entry, key) => sizeOf(entry.value, key),
      ttlResolution,
      perf: this.#clock,
      allowStale: false,
      updateAgeOnGet: false,
      // Expired entries stay (for stale serving) only when a stale window exists; the purge drops them later.
      noDeleteOnStaleGet: this.#retainMs > 0,
      dispose: (entry, key, reason) => this.#onDispose(entry, key, reason),
      // Validation above guarantees max or maxSize; lru-cache's union type cannot see that.
    } as LRUCache.Options<string, Entry<V>, unknown>);
    const errorTtlMs = options.errorTtlMs ?? 0;
    this.#errors =
      errorTtlMs > 0
        ? new LRUCache<string, CachedError>({
            max: Math.min(options.max ?? 10_000, 10_000),
            ttl: Math.max(1, Math.ceil(errorTtlMs)),
            ttlResolution,
            perf: this.#clock,
          })
        : undefined;
    if (this.#isEnabled) this.#schedulePurge();
    if (this.#bus !== undefined && this.#isEnabled) {
      this.#unsubscribe = this.#bus.subscribe(this.name, {
        onMessage: (message) => this.#onRemote(message),
        onReset: () => this.#onRemoteReset(),
      });
    }
  }

  /**
   * The fresh value under `key`, or `undefined` (missing or expired). Never calls a loader.
   * @throws TypeError when `key` is not a string; ClosedError after `close()`.
   */
  get(key: string): V | undefined {
    const entry = this.#lru.get(key);
    if (entry !== undefined) {
      this.#hits++;
      return entry.value;
    }
    return this.#getMiss(key);
  }

  /**
   * True when a fresh value is stored under `key`. Does not count in stats or refresh recency.
   * @throws TypeError when `key` is not a string; ClosedError after `close()`.
   */
  has(key: string): boolean {
    if (this.#lru.has(key)) return true;
    checkKey(`${this.#scope}.has`, key);
    this.#throwIfClosed();
    return false;
  }

  /**
   * Stores `value` under `key` (and in the tier, in the background). A load in flight for the key is
   * not stored when it finishes (this value is newer).
   * @throws TypeError for a non-string key, an `undefined` value or bad tags; ConfigError for a bad
   * `ttlMs`; ClosedError after `close()`; TypeError from lru-cache when `sizeOf` returns a non-positive-integer.
   */
  set(key: string, value: V, options?: CacheSetOptions): void {
    const scope = `${this.#scope}.set`;
    checkKey(scope, key);
    if (value === undefined) {
      throw new TypeError(`${scope}: undefined is not cacheable (use delete(), or null for a negative answer)`);
    }
    if (options !== undefined) checkCallOptions(scope, options, false);
    const tags = ownTags(options?.tags);
    this.#throwIfClosed();
    if (!this.#isEnabled) return;
    const ttlMs = options?.ttlMs ?? this.#ttlMs;
    const running = this.#inflight.get(key);
    if (running !== undefined) this.#detach(running);
    this.#errors?.delete(key);
    this.#store(key, value, ttlMs, tags);
    this.#remote.set(key, value, ttlMs, tags);
  }

  /**
   * The value under `key`; on a miss, runs `loader` once for all concurrent callers and stores its
   * result. Stale values are served per `staleWhileRevalidateMs`/`graceMs`. A hit allocates nothing:
   * every hit on an entry gets the same resolved promise.
   * On a `Cache<unknown>` (e.g. `app.cache('quotes')` without a type argument) the result is typed from
   * the loader (the caller asserts that the key always holds what its loader returns); on a typed
   * `Cache<V>` it is `V`.
   * @throws (rejects) the loader's error (shared by all waiters), `TimeoutError` after `loadTimeoutMs`,
   * the signal's reason when this caller aborts, TypeError for a non-string key, ClosedError after `close()`.
   */
  getOrSet<T extends V = V>(key: string, loader: CacheLoader<T>, options?: GetOrSetOptions): Promise<Loaded<V, T>> {
    const entry = this.#lru.get(key);
    if (entry !== undefined) {
      this.#hits++;
      return entry.resolved() as Promise<Loaded<V, T>>;
    }
    return this.#getOrSetSlow(key, loader as unknown as CacheLoader<V>, options) as Promise<Loaded<V, T>>;
  }

  /**
   * A cached version of `fn`: calls with the same `key(...args)` share one call of `fn` and its
   * stored result, with the same stampede safety and stale serving as {@link getOrSet}.
   * @throws ConfigError when `key` is missing or `ttlMs`/`tags` are invalid.
   */
  wrap<A extends unknown[], R extends V = V>(
    fn: (...args: A) => Promise<R> | R,
    options: WrapOptions<A>,
  ): (...args: A) => Promise<Loaded<V, R>> {
    const scope = `${this.#scope}.wrap`;
    if (typeof fn !== 'function')
      throw new ConfigError(scope, `${scope}: fn must be a function, got ${describeValue(fn)}`);
    validateOptions(scope, options, {
      key: { type: 'function', required: true },
      ttlMs: { type: 'number', min: 0, exclusiveMin: true, allowInfinity: true },
      tags: { type: 'any' },
    });
    const keyOf = options.key;
    const ttlMs = options.ttlMs;
    const tagsOption = options.tags;
    const staticTags = typeof tagsOption === 'function' ? undefined : copyTags(scope, tagsOption);
    const call = (...args: A): Promise<V> => {
      let key: string;
      try {
        key = keyOf(...args);
      } catch (error) {
        return Promise.reject(error);
      }
      const entry = this.#lru.get(key);
      if (entry !== undefined) {
        this.#hits++;
        return entry.resolved();
      }
      try {
        const tags = typeof tagsOption === 'function' ? tagsOption(...args) : staticTags;
        if (tags !== staticTags && tags !== undefined) checkTags(scope, tags);
        return this.#getOrSetMiss(key, () => fn(...args), ttlMs, tags, undefined);
      } catch (error) {
        return Promise.reject(error);
      }
    };
    return call as (...args: A) => Promise<Loaded<V, R>>;
  }

  /**
   * Removes `key` (and from the tier, in the background). A load in flight for it still answers its
   * waiters but is not stored. Returns whether L1 held the key.
   * @throws TypeError when `key` is not a string; ClosedError after `close()`.
   */
  delete(key: string): boolean {
    checkKey(`${this.#scope}.delete`, key);
    this.#throwIfClosed();
    const running = this.#inflight.get(key);
    if (running !== undefined) this.#detach(running);
    this.#errors?.delete(key);
    const had = this.#lru.delete(key);
    if (!this.#isEnabled) return had;
    this.#remote.delete(key);
    return had;
  }

  /** Removes every entry (and clears the tier when it supports it). Loads in flight are not stored. */
  clear(): void {
    if (this.#isClosed) return;
    this.#clearLocal();
    if (!this.#isEnabled) return;
    this.#remote.clear();
  }

  /**
   * Removes every entry carrying any of `tags`, in time proportional to the entries removed; loads in
   * flight with those tags are not stored. L1 is invalidated before this returns; the promise resolves
   * (with the number of L1 entries removed) once the tier has been invalidated too.
   * @throws (rejects) TypeError for bad tags, ClosedError after `close()`, or the tier's error.
   */
  async invalidateTags(tags: readonly string[]): Promise<number> {
    const scope = `${this.#scope}.invalidateTags`;
    checkTags(scope, tags);
    this.#throwIfClosed();
    if (!this.#isEnabled) return 0;
    const removed = this.#invalidateTagsLocal(tags);
    await this.#remote.invalidateTags(tags);
    return removed;
  }

  /**
   * Drops entries past their stale window now (the background purge calls this). Returns how many.
   */
  purgeStale(): number {
    if (this.#isClosed) return 0;
    const lru = this.#lru;
    if (this.#retainMs === 0) {
      const before = lru.size;
      lru.purgeStale();
      return before - lru.size;
    }
    const now = this.#clock.now();
    const expired: string[] = [];
    // lru-cache's iterators skip stale entries unless its public `allowStale` field is set; entries
    // inside the stale window must survive, so we pick the ones past it ourselves.
    const dropBefore = now - this.#retainMs;
    lru.allowStale = true;
    try {
      for (const key of lru.rkeys()) {
        this.#stalePeekOptions.status = undefined;
        const entry = lru.peek(key, this.#stalePeekOptions);
        if (entry !== undefined && entry.staleAt <= dropBefore) expired.push(key);
      }
    } finally {
      lru.allowStale = false;
    }
    this.#isPurging = true;
    try {
      for (const key of expired) lru.delete(key);
    } finally {
      this.#isPurging = false;
    }
    return expired.length;
  }

  /** Plain-number counters; see {@link CacheStats}. */
  stats(): CacheStats {
    const answered = this.#hits + this.#staleHits + this.#misses;
    return {
      hits: this.#hits,
      misses: this.#misses,
      staleHits: this.#staleHits,
      loads: this.#loads,
      loadErrors: this.#loadErrors,
      evictions: this.#evictions,
      expirations: this.#expirations,
      size: this.#lru.size,
      inflight: this.#inflight.size,
      tags: this.#tagIndex.size,
      tierHits: this.#remote.tierHits,
      tierErrors: this.#remote.tierErrors,
      staleLoadsRefused: this.#remote.staleLoadsRefused,
      busMessages: this.#busMessages,
      busErrors: this.#remote.busErrors,
      hitRate: answered === 0 ? 0 : (this.#hits + this.#staleHits) / answered,
    };
  }

  /**
   * Stops the purge timer, aborts loads in flight (their waiters reject with `ClosedError`), drops every
   * entry and waits for pending tier writes. Idempotent; later calls of other methods throw `ClosedError`.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#isClosed = true;
    if (this.#purgeTimer !== undefined) this.#clock.clearTimeout(this.#purgeTimer);
    this.#purgeTimer = undefined;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    const error = new ClosedError(this.#scope);
    for (const load of this.#inflight.values()) {
      this.#clearTimer(load);
      load.isDetached = true;
      load.isAbandoned = true;
      load.abort(error);
      load.wake?.();
      this.#remote.releaseLease(load);
      if (!load.isSettled) load.fail(error);
    }
    this.#inflight.clear();
    this.#taggedLoads = 0;
    this.#lru.clear();
    this.#errors?.clear();
    this.#tagIndex.clear();
    this.#closing = this.#remote.drain();
    return this.#closing;
  }

  /** Same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- slow paths -------------------------------------------------------------------------------

  #getMiss(key: string): undefined {
    if (typeof key !== 'string') checkKey(`${this.#scope}.get`, key);
    this.#throwIfClosed();
    this.#misses++;
    return undefined;
  }

  #getOrSetSlow(key: string, loader: CacheLoader<V>, options: GetOrSetOptions | undefined): Promise<V> {
    try {
      // Hand-written checks instead of validateOptions: in a stampede every one of the callers passes
      // here; the generic validator allocated per call (1,000 callers on 100 cold keys: 1.05 ms → 0.43 ms to issue).
      if (typeof key !== 'string') checkKey(this.#getOrSetScope, key);
      if (options === undefined) return this.#getOrSetMiss(key, loader, undefined, undefined, undefined);
      checkCallOptions(this.#getOrSetScope, options, true);
      return this.#getOrSetMiss(key, loader, options.ttlMs, options.tags, options.signal);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Everything after an L1 fresh miss; throws synchronously (callers turn that into a rejection). */
  #getOrSetMiss(
    key: string,
    loader: CacheLoader<V>,
    ttlMs: number | undefined,
    tags: readonly string[] | undefined,
    signal: AbortSignal | undefined,
  ): Promise<V> {
    if (typeof loader !== 'function') {
      throw new TypeError(`${this.#scope}.getOrSet: loader must be a function, got ${describeValue(loader)}`);
    }
    this.#throwIfClosed();
    if (signal?.aborted) throw abortReason(signal);
    if (!this.#isEnabled) return this.#passThrough(loader, signal);
    const running = this.#inflight.get(key);
    if (running !== undefined) {
      // The load's stale entry is the key's current one (a set/delete detaches the load), so joiners
      // need no second lookup: within the SWR window they get it at once, otherwise they wait.
      const runningStale = running.stale;
      if (runningStale !== undefined && this.#swrMs > 0 && this.#clock.now() - runningStale.staleAt < this.#swrMs) {
        this.#staleHits++;
        return runningStale.resolved();
      }
      return this.#join(running, signal);
    }
    this.#staleGetOptions.status = undefined;
    const stale = this.#lru.get(key, this.#staleGetOptions);
    // The clock is read only when there is a stale entry to age: a cold key never needs it.
    const staleAgeMs = stale === undefined ? Number.POSITIVE_INFINITY : this.#clock.now() - stale.staleAt;
    if (stale !== undefined && staleAgeMs < 0) {
      this.#hits++;
      return stale.resolved();
    }
    if (stale !== undefined && staleAgeMs < this.#swrMs) {
      this.#staleHits++;
      if (this.#errors?.has(key) !== true) this.#startLoad(key, loader, stale, ttlMs ?? this.#ttlMs, tags);
      return stale.resolved();
    }
    const cached = this.#errors?.get(key);
    if (cached !== undefined) {
      if (stale !== undefined && staleAgeMs < this.#graceMs) {
        this.#staleHits++;
        return stale.resolved();
      }
      this.#misses++;
      return Promise.reject(cached.error);
    }
    return this.#join(this.#startLoad(key, loader, stale, ttlMs ?? this.#ttlMs, tags), signal);
  }

  #join(load: Load<V>, signal: AbortSignal | undefined): Promise<V> {
    if (load.isSettled) {
      // A late load whose waiters already got the grace value: answer the same way at once.
      this.#staleHits++;
      return load.promise;
    }
    this.#misses++;
    load.waiters++;
    if (signal === undefined) return load.promise;
    return abortable(load.promise, signal, () => {
      // This caller stays a miss; it must not be converted to a stale hit if grace answers the others.
      if (!load.isSettled) load.waiters--;
    });
  }

  #startLoad(
    key: string,
    loader: CacheLoader<V>,
    stale: Entry<V> | undefined,
    ttlMs: number,
    tags: readonly string[] | undefined,
  ): Load<V> {
    const load = new Load(key, stale, ttlMs, ownTags(tags));
    this.#inflight.set(key, load);
    if (load.tags !== undefined) this.#taggedLoads++;
    const timeoutMs = this.#loadTimeoutMs;
    if (timeoutMs !== undefined) {
      load.timer = this.#clock.setTimeout(() => this.#onLate(load, timeoutMs), timeoutMs, { unref: true });
    }
    void this.#run(load, loader);
    return load;
  }

  async #run(load: Load<V>, loader: CacheLoader<V>): Promise<void> {
    try {
      if (this.#tier !== undefined && (await this.#remote.lookup(load))) return;
      this.#loads++;
      load.startedAt = performance.now();
      const value = await loader(load.context);
      this.#finish(load, value, load.ttlMs, load.tags, true);
    } catch (error) {
      this.#fail(load, error);
    }
  }

  #finishFromTier(load: Load<V>, found: CacheTierEntry<V>): void {
    const ttlMs = Math.min(load.ttlMs, found.ttlMs > 0 ? found.ttlMs : load.ttlMs);
    const tags = found.tags === undefined ? load.tags : copyTags(`${this.#scope} tier`, found.tags);
    this.#finish(load, found.value, ttlMs, tags, false);
  }

  /** Stores a load's result (unless detached) and answers its waiters. Throws when `sizeOf` does. */
  #finish(load: Load<V>, value: V, ttlMs: number, tags: readonly string[] | undefined, writeTier: boolean): void {
    if (load.isAbandoned) return;
    this.#clearTimer(load);
    this.#removeInflight(load);
    this.#record(load, false);
    if (!load.isDetached) {
      this.#errors?.delete(load.key);
      if (value === undefined) {
        this.#lru.delete(load.key);
        this.#remote.releaseLease(load);
      } else {
        const entry = this.#store(load.key, value, ttlMs, tags);
        if (writeTier) this.#remote.writeLoaded(load, value, ttlMs, tags, entry);
      }
    } else {
      this.#remote.releaseLease(load);
    }
    if (!load.isSettled) {
      load.isSettled = true;
      load.resolve(value);
    }
  }

  #fail(load: Load<V>, error: unknown): void {
    if (load.isAbandoned) return;
    this.#remote.releaseLease(load);
    this.#clearTimer(load);
    this.#removeInflight(load);
    this.#record(load, true);
    this.#loadErrors++;
    if (!load.isDetached && this.#errors !== undefined) this.#errors.set(load.key, { error });
    if (load.isSettled) {
      this.#logger.warn(
        { cache: this.name, key: load.key, err: error },
        'cache load failed after a stale value was served',
      );
      return;
    }
    const stale = load.stale;
    if (stale !== undefined && this.#clock.now() - stale.staleAt < this.#graceMs) {
      this.#logger.warn(
        { cache: this.name, key: load.key, err: error },
        'cache load failed; serving the stale value (grace)',
      );
      this.#serveStale(load, stale);
      return;
    }
    if (load.waiters === 0) {
      this.#logger.warn({ cache: this.name, key: load.key, err: error }, 'cache background refresh failed');
    }
    load.fail(error);
  }

  /** `loadTimeoutMs` elapsed: serve the grace value and let the loader finish, or give up on it. */
  #onLate(load: Load<V>, timeoutMs: number): void {
    load.timer = undefined;
    if (load.isSettled || load.isAbandoned) return;
    const stale = load.stale;
    const now = this.#clock.now();
    const message = `${this.#scope}: load of key ${describeValue(load.key)} took longer than ${timeoutMs} ms`;
    if (stale !== undefined && now - stale.staleAt < this.#graceMs) {
      this.#logger.warn(
        { cache: this.name, key: load.key, timeoutMs },
        'cache load is slow; serving the stale value (grace)',
      );
      this.#serveStale(load, stale);
      // The loader keeps running so its result is stored, but not past the end of grace: bounded work.
      const graceLeftMs = stale.staleAt + this.#graceMs - now;
      load.timer = this.#clock.setTimeout(
        () => {
          load.timer = undefined;
          this.#abandon(load, new TimeoutError(`${message} and outlived graceMs`, timeoutMs));
        },
        graceLeftMs,
        { unref: true },
      );
      return;
    }
    this.#abandon(load, new TimeoutError(message, timeoutMs));
  }

  #abandon(load: Load<V>, error: TimeoutError): void {
    if (load.isAbandoned) return;
    this.#clearTimer(load);
    this.#removeInflight(load);
    this.#record(load, true);
    this.#loadErrors++;
    load.isAbandoned = true;
    load.isDetached = true;
    load.abort(error);
    load.wake?.();
    this.#remote.releaseLease(load);
    if (!load.isSettled) load.fail(error);
  }

  #serveStale(load: Load<V>, stale: Entry<V>): void {
    load.isSettled = true;
    this.#misses -= load.waiters;
    this.#staleHits += load.waiters;
    load.waiters = 0;
    load.resolve(stale.value);
  }

  #passThrough(loader: CacheLoader<V>, signal: AbortSignal | undefined): Promise<V> {
    this.#misses++;
    this.#loads++;
    const start = performance.now();
    // A fresh controller per call: a shared never-aborted signal would collect loaders' listeners forever.
    const context: LoaderContext<V> = { signal: signal ?? new AbortController().signal, staleValue: undefined };
    let result: Promise<V>;
    try {
      result = Promise.resolve(loader(context));
    } catch (error) {
      result = Promise.reject(error);
    }
    return result.then(
      (value) => {
        this.#profiler?.record(this.#loadMetric, performance.now() - start, false);
        return value;
      },
      (error: unknown) => {
        this.#loadErrors++;
        this.#profiler?.record(this.#loadMetric, performance.now() - start, true);
        throw error;
      },
    );
  }

  #store(key: string, value: V, ttlMs: number, tags: readonly string[] | undefined): Entry<V> {
    let ttl = ttlMs;
    if (this.#jitter > 0 && ttl !== Number.POSITIVE_INFINITY) ttl -= ttl * this.#jitter * Math.random();
    const staleAt = this.#clock.now() + ttl;
    const entry = new Entry(value, staleAt, tags);
    const setOptions = this.#setOptions;
    setOptions.ttl = ttl === Number.POSITIVE_INFINITY ? 0 : ttl;
    setOptions.status = undefined;
    this.#lru.set(key, entry, setOptions);
    if (tags === undefined) return entry;
    if (this.#hasMaxSize) {
      // lru-cache silently refuses an entry larger than maxSize; index tags only for what it kept.
      this.#stalePeekOptions.status = undefined;
      if (this.#lru.peek(key, this.#stalePeekOptions) !== entry) return entry;
    }
    this.#tagIndex.add(key, tags);
    return entry;
  }

  #onDispose(entry: Entry<V>, key: string, reason: LRUCache.DisposeReason): void {
    if (entry.tags !== undefined) this.#tagIndex.remove(key, entry.tags);
    if (reason === 'evict') this.#evictions++;
    else if (reason === 'expire' || this.#isPurging) this.#expirations++;
  }

  #detach(load: Load<V>): void {
    load.isDetached = true;
    this.#removeInflight(load);
  }

  #removeInflight(load: Load<V>): void {
    if (this.#inflight.get(load.key) !== load) return;
    this.#inflight.delete(load.key);
    if (load.tags !== undefined) this.#taggedLoads--;
  }

  #clearTimer(load: Load<V>): void {
    if (load.timer === undefined) return;
    this.#clock.clearTimeout(load.timer);
    load.timer = undefined;
  }

  #record(load: Load<V>, isError: boolean): void {
    if (load.isRecorded || load.startedAt === 0) return;
    load.isRecorded = true;
    this.#profiler?.record(this.#loadMetric, performance.now() - load.startedAt, isError);
  }

  // ---- changes made by other instances (the bus) ---------------------------------------------------

  #onRemote(message: CacheBusMessage): void {
    if (this.#isClosed) return;
    this.#busMessages++;
    switch (message.type) {
      case 'set':
      case 'delete': {
        const key = message.key;
        this.#errors?.delete(key);
        this.#lru.delete(key);
        const running = this.#inflight.get(key);
        if (running === undefined) return;
        this.#supersede(running);
        return;
      }
      case 'loaded': {
        const running = this.#inflight.get(message.key);
        if (running === undefined) return;
        if (running.wake !== undefined) running.wake();
        else running.isWakePending = true;
        return;
      }
      case 'tags':
        this.#invalidateTagsLocal(message.tags);
        this.#wakeWaiters();
        return;
      case 'clear':
        this.#clearLocal();
        return;
    }
  }

  #onRemoteReset(): void {
    if (this.#isClosed) return;
    this.#logger.info({ cache: this.name }, 'cache bus reconnected; clearing L1 (messages may have been missed)');
    this.#clearLocal();
  }

  #invalidateTagsLocal(tags: readonly string[]): number {
    let removed = 0;
    for (const tag of tags) {
      const keys = this.#tagIndex.take(tag);
      if (keys === undefined) continue;
      for (const key of keys) if (this.#lru.delete(key)) removed++;
    }
    if (this.#taggedLoads > 0) {
      for (const load of this.#inflight.values()) {
        if (load.tags?.some((tag) => tags.includes(tag))) this.#supersede(load);
      }
    }
    return removed;
  }

  /**
   * A change made the key's in-flight load outdated. A load waiting for another process's value only
   * looks at the tier again (it has read nothing yet); any other began before the change, so its result
   * is handed to its waiters but not kept.
   */
  #supersede(load: Load<V>): void {
    if (load.wake !== undefined) load.wake();
    else this.#detach(load);
  }

  /** Drops L1; loads in flight are superseded (see {@link #supersede}). */
  #clearLocal(): void {
    for (const load of [...this.#inflight.values()]) this.#supersede(load);
    this.#errors?.clear();
    this.#lru.clear();
    this.#tagIndex.clear();
  }

  #wakeWaiters(): void {
    for (const load of this.#inflight.values()) load.wake?.();
  }

  #schedulePurge(): void {
    if (this.#purgeIntervalMs === 0 || this.#isClosed) return;
    this.#purgeTimer = this.#clock.setTimeout(this.#onPurgeTimer, this.#purgeIntervalMs, { unref: true });
  }

  readonly #onPurgeTimer = (): void => {
    this.#purgeTimer = undefined;
    if (this.#isClosed) return;
    try {
      this.purgeStale();
    } catch (error) {
      this.#logger.error({ cache: this.name, err: error }, 'cache purge failed');
    }
    this.#schedulePurge();
  };

  #throwIfClosed(): void {
    if (this.#isClosed) throw new ClosedError(this.#scope);
  }
}
