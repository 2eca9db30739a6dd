import {
  CircuitOpenError,
  ClosedError,
  ConfigError,
  ConflictError,
  ErrorCode,
  HotpathError,
  HttpError,
  isHotpathError,
  JobCancelledError,
  JobFailedError,
  RateLimitError,
  StorageError,
  TimeoutError,
} from 'hotpath/core';
import { describe, expect, it } from 'vitest';
import { redactHeaders, redactUrl } from '../../src/core/errors.js';

describe('errors', () => {
  it('every error has a stable code, a name and extends HotpathError', () => {
    const cases: [HotpathError, string][] = [
      [new ConfigError('x.y', 'bad'), ErrorCode.Config],
      [new TimeoutError('slow', 5), ErrorCode.Timeout],
      [new RateLimitError('limited', 100), ErrorCode.RateLimit],
      [new HttpError({ status: 500, method: 'GET', url: 'http://x/' }), ErrorCode.Http],
      [new CircuitOpenError('open', 10), ErrorCode.CircuitOpen],
      [new StorageError('db down'), ErrorCode.Storage],
      [new ConflictError('version', 1, 2), ErrorCode.Conflict],
      [new JobFailedError('j1', 'boom', 3), ErrorCode.JobFailed],
      [new JobCancelledError('j1'), ErrorCode.JobCancelled],
      [new ClosedError('Cache'), ErrorCode.Closed],
    ];
    const codes = new Set<string>();
    for (const [error, code] of cases) {
      expect(error).toBeInstanceOf(HotpathError);
      expect(error).toBeInstanceOf(Error);
      expect(error.code).toBe(code);
      expect(error.name).toBe(error.constructor.name);
      expect(isHotpathError(error)).toBe(true);
      expect(isHotpathError(error, code as never)).toBe(true);
      expect(JSON.parse(JSON.stringify(error)).code).toBe(code);
      codes.add(error.code);
    }
    expect(codes.size).toBe(cases.length);
  });

  it('isHotpathError recognises an error from another copy of the package by its brand', () => {
    // Simulates a second installed copy: a different class, same brand and code.
    class ForeignTimeout extends Error {
      readonly isHotpathError = true;
      readonly code = ErrorCode.Timeout;
    }
    const foreign = new ForeignTimeout('elsewhere');
    expect(foreign instanceof HotpathError).toBe(false);
    expect(isHotpathError(foreign)).toBe(true);
    expect(isHotpathError(foreign, ErrorCode.Timeout)).toBe(true);
    expect(isHotpathError(foreign, ErrorCode.Closed)).toBe(false);
    expect(isHotpathError(new Error('plain'))).toBe(false);
    expect(isHotpathError(null)).toBe(false);
    expect(isHotpathError('ERR_HOTPATH_TIMEOUT')).toBe(false);
  });

  it('HttpError redacts secret headers, credentials in URLs and secret query parameters, and bounds the body', () => {
    const error = new HttpError({
      status: 401,
      method: 'GET',
      url: 'https://user:hunter2@api.example.com/v1/items?api_key=sk-live-123&page=2&token=abc',
      body: 'x'.repeat(10_000),
      headers: {
        authorization: 'Bearer sk-live-123',
        'set-cookie': 'sid=s3cret',
        'x-api-key': 'k-999',
        'content-type': 'text/plain',
      },
    });
    const surfaces = [
      error.message,
      JSON.stringify(error),
      String(error),
      error.stack ?? '',
      JSON.stringify(error.headers),
    ];
    for (const text of surfaces) {
      expect(text).not.toContain('sk-live-123');
      expect(text).not.toContain('s3cret');
      expect(text).not.toContain('k-999');
      expect(text).not.toContain('hunter2');
      expect(text).not.toContain('token=abc');
    }
    expect(error.url).toContain('page=2');
    expect(error.headers['content-type']).toBe('text/plain');
    expect(error.body.length).toBeLessThanOrEqual(2049);
    expect(error.status).toBe(401);
  });

  it('redactUrl leaves unparsable input alone', () => {
    expect(redactUrl('not a url')).toBe('not a url');
  });

  it('keeps the cause', () => {
    const cause = new Error('ECONNRESET');
    expect(new StorageError('lost', { cause }).cause).toBe(cause);
  });
});

describe('what errors carry, exactly (pinned by mutation testing)', () => {
  it('redactUrl masks user info (each part only when present) and secret query values', () => {
    expect(redactUrl('https://user:pw@api.example.com/x')).toBe(
      'https://%5BREDACTED%5D:%5BREDACTED%5D@api.example.com/x',
    );
    expect(redactUrl('https://user@api.example.com/x')).toBe('https://%5BREDACTED%5D@api.example.com/x');
    expect(redactUrl('https://:pw@api.example.com/x')).toBe('https://:%5BREDACTED%5D@api.example.com/x');
    expect(redactUrl('https://api.example.com/x?api_key=k1&page=2&sig=s')).toBe(
      'https://api.example.com/x?api_key=%5BREDACTED%5D&page=2&sig=%5BREDACTED%5D',
    );
    expect(redactUrl('https://api.example.com/x?page=2')).toBe('https://api.example.com/x?page=2');
    expect(redactUrl('not a url')).toBe('not a url');
  });

  it('redactHeaders drops undefined values and masks secret ones only', () => {
    expect(
      redactHeaders({ authorization: 'Bearer t', 'x-request-id': 'r1', accept: ['a', 'b'], missing: undefined }),
    ).toStrictEqual({ authorization: '[REDACTED]', 'x-request-id': 'r1', accept: ['a', 'b'] });
  });

  it('HttpError: message, redacted url, cause, and a body cut at 2,048 characters', () => {
    const cause = new Error('socket');
    const error = new HttpError({
      status: 503,
      method: 'GET',
      url: 'https://u:p@api.example.com/q?token=t',
      body: 'b'.repeat(2_048),
      cause,
    });
    expect(error.message).toBe(
      'GET https://%5BREDACTED%5D:%5BREDACTED%5D@api.example.com/q?token=%5BREDACTED%5D failed with HTTP 503',
    );
    expect(error.cause).toBe(cause);
    expect(error.body).toBe('b'.repeat(2_048));
    expect(new HttpError({ status: 500, method: 'GET', url: 'http://h/', body: 'b'.repeat(2_049) }).body).toBe(
      `${'b'.repeat(2_048)}…`,
    );
    expect(new HttpError({ status: 500, method: 'GET', url: 'http://h/' }).body).toBe('');
  });

  it('default messages of JobCancelledError and ClosedError; isHotpathError on non-objects', () => {
    expect(new JobCancelledError('j1').message).toBe('job j1 was cancelled');
    expect(new ClosedError('Cache "quotes"').message).toBe('Cache "quotes" is closed');
    expect(isHotpathError(null)).toBe(false);
    expect(isHotpathError('ERR_HOTPATH_CLOSED')).toBe(false);
    expect(isHotpathError({ isHotpathError: true, code: 'ERR_HOTPATH_CLOSED' }, 'ERR_HOTPATH_CLOSED')).toBe(true);
  });
});
