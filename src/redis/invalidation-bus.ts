/**
 * `RedisInvalidationBus`: Redis pub/sub carrying cache changes between processes, so every instance
 * of a cache drops its L1 copy when another instance sets, deletes, invalidates tags or clears.
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { CacheBus, CacheBusListener, CacheBusMessage } from '../cache/cache-bus.js';
import { ClosedError } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { validateOptions } from '../core/options.js';
import { RedisConnection, type RedisInput } from './connection.js';

/** Options of {@link RedisInvalidationBus}. */
export interface RedisInvalidationBusOptions {
  /** Connection that publishes: an ioredis client (not closed by the bus) or a `redis://` URL (owned). */
  redis: RedisInput;
  /**
   * Connection that subscribes (it enters subscriber mode and can run nothing else). Default: a
   * duplicate of `redis`, owned and closed by the bus. Pass one to share a single subscriber connection.
   */
  subscriber?: RedisInput;
  /** Pub/sub channel (default `"hotpath:cache:bus"`); every process of one deployment must use the same. */
  channel?: string;
  /** Receives reconnect notices and malformed messages (default: silent). */
  logger?: Logger;
}

/** Counters of a {@link RedisInvalidationBus}. */
export interface RedisInvalidationBusStats {
  /** Messages sent. */
  published: number;
  /** Messages from other processes delivered to a local cache. */
  received: number;
  /** Messages ignored: this process's own, for a cache not attached here, or malformed. */
  ignored: number;
  /** Times the subscriber reconnected (each clears the L1 of every attached cache). */
  reconnects: number;
}

const DEFAULT_CHANNEL = 'hotpath:cache:bus';

/** The wire form: sender id, cache name, message. */
interface Envelope {
  s: string;
  c: string;
  m: CacheBusMessage;
}

/** Structural view of the ioredis members a subscriber uses beyond {@link RedisConnection}. */
interface SubscriberClient {
  on(event: 'message', listener: (channel: string, message: string) => void): unknown;
  removeListener(event: 'message', listener: (channel: string, message: string) => void): unknown;
  call(command: string, ...args: string[]): Promise<unknown>;
}

/**
 * A {@link CacheBus} on Redis pub/sub. One bus serves every cache of a process; messages carry the
 * sender's id (a process never applies its own) and the cache's name (a clear of one cache never
 * touches another). After the subscriber reconnects, every attached cache drops its L1: messages sent
 * while it was away are lost.
 *
 * @example
 * ```ts
 * const bus = new RedisInvalidationBus({ redis: process.env.HOTPATH_REDIS_URL });
 * const cache = new Cache<User>({ name: 'users', max: 1_000, ttlMs: 60_000, tier, bus });
 * ```
 */
export class RedisInvalidationBus implements CacheBus {
  /** This instance's id, carried by every message it sends. */
  readonly senderId = randomBytes(9).toString('base64url');
  /** The pub/sub channel. */
  readonly channel: string;
  readonly #publisher: RedisConnection;
  readonly #subscriber: RedisConnection;
  readonly #logger: Logger;
  readonly #listeners = new Map<string, Set<CacheBusListener>>();
  readonly #unsubscribeEvents: () => void;
  readonly #subscribed: Promise<void>;
  #isClosed = false;
  readonly #stats: RedisInvalidationBusStats = { published: 0, received: 0, ignored: 0, reconnects: 0 };

