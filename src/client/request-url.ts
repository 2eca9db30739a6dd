/**
 * Joining a request path to the client's base URL without losing the base's path segments, query
 * encoding, and the route templates that keep profiler names bounded.
 * @module
 */
import { ConfigError } from '../core/errors.js';
import { describeValue } from '../core/options.js';

/** One query value; arrays repeat the key (`a=1&a=2`), `null`/`undefined` are left out. */
export type QueryValue = string | number | boolean | null | undefined | ReadonlyArray<string | number | boolean>;

/** Query parameters of a request: an object or `URLSearchParams`. */
export type Query = Record<string, QueryValue> | URLSearchParams;

/**
 * Appends encoded `query` to `path` (which may already carry a query string).
 * @throws ConfigError for a value that is not a string, number, boolean, null/undefined or an array of
 *   the first three (an object would be sent as `[object Object]`), naming the key.
 */
export function appendQuery(path: string, query: Query | undefined): string {
  if (query === undefined) return path;
  let encoded: string;
  if (query instanceof URLSearchParams) {
    encoded = query.toString();
  } else {
    encoded = '';
    for (const key in query) {
      const value = query[key];
      if (value === undefined || value === null) continue;
      const name = encodeURIComponent(key);
      if (Array.isArray(value)) {
        for (const item of value) {
          checkQueryValue(key, item);
          encoded += `${encoded ? '&' : ''}${name}=${encodeURIComponent(String(item))}`;
        }
      } else {
        checkQueryValue(key, value);
        encoded += `${encoded ? '&' : ''}${name}=${encodeURIComponent(String(value))}`;
      }
    }
  }
  if (encoded === '') return path;
  return `${path}${path.includes('?') ? '&' : '?'}${encoded}`;
}

function checkQueryValue(key: string, value: unknown): void {
  const type = typeof value;
  if (type === 'string' || type === 'number' || type === 'boolean') return;
  const name = `APIClient.request.query.${key}`;
  throw new ConfigError(
    name,
    `${name} must be a string, number, boolean or an array of them, got ${describeValue(value)} (serialise objects and dates yourself)`,
  );
}

/** A parsed base URL: the origin the pool connects to and the path prefix every request keeps. */
export interface BaseUrl {
  /** `https://host:port`. */
  origin: string;
  /** Path prefix without a trailing slash (`''` or `/v2`). */
  prefix: string;
  /** Query string of the base URL (without `?`), appended to every request; usually empty. */
  query: string;
}

/**
 * Parses and checks `baseUrl`.
 * @throws ConfigError when it is not an absolute http(s) URL or carries credentials or a fragment.
 */
export function parseBaseUrl(name: string, baseUrl: string): BaseUrl {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new ConfigError(name, `${name} must be an absolute http(s) URL, got ${JSON.stringify(baseUrl)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(name, `${name} must use http: or https:, got ${url.protocol}`);
  }
  if (url.username || url.password) {
    // Credentials in URLs end up in logs; ask for a header instead.
    throw new ConfigError(name, `${name} must not contain credentials; pass an Authorization header instead`);
  }
  if (url.hash) throw new ConfigError(name, `${name} must not contain a fragment`);
  return { origin: url.origin, prefix: url.pathname.replace(/\/+$/, ''), query: url.search.slice(1) };
}

/**
 * Resolves a request `path` against the base: `/users` and `users` both become `<prefix>/users`
 * (unlike `new URL('/users', base)`, which drops the base's `/v2`). Dot segments (`.`, `..`, also
 * percent-encoded, which servers decode) resolve inside the base path: `a/../b` is `<prefix>/b`, and a
 * path that would climb above the prefix (`../admin`) is refused. To reach a path outside the prefix on
 * purpose, pass an absolute URL: it is accepted only for the client's own origin, so default headers
 * (credentials) never travel to another host.
 * @returns the path (with query) to send to the pool.
 * @throws ConfigError for an absolute URL of another origin, or a relative path that leaves the base path.
 */
export function joinPath(base: BaseUrl, path: string): string {
  let relative = path;
  if (path.startsWith('http://') || path.startsWith('https://')) {
    const url = new URL(path);
    if (url.origin !== base.origin) {
      throw new ConfigError(
        'APIClient.request.path',
        `APIClient.request.path must be relative or on ${base.origin}, got another origin (${url.origin})`,
      );
    }
    return base.query ? appendSearch(url.pathname + url.search, base.query) : url.pathname + url.search;
  }
  if (relative.length === 0 || relative.charCodeAt(0) !== 47 /* '/' */) relative = `/${relative}`;
  if (DOT_SEGMENT.test(relative)) relative = resolveDotSegments(relative);
  const joined = base.prefix + relative;
  return base.query ? appendSearch(joined, base.query) : joined;
}

/** A `.` or `..` segment, literal or percent-encoded, in the path part (before any `?`). */
const DOT_SEGMENT = /^[^?]*\/(?:\.|%2e){1,2}(?:[/?]|$)/i;

/** Resolves `.` and `..` in `path` (starting with `/`) without climbing above it. */
function resolveDotSegments(path: string): string {
  const queryAt = path.indexOf('?');
  const pathname = queryAt < 0 ? path : path.slice(0, queryAt);
  const segments = pathname.split('/').slice(1);
  const kept: string[] = [];
  for (let i = 0; i < segments.length; i++) {
    const segment = (segments[i] as string).toLowerCase().replaceAll('%2e', '.');
    const isLast = i === segments.length - 1;
    if (segment === '.') {
      if (isLast) kept.push('');
    } else if (segment === '..') {
      if (kept.length === 0) {
        throw new ConfigError(
          'APIClient.request.path',
          `APIClient.request.path ${JSON.stringify(pathname)} leaves the base path; pass an absolute URL of the same origin to reach it on purpose`,
        );
      }
      kept.pop();
      if (isLast) kept.push('');
    } else {
      kept.push(segments[i] as string);
    }
  }
  return `/${kept.join('/')}${queryAt < 0 ? '' : path.slice(queryAt)}`;
}

function appendSearch(path: string, query: string): string {
  return `${path}${path.includes('?') ? '&' : '?'}${query}`;
}

// Segments that look like identifiers: numbers, UUIDs, long hex/base64-ish tokens, or anything mixing
// digits with letters beyond 8 characters (order ids, hashes). Replaced by `:id` in route templates.
const ID_SEGMENT =
  /^(?:\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{16,}|(?=.*\d)[\w-]{9,})$/i;

/**
 * Turns a concrete path into a route template for metrics: the query is dropped and id-like
 * segments become `:id` (`/users/42/orders?x=1` → `/users/:id/orders`). Callers that know the real
 * template should pass `route` instead; this heuristic cannot tell `/users/alice` is an id.
 */
export function routeTemplate(path: string): string {
  const queryAt = path.indexOf('?');
  const pathname = queryAt < 0 ? path : path.slice(0, queryAt);
  const segments = pathname.split('/');
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i] as string;
    if (segment !== '' && ID_SEGMENT.test(segment)) segments[i] = ':id';
  }
  return segments.join('/');
}
