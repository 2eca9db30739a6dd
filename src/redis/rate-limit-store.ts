/**
 * RedisRateLimitStore: the sliding-window log of `hotpath/ratelimit` kept in Redis, so every process and
 * machine using the same Redis and key shares one limit.
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { type Clock, systemClock } from '../core/clock.js';
import { ConfigError, StorageError } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { validateOptions } from '../core/options.js';
import { MemoryRateLimitStore, type RateLimitStore, type ReserveResult } from '../ratelimit/index.js';
import { RedisConnection, type RedisInput } from './connection.js';
import { PAUSE_SCRIPT, RELEASE_SCRIPT, RESERVE_SCRIPT, RESTAMP_SCRIPT } from './rate-limit-scripts.js';

/** Options of {@link RedisRateLimitStore}. */
export interface RedisRateLimitStoreOptions {
  /**
   * An ioredis `Redis` or `Cluster` (left open by `close()`), or a `redis://` / `rediss://` URL (connected
   * here, closed by `close()`).
   */
  redis: RedisInput;
  /** Prefix of every Redis key (default `"hotpath:rl:"`); stores with different prefixes never share a window. */
  prefix?: string;
  /**
   * What reservations do while Redis is unreachable (default `'closed'`):
   * - `'closed'`: they reject with a typed error — `TimeoutError` after `commandTimeoutMs`, or at once with
   *   `StorageError` while the connection is known to be down — so nothing starts without Redis's consent;
   * - `'open'`: an in-process window at `fallbackLimit` per key takes over (one `warn` log line per outage),
   *   and Redis takes back over as soon as the connection is ready again.
   */
  failMode?: 'closed' | 'open';
  /**
   * Units per window per key that each process may start while failing open (default: the limiter's own
   * `limit`; N processes may then start up to N × limit). Used only with `failMode: 'open'`.
   */
  fallbackLimit?: number;
  /** Most milliseconds a Redis command may take (default 1,000); `Infinity` waits for ioredis to give up. */
  commandTimeoutMs?: number;
  /**
   * The clock of the limiters using this store (default: the system clock). Used only to measure how long
   * ago a task started when its restamp is sent; the window itself runs on Redis's clock.
   */
  clock?: Clock;
  /** Receives one `warn` when an outage starts (with `failMode: 'open'`), one `info` when Redis is back, and failed background writes. */
  logger?: Logger;
  /**
   * Most units a hot key reserves ahead in one script (default 32; 0 turns it off). When this process
   * reserves a key again within 20 ms of Redis's last answer for it (a tight loop, a busy endpoint; never
   * for windows under 40 ms), the script also reserves up to this many weight-1 units — only while, after
   * them, at most half of the window is in use, and only half of what is left below that half — and the
   * following calls take them without a round trip (calls arriving meanwhile wait for that script rather
   * than send their own). A unit taken is moved to its start like any reservation; units not taken within
   * 20 ms (a quarter of the window if shorter) are given back, and the key then reserves only as many
   * ahead as were taken (at least 2, doubling again once all are taken). So limits stay exact. What
   * changes: a shared pause reaches this process's held units up to 20 ms late, and `remaining` counts
   * held units as used.
   */
  prefetch?: number;
}

/** Counters of a {@link RedisRateLimitStore}; plain numbers. */
export interface RedisRateLimitStoreStats {
  /** Reservations granted by Redis. */
  reserved: number;
  /** Of `reserved`, those taken from units reserved ahead (see `prefetch`): no round trip. */
  prefetched: number;
  /** Reservations Redis refused (window full or paused). */
  refused: number;
  /** Reservations answered by the in-process fallback while Redis was unreachable (`failMode: 'open'`). */
  fallbacks: number;
  /** Redis commands that failed or timed out. */
  errors: number;
  /** Outages seen (entered fallback or started failing closed). */
  outages: number;
  /** True while Redis is considered unreachable. */
  isDown: boolean;
}

/** The Redis keys of one limiter key's window (see {@link RedisRateLimitStore.redisKeys}). */
export interface RedisRateLimitKeys {
  /** Sorted set of reservations: score = start (ms, Redis clock), member = id, `"<weight>:"`-prefixed unless 1. */
  log: string;
  /** Hash with `x` (sum of weight − 1 over the log) and `p` (end of a shared pause); absent when neither applies. */
  meta: string;
}

