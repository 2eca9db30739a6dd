/**
 * LISTEN/NOTIFY on one dedicated connection (outside the pool, since a pooled connection would be
 * returned and lose its subscriptions). The connection is re-established with backoff after it drops,
 * and every channel is listened to again; notifications sent while it was down are lost, so
 * consumers must also poll.
 * @module
 */
import { backoffDelay, resolveRetryOptions } from '../../core/backoff.js';
import type { Clock, TimerHandle } from '../../core/clock.js';
import { ConfigError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { PgClient } from './postgres-driver-types.js';

const CHANNEL = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const RETRY = resolveRetryOptions('PostgresStorage.listen', { retries: 1000, baseDelayMs: 100, maxDelayMs: 5000 });

/** Multiplexes LISTEN subscriptions over one connection. */
export class PgListener {
  readonly #createClient: () => PgClient;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #channels = new Map<string, Set<(payload: string) => void>>();
  #client: PgClient | undefined;
  #connecting: Promise<PgClient> | undefined;
  #reconnectTimer: TimerHandle | undefined;
  #failures = 0;
  #closed = false;
  /** Times the connection was re-established after a drop. */
  reconnects = 0;

  constructor(createClient: () => PgClient, clock: Clock, logger: Logger) {
    this.#createClient = createClient;
    this.#clock = clock;
    this.#logger = logger;
  }

  /**
   * Subscribes `onNotify` to `channel`; resolves once `LISTEN` is active. Returns the unsubscribe function.
   * @throws ConfigError when the channel is not a plain identifier.
   */
  async listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>> {
    if (typeof channel !== 'string' || !CHANNEL.test(channel)) {
      throw new ConfigError('channel', `channel must match ${CHANNEL}, got ${JSON.stringify(channel)?.slice(0, 80)}`);
    }
    if (typeof onNotify !== 'function') throw new ConfigError('onNotify', 'onNotify must be a function');
    let set = this.#channels.get(channel);
    const isNew = set === undefined;
    if (!set) {
      set = new Set();
      this.#channels.set(channel, set);
    }
    set.add(onNotify);
    if (isNew) {
      const client = await this.#connected();
      await client.query({ text: `LISTEN "${channel}"` });
    } else {
      await this.#connected();
    }
    let active = true;
    return async () => {
      if (!active) return;
      active = false;
      const current = this.#channels.get(channel);
      current?.delete(onNotify);
      if (current && current.size === 0) {
        this.#channels.delete(channel);
        if (this.#client) await this.#client.query({ text: `UNLISTEN "${channel}"` }).catch(() => undefined);
      }
    };
  }

  #connected(): Promise<PgClient> {
    if (this.#client) return Promise.resolve(this.#client);
    this.#connecting ??= this.#connect().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #connect(): Promise<PgClient> {
    const client = this.#createClient();
    client.on('notification', (message) => {
      const set = this.#channels.get(message.channel);
      if (!set) return;
      for (const fn of set) {
        try {
          fn(message.payload ?? '');
        } catch (error) {
          this.#logger.error({ err: error, channel: message.channel }, 'storage: listen callback threw');
        }
      }
    });
    const onDrop = (error?: Error): void => {
      if (this.#client !== client) return;
      this.#client = undefined;
      client.removeAllListeners('notification');
      client.end().catch(() => undefined);
      if (this.#closed) return;
      this.#logger.warn({ err: error }, 'storage: LISTEN connection dropped; reconnecting');
      this.#scheduleReconnect();
    };
    client.on('error', onDrop);
    client.on('end', () => onDrop());
    try {
      await client.connect();
      for (const channel of this.#channels.keys()) await client.query({ text: `LISTEN "${channel}"` });
    } catch (error) {
      client.removeAllListeners('notification');
      client.end().catch(() => undefined);
      throw error;
    }
    if (this.#closed) {
      await client.end().catch(() => undefined);
      throw new ConfigError('listen', 'storage is closed');
    }
    this.#client = client;
    this.#failures = 0;
    return client;
  }

  #scheduleReconnect(): void {
    if (this.#reconnectTimer !== undefined || this.#closed || this.#channels.size === 0) return;
    const delay = backoffDelay(Math.min(++this.#failures, 30), RETRY);
    this.#reconnectTimer = this.#clock.setTimeout(
      () => {
        this.#reconnectTimer = undefined;
        if (this.#closed) return;
        this.#connected().then(
          () => {
            this.reconnects++;
          },
          (error: unknown) => {
            this.#logger.warn({ err: error }, 'storage: LISTEN reconnect failed');
            this.#scheduleReconnect();
          },
        );
      },
      delay,
      { unref: true },
    );
  }

  /** Closes the connection and forgets every subscription. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#reconnectTimer !== undefined) this.#clock.clearTimeout(this.#reconnectTimer);
    this.#channels.clear();
    const client = this.#client ?? (await this.#connecting?.catch(() => undefined));
    this.#client = undefined;
    if (client) {
      client.removeAllListeners('notification');
      await client.end().catch(() => undefined);
    }
  }
}
