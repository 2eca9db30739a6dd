import { ConfigError, parseDurationMs } from 'hotpath/core';
import { describe, expect, it } from 'vitest';
import { checkNumber, checkString, validateOptions } from '../../src/core/options.js';

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
