/**
 * How a {@link Cache} works with a shared second level ({@link CacheTier}) and the other processes
 * (the {@link CacheBus}): tier reads on an L1 miss, the load lease of a coordinating tier (waiting for
 * another process's load, filling with the lease's invalidation stamp, giving the lease back), tier
 * writes in the background (bounded), and bus messages sent after the writes they describe.
 * Receiving bus messages stays in `Cache`: it changes L1 and the loads in flight.
 * @module
 */
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { Cache } from './cache.js';
import type { CacheBus, CacheBusMessage } from './cache-bus.js';
import type { Entry, Load } from './cache-load.js';
import {
  type CacheTier,
  type CacheTierEntry,
  type CacheTierLookup,
  type CoordinatedCacheTier,
  isCoordinatedTier,
} from './cache-tier.js';

/** Tier writes in flight beyond which new ones are dropped (and counted), so a stuck tier cannot grow memory. */
const MAX_PENDING_TIER_WRITES = 10_000;
/**
 * Longest wait for another process's load before looking at the tier again. The bus wakes waiters at
 * once when the value arrives; this bounds the wait when a message is lost.
 */
const MAX_REMOTE_WAIT_MS = 1_000;
/** Poll period for another process's load when there is no bus to wake the waiter. */
const REMOTE_POLL_MS = 25;

/** What {@link TierCoordination} needs from its cache. */
export interface TierCoordinationContext<V> {
  /** The cache's name: the bus channel and the `cache` field of log records. */
  readonly name: string;
  readonly tier: CacheTier<V> | undefined;
  readonly bus: CacheBus | undefined;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Answers `load` with a value found in the tier (stores it in L1). */
  readonly onTierHit: (load: Load<V>, found: CacheTierEntry<V>) => void;
  /** The tier refused a loaded value (the key was invalidated meanwhile): drop `entry` if L1 still holds it. */
  readonly onFillRefused: (key: string, entry: Entry<V>) => void;
}

/** The tier and bus side of one {@link Cache}; its counters appear in the cache's `stats()`. */
export class TierCoordination<V> {
  /** L1 misses answered by the tier. */
  tierHits = 0;
  /** Tier calls that failed (or writes dropped because too many were pending). */
  tierErrors = 0;
  /** Loader results the tier refused because the key was invalidated while they loaded. */
  staleLoadsRefused = 0;
  /** Bus sends that failed. */
  busErrors = 0;
  readonly #name: string;
  readonly #tier: CacheTier<V> | undefined;
  readonly #coordinated: CoordinatedCacheTier<V> | undefined;
  readonly #bus: CacheBus | undefined;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #onTierHit: TierCoordinationContext<V>['onTierHit'];
  readonly #onFillRefused: TierCoordinationContext<V>['onFillRefused'];
  /** Tier writes and bus sends in flight (`close()` waits for them). */
  readonly #pending = new Set<Promise<void>>();

  constructor(context: TierCoordinationContext<V>) {
    this.#name = context.name;
    this.#tier = context.tier;
    this.#coordinated = context.tier !== undefined && isCoordinatedTier(context.tier) ? context.tier : undefined;
    this.#bus = context.bus;
    this.#clock = context.clock;
    this.#logger = context.logger;
    this.#onTierHit = context.onTierHit;
    this.#onFillRefused = context.onFillRefused;
  }

  /**
   * Consults the tier for `load` (call only when there is a tier). Returns true when the load is done
   * (answered from the tier, or abandoned meanwhile); false when this process must call the loader.
   */
  lookup(load: Load<V>): Promise<boolean> {
    // Not async itself: the coordinated path's promise is handed over as is, without an extra tick.
    if (this.#coordinated !== undefined) return this.#lookupCoordinated(load, this.#coordinated);
    return this.#lookupPlain(load);
  }

  async #lookupPlain(load: Load<V>): Promise<boolean> {
    const found = await this.#get(load.key);
    if (load.isAbandoned) return true;
    if (found === undefined) return false;
    this.tierHits++;
    this.#onTierHit(load, found);
    return true;
  }

