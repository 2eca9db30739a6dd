import { describe, expect, it } from 'vitest';
import {
  escapeHelp,
  escapeLabelValue,
  formatLabels,
  formatSampleValue,
  isValidLabelName,
  sanitizeMetricName,
} from '../../src/core/prometheus-text.js';

describe('Prometheus text format helpers', () => {
  it('sanitizeMetricName keeps valid names and repairs the rest', () => {
    expect(sanitizeMetricName('http_requests:total')).toBe('http_requests:total');
    expect(sanitizeMetricName('db.query-ms')).toBe('db_query_ms');
    expect(sanitizeMetricName('9lives')).toBe('_9lives');
    expect(sanitizeMetricName('')).toBe('_');
    expect(sanitizeMetricName('a b/c')).toBe('a_b_c');
    expect(sanitizeMetricName('a9')).toBe('a9'); // only a leading digit needs the prefix
  });

  it('isValidLabelName accepts identifiers and rejects reserved or malformed names', () => {
    expect(isValidLabelName('route')).toBe(true);
    expect(isValidLabelName('_private')).toBe(true);
    expect(isValidLabelName('a1_b')).toBe(true);
    expect(isValidLabelName('__name__')).toBe(false);
    expect(isValidLabelName('__x')).toBe(false);
    expect(isValidLabelName('x__')).toBe(true); // only the prefix is reserved
    expect(isValidLabelName('1abc')).toBe(false);
    expect(isValidLabelName('a-b')).toBe(false);
    expect(isValidLabelName('a:b')).toBe(false);
    expect(isValidLabelName('')).toBe(false);
    expect(isValidLabelName('ok\n')).toBe(false);
  });

  it('escapes label values (backslash, quote, line feed) and HELP text (backslash, line feed)', () => {
    expect(escapeLabelValue('a\\b"c\nd\\\\')).toBe('a\\\\b\\"c\\nd\\\\\\\\');
    expect(escapeLabelValue('plain')).toBe('plain');
    expect(escapeHelp('say "hi"\\\nbye\n')).toBe('say "hi"\\\\\\nbye\\n');
  });

  it('spells out special sample values', () => {
    expect(formatSampleValue(Number.NaN)).toBe('NaN');
    expect(formatSampleValue(Number.POSITIVE_INFINITY)).toBe('+Inf');
    expect(formatSampleValue(Number.NEGATIVE_INFINITY)).toBe('-Inf');
    expect(formatSampleValue(1.5)).toBe('1.5');
    expect(formatSampleValue(0)).toBe('0');
  });

  it('formats label sets, escaping values', () => {
    expect(formatLabels([])).toBe('');
    expect(formatLabels([['route', '/a']])).toBe('{route="/a"}');
    expect(
      formatLabels([
        ['a', 'x"y'],
        ['b', 'line\nbreak'],
      ]),
    ).toBe('{a="x\\"y",b="line\\nbreak"}');
  });
});
