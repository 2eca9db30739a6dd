/**
 * A typed wrapper over Node's EventEmitter, so `on('completed', (job) => …)` is checked.
 * @module
 */
import { EventEmitter } from 'node:events';

/** Map from event name to the listener's argument tuple. */
export type EventMap = { [event: string]: unknown[] };

/** EventEmitter whose event names and payloads are typed by `Events`. */
export class TypedEmitter<Events extends EventMap> {
  readonly #emitter = new EventEmitter();

  constructor() {
    // Many waiters (e.g. `wait(id)` callers) may listen at once; leaks are bounded by the callers.
    this.#emitter.setMaxListeners(0);
  }

  /** Adds a listener. */
  on<E extends keyof Events & string>(event: E, listener: (...args: Events[E]) => void): this {
    this.#emitter.on(event, listener as (...args: unknown[]) => void);
    return this;
  }

  /** Adds a listener called at most once. */
  once<E extends keyof Events & string>(event: E, listener: (...args: Events[E]) => void): this {
    this.#emitter.once(event, listener as (...args: unknown[]) => void);
    return this;
  }

  /** Removes a listener. */
  off<E extends keyof Events & string>(event: E, listener: (...args: Events[E]) => void): this {
    this.#emitter.off(event, listener as (...args: unknown[]) => void);
    return this;
  }

  /** Number of listeners of `event`. */
  listenerCount<E extends keyof Events & string>(event: E): number {
    return this.#emitter.listenerCount(event);
  }

  /** Calls the listeners of `event`; returns whether there were any. */
  protected emit<E extends keyof Events & string>(event: E, ...args: Events[E]): boolean {
    return this.#emitter.emit(event, ...args);
  }

  /** Removes every listener (used by `close()`). */
  protected removeAllListeners(): void {
    this.#emitter.removeAllListeners();
  }
}