/** A reservation waiting for this turn's script of its key. */
interface BatchedReservation {
  readonly weight: number;
  readonly member: string;
  readonly nowMs: number;
  readonly resolve: (result: ReserveResult) => void;
  readonly reject: (error: unknown) => void;
}

/** Units reserved ahead for a hot key (see `prefetch`): members `base + 1 … base + count`. */
interface Ahead {
  readonly limit: number;
  readonly windowMs: number;
  readonly base: string;
  /** Index of the next member to hand out (1-based). */
  next: number;
  readonly count: number;
  /** Store clock when the script was sent: it stamped the units at or after this. */
  readonly sentAt: number;
  /** Store clock: not handed out at or after this. */
  readonly expiresAt: number;
  /** Units in use in the window right after the script, these included. */
  readonly used: number;
}

/** Weight-1 reservations waiting for the key's script in flight that reserves units ahead. */
interface AheadWait {
  readonly limit: number;
  readonly windowMs: number;
  readonly waiters: Array<{
    readonly nowMs: number;
    readonly resolve: (result: ReserveResult) => void;
    readonly reject: (error: unknown) => void;
  }>;
}

/** The reservations of one key made in one turn, with the limit and window they were made under. */
interface ReservationBatch {
  readonly limit: number;
  readonly windowMs: number;
  readonly requests: BatchedReservation[];
}

/** A reservation this process made, remembered so it can be restamped or released by its `nowMs`. */
interface Made {
  /** The limiter's key it was made under. */
  readonly key: string;
  /** The member in the Redis log (`"<weight>:<id>"`), or undefined for a fallback reservation. */
  readonly member: string | undefined;
  readonly weight: number;
  readonly windowMs: number;
}

const DEFAULT_PREFIX = 'hotpath:rl:';
/** Reservations remembered for restamp/release; the oldest are forgotten past this (FIFO). */
const MAX_REMEMBERED = 20_000;
/** While an outage was declared on a connection that still reports ready (timeouts), retry Redis this often. */
const OUTAGE_PROBE_MS = 1000;
const NO_LIMIT = -1;
/** Longest a restamp waits to ride along with the next reservation of its key before it is sent alone. */
const MAX_MOVE_DELAY_MS = 50;
const DEFAULT_PREFETCH = 32;
/**
 * How long units reserved ahead may be handed out (a quarter of the window if shorter; measured from
 * sending the script, which stamps them later). A unit taken is moved to its start within
 * min(50 ms, window / 4): so it has left its stamp well before the window would drop it, which keeps the
 * window exact. Also how late a shared pause may reach the units a process holds.
 */
const AHEAD_LIFETIME_MS = 20;
/** Keys whose number of units to reserve ahead is remembered (the oldest are forgotten past this). */
const MAX_SIZED_KEYS = 1024;
/** Fewest units reserved ahead for a key whose last units were not all taken. */
const MIN_AHEAD = 2;
/** Windows shorter than this never reserve ahead. */
const MIN_AHEAD_WINDOW_MS = 40;

/**
 * A {@link RateLimitStore} in Redis: `new RateLimiter({ key, limit, intervalMs, store })` and
 * `KeyedRateLimiter` share their limit with every process on the same Redis, prefix and key.
 *
 * - One atomic Lua script per reservation (a sliding-window log — the memory store's semantics), on
 *   Redis's clock (`TIME`), so clock skew between machines cannot stretch or shrink a window.
 * - Reservations are moved to the task's real start (one batched script per key and event-loop turn),
 *   so a unit counts for a full window after the start, not after the round trip that granted it.
 * - Every key expires one window after its newest reservation: a million tenants leave nothing behind.
 * - Keys carry a hash tag (`{…}`), so each script touches one slot and the store runs on Redis Cluster.
 * - `penalize()` on any limiter pauses the key for every process (a shared pause key).
 * - A key reserved in a tight loop reserves a few units ahead per script (`prefetch`), without loosening
 *   the limit: see the option.
 *
 * @example
 * ```ts
 * const store = new RedisRateLimitStore({ redis: 'redis://127.0.0.1:6379', failMode: 'open', fallbackLimit: 5 });
 * const upstream = new RateLimiter({ key: 'quotes-api', limit: 100, intervalMs: 60_000, store });
 * await upstream.schedule(() => fetchQuote('AAPL')); // 100 per minute across every process
 * await store.close();
 * ```
 */
