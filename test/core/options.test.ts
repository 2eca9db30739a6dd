import { ConfigError, parseDurationMs } from 'hotpath/core';
import { describe, expect, it } from 'vitest';
import { checkNumber, checkString, describeValue, validateOptions } from '../../src/core/options.js';

const schema = {
  limit: { type: 'number', min: 1, integer: true, required: true },
  ratio: { type: 'number', min: 0, max: 1 },
  max: { type: 'number', min: 0, allowInfinity: true },
  name: { type: 'string', nonEmpty: true, maxLength: 10 },
  enabled: { type: 'boolean' },
  onEvent: { type: 'function' },
} as const;

describe('validateOptions', () => {
  it('accepts valid options and treats undefined as absent', () => {
    expect(() =>
      validateOptions(
        'X',
        { limit: 3, ratio: 0.5, max: Infinity, name: 'a', enabled: true, onEvent: () => {} },
        schema,
      ),
    ).not.toThrow();
    expect(() => validateOptions('X', { limit: 3, ratio: undefined }, schema)).not.toThrow();
  });

  it.each([
    [{ limit: -1 }, 'X.limit'],
    [{ limit: 1.5 }, 'X.limit'],
    [{ limit: Number.NaN }, 'X.limit'],
    [{ limit: Infinity }, 'X.limit'],
    [{ limit: '3' }, 'X.limit'],
    [{}, 'X.limit'],
    [{ limit: 1, ratio: 2 }, 'X.ratio'],
    [{ limit: 1, max: -Infinity }, 'X.max'],
    [{ limit: 1, name: '' }, 'X.name'],
    [{ limit: 1, name: 'x'.repeat(11) }, 'X.name'],
    [{ limit: 1, enabled: 'yes' }, 'X.enabled'],
    [{ limit: 1, onEvent: 'no' }, 'X.onEvent'],
    [{ limit: 1, limt: 2 }, 'X.limt'],
  ])('rejects %j naming %s', (options, option) => {
    try {
      validateOptions('X', options, schema);
      expect.unreachable('should throw');
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).option).toBe(option);
      expect((error as ConfigError).message).toContain(option);
    }
  });

  it('rejects non-object options', () => {
    expect(() => validateOptions('X', 42, schema)).toThrow(ConfigError);
    expect(() => validateOptions('X', [], schema)).toThrow(ConfigError);
    expect(() => validateOptions('X', null, schema)).toThrow(ConfigError);
  });

  it('messages name the value and the allowed range', () => {
    expect(() => checkNumber('Cache.max', -5, { min: 1, integer: true })).toThrow(
      'Cache.max must be an integer >= 1, got -5',
    );
    expect(() => checkString('kind', 'c', { oneOf: ['a', 'b'] })).toThrow('kind must be one of "a", "b", got "c"');
  });
});

describe('parseDurationMs', () => {
  it('parses units and bare numbers', () => {
    expect(parseDurationMs('d', '250ms')).toBe(250);
    expect(parseDurationMs('d', '1.5s')).toBe(1500);
    expect(parseDurationMs('d', '5m')).toBe(300_000);
    expect(parseDurationMs('d', '2h')).toBe(7_200_000);
    expect(parseDurationMs('d', '1d')).toBe(86_400_000);
    expect(parseDurationMs('d', '40')).toBe(40);
    expect(parseDurationMs('d', 12)).toBe(12);
  });
  it.each(['', '-5s', 'five', '5 weeks', 'NaN'])('rejects %j', (text) => {
    expect(() => parseDurationMs('HOTPATH_X', text)).toThrow(ConfigError);
  });
  it('rejects bad numbers', () => {
    expect(() => parseDurationMs('d', Number.NaN)).toThrow(ConfigError);
    expect(() => parseDurationMs('d', -1)).toThrow(ConfigError);
  });
});

