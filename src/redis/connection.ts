/**
 * One Redis connection as every `hotpath/redis` class uses it: built from a `redis://` URL (then owned
 * and closed here) or wrapping an ioredis `Redis`/`Cluster` the caller passed in (never closed here);
 * commands bounded by `commandTimeoutMs`; scripts sent by SHA with a reload after a server restart; and
 * the connection's up/down transitions as two callbacks. ioredis is loaded only when a URL is given.
 * @module
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { ConfigError, StorageError, TimeoutError } from '../core/errors.js';

/**
 * The members of an ioredis `Redis` or `Cluster` that hotpath uses, described structurally so the types
 * compile without ioredis installed. Both ioredis classes fit as they are.
 */
export interface RedisClientLike {
  /** ioredis connection state: `"ready"` when commands go out at once. */
  readonly status: string;
  /** Sends any command; resolves with Redis's reply. */
  call(command: string, ...args: (string | number | Buffer)[]): Promise<unknown>;
  /** Subscribes to connection events (`ready`, `close`, `end`, `error`, `message`, …). */
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  /** Removes a listener added with `on`. */
  removeListener(event: string, listener: (...args: unknown[]) => void): unknown;
  /** Closes gracefully (waits for replies in flight). */
  quit(): Promise<unknown>;
  /** Closes at once. */
  disconnect(): void;
  /** A new connection with the same options (a subscriber needs its own). */
  duplicate(): RedisClientLike;
  /** ioredis `Cluster` only: the connections to the cluster's nodes (`'master'`: one per shard). */
  nodes?(role?: 'all' | 'master' | 'slave'): RedisClientLike[];
}

/** What every `hotpath/redis` class accepts as `redis`: a client, or a `redis://` / `rediss://` URL. */
export type RedisInput = RedisClientLike | string;

/** Options of {@link RedisConnection}. */
export interface RedisConnectionOptions {
  /** The client to use, or a URL to connect to (that connection is then owned and closed by `close()`). */
  redis: RedisInput;
  /**
   * Most milliseconds a command may take before it rejects with {@link TimeoutError} (default 1,000).
   * Covers the time spent in ioredis's offline queue while it reconnects. `Infinity` disables it.
   */
  commandTimeoutMs?: number;
  /** Name used in errors (e.g. `"RedisRateLimitStore"`). */
  scope: string;
  /** Quit a passed-in client on `close()` too (default false; a URL-built client is always quit). */
  ownsClient?: boolean;
}

/** A Lua script with its SHA1, sent with EVALSHA and re-sent with EVAL when the server lost it. */
export interface RedisScript {
  /** The Lua source. */
  readonly source: string;
  /** SHA1 of `source` (hex). */
  readonly sha: string;
}

/** Compiles `source` into a {@link RedisScript} (computes its SHA once). */
export function defineScript(source: string): RedisScript {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

/** Events a {@link RedisConnection} reports. */
export interface RedisConnectionEvents {
  /** The connection became ready again after having been down (not called for the first connect). */
  onReconnect?: () => void;
  /** The connection went down (closed or reconnecting) after having been ready. */
  onDown?: (error: unknown) => void;
}

const DEFAULT_COMMAND_TIMEOUT_MS = 1000;

let cachedRequire: NodeRequire | undefined;

/** Loads ioredis on first use, so `hotpath/redis` imports without it. */
function loadIoredis(scope: string): new (url: string, options: object) => RedisClientLike {
  // CommonJS builds have __filename; ESM builds resolve from this module's URL (not `typeof require`:
  // bundlers rewrite `require` in ESM output into a shim that throws "Dynamic require").
  cachedRequire ??= createRequire(typeof __filename === 'string' ? __filename : import.meta.url);
  try {
    const loaded = cachedRequire('ioredis') as { default?: unknown };
    return (loaded.default ?? loaded) as new (
      url: string,
      options: object,
    ) => RedisClientLike;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') {
      throw new ConfigError('redis', `${scope} needs the "ioredis" package: run \`npm install ioredis\``, {
        cause: error,
      });
    }
    throw error;
  }
}

