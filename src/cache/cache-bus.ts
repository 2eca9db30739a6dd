/**
 * The invalidation bus interface: how `Cache` instances in different processes tell each other to drop
 * L1 copies. `RedisInvalidationBus` (hotpath/redis) implements it on Redis pub/sub.
 * @module
 */

/** One change made by another instance of a cache. */
export type CacheBusMessage =
  | {
      /**
       * `set`/`delete`: `key` was set or deleted elsewhere — drop the local copy, the tier has the truth.
       * `loaded`: a cold `key` was loaded elsewhere and is now in the tier — processes waiting for that
       * load look again; local copies stay (any copy is that same value or an expired one kept for stale serving).
       */
      readonly type: 'set' | 'delete' | 'loaded';
      /** The key concerned. */
      readonly key: string;
    }
  | {
      /** Entries with any of `tags` were invalidated elsewhere. */
      readonly type: 'tags';
      /** The invalidated tags. */
      readonly tags: readonly string[];
    }
  | {
      /** The cache was cleared elsewhere. */
      readonly type: 'clear';
    };

/** What a cache attached to a bus receives. */
export interface CacheBusListener {
  /** A change made by another instance (messages from this instance are never delivered back). */
  onMessage(message: CacheBusMessage): void;
  /** Messages may have been missed (the bus reconnected): drop every local copy. */
  onReset(): void;
}

/**
 * Carries {@link CacheBusMessage}s between the instances of caches of the same name. One bus serves
 * any number of caches; messages are scoped by cache name, so a `clear` of one cache never touches another.
 */
export interface CacheBus {
  /** Attaches a listener for the cache named `cacheName`; returns the function that detaches it. */
  subscribe(cacheName: string, listener: CacheBusListener): () => void;
  /** Sends `message` to every other instance of `cacheName`. Rejects when the bus cannot send. */
  publish(cacheName: string, message: CacheBusMessage): Promise<void>;
}
