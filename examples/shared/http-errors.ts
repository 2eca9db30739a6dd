/**
 * One mapping from errors to HTTP answers for the three example services, so a bad request, an unknown
 * symbol, a throttled or slow upstream and a shutting-down service answer the same everywhere.
 */
import { HttpError, isHotpathError } from 'hotpath/core';

/** Bad input from the client: answered with 400 and this message. */
export class InputError extends Error {
  override readonly name = 'InputError';
}

/** The symbol does not exist upstream: answered with 404. */
export class NotFoundError extends Error {
  override readonly name = 'NotFoundError';
}

/** What a service sends for an error: status, headers and a JSON body `{ error: { code, message } }`. */
export interface ErrorAnswer {
  status: number;
  headers: Record<string, string>;
  body: { error: { code: string; message: string } };
}

function answer(status: number, code: string, message: string, headers: Record<string, string> = {}): ErrorAnswer {
  return { status, headers: { 'cache-control': 'no-store', ...headers }, body: { error: { code, message } } };
}

function retryAfter(ms: number | undefined): Record<string, string> {
  return ms === undefined ? {} : { 'retry-after': String(Math.max(1, Math.ceil(ms / 1000))) };
}

/**
 * Maps an error to an answer. Framework errors that already carry a 4xx `status`/`statusCode` (Express's
 * body parser, Fastify's JSON parser) keep it; internals of 5xx errors are never sent to the client.
 */
export function errorResponse(error: unknown): ErrorAnswer {
  if (error instanceof InputError) return answer(400, 'ERR_INPUT', error.message);
  if (error instanceof NotFoundError) return answer(404, 'ERR_NOT_FOUND', error.message);
  if (isHotpathError(error, 'ERR_HOTPATH_RATE_LIMIT') || isHotpathError(error, 'ERR_HOTPATH_CIRCUIT_OPEN')) {
    const wait = (error as { retryAfterMs?: number }).retryAfterMs;
    return answer(503, error.code, 'the quotes provider is busy, try again shortly', retryAfter(wait));
  }
  if (error instanceof HttpError) {
    if (error.status === 429) {
      return answer(503, error.code, 'the quotes provider is throttling us', retryAfter(error.retryAfterMs));
    }
    return answer(502, error.code, `the quotes provider answered HTTP ${error.status}`);
  }
  if (isHotpathError(error, 'ERR_HOTPATH_TIMEOUT')) return answer(504, error.code, 'the quotes provider timed out');
  if (isHotpathError(error, 'ERR_HOTPATH_CLOSED')) return answer(503, error.code, 'the service is shutting down');
  const status =
    (error as { statusCode?: unknown; status?: unknown } | null)?.statusCode ??
    (error as { status?: unknown } | null)?.status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return answer(status, 'ERR_REQUEST', error instanceof Error ? error.message : 'bad request');
  }
  return answer(500, 'ERR_INTERNAL', 'internal error');
}