describe('error messages say exactly what was wrong (pinned by mutation testing)', () => {
  it('describeValue formats every kind of value briefly', () => {
    expect(describeValue('abc')).toBe('"abc"');
    expect(describeValue('x'.repeat(80))).toBe(JSON.stringify('x'.repeat(80)));
    expect(describeValue('x'.repeat(81))).toBe(JSON.stringify(`${'x'.repeat(80)}…`));
    expect(describeValue(5)).toBe('5');
    expect(describeValue(false)).toBe('false');
    expect(describeValue(undefined)).toBe('undefined');
    expect(describeValue(null)).toBe('null');
    expect(describeValue(() => 1)).toBe('a function');
    expect(describeValue([1, 2])).toBe('an array of 2');
    expect(describeValue(10n)).toBe('10n');
    expect(describeValue({ a: 1 })).toBe('object');
    expect(describeValue(Symbol('s'))).toBe('symbol');
  });

  it('checkNumber: bounds are inclusive unless exclusiveMin; Infinity only when allowed', () => {
    expect(checkNumber('n', 5, { min: 5, max: 10 })).toBe(5);
    expect(checkNumber('n', 10, { min: 5, max: 10 })).toBe(10);
    expect(() => checkNumber('n', 4.9, { min: 5 })).toThrow('n must be a number >= 5, got 4.9');
    expect(() => checkNumber('n', 11, { max: 10 })).toThrow('n must be a number <= 10, got 11');
    expect(() => checkNumber('n', 0, { min: 0, exclusiveMin: true })).toThrow('n must be a number > 0, got 0');
    expect(checkNumber('n', 0.5, { min: 0, exclusiveMin: true })).toBe(0.5);
    expect(checkNumber('n', Infinity, { min: 1, integer: true, allowInfinity: true })).toBe(Infinity);
    expect(() => checkNumber('n', -1, { min: 1, allowInfinity: true })).toThrow(
      'n must be a number >= 1 or Infinity, got -1',
    );
    expect(() => checkNumber('n', Infinity)).toThrow('n must be a number, got Infinity');
    expect(() => checkNumber('n', Number.NaN)).toThrow('n must be a number, got NaN');
    expect(() => checkNumber('n', '3')).toThrow('n must be a number, got "3"');
    expect(() => checkNumber('n', 2.5, { integer: true, min: 1, max: 9 })).toThrow(
      'n must be an integer >= 1 <= 9, got 2.5',
    );
  });

  it('checkString: type, emptiness, length (inclusive), allowed values, pattern', () => {
    expect(() => checkString('k', 5)).toThrow('k must be a string, got 5');
    expect(() => checkString('k', '', { nonEmpty: true })).toThrow('k must not be empty');
    expect(checkString('k', '', {})).toBe('');
    expect(checkString('k', 'abc', { maxLength: 3 })).toBe('abc');
    expect(() => checkString('k', 'abcd', { maxLength: 3 })).toThrow('k must be at most 3 characters, got 4');
    expect(checkString('k', 'ab', { pattern: /^[a-z]+$/ })).toBe('ab');
    expect(() => checkString('k', 'a-b', { pattern: /^[a-z]+$/ })).toThrow('k must match /^[a-z]+$/, got "a-b"');
  });

  it('validateOptions: object and type rules, unknown and required options', () => {
    const shapes = {
      o: { type: 'object' },
      b: { type: 'boolean' },
      f: { type: 'function' },
      a: { type: 'any' },
    } as const;
    expect(() => validateOptions('X', undefined, shapes)).not.toThrow();
    expect(() => validateOptions('X', { o: {}, b: false, f: () => {}, a: null }, shapes)).not.toThrow();
    expect(() => validateOptions('X', { o: null }, shapes)).toThrow('X.o must be an object, got null');
    expect(() => validateOptions('X', { o: 5 }, shapes)).toThrow('X.o must be an object, got 5');
    expect(() => validateOptions('X', { b: 'yes' }, shapes)).toThrow('X.b must be a boolean, got "yes"');
    expect(() => validateOptions('X', { f: {} }, shapes)).toThrow('X.f must be a function, got object');
    expect(() => validateOptions('X', 42, shapes)).toThrow('X options must be an object, got 42');
    expect(() => validateOptions('X', null, shapes)).toThrow('X options must be an object, got null');
    expect(() => validateOptions('X', [], shapes)).toThrow('X options must be an object, got an array of 0');
    expect(() => validateOptions('X', { z: 1 }, shapes)).toThrow(
      'X.z is not a known option (known options: o, b, f, a)',
    );
    expect(() => validateOptions('X', {}, { n: { type: 'number', required: true } })).toThrow('X.n is required');
    expect(() => validateOptions('X', { n: 1 }, { n: { type: 'string' } })).toThrow('X.n must be a string, got 1');
  });
});

describe('parseDurationMs, exactly (pinned by mutation testing)', () => {
  it('accepts 0 and fractions with several digits; names the setting and the value when it rejects', () => {
    expect(parseDurationMs('d', 0)).toBe(0);
    expect(parseDurationMs('d', '1.25s')).toBe(1_250);
    expect(parseDurationMs('d', ' 3 m ')).toBe(180_000);
    expect(() => parseDurationMs('HOTPATH_X', -1)).toThrow('HOTPATH_X must be a duration >= 0, got -1');
    expect(() => parseDurationMs('HOTPATH_X', 'soon')).toThrow(
      'HOTPATH_X must be a duration like "250ms", "1.5s", "5m", "2h" or a number of ms, got "soon"',
    );
  });
});