function isClientLike(value: unknown): value is RedisClientLike {
  const candidate = value as Partial<RedisClientLike> | null;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.call === 'function' &&
    typeof candidate.on === 'function' &&
    typeof candidate.removeListener === 'function'
  );
}

/**
 * A Redis connection shared by the classes of `hotpath/redis`: bounds every command by
 * `commandTimeoutMs`, tracks whether the server is reachable, and closes the client only if it built it.
 *
 * @example
 * ```ts
 * const connection = new RedisConnection({ redis: 'redis://127.0.0.1:6379', scope: 'MyTier' });
 * const pong = await connection.command('PING');
 * await connection.close(); // quits: the connection was built from the URL
 * ```
 */
export class RedisConnection {
  /** The ioredis client (built from the URL, or the one passed in). */
  readonly client: RedisClientLike;
  /** True when the client was built here from a URL, so `close()` quits it. */
  readonly isOwned: boolean;
  /** Command timeout in milliseconds (`Infinity` when disabled). */
  readonly commandTimeoutMs: number;
  readonly #scope: string;
  readonly #url: string | undefined;
  readonly #listeners: Array<{ event: string; fn: (...args: unknown[]) => void }> = [];
  readonly #subscribers = new Set<RedisConnectionEvents>();
  /** True once the connection has been ready; a later `close`/`reconnecting` is then an outage. */
  #wasReady = false;
  #isDown = false;
  #reconnects = 0;
  #closed = false;
  /** Commands in flight, oldest first, from `#head` on (settled ones are dropped from the head as they settle). */
  readonly #deadlines: (PendingCommand | undefined)[] = [];
  #head = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** @throws ConfigError for a bad `redis` or `commandTimeoutMs`, or when a URL is given and ioredis is not installed. */
  constructor(options: RedisConnectionOptions) {
    const { redis, scope } = options;
    this.#scope = scope;
    const timeout = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    if (typeof timeout !== 'number' || Number.isNaN(timeout) || timeout <= 0) {
      throw new ConfigError(
        `${scope}.commandTimeoutMs`,
        `${scope}.commandTimeoutMs must be a number > 0 (or Infinity), got ${String(timeout)}`,
      );
    }
    this.commandTimeoutMs = timeout;
    if (typeof redis === 'string') {
      if (!/^rediss?:\/\/./.test(redis)) {
        throw new ConfigError(
          `${scope}.redis`,
          `${scope}.redis must be a redis:// or rediss:// URL or an ioredis client`,
        );
      }
      const Redis = loadIoredis(scope);
      this.#url = redis;
      // maxRetriesPerRequest: null — commands wait for the reconnect, bounded by our own commandTimeoutMs.
      this.client = new Redis(redis, { maxRetriesPerRequest: null, connectionName: scope });
      this.isOwned = true;
    } else if (isClientLike(redis)) {
      this.client = redis;
      this.isOwned = options.ownsClient === true;
    } else {
      throw new ConfigError(
        `${scope}.redis`,
        `${scope}.redis must be a redis:// or rediss:// URL or an ioredis client`,
      );
    }
    this.#wasReady = this.client.status === 'ready';
    this.#listen('ready', () => this.#onReady());
    this.#listen('close', () => this.#onDown(new StorageError(`${scope}: Redis connection closed`)));
    this.#listen('end', () => this.#onDown(new StorageError(`${scope}: Redis connection ended`)));
    // ioredis prints an "Unhandled error event" when nobody listens; outages are reported through onDown.
    this.#listen('error', () => {});
  }

  /** True while the client is connected and commands go out at once. */
  get isReady(): boolean {
    return this.client.status === 'ready';
  }

  /** True after the connection was ready and then dropped, until it is ready again. */
  get isDown(): boolean {
    return this.#isDown;
  }

  /** Times the connection became ready again after an outage. */
  get reconnects(): number {
    return this.#reconnects;
  }