export class RedisRateLimitStore implements RateLimitStore, AsyncDisposable {
  readonly #connection: RedisConnection;
  readonly #prefix: string;
  readonly #failMode: 'closed' | 'open';
  readonly #fallbackLimit: number | undefined;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #fallback = new MemoryRateLimitStore();
  readonly #idPrefix = randomBytes(6).toString('base64url');
  readonly #unsubscribe: () => void;
  /**
   * Reservations by the limiter's `nowMs` (a number key: no string built per call); the rare entries of
   * several keys or weights at one `nowMs` share an array.
   */
  readonly #made = new Map<number, Made | Made[]>();
  /** Restamps waiting to be sent, per key: members and the start times (limiter clock) of their tasks. */
  readonly #pendingMoves = new Map<string, { windowMs: number; members: string[]; startedAt: number[] }>();
  #flushScheduled = false;
  readonly #batches = new Map<string, ReservationBatch>();
  #batchFlushQueued = false;
  #lastKey: string | undefined;
  #lastKeys: string[] = [];
  readonly #prefetch: number;
  readonly #ahead = new Map<string, Ahead>();
  readonly #aheadWaits = new Map<string, AheadWait>();
  /** Units to reserve ahead per key, when fewer than `prefetch` (see MIN_AHEAD); at most MAX_SIZED_KEYS keys. */
  readonly #aheadSize = new Map<string, number>();
  #aheadTimer: ReturnType<typeof setTimeout> | undefined;
  #lastAnswerKey: string | undefined;
  #lastAnswerAt = Number.NEGATIVE_INFINITY;
  #seq = 0;
  #isDown = false;
  #lastProbeAt = 0;
  #closed = false;
  #reserved = 0;
  #prefetched = 0;
  #refused = 0;
  #fallbacks = 0;
  #errors = 0;
  #outages = 0;

