/**
 * Duration parsing for configuration read from strings (environment variables, URLs).
 * In code, durations are plain numbers of milliseconds.
 * @module
 */
import { ConfigError } from './errors.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses `"250ms"`, `"1.5s"`, `"5m"`, `"2h"`, `"1d"` or a bare number of milliseconds.
 * @param name - names the setting in the error.
 * @throws ConfigError for anything else, negative values or non-finite numbers.
 */
export function parseDurationMs(name: string, text: string | number): number {
  if (typeof text === 'number') {
    if (Number.isFinite(text) && text >= 0) return text;
    throw new ConfigError(name, `${name} must be a duration >= 0, got ${text}`);
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!match) {
    throw new ConfigError(
      name,
      `${name} must be a duration like "250ms", "1.5s", "5m", "2h" or a number of ms, got ${JSON.stringify(text)}`,
    );
  }
  return Number(match[1]) * (UNITS[match[2] ?? 'ms'] as number);
}