  /**
   * Registers outage/recovery callbacks.
   * @returns a function that unregisters them.
   */
  subscribe(events: RedisConnectionEvents): () => void {
    this.#subscribers.add(events);
    return () => this.#subscribers.delete(events);
  }

  /**
   * Sends one command, rejecting after `commandTimeoutMs`.
   * @throws (rejects) TimeoutError after `commandTimeoutMs`; StorageError when Redis answers with an error or the
   *   connection fails; ClosedError-like StorageError after `close()`.
   */
  command(name: string, ...args: (string | number | Buffer)[]): Promise<unknown> {
    return this.commandOn(this.client, name, ...args);
  }

  /**
   * The servers that hold keys: the masters of a Cluster, else the one client. For keyless commands that
   * must see every server's keys (SCAN), sent with {@link commandOn}.
   */
  masters(): RedisClientLike[] {
    return typeof this.client.nodes === 'function' ? this.client.nodes('master') : [this.client];
  }

  /**
   * {@link command} sent to one of {@link masters}.
   * @throws (rejects) as {@link command}.
   */
  commandOn(node: RedisClientLike, name: string, ...args: (string | number | Buffer)[]): Promise<unknown> {
    if (this.#closed) return Promise.reject(new StorageError(`${this.#scope}: the Redis connection is closed`));
    return new Promise((resolve, reject) => {
      const pending = this.#track(name, reject);
      node.call(name, ...args).then(
        (reply) => this.#settle(pending, resolve, reply),
        (error: unknown) => this.#fail(pending, reject, error, name),
      );
    });
  }

  /**
   * Runs `script` with EVALSHA, falling back to EVAL once when the server does not know it (first use,
   * or a restarted server). Keys are passed as KEYS and arguments as ARGV, never spliced into the source.
   * @throws (rejects) as {@link command}.
   */
  evalScript(script: RedisScript, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    if (this.#closed) return Promise.reject(new StorageError(`${this.#scope}: the Redis connection is closed`));
    // One promise and no timer of its own per command: this is the limiter's hot path (measured: a
    // setTimeout + three chained promises per call cost a third of the reservations/s at 64 callers).
    return new Promise((resolve, reject) => {
      const pending = this.#track('EVALSHA', reject);
      this.client.call('EVALSHA', script.sha, keys.length, ...keys, ...args).then(
        (reply) => this.#settle(pending, resolve, reply),
        (error: unknown) => {
          if (!String((error as { message?: unknown })?.message).startsWith('NOSCRIPT')) {
            this.#fail(pending, reject, error, 'EVALSHA');
            return;
          }
          this.client.call('EVAL', script.source, keys.length, ...keys, ...args).then(
            (reply) => this.#settle(pending, resolve, reply),
            (evalError: unknown) => this.#fail(pending, reject, evalError, 'EVAL'),
          );
        },
      );
    });
  }

  /**
   * A second connection to the same server (a subscriber needs its own): built from the URL when this one
   * was, otherwise `client.duplicate()`. Owned by the returned connection either way.
   */
  duplicate(): RedisConnection {
    return new RedisConnection({
      redis: this.#url ?? this.client.duplicate(),
      commandTimeoutMs: this.commandTimeoutMs,
      scope: this.#scope,
      ownsClient: true,
    });
  }

  /** Stops listening and quits the client when it was built here. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#subscribers.clear();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.isOwned) {
      if (this.client.status === 'ready') {
        // QUIT flushes the replies in flight; bounded, since a dying server may never answer it.
        let timer: ReturnType<typeof setTimeout> | undefined;
        const bound = Number.isFinite(this.commandTimeoutMs) ? this.commandTimeoutMs : DEFAULT_COMMAND_TIMEOUT_MS;
        await Promise.race([
          this.client.quit().catch(() => {}),
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, bound);
          }),
        ]);
        clearTimeout(timer);
      }
      // Not connected (QUIT would wait in the offline queue for a server that is not there), or QUIT timed out.
      if (this.client.status !== 'end') this.client.disconnect();
    }
    for (const { event, fn } of this.#listeners) this.client.removeListener(event, fn);
    this.#listeners.length = 0;
  }

  #listen(event: string, fn: (...args: unknown[]) => void): void {
    this.client.on(event, fn);
    this.#listeners.push({ event, fn });
  }

  #onReady(): void {
    const wasDown = this.#isDown;
    this.#wasReady = true;
    this.#isDown = false;
    if (!wasDown) return;
    this.#reconnects++;
    for (const subscriber of this.#subscribers) subscriber.onReconnect?.();
  }

  #onDown(error: unknown): void {
    if (!this.#wasReady || this.#isDown || this.#closed) return;
    this.#isDown = true;
    for (const subscriber of this.#subscribers) subscriber.onDown?.(error);
  }

  /**
   * Registers a command's deadline. All commands share one timeout, so deadlines arrive in order: a FIFO
   * and a single timer (armed for the oldest unsettled command) replace a timer per command.
   */
  #track(what: string, reject: (error: unknown) => void): PendingCommand {
    const pending: PendingCommand = { deadline: 0, what, reject, isSettled: false };
    if (!Number.isFinite(this.commandTimeoutMs)) return pending;
    pending.deadline = performance.now() + this.commandTimeoutMs;
    this.#deadlines.push(pending);
    if (this.#timer === undefined) this.#armTimer(this.commandTimeoutMs);
    return pending;
  }

  #settle(pending: PendingCommand, resolve: (value: unknown) => void, reply: unknown): void {
    if (pending.isSettled) return;
    pending.isSettled = true;
    this.#dropSettled();
    resolve(reply);
  }

  #fail(pending: PendingCommand, reject: (error: unknown) => void, error: unknown, what: string): void {
    if (pending.isSettled) return;
    pending.isSettled = true;
    this.#dropSettled();
    reject(
      error instanceof StorageError || error instanceof TimeoutError
        ? error
        : new StorageError(`${this.#scope}: Redis ${what} failed: ${(error as Error)?.message ?? String(error)}`, {
            cause: error,
          }),
    );
  }