  /** @throws ConfigError for a bad option, or when `redis` is a URL and ioredis is not installed. */
  constructor(options: RedisRateLimitStoreOptions) {
    validateOptions('RedisRateLimitStore', options, {
      redis: { type: 'any', required: true },
      prefix: { type: 'string', maxLength: 200 },
      failMode: { type: 'string', oneOf: ['closed', 'open'] },
      fallbackLimit: { type: 'number', exclusiveMin: true, min: 0 },
      commandTimeoutMs: { type: 'number', exclusiveMin: true, min: 0, allowInfinity: true },
      logger: { type: 'object' },
      clock: { type: 'object' },
      prefetch: { type: 'number', integer: true, min: 0, max: 1000 },
    });
    this.#prefetch = options.prefetch ?? DEFAULT_PREFETCH;
    this.#clock = options.clock ?? systemClock;
    this.#prefix = options.prefix ?? DEFAULT_PREFIX;
    if (this.#prefix.includes('{') || this.#prefix.includes('}')) {
      throw new ConfigError('RedisRateLimitStore.prefix', 'RedisRateLimitStore.prefix must not contain { or }');
    }
    this.#failMode = options.failMode ?? 'closed';
    this.#fallbackLimit = options.fallbackLimit;
    this.#logger = options.logger ?? silentLogger;
    this.#connection = new RedisConnection({
      redis: options.redis,
      commandTimeoutMs: options.commandTimeoutMs,
      scope: 'RedisRateLimitStore',
    });
    this.#unsubscribe = this.#connection.subscribe({
      onDown: (error) => this.#enterOutage(error),
      onReconnect: () => this.#leaveOutage(),
    });
  }

  /** See {@link RateLimitStore.reserve}: resolves 0 when reserved, else the milliseconds to wait (Redis's clock). */
  reserve(key: string, weight: number, limit: number, windowMs: number, nowMs: number): Promise<number> {
    return this.reserveDetailed(key, weight, limit, windowMs, nowMs).then(toWaitMs);
  }

  /**
   * See {@link RateLimitStore.reserveDetailed}. `nowMs` only identifies the reservation for `release`
   * and `restamp`; the window runs on Redis's clock.
   * @throws (rejects) with `failMode: 'closed'`: TimeoutError / StorageError when Redis does not answer; ClosedError-like StorageError after `close()`.
   */
  reserveDetailed(key: string, weight: number, limit: number, windowMs: number, nowMs: number): Promise<ReserveResult> {
    if (this.#closed) return Promise.reject(new StorageError('RedisRateLimitStore is closed'));
    if (weight === 1) {
      if (this.#ahead.size > 0) {
        const taken = this.#takeAhead(key, limit, windowMs, nowMs);
        if (taken !== undefined) return Promise.resolve(taken);
      }
      // A script reserving units ahead for this key is on its way back: wait for it rather than send
      // another (requests of a busy key arrive in separate turns, so turn batching does not join them).
      const wait = this.#aheadWaits.get(key);
      if (wait !== undefined && wait.limit === limit && wait.windowMs === windowMs) {
        return new Promise((resolve, reject) => wait.waiters.push({ nowMs, resolve, reject }));
      }
    }
    return new Promise((resolve, reject) => this.#reserveNow(key, weight, limit, windowMs, nowMs, resolve, reject));
  }

  /** Adds a reservation to this turn's script of its key (or answers it locally while Redis is down). */
  #reserveNow(
    key: string,
    weight: number,
    limit: number,
    windowMs: number,
    nowMs: number,
    resolve: (result: ReserveResult) => void,
    reject: (error: unknown) => void,
  ): void {
    if (this.#isDown && !this.#shouldProbe()) {
      this.#whileDown(key, weight, limit, windowMs, nowMs).then(resolve, reject);
      return;
    }
    const id = this.#idPrefix + (this.#seq++).toString(36);
    const member = weight === 1 ? id : `${weight}:${id}`;
    const request: BatchedReservation = { weight, member, nowMs, resolve, reject };
    let batch = this.#batches.get(key);
    if (batch !== undefined && (batch.limit !== limit || batch.windowMs !== windowMs)) {
      // Another limit on the same key in the same turn: send what is queued first, keeping call order.
      this.#batches.delete(key);
      this.#sendBatch(key, batch);
      batch = undefined;
    }
    if (batch === undefined) {
      batch = { limit, windowMs, requests: [] };
      this.#batches.set(key, batch);
      if (!this.#batchFlushQueued) {
        this.#batchFlushQueued = true;
        queueMicrotask(this.#flushBatches);
      }
    }
    batch.requests.push(request);
  }

  /** Answers the reservations that waited for the key's script reserving ahead: from its units, else anew. */
  #endAheadWait(key: string, wait: AheadWait | undefined): void {
    if (wait === undefined) return;
    if (this.#aheadWaits.get(key) === wait) this.#aheadWaits.delete(key);
    const { limit, windowMs } = wait;
    for (const waiter of wait.waiters) {
      const taken = this.#closed ? undefined : this.#takeAhead(key, limit, windowMs, waiter.nowMs);
      if (taken !== undefined) waiter.resolve(taken);
      else if (this.#closed) waiter.reject(new StorageError('RedisRateLimitStore is closed'));
      else this.#reserveNow(key, 1, limit, windowMs, waiter.nowMs, waiter.resolve, waiter.reject);
    }
  }

  /**
   * Sends the reservations queued in this turn, one script per key. Concurrent callers of one key (a busy
   * limiter, an inbound limiter under load) then cost one script between them: measured at 64 callers,
   * a script per reservation ran about half the reservations/s of rate-limiter-flexible's counter.
   */
  readonly #flushBatches = (): void => {
    this.#batchFlushQueued = false;
    if (this.#batches.size === 1) {
      // The usual turn (one limiter key): no snapshot array.
      const [entry] = this.#batches;
      this.#batches.clear();
      const [key, batch] = entry as [string, ReservationBatch];
      this.#sendBatch(key, batch);
      return;
    }
    const batches = [...this.#batches];
    this.#batches.clear();
    for (const [key, batch] of batches) this.#sendBatch(key, batch);
  };

  #sendBatch(key: string, batch: ReservationBatch): void {
    const { limit, windowMs, requests } = batch;
    const args: (string | number)[] = [Number.isFinite(limit) ? limit : NO_LIMIT, windowMs, requests.length];
    let allOnes = true;
    for (const request of requests) {
      args.push(request.weight, request.member);
      if (request.weight !== 1) allOnes = false;
    }
    // A key reserved again soon after Redis last answered for it is hot: reserve a few units ahead.
    const sentAt = this.#clock.now();
    const lifetimeMs = Math.min(AHEAD_LIFETIME_MS, windowMs / 4);
    const ahead =
      this.#prefetch > 0 &&
      allOnes &&
      windowMs >= MIN_AHEAD_WINDOW_MS &&
      key === this.#lastAnswerKey &&
      sentAt - this.#lastAnswerAt < lifetimeMs &&
      !this.#ahead.has(key)
        ? (this.#aheadSize.get(key) ?? this.#prefetch)
        : 0;
    const base = ahead > 0 ? `${this.#idPrefix}${(this.#seq++).toString(36)}.` : '';
    args.push(ahead, base);
    let wait: AheadWait | undefined;
    if (ahead > 0) {
      wait = { limit, windowMs, waiters: [] };
      this.#aheadWaits.set(key, wait);
    }
    // Restamps of this key waiting for the next turn ride along: one script instead of two.
    const moves = this.#pendingMoves.get(key);
    if (moves !== undefined) {
      this.#pendingMoves.delete(key);
      this.#pushMoves(args, moves);
    }
    this.#connection.evalScript(RESERVE_SCRIPT, this.#keys(key), args).then(
      (reply) => {
        if (this.#isDown) this.#leaveOutage();
        const out = reply as string[];
        this.#lastAnswerKey = key;
        this.#lastAnswerAt = this.#clock.now();
        const granted = Number(out[3 * requests.length]);
        // (Granted after close(): left to expire with their window — the connection may be gone.)
        if (granted > 0 && !this.#closed) {
          const used = Number(out[3 * requests.length + 1]);
          this.#keepAhead(key, {
            limit,
            windowMs,
            base,
            next: 1,
            count: granted,
            sentAt,
            expiresAt: sentAt + lifetimeMs,
            used,
          });
        }
        for (let i = 0; i < requests.length; i++) {
          const request = requests[i] as BatchedReservation;
          const used = Number(out[3 * i + 2]);
          if (out[3 * i] === '0') {
            this.#reserved++;
            this.#remember(request.nowMs, { key, member: request.member, weight: request.weight, windowMs });
            request.resolve({ waitMs: 0, used });
          } else {
            this.#refused++;
            const waitMs = Number(out[3 * i + 1]);
            request.resolve({ waitMs: waitMs < 0 ? Number.POSITIVE_INFINITY : waitMs, used });
          }
        }
        this.#endAheadWait(key, wait);
      },
      (error: unknown) => {
        this.#errors++;
        if (!this.#closed) this.#enterOutage(error);
        for (const request of requests) {
          if (this.#closed || this.#failMode === 'closed') request.reject(error);
          else request.resolve(this.#fallbackReserve(key, request.weight, limit, windowMs, request.nowMs));
        }
        // Down now: they fail closed or take the local limit, like any reservation during the outage.
        this.#endAheadWait(key, wait);
      },
    );
  }

  /** See {@link RateLimitStore.release}. */
  release(key: string, weight: number, reservedAtMs: number): Promise<void> {
    const made = this.#forget(key, reservedAtMs, weight);
    if (made === undefined) return Promise.resolve();
    if (made.member === undefined) {
      this.#fallback.release(key, weight, reservedAtMs);
      return Promise.resolve();
    }
    return this.#releaseMembers(key, [made.member], 'release failed');
  }

  /** Removes `members` from `key`'s log; a failure is counted and logged (the units expire with their window). */
  #releaseMembers(key: string, members: string[], what: string): Promise<void> {
    return this.#connection.evalScript(RELEASE_SCRIPT, this.#keys(key), members).then(
      () => {},
      (error: unknown) => {
        this.#errors++;
        this.#logger.warn({ err: error, key }, `RedisRateLimitStore: ${what} (the units expire with their window)`);
      },
    );
  }

  /**
   * See {@link RateLimitStore.restamp}: moves the reservation to Redis's clock at the time the move runs,
   * which is after the task started. A move rides along with the next reservation of the key, or is sent
   * (batched per key) within min(50 ms, a quarter of the window) — well before the reservation would expire.
   */
  restamp(key: string, weight: number, reservedAtMs: number, startedAtMs: number): void {
    const made = this.#forget(key, reservedAtMs, weight);
    if (made === undefined) return;
    if (made.member === undefined) {
      // A fallback reservation: move it in the local window, as the limiter would.
      this.#fallback.reserve(key, weight, Number.POSITIVE_INFINITY, made.windowMs, startedAtMs);
      this.#fallback.release(key, weight, reservedAtMs);
      this.#remember(startedAtMs, made);
      return;
    }
    this.#queueMove(key, made.windowMs, made.member, startedAtMs);
    // The limiter may move it again (a task released long after its start stays counted from its release).
    this.#remember(startedAtMs, made);
  }

  /** Queues moving `member` to the start of its task (store clock), sent with the key's next script. */
  #queueMove(key: string, windowMs: number, member: string, startedAtMs: number): void {
    let pending = this.#pendingMoves.get(key);
    if (pending === undefined) {
      pending = { windowMs, members: [], startedAt: [] };
      this.#pendingMoves.set(key, pending);
    }
    pending.members.push(member);
    pending.startedAt.push(startedAtMs);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      // Not at once: the move only has to land before the reservation would expire (a window after it
      // was made), and the next reservation of the key usually comes sooner and carries it for free.
      // Measured (Fastify inject, sequential requests): a separate restamp script per request cost 1.4×.
      const timer = setTimeout(() => void this.#flushMoves(), Math.min(MAX_MOVE_DELAY_MS, windowMs / 4));
      timer.unref?.();
    }
  }

  /**
   * Hands out one unit reserved ahead for `key`, or undefined when there is none for this limit and
   * window (those left over are given back). The unit was stamped when its script ran, at most the
   * lifetime before now: it is moved to this start like a restamp, so it counts a full window from here —
   * unless it is taken within a millisecond of the script, which the limiter's 1 ms clock guard covers
   * (as for any reservation; the limiter restamps a start that comes later itself).
   */
  #takeAhead(key: string, limit: number, windowMs: number, nowMs: number): ReserveResult | undefined {
    const ahead = this.#ahead.get(key);
    if (ahead === undefined) return undefined;
    if (ahead.limit !== limit || ahead.windowMs !== windowMs || this.#clock.now() >= ahead.expiresAt) {
      this.#giveBackAhead(key, ahead);
      return undefined;
    }
    const member = ahead.base + ahead.next++;
    if (ahead.next > ahead.count) {
      // All taken: reserve twice as many next time, up to `prefetch`.
      this.#ahead.delete(key);
      if (ahead.count < this.#prefetch) this.#sizeAhead(key, Math.min(this.#prefetch, 2 * ahead.count));
    }
    this.#reserved++;
    this.#prefetched++;
    this.#remember(nowMs, { key, member, weight: 1, windowMs });
    if (nowMs - ahead.sentAt >= 1) this.#queueMove(key, windowMs, member, nowMs);
    return { waitMs: 0, used: ahead.used };
  }

  #keepAhead(key: string, ahead: Ahead): void {
    const previous = this.#ahead.get(key);
    if (previous !== undefined) this.#giveBackAhead(key, previous);
    this.#ahead.set(key, ahead);
    if (this.#aheadTimer === undefined) {
      this.#aheadTimer = setTimeout(this.#sweepAhead, Math.max(1, ahead.expiresAt - this.#clock.now()));
      this.#aheadTimer.unref?.();
    }
  }

  /** Gives back the units of `ahead` not handed out (they would otherwise count until their window ends). */
  #giveBackAhead(key: string, ahead: Ahead): Promise<void> {
    if (this.#ahead.get(key) === ahead) this.#ahead.delete(key);
    if (ahead.next > ahead.count) return Promise.resolve();
    // Not all taken: reserve only as many as were next time (each give-back costs a script).
    this.#sizeAhead(key, Math.max(MIN_AHEAD, ahead.next - 1));
    const members: string[] = [];
    for (let i = ahead.next; i <= ahead.count; i++) members.push(ahead.base + i);
    ahead.next = ahead.count + 1;
    return this.#releaseMembers(key, members, 'giving back units reserved ahead failed');
  }

  #sizeAhead(key: string, size: number): void {
    this.#aheadSize.delete(key);
    if (size >= this.#prefetch) return;
    if (this.#aheadSize.size >= MAX_SIZED_KEYS) this.#aheadSize.delete(this.#aheadSize.keys().next().value as string);
    this.#aheadSize.set(key, size);
  }

  readonly #sweepAhead = (): void => {
    this.#aheadTimer = undefined;
    const now = this.#clock.now();
    let next = Number.POSITIVE_INFINITY;
    for (const [key, ahead] of this.#ahead) {
      if (now >= ahead.expiresAt) void this.#giveBackAhead(key, ahead);
      else next = Math.min(next, ahead.expiresAt);
    }
    if (this.#ahead.size > 0 && !this.#closed) {
      this.#aheadTimer = setTimeout(this.#sweepAhead, Math.max(1, next - now));
      this.#aheadTimer.unref?.();
    }
  };

  /**
   * See {@link RateLimitStore.pause}: no reservation of `key` succeeds in any process for `durationMs`
   * from now (Redis's clock); a longer pause in force is kept.
   * @throws (rejects) with `failMode: 'closed'` when Redis does not answer.
   */
  pause(key: string, durationMs: number, _nowMs?: number): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const ahead = this.#ahead.get(key);
    if (ahead !== undefined) void this.#giveBackAhead(key, ahead);
    return this.#connection.evalScript(PAUSE_SCRIPT, this.#keys(key), [durationMs]).then(
      () => {},
      (error: unknown) => {
        this.#errors++;
        this.#enterOutage(error);
        // The penalizing limiter keeps its own local pause either way.
        if (this.#failMode === 'closed') throw error;
      },
    );
  }

  /** Counters; plain numbers. */
  stats(): RedisRateLimitStoreStats {
    return {
      reserved: this.#reserved,
      prefetched: this.#prefetched,
      refused: this.#refused,
      fallbacks: this.#fallbacks,
      errors: this.#errors,
      outages: this.#outages,
      isDown: this.#isDown,
    };
  }

  /**
   * The Redis keys of `key`'s window, for inspection: `log` (a sorted set of reservations) and `meta` (a
   * hash, present only while weights other than 1 or a pause are in force). They share a hash tag, so
   * they live in one slot. Keys with braces, a leading `#` or more than 200 characters are tagged by
   * their SHA-256 instead, so a key cannot break the tag or collide with another key's tag.
   */
  redisKeys(key: string): RedisRateLimitKeys {
    const [log, meta] = this.#keys(key) as [string, string];
    return { log, meta };
  }

  /** Sends the pending restamps, stops listening, and closes the connection if it was built from a URL. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    const givenBack = [...this.#ahead].map(([key, ahead]) => this.#giveBackAhead(key, ahead));
    if (this.#aheadTimer !== undefined) clearTimeout(this.#aheadTimer);
    this.#aheadTimer = undefined;
    await Promise.all([...givenBack, this.#flushMoves()]);
    this.#closed = true;
    this.#unsubscribe();
    this.#made.clear();
    await this.#connection.close();
  }

  /** Same as {@link close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #keys(key: string): string[] {
    // A limiter reserves under one key over and over: the last answer is reused.
    if (key === this.#lastKey) return this.#lastKeys;
    const isPlain = key.length <= 200 && !key.startsWith('#') && !key.includes('{') && !key.includes('}');
    const tag = isPlain ? key : `#${createHash('sha256').update(key).digest('base64url')}`;
    const base = `${this.#prefix}{${tag}}`;
    this.#lastKey = key;
    this.#lastKeys = [base, `${base}:m`];
    return this.#lastKeys;
  }

  #remember(nowMs: number, made: Made): void {
    const entry = this.#made.get(nowMs);
    if (entry === undefined) {
      if (this.#made.size >= MAX_REMEMBERED) {
        // Unclaimed (the limiter restamps or releases at once): forget the oldest tenth.
        let drop = MAX_REMEMBERED / 10;
        for (const old of this.#made.keys()) {
          this.#made.delete(old);
          if (--drop === 0) break;
        }
      }
      this.#made.set(nowMs, made);
    } else if (Array.isArray(entry)) {
      entry.push(made);
    } else {
      this.#made.set(nowMs, [entry, made]);
    }
  }

  #forget(key: string, nowMs: number, weight: number): Made | undefined {
    const entry = this.#made.get(nowMs);
    if (entry === undefined) return undefined;
    if (!Array.isArray(entry)) {
      if (entry.key !== key || entry.weight !== weight) return undefined;
      this.#made.delete(nowMs);
      return entry;
    }
    const index = entry.findIndex((made) => made.key === key && made.weight === weight);
    if (index < 0) return undefined;
    const [made] = entry.splice(index, 1);
    if (entry.length === 0) this.#made.delete(nowMs);
    return made;
  }

  #flushMoves(): Promise<void> {
    this.#flushScheduled = false;
    if (this.#pendingMoves.size === 0 || this.#closed) return Promise.resolve();
    const sends: Promise<unknown>[] = [];
    for (const [key, moves] of this.#pendingMoves) {
      const args: (string | number)[] = [moves.windowMs];
      this.#pushMoves(args, moves);
      const sent = this.#connection.evalScript(RESTAMP_SCRIPT, this.#keys(key), args).catch((error: unknown) => {
        this.#errors++;
        this.#logger.warn(
          { err: error, key },
          'RedisRateLimitStore: moving reservations to their start failed (they count from the reservation)',
        );
      });
      sends.push(sent);
    }
    this.#pendingMoves.clear();
    return Promise.all(sends).then(() => {});
  }

  /**
   * Appends (member, ms since its task started) pairs. The age is measured on the limiter's clock just
   * before sending, clamped to what a waiting move can have aged (a foreign clock cannot push a stamp far
   * back); Date.now's whole milliseconds may overstate it by < 1 ms, which the limiter's 1 ms guard covers.
   */
  #pushMoves(args: (string | number)[], moves: { members: string[]; startedAt: number[] }): void {
    const now = this.#clock.now();
    for (let i = 0; i < moves.members.length; i++) {
      const age = now - (moves.startedAt[i] as number);
      args.push(moves.members[i] as string, age > 0 ? Math.min(age, MAX_MOVE_DELAY_MS) : 0);
    }
  }

  #shouldProbe(): boolean {
    // Down because the connection dropped: wait for its reconnect. Down because commands timed out on a
    // connection that still says ready: try Redis again now and then.
    if (!this.#connection.isReady || this.#connection.isDown) return false;
    const now = Date.now();
    if (now - this.#lastProbeAt < OUTAGE_PROBE_MS) return false;
    this.#lastProbeAt = now;
    return true;
  }

  #whileDown(key: string, weight: number, limit: number, windowMs: number, nowMs: number): Promise<ReserveResult> {
    if (this.#failMode === 'closed') {
      return Promise.reject(
        new StorageError('RedisRateLimitStore: Redis is unreachable and failMode is "closed"; nothing may start'),
      );
    }
    return Promise.resolve(this.#fallbackReserve(key, weight, limit, windowMs, nowMs));
  }

  #fallbackReserve(key: string, weight: number, limit: number, windowMs: number, nowMs: number): ReserveResult {
    this.#fallbacks++;
    const fallbackLimit = this.#fallbackLimit === undefined ? limit : Math.min(limit, this.#fallbackLimit);
    const result = this.#fallback.reserveDetailed(key, weight, fallbackLimit, windowMs, nowMs);
    if (result.waitMs === 0) this.#remember(nowMs, { key, member: undefined, weight, windowMs });
    return { waitMs: result.waitMs, used: result.used };
  }

  #enterOutage(error: unknown): void {
    if (this.#isDown || this.#closed) return;
    this.#isDown = true;
    this.#outages++;
    this.#lastProbeAt = Date.now();
    const action =
      this.#failMode === 'open'
        ? 'failing open: each process limits itself locally until Redis is back'
        : 'failing closed: reservations reject until Redis is back';
    this.#logger.warn({ err: error, failMode: this.#failMode }, `RedisRateLimitStore: Redis unreachable, ${action}`);
  }

  #leaveOutage(): void {
    if (!this.#isDown) return;
    this.#isDown = false;
    this.#fallback.clear();
    this.#logger.info({ failMode: this.#failMode }, 'RedisRateLimitStore: Redis is back; limits are shared again');
  }
}

function toWaitMs(result: ReserveResult): number {
  return result.waitMs;
}
