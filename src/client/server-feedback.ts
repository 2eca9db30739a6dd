/**
 * The one parser for what a server says about its limits: `Retry-After` (delta seconds and HTTP-date),
 * the IETF structured fields `RateLimit-Policy` / `RateLimit` (draft-ietf-httpapi-ratelimit-headers-08+),
 * the draft-07 dictionary form `RateLimit: limit=…, remaining=…, reset=…`, the older
 * `RateLimit-Limit/-Remaining/-Reset` trio and the vendor `X-RateLimit-*` / `X-Rate-Limit-*` headers.
 * @module
 */
import {
  type BareItem,
  type Dictionary,
  type Item,
  type List,
  type Parameters,
  parseDictionary,
  parseList,
  Token,
} from 'structured-headers';

/**
 * Response headers as undici (lower-case plain object) or fetch (`Headers`) gives them.
 * Plain-object keys must be lower case, as Node and undici deliver them.
 */
export type HeaderSource =
  | Record<string, string | string[] | undefined>
  | {
      /** The combined value of header `name`, or `null` when absent (fetch `Headers` semantics). */
      get(name: string): string | null;
    };

/** What the server told us about its limits. Durations in milliseconds, relative to the parse time. */
export interface ServerFeedback {
  /** Wait the server asked for (`Retry-After`, or `retry-after-ms`), ≥ 0. */
  retryAfterMs: number | undefined;
  /** Requests (quota units) left in the most binding policy. */
  remaining: number | undefined;
  /** Quota of that policy per window, when the server said it. */
  limit: number | undefined;
  /** Milliseconds until that policy's quota is restored, ≥ 0. */
  resetMs: number | undefined;
  /** Window of that policy in ms (from `RateLimit-Policy` `w`), when known. */
  windowMs: number | undefined;
  /** Name of the binding policy (structured fields only). */
  policy: string | undefined;
}

// A bare number above this is an epoch timestamp, not a delta: 1e9 s is September 2001, and no
// server asks for a 31-year wait. Above 1e12 it is epoch *milliseconds* (a few APIs send those).
const EPOCH_SECONDS_FLOOR = 1e9;
const EPOCH_MS_FLOOR = 1e12;
/**
 * Longest wait a header can ask for, in ms (2^31−1, ~24.8 days). A value of hundreds of digits parses
 * to `Infinity`; clamped, it stays a wait the limiter and the retry budget can compare and honour.
 */
export const MAX_SERVER_WAIT_MS = 2_147_483_647;
const DELTA = /^\d+(\.\d+)?$/;

function clampWait(ms: number): number {
  return ms > MAX_SERVER_WAIT_MS ? MAX_SERVER_WAIT_MS : ms;
}

function headerValue(headers: HeaderSource, name: string): string | undefined {
  if (typeof (headers as { get?: unknown }).get === 'function') {
    const value = (headers as { get(name: string): string | null }).get(name);
    return value === null ? undefined : value;
  }
  const value = (headers as Record<string, string | string[] | undefined>)[name];
  if (value === undefined) return undefined;
  // Several field lines of a list field combine with ", " (RFC 9110 §5.3).
  return typeof value === 'string' ? value : value.join(', ');
}

function firstValue(headers: HeaderSource, name: string): string | undefined {
  if (typeof (headers as { get?: unknown }).get === 'function') return headerValue(headers, name);
  const value = (headers as Record<string, string | string[] | undefined>)[name];
  return typeof value === 'string' || value === undefined ? value : value[0];
}

/**
 * Parses a `Retry-After` value: delta seconds (`"120"`, fractions tolerated) or an HTTP-date in one of
 * the three RFC 9110 forms, parsed strictly (`Date.parse` would read `a 1` or `June 1` as a past date).
 * A date in the past gives 0; a huge value is clamped to {@link MAX_SERVER_WAIT_MS}.
 * @param nowMs - current epoch milliseconds (from the caller's clock).
 * @returns milliseconds to wait, or `undefined` when the value is missing or malformed.
 */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (text.length === 0) return undefined;
  if (DELTA.test(text)) return clampWait(Math.round(Number(text) * 1000));
  const at = parseHttpDate(text, nowMs);
  return at === undefined ? undefined : clampWait(Math.max(0, at - nowMs));
}

/**
 * Reads a reset value from the legacy headers: a delta in seconds, or (when larger than 1e9) epoch
 * seconds as GitHub and Twitter send, or epoch milliseconds above 1e12, or an HTTP-date.
 * @returns milliseconds until reset (≥ 0, at most {@link MAX_SERVER_WAIT_MS}), or `undefined` when malformed.
 */
