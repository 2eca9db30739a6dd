/**
 * The httpwg Structured Field test vectors (RFC 9651) against the parser behind the client's
 * `RateLimit` / `RateLimit-Policy` parsing (`structured-headers`, as `src/client/server-feedback.ts`
 * uses it). Every parse vector: `must_fail` must throw, the others must give `expected`
 * (`can_fail` may throw instead).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseRateLimitHeaders } from 'hotpath/client';
import {
  type BareItem,
  DisplayString,
  type InnerList,
  type Item,
  type Parameters,
  parseDictionary,
  parseItem,
  parseList,
  Token,
} from 'structured-headers';
import { describe, expect, it } from 'vitest';

interface Vector {
  name: string;
  raw?: string[];
  header_type: 'item' | 'list' | 'dictionary';
  expected?: unknown;
  must_fail?: boolean;
  can_fail?: boolean;
}

const dir = fileURLToPath(new URL('./vectors/', import.meta.url));
const files = readdirSync(dir).filter((name) => name.endsWith('.json'));

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
function base32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  while (out.length % 8 !== 0) out += '=';
  return out;
}

/** The vectors' JSON form of a parsed value. */
function bare(value: BareItem): unknown {
  if (value instanceof Token) return { __type: 'token', value: value.toString() };
  if (value instanceof DisplayString) return { __type: 'displaystring', value: value.toString() };
  if (value instanceof Date) {
    // Dates beyond JavaScript's range (±8.64e15 ms) come back as Invalid Date; we read that as a
    // parse failure, which the vectors allow for them (`can_fail`).
    if (Number.isNaN(value.getTime())) throw new Error('date out of range');
    return { __type: 'date', value: value.getTime() / 1000 };
  }
  if (value === 0) return 0; // -0 is zero: SF integers have no negative zero
  if (value instanceof ArrayBuffer) return { __type: 'binary', value: base32(new Uint8Array(value)) };
  return value;
}
const params = (map: Parameters): unknown => [...map].map(([key, value]) => [key, bare(value)]);
function member(value: Item | InnerList): unknown {
  const [head, parameters] = value;
  if (Array.isArray(head)) return [head.map((item) => member(item)), params(parameters)];
  return [bare(head), params(parameters)];
}
function parse(type: Vector['header_type'], input: string): unknown {
  if (type === 'item') return member(parseItem(input));
  if (type === 'list') return parseList(input).map(member);
  return [...parseDictionary(input)].map(([key, value]) => [key, member(value)]);
}

describe('httpwg structured-field-tests (RFC 9651 parse vectors)', () => {
  for (const file of files) {
    const vectors = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Vector[];
    it(`${file}: ${vectors.length} vectors`, () => {
      let checked = 0;
      for (const vector of vectors) {
        if (vector.raw === undefined) continue;
        // Several field lines combine with ", " (RFC 9651 §4.2).
        const input = vector.raw.join(', ');
        let result: unknown;
        let error: unknown;
        try {
          result = parse(vector.header_type, input);
        } catch (caught) {
          error = caught;
        }
        if (vector.must_fail) {
          expect(error, `${vector.name} must fail`).toBeDefined();
        } else if (error === undefined) {
          expect(result, vector.name).toEqual(vector.expected);
        } else {
          expect(vector.can_fail, `${vector.name} failed: ${String(error)}`).toBe(true);
        }
        checked++;
      }
      expect(checked).toBeGreaterThan(0);
    });
  }

  it('covers the files the issue named: binary padding, 12-digit decimals, display strings, large fields', () => {
    for (const name of ['binary.json', 'number.json', 'display-string.json', 'large-generated.json']) {
      expect(files).toContain(name);
    }
  });

  // structured-headers 2.1.0 reads a Date to the end of the input, so a Date followed by a parameter or
  // another member fails to parse (no vector covers it: the vectors' dates stand alone). Reported here
  // so that a fixed release turns this red and the note in server-feedback.ts can go.
  it.fails('known gap of structured-headers 2.1.0: a Date parameter followed by another parameter', () => {
    expect(parseRateLimitHeaders({ ratelimit: '"q";at=@1700000000;r=4;t=2' }, 0)).toMatchObject({ remaining: 4 });
  });
});