  /** @throws ConfigError for an unknown or invalid option, or a URL when ioredis is not installed. */
  constructor(options: RedisInvalidationBusOptions) {
    validateOptions('RedisInvalidationBus', options, {
      redis: { type: 'any', required: true },
      subscriber: { type: 'any' },
      channel: { type: 'string', nonEmpty: true, maxLength: 200 },
      logger: { type: 'object' },
    });
    this.channel = options.channel ?? DEFAULT_CHANNEL;
    this.#logger = options.logger ?? silentLogger;
    this.#publisher = new RedisConnection({ redis: options.redis, scope: 'RedisInvalidationBus' });
    this.#subscriber =
      options.subscriber === undefined
        ? this.#publisher.duplicate()
        : new RedisConnection({ redis: options.subscriber, scope: 'RedisInvalidationBus', commandTimeoutMs: 5_000 });
    const client = this.#subscriber.client as unknown as SubscriberClient;
    client.on('message', this.#onMessage);
    this.#unsubscribeEvents = this.#subscriber.subscribe({ onReconnect: () => this.#onReconnect() });
    // ioredis re-subscribes by itself after a reconnect; lower-case: ioredis tracks subscriptions by that name.
    this.#subscribed = client.call('subscribe', this.channel).then(
      () => undefined,
      (error: unknown) => {
        this.#logger.warn(
          { channel: this.channel, err: error },
          'cache bus subscribe failed; ioredis retries on reconnect',
        );
      },
    );
  }

  /** Resolves once the first SUBSCRIBE was answered (messages sent before may be missed). */
  ready(): Promise<void> {
    return this.#subscribed;
  }

  /** Attaches a cache's listener; returns the function that detaches it. */
  subscribe(cacheName: string, listener: CacheBusListener): () => void {
    if (this.#isClosed) throw new ClosedError('RedisInvalidationBus');
    let set = this.#listeners.get(cacheName);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(cacheName, set);
    }
    set.add(listener);
    return () => {
      const current = this.#listeners.get(cacheName);
      if (current === undefined) return;
      current.delete(listener);
      if (current.size === 0) this.#listeners.delete(cacheName);
    };
  }

  /**
   * Sends `message` to the other instances of `cacheName`.
   * @throws (rejects) ClosedError after `close()`; StorageError/TimeoutError when Redis cannot be reached.
   */
  async publish(cacheName: string, message: CacheBusMessage): Promise<void> {
    if (this.#isClosed) throw new ClosedError('RedisInvalidationBus');
    const envelope: Envelope = { s: this.senderId, c: cacheName, m: message };
    await this.#publisher.command('PUBLISH', this.channel, JSON.stringify(envelope));
    this.#stats.published++;
  }

  /** Plain-number counters. */
  stats(): RedisInvalidationBusStats {
    return { ...this.#stats };
  }

  /** Detaches every cache, unsubscribes, and closes the connections the bus owns. Idempotent. */
  async close(): Promise<void> {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.#listeners.clear();
    this.#unsubscribeEvents();
    const client = this.#subscriber.client as unknown as SubscriberClient;
    client.removeListener('message', this.#onMessage);
    if (!this.#subscriber.isOwned) {
      // A shared subscriber connection stays open for its owner; only our channel is dropped.
      await client.call('unsubscribe', this.channel).catch(() => undefined);
    }
    await Promise.all([this.#subscriber.close(), this.#publisher.close()]);
  }

  /** Same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  readonly #onMessage = (channel: string, text: string): void => {
    if (channel !== this.channel || this.#isClosed) return;
    let envelope: Envelope;
    try {
      envelope = JSON.parse(text) as Envelope;
    } catch (error) {
      this.#stats.ignored++;
      this.#logger.warn({ channel, err: error }, 'cache bus: malformed message ignored');
      return;
    }
    if (envelope === null || typeof envelope !== 'object' || envelope.s === this.senderId) {
      this.#stats.ignored++;
      return;
    }
    const listeners = typeof envelope.c === 'string' ? this.#listeners.get(envelope.c) : undefined;
    if (listeners === undefined || !isMessage(envelope.m)) {
      this.#stats.ignored++;
      return;
    }
    this.#stats.received++;
    for (const listener of listeners) listener.onMessage(envelope.m);
  };

  #onReconnect(): void {
    this.#stats.reconnects++;
    this.#logger.info({ channel: this.channel }, 'cache bus reconnected; clearing L1 of attached caches');
    for (const set of this.#listeners.values()) for (const listener of set) listener.onReset();
  }
}

function isMessage(value: unknown): value is CacheBusMessage {
  if (value === null || typeof value !== 'object') return false;
  const message = value as { type?: unknown; key?: unknown; tags?: unknown };
  switch (message.type) {
    case 'set':
    case 'delete':
    case 'loaded':
      return typeof message.key === 'string';
    case 'tags':
      return Array.isArray(message.tags) && message.tags.every((tag) => typeof tag === 'string');
    case 'clear':
      return true;
    default:
      return false;
  }
}
