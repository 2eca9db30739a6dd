/**
 * The one parser for what a server says about its limits: `Retry-After` (delta seconds and HTTP-date),
 * the IETF structured fields `RateLimit-Policy` / `RateLimit` (draft-ietf-httpapi-ratelimit-headers-08+),
 * the draft-07 dictionary form `RateLimit: limit=…, remaining=…, reset=…`, the older
 * `RateLimit-Limit/-Remaining/-Reset` trio and the vendor `X-RateLimit-*` / `X-Rate-Limit-*` headers.
 * @module
 */

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
// Structured fields longer than this are ignored: real policies are a few dozen bytes, and parsing
// attacker-sized input on every response would be a cheap way to burn our CPU.
const MAX_FIELD_CHARS = 4096;
const MAX_LIST_MEMBERS = 32;

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
 * Parses a `Retry-After` value: delta seconds (`"120"`, fractions tolerated) or an HTTP-date
 * (IMF-fixdate, RFC 850 or asctime). A date in the past gives 0.
 * @param nowMs - current epoch milliseconds (from the caller's clock).
 * @returns milliseconds to wait, or `undefined` when the value is missing or malformed.
 */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (text.length === 0) return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  // A date needs letters (day or month names); this rejects "-5" and "1e3", which Date.parse accepts.
  if (!/[a-z]/i.test(text)) return undefined;
  // asctime ("Sun Nov  6 08:49:37 1994") carries no zone; RFC 9110 says it is GMT, Date.parse would read local time.
  const at = Date.parse(ASCTIME.test(text) ? `${text} GMT` : text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}

const ASCTIME = /^[a-z]{3} [a-z]{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$/i;

/**
 * Reads a reset value from the legacy headers: a delta in seconds, or (when larger than 1e9) epoch
 * seconds as GitHub and Twitter send, or epoch milliseconds above 1e12, or an HTTP-date.
 * @returns milliseconds until reset (≥ 0), or `undefined` when malformed.
 */
export function parseResetValue(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) {
    const n = Number(text);
    if (n >= EPOCH_MS_FLOOR) return Math.max(0, n - nowMs);
    if (n >= EPOCH_SECONDS_FLOOR) return Math.max(0, n * 1000 - nowMs);
    return Math.round(n * 1000);
  }
  return parseRetryAfter(text, nowMs);
}

// ---------------------------------------------------------------------------------------------
// A small RFC 9651 (Structured Field Values) parser: lists and dictionaries of bare items with
// parameters. Inner lists are parsed and skipped (no rate-limit field uses them). Any syntax
// error discards the whole field, as RFC 9651 §4.2 requires.

/** A bare item of a structured field. */
type BareItem = string | number | boolean;
interface SfMember {
  /** Dictionary key, or `undefined` for list members. */
  key: string | undefined;
  value: BareItem;
  params: Record<string, BareItem>;
}

class SfParser {
  #pos = 0;
  constructor(private readonly input: string) {}

  parseList(isDictionary: boolean): SfMember[] | undefined {
    const members: SfMember[] = [];
    this.#skip(' ');
    if (this.#pos >= this.input.length) return undefined;
    while (this.#pos < this.input.length) {
      let key: string | undefined;
      let value: BareItem = true;
      if (isDictionary) {
        key = this.#key();
        if (key === undefined) return undefined;
        if (this.input[this.#pos] === '=') {
          this.#pos++;
          const item = this.#itemOrInnerList();
          if (item === undefined) return undefined;
          value = item;
        }
      } else {
        const item = this.#itemOrInnerList();
        if (item === undefined) return undefined;
        value = item;
      }
      const params = this.#params();
      if (params === undefined) return undefined;
      if (members.length < MAX_LIST_MEMBERS) members.push({ key, value, params });
      this.#skipOws();
      if (this.#pos >= this.input.length) return members;
      if (this.input[this.#pos] !== ',') return undefined;
      this.#pos++;
      this.#skipOws();
      if (this.#pos >= this.input.length) return undefined; // trailing comma
    }
    return members;
  }

  #skip(char: string): void {
    while (this.input[this.#pos] === char) this.#pos++;
  }

  #skipOws(): void {
    while (this.input[this.#pos] === ' ' || this.input[this.#pos] === '\t') this.#pos++;
  }

  #key(): string | undefined {
    const match = /^[a-z*][a-z0-9_\-.*]*/.exec(this.input.slice(this.#pos, this.#pos + 64));
    if (!match) return undefined;
    this.#pos += match[0].length;
    return match[0];
  }

  #params(): Record<string, BareItem> | undefined {
    const params: Record<string, BareItem> = {};
    while (this.input[this.#pos] === ';') {
      this.#pos++;
      this.#skip(' ');
      const key = this.#key();
      if (key === undefined) return undefined;
      let value: BareItem = true;
      if (this.input[this.#pos] === '=') {
        this.#pos++;
        const item = this.#bareItem();
        if (item === undefined) return undefined;
        value = item;
      }
      params[key] = value;
    }
    return params;
  }

  #itemOrInnerList(): BareItem | undefined {
    if (this.input[this.#pos] !== '(') return this.#bareItem();
    // Inner list: parse for syntax, keep nothing (value `true` as a placeholder).
    this.#pos++;
    for (;;) {
      this.#skip(' ');
      if (this.input[this.#pos] === ')') {
        this.#pos++;
        return true;
      }
      if (this.#bareItem() === undefined || this.#params() === undefined) return undefined;
      const next = this.input[this.#pos];
      if (next !== ' ' && next !== ')') return undefined;
    }
  }

  #bareItem(): BareItem | undefined {
    const char = this.input[this.#pos];
    if (char === undefined) return undefined;
    if (char === '"') return this.#string();
    if (char === '-' || (char >= '0' && char <= '9')) return this.#number();
    if (char === '?') {
      const flag = this.input[this.#pos + 1];
      if (flag !== '0' && flag !== '1') return undefined;
      this.#pos += 2;
      return flag === '1';
    }
    if (char === '@') {
      this.#pos++;
      const seconds = this.#number();
      return typeof seconds === 'number' && Number.isInteger(seconds) ? seconds : undefined;
    }
    if (char === ':') {
      const end = this.input.indexOf(':', this.#pos + 1);
      if (end < 0) return undefined;
      const bytes = this.input.slice(this.#pos + 1, end);
      this.#pos = end + 1;
      return /^[A-Za-z0-9+/=]*$/.test(bytes) ? bytes : undefined;
    }
    const token = /^[A-Za-z*][A-Za-z0-9!#$%&'*+\-.^_`|~:/]*/.exec(this.input.slice(this.#pos, this.#pos + 256));
    if (!token) return undefined;
    this.#pos += token[0].length;
    return token[0];
  }

  #number(): number | undefined {
    const match = /^-?\d{1,15}(\.\d{1,3})?/.exec(this.input.slice(this.#pos, this.#pos + 20));
    if (!match) return undefined;
    this.#pos += match[0].length;
    return Number(match[0]);
  }

  #string(): string | undefined {
    let out = '';
    for (let i = this.#pos + 1; i < this.input.length; i++) {
      const char = this.input[i] as string;
      if (char === '\\') {
        const next = this.input[i + 1];
        if (next !== '"' && next !== '\\') return undefined;
        out += next;
        i++;
      } else if (char === '"') {
        this.#pos = i + 1;
        return out;
      } else {
        const code = char.charCodeAt(0);
        if (code < 0x20 || code > 0x7e) return undefined;
        out += char;
      }
    }
    return undefined; // unterminated
  }
}

function parseStructured(value: string | undefined, isDictionary: boolean): SfMember[] | undefined {
  if (value === undefined || value.length > MAX_FIELD_CHARS) return undefined;
  return new SfParser(value.trim()).parseList(isDictionary);
}

function nonNegative(value: BareItem | undefined): number | undefined {
  return typeof value === 'number' && value >= 0 ? value : undefined;
}

function policyName(value: BareItem): string | undefined {
  return typeof value === 'string' ? value : undefined;
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
  const members = parseStructured(rateLimit, false);
  if (members === undefined) return undefined;
  const policies = new Map<string, SfMember>();
  for (const member of parseStructured(policyField, false) ?? []) {
    const name = policyName(member.value);
    if (name !== undefined) policies.set(name, member);
  }
  let best: Quota | undefined;
  for (const member of members) {
    const remaining = nonNegative(member.params.r);
    if (remaining === undefined) continue;
    const t = nonNegative(member.params.t);
    const name = policyName(member.value);
    const policy = name === undefined ? undefined : policies.get(name);
    const q = nonNegative(policy?.params.q);
    const w = nonNegative(policy?.params.w);
    best = moreBinding(best, {
      remaining,
      resetMs: t === undefined ? undefined : t * 1000,
      limit: q,
      windowMs: w === undefined ? undefined : w * 1000,
      policy: name,
    });
  }
  return best;
}

/** `RateLimit: limit=100, remaining=50, reset=5` (draft-07 dictionary form). */
function dictionaryQuota(rateLimit: string, policyField: string | undefined): Quota | undefined {
  const members = parseStructured(rateLimit, true);
  if (members === undefined) return undefined;
  let remaining: number | undefined;
  let limit: number | undefined;
  let resetSeconds: number | undefined;
  for (const member of members) {
    if (member.key === 'remaining') remaining = nonNegative(member.value);
    else if (member.key === 'limit') limit = nonNegative(member.value);
    else if (member.key === 'reset') resetSeconds = nonNegative(member.value);
  }
  if (remaining === undefined) return undefined;
  // draft-07 `RateLimit-Policy: 100;w=60` — the window of the first policy.
  const first = parseStructured(policyField, false)?.[0];
  const w = nonNegative(first?.params.w);
  return {
    remaining,
    limit,
    resetMs: resetSeconds === undefined ? undefined : resetSeconds * 1000,
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
    resetAfter !== undefined && /^\d+(\.\d+)?$/.test(resetAfter.trim())
      ? Math.round(Number(resetAfter) * 1000)
      : parseResetValue(firstValue(headers, `${prefix}-reset`), nowMs);
  return {
    remaining,
    limit: limit !== undefined && Number.isFinite(limit) && limit >= 0 ? limit : undefined,
    resetMs,
    windowMs: undefined,
    policy: undefined,
  };
}

const LEGACY_PREFIXES = ['ratelimit', 'x-ratelimit', 'x-rate-limit'] as const;

/**
 * Reads every rate-limit signal a response carries. Structured `RateLimit` fields win over the
 * legacy headers when both are present; among several policies the most binding one (fewest
 * remaining) is reported. Malformed fields are ignored, never thrown.
 * @param nowMs - current epoch milliseconds, to turn dates and epoch resets into waits.
 * @returns the feedback, or `undefined` when the response says nothing about limits.
 */
export function parseServerFeedback(headers: HeaderSource, nowMs: number): ServerFeedback | undefined {
  let retryAfterMs = parseRetryAfter(firstValue(headers, 'retry-after'), nowMs);
  if (retryAfterMs === undefined) {
    // Azure and OpenAI send a millisecond variant.
    const ms = firstValue(headers, 'retry-after-ms')?.trim();
    if (ms !== undefined && /^\d+(\.\d+)?$/.test(ms)) retryAfterMs = Math.round(Number(ms));
  }
  let quota: Quota | undefined;
  const rateLimit = headerValue(headers, 'ratelimit');
  if (rateLimit !== undefined) {
    const policyField = headerValue(headers, 'ratelimit-policy');
    quota = structuredQuota(rateLimit, policyField) ?? dictionaryQuota(rateLimit, policyField);
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
 * {@link parseServerFeedback} reads. Saves the parse (and its allocations) on plain 200s.
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
