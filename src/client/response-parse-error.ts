/**
 * The error for a response body that is not what the caller asked for (JSON expected, something else
 * arrived — typically an HTML error page from a proxy).
 * @module
 */
import { HttpError, type HttpErrorInit } from '../core/errors.js';

/** How much of the raw body a {@link ResponseParseError} keeps in `rawText` (64 KiB). */
const MAX_RAW_CHARS = 65_536;

/**
 * The server answered, but the body could not be read as asked: not valid JSON, or larger than
 * `maxResponseBytes`. Extends {@link HttpError}
 * (code `ERR_HOTPATH_HTTP`), so `status`, `url` and a bounded `body` are there; `rawText` keeps up to
 * 64 KiB of the text for diagnosis.
 */
export class ResponseParseError extends HttpError {
  /** The response's `Content-Type`, or `''`. */
  readonly contentType: string;
  /** The raw body text, at most 64 KiB. */
  readonly rawText: string;

  constructor(init: HttpErrorInit & { contentType: string; cause: unknown; message?: string }) {
    super(init);
    const raw = init.body ?? '';
    this.contentType = init.contentType;
    this.rawText = raw.length > MAX_RAW_CHARS ? `${raw.slice(0, MAX_RAW_CHARS)}…` : raw;
    const reason = init.cause instanceof Error ? init.cause.message : String(init.cause);
    const preview = raw.length > 120 ? `${raw.slice(0, 120)}…` : raw;
    this.message =
      init.message ??
      `${this.method} ${this.url}: expected a JSON body but got ${this.contentType || 'no content type'} ` +
        `(HTTP ${this.status}, ${raw.length} chars): ${reason}; body starts with ${JSON.stringify(preview)}`;
  }

  /** A plain object for logs: the `HttpError` fields (secrets redacted) plus `contentType`. */
  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), contentType: this.contentType };
  }
}