export function parseResetValue(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (DELTA.test(text)) {
    const n = Number(text);
    if (n >= EPOCH_MS_FLOOR) return clampWait(Math.max(0, n - nowMs));
    if (n >= EPOCH_SECONDS_FLOOR) return clampWait(Math.max(0, n * 1000 - nowMs));
    return clampWait(Math.round(n * 1000));
  }
  return parseRetryAfter(text, nowMs);
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const MONTH = '(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)';
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';
// RFC 9110 §5.6.7; HTTP-date is case-sensitive.
const IMF_FIXDATE = new RegExp(`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`);
const RFC850_DATE = new RegExp(
  `^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`,
);
const ASCTIME_DATE = new RegExp(`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ${MONTH} ( \\d|\\d{2}) ${TIME} (\\d{4})$`);

/**
 * Parses an HTTP-date (IMF-fixdate, RFC 850 or asctime; all in GMT) to epoch ms, or `undefined` when
 * the text is none of them or names an impossible date (31 Feb, 25:00).
 */
export function parseHttpDate(text: string, nowMs: number): number | undefined {
  let day: string;
  let month: string;
  let year: number;
  let time: string[];
  let match = IMF_FIXDATE.exec(text);
  if (match !== null) {
    day = match[1] as string;
    month = match[2] as string;
    year = Number(match[3]);
    time = match.slice(4, 7) as string[];
  } else if ((match = RFC850_DATE.exec(text)) !== null) {
    day = match[1] as string;
    month = match[2] as string;
    // A two-digit year more than 50 years ahead means the most recent past year with those digits.
    const thisYear = new Date(nowMs).getUTCFullYear();
    year = Math.floor(thisYear / 100) * 100 + Number(match[3]);
    if (year > thisYear + 50) year -= 100;
    time = match.slice(4, 7) as string[];
  } else if ((match = ASCTIME_DATE.exec(text)) !== null) {
    month = match[1] as string;
    day = (match[2] as string).trim();
    time = match.slice(3, 6) as string[];
    year = Number(match[6]);
  } else {
    return undefined;
  }
  const [hours, minutes, seconds] = time.map(Number) as [number, number, number];
  const monthIndex = MONTHS.indexOf(month);
  const dayOfMonth = Number(day);
  if (hours > 23 || minutes > 59 || seconds > 60) return undefined; // 60: a leap second
  const at = Date.UTC(year, monthIndex, dayOfMonth, hours, minutes, Math.min(seconds, 59));
  if (new Date(at).getUTCDate() !== dayOfMonth) return undefined; // 31 Feb rolled over into March
  return at;
}

// Structured fields (RFC 9651) are parsed by the maintained `structured-headers` package, which
// passes the httpwg test vectors (test/client/vectors/); a malformed field is discarded whole, as
// RFC 9651 §4.2 requires. No size caps of our own: the HTTP layer bounds header size (undici: 16 KiB by
// default), and RFC 9651 requires accepting 1,024 list members and long tokens.

function parseStructuredList(value: string | undefined): List | undefined {
  if (value === undefined) return undefined;
  try {
    return parseList(value);
  } catch {
    return undefined;
  }
}

function parseStructuredDictionary(value: string): Dictionary | undefined {
  try {
    return parseDictionary(value);
  } catch {
    return undefined;
  }
}

function nonNegative(value: BareItem | Item[] | undefined): number | undefined {
  return typeof value === 'number' && value >= 0 ? value : undefined;
}

function policyName(value: BareItem | Item[]): string | undefined {
  if (typeof value === 'string') return value;
  return value instanceof Token ? value.toString() : undefined;
}

interface Quota {
  remaining: number;
  resetMs: number | undefined;
  limit: number | undefined;
  windowMs: number | undefined;
  policy: string | undefined;
}

/** Picks the most binding quota: fewest remaining, then the longest wait. */
function moreBinding(a: Quota | undefined, b: Quota): Quota {
  if (a === undefined) return b;
  if (b.remaining !== a.remaining) return b.remaining < a.remaining ? b : a;
  return (b.resetMs ?? 0) > (a.resetMs ?? 0) ? b : a;
}

/** `RateLimit: "default";r=50;t=30` (draft-08+) with `RateLimit-Policy: "default";q=100;w=60`. */
function structuredQuota(rateLimit: string, policyField: string | undefined): Quota | undefined {
  const members = parseStructuredList(rateLimit);
  if (members === undefined) return undefined;
  const policies = new Map<string, Parameters>();
  for (const [value, params] of parseStructuredList(policyField) ?? []) {
    const name = policyName(value);
    if (name !== undefined) policies.set(name, params);
  }
  let best: Quota | undefined;
  for (const [value, params] of members) {
    const remaining = nonNegative(params.get('r'));
    if (remaining === undefined) continue;
    const t = nonNegative(params.get('t'));
    const name = policyName(value);
    const policy = name === undefined ? undefined : policies.get(name);
    const q = nonNegative(policy?.get('q'));
    const w = nonNegative(policy?.get('w'));
    best = moreBinding(best, {
      remaining,
      resetMs: t === undefined ? undefined : clampWait(t * 1000),
      limit: q,
      windowMs: w === undefined ? undefined : w * 1000,
      policy: name,
    });
  }
  return best;
}

/** `RateLimit: limit=100, remaining=50, reset=5` (draft-07 dictionary form). */
function dictionaryQuota(rateLimit: string, policyField: string | undefined): Quota | undefined {
  const members = parseStructuredDictionary(rateLimit);
  if (members === undefined) return undefined;
  const remaining = nonNegative(members.get('remaining')?.[0]);
  if (remaining === undefined) return undefined;
  const limit = nonNegative(members.get('limit')?.[0]);
  const resetSeconds = nonNegative(members.get('reset')?.[0]);
  // draft-07 `RateLimit-Policy: 100;w=60` — the window of the first policy.
  const w = nonNegative(parseStructuredList(policyField)?.[0]?.[1].get('w'));
  return {
    remaining,
    limit,
    resetMs: resetSeconds === undefined ? undefined : clampWait(resetSeconds * 1000),
    windowMs: w === undefined ? undefined : w * 1000,
    policy: undefined,
  };
}

/** `RateLimit-Remaining` / `X-RateLimit-Remaining` / `X-Rate-Limit-Remaining` and friends. */
function legacyQuota(headers: HeaderSource, prefix: string, nowMs: number): Quota | undefined {
  const remainingText = firstValue(headers, `${prefix}-remaining`);
  if (remainingText === undefined) return undefined;
  // Some servers send several comma-separated values (one per policy); the first is the tightest window.
  const remaining = Number(remainingText.split(',')[0]?.trim());
  if (!Number.isFinite(remaining) || remaining < 0) return undefined;
  const limitText = firstValue(headers, `${prefix}-limit`)?.split(',')[0]?.split(';')[0]?.trim();
  const limit = limitText === undefined || limitText === '' ? undefined : Number(limitText);
  const resetAfter = firstValue(headers, `${prefix}-reset-after`); // Discord: seconds, fractional
  const resetMs =
    resetAfter !== undefined && DELTA.test(resetAfter.trim())
      ? clampWait(Math.round(Number(resetAfter) * 1000))
      : parseResetValue(firstValue(headers, `${prefix}-reset`), nowMs);
  return {
    remaining,
    limit: limit !== undefined && Number.isFinite(limit) && limit >= 0 ? limit : undefined,
    resetMs,
    windowMs: undefined,
    policy: undefined,
  };
}

/** `limit=100, …` (draft-07 dictionary) rather than `"default";r=50` or `default;r=50` (a list). */
const DICTIONARY_FIRST_MEMBER = /^\s*[a-z*][a-z0-9_.*-]*=/;

const LEGACY_PREFIXES = ['ratelimit', 'x-ratelimit', 'x-rate-limit'] as const;

/**
 * Reads every rate-limit signal a response carries. Structured `RateLimit` fields win over the
 * legacy headers when both are present; among several policies the most binding one (fewest
 * remaining) is reported. Malformed fields are ignored, never thrown.
 * @param nowMs - current epoch milliseconds, to turn dates and epoch resets into waits.
 * @returns the feedback, or `undefined` when the response says nothing about limits.
 */
export function parseRateLimitHeaders(headers: HeaderSource, nowMs: number): ServerFeedback | undefined {
  let retryAfterMs = parseRetryAfter(firstValue(headers, 'retry-after'), nowMs);
  if (retryAfterMs === undefined) {
    // Azure and OpenAI send a millisecond variant.
    const ms = firstValue(headers, 'retry-after-ms')?.trim();
    if (ms !== undefined && DELTA.test(ms)) retryAfterMs = clampWait(Math.round(Number(ms)));
  }
  let quota: Quota | undefined;
  const rateLimit = headerValue(headers, 'ratelimit');
  if (rateLimit !== undefined) {
    const policyField = headerValue(headers, 'ratelimit-policy');
    // Try the likelier form first: a failed parse throws, and a thrown ParseError costs ~25 µs.
    quota = DICTIONARY_FIRST_MEMBER.test(rateLimit)
      ? (dictionaryQuota(rateLimit, policyField) ?? structuredQuota(rateLimit, policyField))
      : (structuredQuota(rateLimit, policyField) ?? dictionaryQuota(rateLimit, policyField));
  }
  for (let i = 0; quota === undefined && i < LEGACY_PREFIXES.length; i++) {
    quota = legacyQuota(headers, LEGACY_PREFIXES[i] as string, nowMs);
  }
  if (retryAfterMs === undefined && quota === undefined) return undefined;
  return {
    retryAfterMs,
    remaining: quota?.remaining,
    limit: quota?.limit,
    resetMs: quota?.resetMs,
    windowMs: quota?.windowMs,
    policy: quota?.policy,
  };
}

/**
 * Cheap pre-check for the hot path: true when an undici-style header object carries any field
 * {@link parseRateLimitHeaders} reads. Saves the parse (and its allocations) on plain 200s.
 */
export function hasServerFeedback(headers: Record<string, string | string[] | undefined>): boolean {
  return (
    headers['retry-after'] !== undefined ||
    headers['ratelimit'] !== undefined ||
    headers['ratelimit-remaining'] !== undefined ||
    headers['x-ratelimit-remaining'] !== undefined ||
    headers['x-rate-limit-remaining'] !== undefined ||
    headers['retry-after-ms'] !== undefined
  );
}
