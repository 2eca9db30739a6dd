import { parseRateLimitHeaders } from 'hotpath/client';
import { describe, expect, it } from 'vitest';
// Internal helpers of the parser, tested directly (not part of the public face).
import { MAX_SERVER_WAIT_MS, parseResetValue, parseRetryAfter } from '../../src/client/server-feedback.js';

const NOW = Date.parse('2026-01-15T12:00:00Z');

describe('parseRetryAfter', () => {
  it('reads delta seconds', () => {
    expect(parseRetryAfter('1', NOW)).toBe(1000);
    expect(parseRetryAfter(' 120 ', NOW)).toBe(120_000);
    expect(parseRetryAfter('0', NOW)).toBe(0);
    expect(parseRetryAfter('1.5', NOW)).toBe(1500);
  });

  it('reads the three HTTP-date forms', () => {
    expect(parseRetryAfter('Thu, 15 Jan 2026 12:00:30 GMT', NOW)).toBe(30_000); // IMF-fixdate
    expect(parseRetryAfter('Thursday, 15-Jan-26 12:01:00 GMT', NOW)).toBe(60_000); // RFC 850
    expect(parseRetryAfter('Thu Jan 15 12:00:05 2026', NOW)).toBe(5000); // asctime is GMT too (RFC 9110)
    expect(parseRetryAfter('Thu Jan  1 12:00:05 2026', NOW)).toBe(0); // one-digit day, space-padded
  });

  it('rejects what Date.parse would read leniently as a past date (a 429 must pause)', () => {
    for (const garbage of [
      'a 1',
      'June 1',
      'Thu, 15 Jan 2026 12:00:30', // no GMT
      'thu, 15 Jan 2026 12:00:30 GMT', // HTTP-date is case-sensitive
      'Thu, 15 Jan 2026 12:00:30 UTC',
      'Thu, 31 Feb 2026 12:00:30 GMT', // no such day
      'Thu, 15 Jan 2026 25:00:30 GMT',
      'Thu, 5 Jan 2026 12:00:30 GMT', // IMF-fixdate has two-digit days
      '2026-01-15T12:00:30Z',
      'Thursday, 15-Jan-2026 12:01:00 GMT',
    ]) {
      expect(parseRetryAfter(garbage, NOW), garbage).toBeUndefined();
    }
  });

  it('clamps a value of hundreds of digits instead of returning Infinity', () => {
    const huge = '9'.repeat(400);
    expect(parseRetryAfter(huge, NOW)).toBe(MAX_SERVER_WAIT_MS);
    expect(parseRetryAfter(`${huge}.5`, NOW)).toBe(MAX_SERVER_WAIT_MS);
    expect(parseRetryAfter('Fri, 31 Dec 9999 23:59:59 GMT', NOW)).toBe(MAX_SERVER_WAIT_MS);
    expect(parseResetValue(huge, NOW)).toBe(MAX_SERVER_WAIT_MS);
    expect(parseRateLimitHeaders({ 'retry-after-ms': huge }, NOW)?.retryAfterMs).toBe(MAX_SERVER_WAIT_MS);
    expect(parseRateLimitHeaders({ 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': huge }, NOW)?.resetMs).toBe(
      MAX_SERVER_WAIT_MS,
    );
    expect(parseRateLimitHeaders({ 'x-ratelimit-remaining': '0', 'x-ratelimit-reset-after': huge }, NOW)?.resetMs).toBe(
      MAX_SERVER_WAIT_MS,
    );
  });

  it('reads asctime as GMT (RFC 9110), whatever the local time zone', () => {
    const zone = process.env.TZ;
    try {
      for (const tz of ['America/New_York', 'Asia/Tokyo']) {
        process.env.TZ = tz;
        expect(parseRetryAfter('Thu Jan 15 12:00:05 2026', NOW)).toBe(5_000);
        expect(parseRetryAfter('Thu Jan  5 12:00:05 2026', NOW)).toBe(0);
      }
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
  });

  it('gives 0 for a date in the past and undefined for garbage', () => {
    expect(parseRetryAfter('Wed, 14 Jan 2026 12:00:00 GMT', NOW)).toBe(0);
    for (const bad of [undefined, '', 'soon', '-5', '1e3', 'Thu, 99 Foo 2026']) {
      expect(parseRetryAfter(bad, NOW)).toBeUndefined();
    }
  });
});

describe('parseResetValue', () => {
  it('tells deltas from epoch seconds and epoch milliseconds', () => {
    expect(parseResetValue('30', NOW)).toBe(30_000);
    expect(parseResetValue(String(NOW / 1000 + 45), NOW)).toBe(45_000); // GitHub-style epoch seconds
    expect(parseResetValue(String(NOW + 2500), NOW)).toBe(2500); // epoch milliseconds
    expect(parseResetValue(String(NOW / 1000 - 10), NOW)).toBe(0); // already passed
    expect(parseResetValue('nope', NOW)).toBeUndefined();
  });
});

describe('parseRateLimitHeaders', () => {
  it('returns undefined when the response says nothing about limits', () => {
    expect(parseRateLimitHeaders({ 'content-type': 'application/json' }, NOW)).toBeUndefined();
  });

  it('reads Retry-After alone, and the retry-after-ms variant', () => {
    expect(parseRateLimitHeaders({ 'retry-after': '2' }, NOW)).toMatchObject({
      retryAfterMs: 2000,
      remaining: undefined,
    });
    expect(parseRateLimitHeaders({ 'retry-after-ms': '250' }, NOW)?.retryAfterMs).toBe(250);
    expect(parseRateLimitHeaders({ 'retry-after': ['3', '9'] }, NOW)?.retryAfterMs).toBe(3000);
  });

  it('reads the IETF structured RateLimit and RateLimit-Policy fields', () => {
    const feedback = parseRateLimitHeaders(
      { ratelimit: '"default";r=50;t=30', 'ratelimit-policy': '"default";q=100;w=60' },
      NOW,
    );
    expect(feedback).toEqual({
      retryAfterMs: undefined,
      remaining: 50,
      limit: 100,
      resetMs: 30_000,
      windowMs: 60_000,
      policy: 'default',
    });
  });

  it('picks the most binding of several structured policies, across field lines', () => {
    const feedback = parseRateLimitHeaders(
      {
        ratelimit: ['"burst";r=40;t=1', '"daily";r=3;t=7200;pk=:cHJvamVjdDEyMw==:'],
        'ratelimit-policy': '"burst";q=100;w=1, "daily";q=1000;w=86400;qu="requests"',
      },
      NOW,
    );
    expect(feedback).toMatchObject({
      remaining: 3,
      limit: 1000,
      resetMs: 7_200_000,
      windowMs: 86_400_000,
      policy: 'daily',
    });
  });

  it('accepts token policy names and a structured field without a policy field', () => {
    expect(parseRateLimitHeaders({ ratelimit: 'default;r=0;t=5' }, NOW)).toMatchObject({
      remaining: 0,
      resetMs: 5000,
      limit: undefined,
      policy: 'default',
    });
  });

  it('keeps a RateLimit field whose members carry RFC 9651 Display Strings, dates and byte sequences', () => {
    expect(
      parseRateLimitHeaders({ ratelimit: '"q";r=4;t=2;note=%"f%c3%bc%c3%bc";pk=:AQID:;at=@1700000000' }, NOW),
    ).toMatchObject({ remaining: 4, resetMs: 2000, policy: 'q' });
  });

  it('accepts what RFC 9651 requires parsers to accept: 1,024 members, long tokens', () => {
    const members = Array.from({ length: 1024 }, (_, i) => `"p${i}";r=${1000 - (i % 500)};t=1`);
    members[700] = '"tight";r=1;t=9';
    expect(parseRateLimitHeaders({ ratelimit: members.join(', ') }, NOW)).toMatchObject({
      remaining: 1,
      policy: 'tight',
    });
    const longToken = `t${'x'.repeat(600)}`;
    expect(parseRateLimitHeaders({ ratelimit: `${longToken};r=2;t=1` }, NOW)?.policy).toBe(longToken);
  });

  it('rejects binary values with misplaced padding and decimals with more than 12 integer digits', () => {
    expect(parseRateLimitHeaders({ ratelimit: '"q";r=4;pk=:AQ=ID:' }, NOW)).toBeUndefined();
    expect(parseRateLimitHeaders({ ratelimit: '"q";r=4;x=1234567890123.5' }, NOW)).toBeUndefined();
  });

  it('reads the draft-07 dictionary form', () => {
    expect(
      parseRateLimitHeaders({ ratelimit: 'limit=100, remaining=7, reset=12', 'ratelimit-policy': '100;w=60' }, NOW),
    ).toMatchObject({ remaining: 7, limit: 100, resetMs: 12_000, windowMs: 60_000 });
  });

  it('ignores malformed structured fields instead of throwing', () => {
    for (const bad of ['"unterminated;r=1', '"a";r=1,', '"a";R=5', '"a";r=', 'x'.repeat(5000), '("a" "b";r=1']) {
      expect(() => parseRateLimitHeaders({ ratelimit: bad }, NOW)).not.toThrow();
      expect(parseRateLimitHeaders({ ratelimit: bad }, NOW)?.remaining).toBeUndefined();
    }
    // A negative remaining count is not a quota.
    expect(parseRateLimitHeaders({ ratelimit: '"a";r=-1;t=1' }, NOW)).toBeUndefined();
  });

  it('reads the legacy RateLimit-Limit/-Remaining/-Reset trio (reset as delta seconds)', () => {
    expect(
      parseRateLimitHeaders({ 'ratelimit-limit': '60', 'ratelimit-remaining': '0', 'ratelimit-reset': '17' }, NOW),
    ).toMatchObject({ remaining: 0, limit: 60, resetMs: 17_000 });
  });

  it('reads X-RateLimit-* with an epoch-seconds reset (GitHub) and with a delta', () => {
    const epoch = String(Math.floor(NOW / 1000) + 600);
    expect(
      parseRateLimitHeaders(
        { 'x-ratelimit-limit': '5000', 'x-ratelimit-remaining': '4999', 'x-ratelimit-reset': epoch },
        NOW,
      ),
    ).toMatchObject({ remaining: 4999, limit: 5000, resetMs: 600_000 });
    expect(parseRateLimitHeaders({ 'x-ratelimit-remaining': '2', 'x-ratelimit-reset': '9' }, NOW)?.resetMs).toBe(9000);
    expect(
      parseRateLimitHeaders({ 'x-ratelimit-remaining': '2', 'x-ratelimit-reset-after': '1.25' }, NOW)?.resetMs,
    ).toBe(1250);
    expect(parseRateLimitHeaders({ 'x-rate-limit-remaining': '8', 'x-rate-limit-reset': '3' }, NOW)).toMatchObject({
      remaining: 8,
      resetMs: 3000,
    });
  });

  it('prefers the structured field over legacy headers and combines with Retry-After', () => {
    const feedback = parseRateLimitHeaders(
      { 'retry-after': '4', ratelimit: '"x";r=0;t=4', 'x-ratelimit-remaining': '99', 'x-ratelimit-reset': '1' },
      NOW,
    );
    expect(feedback).toMatchObject({ retryAfterMs: 4000, remaining: 0, resetMs: 4000, policy: 'x' });
  });

  it('accepts a fetch Headers object', () => {
    const headers = new Headers({ 'Retry-After': '1', RateLimit: '"q";r=5;t=2' });
    expect(parseRateLimitHeaders(headers, NOW)).toMatchObject({ retryAfterMs: 1000, remaining: 5, resetMs: 2000 });
  });
});