  /**
   * Replies arrive in order on one connection, so a settled command is usually the oldest: dropping it at
   * once keeps the queue as short as the commands in flight, and a settled command's closures are not kept
   * alive (into the old generation) until the next timer tick.
   */
  #dropSettled(): void {
    const queue = this.#deadlines;
    let head = this.#head;
    while (head < queue.length && (queue[head] as PendingCommand).isSettled) queue[head++] = undefined;
    if (head === queue.length) {
      queue.length = 0;
      head = 0;
    } else if (head >= 1024 && head * 2 >= queue.length) {
      queue.splice(0, head);
      head = 0;
    }
    this.#head = head;
  }

  #armTimer(delayMs: number): void {
    this.#timer = setTimeout(() => this.#expire(), Math.max(1, Math.ceil(delayMs)));
    this.#timer.unref?.();
  }

  #expire(): void {
    this.#timer = undefined;
    const now = performance.now();
    const queue = this.#deadlines;
    let head = this.#head;
    while (head < queue.length) {
      const pending = queue[head] as PendingCommand;
      if (!pending.isSettled) {
        if (pending.deadline > now) break;
        pending.isSettled = true;
        pending.reject(
          new TimeoutError(
            `${this.#scope}: Redis ${pending.what} took longer than ${this.commandTimeoutMs} ms`,
            this.commandTimeoutMs,
          ),
        );
      }
      head++;
    }
    queue.splice(0, head);
    this.#head = 0;
    this.#dropSettled();
    const next = queue[0];
    if (next !== undefined) this.#armTimer(next.deadline - now);
  }
}

/** A command in flight: its deadline and how to fail it. */
interface PendingCommand {
  deadline: number;
  readonly what: string;
  readonly reject: (error: unknown) => void;
  isSettled: boolean;
}