  /** `set` of a key: written to the tier in the background, then announced on the bus. */
  set(key: string, value: V, ttlMs: number, tags: readonly string[] | undefined): void {
    const tier = this.#tier;
    const message = this.#bus === undefined ? undefined : ({ type: 'set', key } as const);
    if (tier !== undefined) this.write(() => tier.set(key, value, { ttlMs, tags: tags ?? [] }), message);
    else if (message !== undefined) this.publish(message);
  }

  /** `delete` of a key: removed from the tier in the background, then announced on the bus. */
  delete(key: string): void {
    const tier = this.#tier;
    const message = this.#bus === undefined ? undefined : ({ type: 'delete', key } as const);
    if (tier !== undefined) this.write(() => tier.delete(key), message);
    else if (message !== undefined) this.publish(message);
  }

  /** `clear`: the tier is cleared (when it supports it) in the background, then announced on the bus. */
  clear(): void {
    const tier = this.#tier;
    const message = this.#bus === undefined ? undefined : ({ type: 'clear' } as const);
    if (tier?.clear !== undefined) this.write(() => (tier.clear as () => Promise<void>)(), message);
    else if (message !== undefined) this.publish(message);
  }

  /**
   * Invalidates `tags` in the tier (awaited), then announces it on the bus (also when the tier failed).
   * @throws (rejects) the tier's error.
   */
  async invalidateTags(tags: readonly string[]): Promise<void> {
    const message = this.#bus === undefined ? undefined : ({ type: 'tags', tags: [...tags] } as const);
    if (this.#tier !== undefined) {
      try {
        await this.#tier.deleteTags(tags);
      } catch (error) {
        this.tierErrors++;
        this.#logger.warn({ cache: this.#name, tags, err: error }, 'cache tier tag invalidation failed');
        if (message !== undefined) this.publish(message);
        throw error;
      }
    }
    if (message !== undefined) this.publish(message);
  }

