/**
 * What the dashboard shows of user data: job data and results with secret fields redacted by name and the whole
 * truncated, and credentials in URLs masked wherever they appear in text (error messages, stacks, data).
 * @module
 */

/** Field names redacted by default (compared case-insensitively, ignoring `-` and `_`). */
export const DEFAULT_REDACTED_FIELDS: readonly string[] = [
  'password',
  'passwd',
  'secret',
  'token',
  'accessToken',
  'refreshToken',
  'apiKey',
  'authorization',
  'cookie',
  'creditCard',
  'cardNumber',
  'cvv',
  'ssn',
  'privateKey',
];

const REDACTED = '[redacted]';
const MAX_DEPTH = 6;

/** `scheme://user:password@host` → `scheme://user:***@host`, anywhere in `text`. */
export function maskCredentials(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)([^\s/@:]*):([^\s/@]*)@/gi, '$1$2:***@');
}

/** Normalises a field name for comparison: lower case, without `-` and `_`. */
function normalize(name: string): string {
  return name.toLowerCase().replace(/[-_]/g, '');
}

/** Redacts values whose field name is listed, masks credentials in strings, and truncates to `maxChars`. */
export class Redactor {
  readonly #fields: ReadonlySet<string>;
  readonly #maxChars: number;

  /**
   * @param fields - field names whose values are replaced by `[redacted]` at any depth.
   * @param maxChars - the JSON text of one value is cut to this many characters (with `…` and the full length).
   */
  constructor(fields: readonly string[], maxChars: number) {
    this.#fields = new Set(fields.map(normalize));
    this.#maxChars = maxChars;
  }

  /** The value as display text: redacted, credentials masked, truncated. `undefined` → ''. */
  show(value: unknown): string {
    if (value === undefined) return '';
    let text: string;
    try {
      text = JSON.stringify(this.#redact(value, 0)) ?? '';
    } catch {
      text = '[unserialisable]';
    }
    return this.text(text);
  }

  /** Plain text (an error message or stack): credentials masked, truncated. */
  text(text: string): string {
    const masked = maskCredentials(text);
    if (masked.length <= this.#maxChars) return masked;
    return `${masked.slice(0, this.#maxChars)}… (${masked.length} characters)`;
  }

  #redact(value: unknown, depth: number): unknown {
    if (typeof value === 'string') return maskCredentials(value);
    if (value === null || typeof value !== 'object') return value;
    if (depth >= MAX_DEPTH) return '[…]';
    if (Array.isArray(value)) {
      // Only what can be shown: a long array is cut before it is walked.
      return value.slice(0, 100).map((item) => this.#redact(item, depth + 1));
    }
    const out: Record<string, unknown> = Object.create(null);
    let kept = 0;
    for (const [key, item] of Object.entries(value)) {
      if (kept++ >= 100) break;
      out[key] = this.#fields.has(normalize(key)) ? REDACTED : this.#redact(item, depth + 1);
    }
    return out;
  }
}
