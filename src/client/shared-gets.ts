/**
 * In-flight GET dedupe (`dedupe: true`): identical GETs in flight at once share one request. One
 * caller giving up does not cancel the others; the last one leaving cancels the request.
 * @module
 */
import { abortable, abortReason } from '../core/abort.js';
import type { ClientResponse } from './response-types.js';

/** Distinct GETs that can share a request at once; beyond, calls run on their own (memory bound). */
const MAX_SHARED = 10_000;

/** A GET in flight that identical GETs join. */
interface SharedCall {
  promise: Promise<ClientResponse<unknown>>;
  controller: AbortController;
  /** Callers still waiting; the last to abort cancels the request. */
  waiters: number;
}

/** The GETs in flight of one client, by request key. */
export class SharedGets {
  readonly #calls = new Map<string, SharedCall>();
  /** GETs that joined a request already in flight. */
  deduped = 0;

  /**
   * Joins the request in flight under `key`, or starts it with `run` (which gets a signal aborted when
   * every caller has left). Resolves with the shared response; rejects with the caller's abort reason.
   */
  join(
    key: string,
    run: (signal: AbortSignal | undefined) => Promise<ClientResponse<unknown>>,
    signal: AbortSignal | undefined,
  ): Promise<ClientResponse<unknown>> {
    const calls = this.#calls;
    let entry = calls.get(key);
    if (entry === undefined) {
      if (calls.size >= MAX_SHARED) return run(signal);
      const created: SharedCall = {
        promise: undefined as unknown as Promise<ClientResponse<unknown>>,
        controller: new AbortController(),
        waiters: 0,
      };
      created.promise = run(created.controller.signal).finally(() => {
        if (calls.get(key) === created) calls.delete(key);
      });
      calls.set(key, created);
      entry = created;
    } else {
      this.deduped++;
    }
    const joined = entry;
    joined.waiters++;
    if (signal === undefined) return joined.promise;
    return abortable(joined.promise, signal, () => {
      joined.waiters--;
      if (joined.waiters === 0) joined.controller.abort(abortReason(signal));
    });
  }
}