  /** Resolves once every tier write and bus send in flight has settled. */
  drain(): Promise<void> {
    return Promise.allSettled([...this.#pending]).then(() => undefined);
  }

  /**
   * Consults a coordinating tier until it answers with a value (stored, returns true), the lease
   * (this process loads), or fails (this process loads without coordination and writes nothing to the
   * tier, since it has no stamp to prove its result is not stale). Waits between looks while another
   * process holds the lease.
   */
  async #lookupCoordinated(load: Load<V>, tier: CoordinatedCacheTier<V>): Promise<boolean> {
    for (;;) {
      let found: CacheTierLookup<V> | undefined;
      try {
        found = await tier.lookup(load.key);
      } catch (error) {
        this.tierErrors++;
        this.#logger.warn(
          { cache: this.#name, key: load.key, err: error },
          'cache tier read failed; calling the loader',
        );
        return false;
      }
      if (found.kind === 'lease') {
        load.lease = { token: found.token, stamp: found.stamp };
        if (load.isAbandoned || load.isDetached) {
          // Abandoned or superseded while asking: give the lease back at once for the other processes.
          this.releaseLease(load);
          if (load.isAbandoned) return true;
        }
        return false;
      }
      if (load.isAbandoned) return true;
      if (found.kind === 'hit') {
        this.tierHits++;
        this.#onTierHit(load, found.entry);
        return true;
      }
      await this.#waitRemote(load, found.retryInMs);
      if (load.isAbandoned) return true;
    }
  }

  /** Waits for another process's load: woken by the bus, or after the lease's remaining time (bounded). */
  #waitRemote(load: Load<V>, retryInMs: number): Promise<void> {
    if (load.isWakePending) {
      load.isWakePending = false;
      return Promise.resolve();
    }
    const capMs = this.#bus === undefined ? REMOTE_POLL_MS : MAX_REMOTE_WAIT_MS;
    const waitMs = Math.max(1, Math.min(retryInMs, capMs));
    return new Promise<void>((resolve) => {
      const timer = this.#clock.setTimeout(
        () => {
          load.wake = undefined;
          resolve();
        },
        waitMs,
        { unref: true },
      );
      load.wake = () => {
        load.wake = undefined;
        this.#clock.clearTimeout(timer);
        resolve();
      };
    });
  }

  async #get(key: string): Promise<CacheTierEntry<V> | undefined> {
    try {
      const found = await (this.#tier as CacheTier<V>).get(key);
      return found === undefined || found === null || found.value === undefined ? undefined : found;
    } catch (error) {
      this.tierErrors++;
      this.#logger.warn({ cache: this.#name, key, err: error }, 'cache tier read failed; calling the loader');
      return undefined;
    }
  }

  /**
   * Writes a loaded value to the tier: a coordinating tier stores it only if nothing was invalidated
   * since the lease's stamp (else L1 drops it too), then the bus wakes the processes waiting for it.
   */
  writeLoaded(load: Load<V>, value: V, ttlMs: number, tags: readonly string[] | undefined, entry: Entry<V>): void {
    const tier = this.#tier;
    if (tier === undefined) return;
    const coordinated = this.#coordinated;
    if (coordinated === undefined) {
      this.write(() => tier.set(load.key, value, { ttlMs, tags: tags ?? [] }));
      return;
    }
    const lease = load.lease;
    // No lease means the tier could not be asked (it failed): without a stamp the result cannot be
    // proven fresh, so it stays in L1 only.
    if (lease === undefined) return;
    load.lease = undefined;
    const key = load.key;
    const message = this.#bus === undefined ? undefined : ({ type: 'loaded', key } as const);
    this.write(async () => {
      const stored = await coordinated.fill(key, value, {
        ttlMs,
        tags: tags ?? [],
        stamp: lease.stamp,
        token: lease.token,
      });
      if (stored) return;
      this.staleLoadsRefused++;
      this.#onFillRefused(key, entry);
    }, message);
  }

  /** Gives a held lease back (in the background), so another process may load at once. */
  releaseLease(load: Load<V>): void {
    const lease = load.lease;
    const tier = this.#coordinated;
    if (lease === undefined || tier === undefined) return;
    load.lease = undefined;
    this.write(() => tier.release(load.key, lease.token), undefined, true);
  }

  write(write: () => Promise<void>, message?: CacheBusMessage, isForced = false): void {
    if (this.#pending.size >= MAX_PENDING_TIER_WRITES && !isForced) {
      this.tierErrors++;
      this.#logger.warn(
        { cache: this.#name, pending: this.#pending.size },
        'cache tier write dropped: too many pending',
      );
      if (message !== undefined) this.publish(message);
      return;
    }
    let result: Promise<void>;
    try {
      result = Promise.resolve(write());
    } catch (error) {
      result = Promise.reject(error);
    }
    // The message goes out after the write it describes: a receiver re-reading the tier sees the change.
    const tracked: Promise<void> = result.then(
      () => {
        this.#pending.delete(tracked);
        if (message !== undefined) this.publish(message);
      },
      (error: unknown) => {
        this.#pending.delete(tracked);
        this.tierErrors++;
        this.#logger.warn({ cache: this.#name, err: error }, 'cache tier write failed');
        if (message !== undefined) this.publish(message);
      },
    );
    this.#pending.add(tracked);
  }

  /** Sends a change to the other instances, in the background; failures are counted and logged. */
  publish(message: CacheBusMessage): void {
    const bus = this.#bus;
    if (bus === undefined) return;
    let sent: Promise<void>;
    try {
      sent = Promise.resolve(bus.publish(this.#name, message));
    } catch (error) {
      sent = Promise.reject(error);
    }
    const tracked: Promise<void> = sent.then(
      () => {
        this.#pending.delete(tracked);
      },
      (error: unknown) => {
        this.#pending.delete(tracked);
        this.busErrors++;
        this.#logger.warn({ cache: this.#name, err: error }, 'cache bus publish failed');
      },
    );
    this.#pending.add(tracked);
  }
}
