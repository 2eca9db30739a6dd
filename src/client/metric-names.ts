/**
 * Profiler names of client calls, `client.request <METHOD> <route>`: memoised per path, and bounded so
 * that ids leaking into paths cannot grow the profiler without limit.
 * @module
 */
import { routeTemplate } from './request-url.js';

/** Profiler names per client: 256 distinct routes is plenty for one upstream API; more means ids leak in. */
const MAX_ROUTE_NAMES = 256;
const MAX_ROUTE_MEMO = 2048;

/** The memo of one client's metric names. */
export class MetricNames {
  readonly #pathNames = new Map<string, Map<string, string>>();
  readonly #routeNames = new Map<string, Map<string, string>>();
  readonly #distinct = new Set<string>();

  /** Name for `method` on `path`, or on the caller's `route` template when given. */
  name(method: string, path: string, route: string | undefined): string {
    const memo = route === undefined ? this.#pathNames : this.#routeNames;
    let byKey = memo.get(method);
    if (byKey === undefined) memo.set(method, (byKey = new Map()));
    const key = route ?? path;
    let name = byKey.get(key);
    if (name !== undefined) return name;
    name = `client.request ${method} ${route ?? routeTemplate(path)}`;
    if (!this.#distinct.has(name)) {
      if (this.#distinct.size >= MAX_ROUTE_NAMES) return `client.request ${method} (other)`;
      this.#distinct.add(name);
    }
    if (byKey.size < MAX_ROUTE_MEMO) byKey.set(key, name);
    return name;
  }
}
