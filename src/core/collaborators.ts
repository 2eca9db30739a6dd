/**
 * The shapes modules need from each other's objects, declared once and structurally: hotpath's
 * `RateLimiter`, `Cache` and Node's `ServerResponse` fit, and so does a user's own object with these
 * members. Modules accept these instead of importing a sibling's class (the import direction of DESIGN.md).
 * @module
 */

/** Options passed to {@link LimiterLike.acquire}. */
export interface LimiterAcquireOptions {
  /** Units this call consumes (default 1). */
  weight?: number;
  /** Aborts the wait; the limiter rejects with `signal.reason`. */
  signal?: AbortSignal | undefined;
  /** Higher runs first. */
  priority?: number;
}

/**
 * Anything that gates calls: `acquire()` resolves with a `release` function once a call may start.
 * hotpath's `RateLimiter` fits. The optional members receive an upstream's feedback.
 */
export interface LimiterLike {
  /** Waits for a slot and resolves with the function that frees it; rejects with `signal.reason` when aborted. */
  acquire(options?: LimiterAcquireOptions): Promise<() => unknown>;
  /** Pauses every start for `retryAfterMs` milliseconds (the upstream asked us to back off). */
  penalize?(retryAfterMs: number): void;
  /** The upstream reports `remaining` units until its quota resets in `resetInMs` ms. */
  updateRemaining?(remaining: number, resetInMs: number): void;
}

/**
 * A string-keyed cache: hotpath's `Cache` fits, so do a `Map` and an lru-cache instance. `get` may
 * return a promise (caches with a remote tier); `set` may receive a TTL in milliseconds.
 */
export interface CacheLike<V = unknown> {
  /** The cached value, or `undefined` on a miss. */
  get(key: string): V | undefined | Promise<V | undefined>;
  /**
   * Stores a value; `options.ttlMs` overrides the cache's default TTL and `options.tags` label the
   * entry for `invalidateTags`, when the cache supports them.
   */
  set(key: string, value: V, options?: { ttlMs?: number; tags?: readonly string[] }): unknown;
  /** Forgets one key. */
  delete(key: string): unknown;
  /** Forgets every entry labelled with one of `tags` (optional: hotpath's `Cache` has it, a `Map` does not). */
  invalidateTags?(tags: readonly string[]): unknown;
}

/**
 * The response members a framework-agnostic `(req, res)` handler writes. Node's `ServerResponse`,
 * Express's `res` and Fastify's `reply.raw` fit as they are.
 */
export interface ResponseLike {
  /** HTTP status to send; set before `end`. */
  statusCode: number;
  /** Sets one response header. */
  setHeader(name: string, value: string): unknown;
  /** Sends the body and finishes the response. */
  end(body?: string): unknown;
}
