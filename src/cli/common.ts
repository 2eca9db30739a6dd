/**
 * What every `hotpath` command shares: exit codes, the usage error, duration and list parsing, and
 * opening storage from a URL (defaulting to `HOTPATH_DATABASE_URL`).
 * @module
 */
import { redactUrl } from '../core/errors.js';
import type { StorageAdapter } from '../storage/index.js';
import { createStorage } from '../storage/index.js';

/** Exit codes of the `hotpath` command (documented in docs/cli.md). */
export const ExitCode = {
  /** The command did what it was asked. */
  ok: 0,
  /** The command ran and failed (a check failed, a connection was refused, a job was not found…). */
  failure: 1,
  /** The command line was wrong (unknown option, missing argument, bad value, no database URL). */
  usage: 2,
} as const;

/** A bad command line: printed with a hint to `--help`, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A command that ran and failed with a message already worth printing as is (exit code 1). */
export class CommandFailure extends Error {
  override readonly name = 'CommandFailure';
}

const UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Parses `500ms`, `30s`, `15m`, `12h`, `7d`, `2w` (or plain milliseconds) into ms. */
export function parseDuration(text: string, option: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)?$/.exec(text.trim());
  if (match === null) {
    throw new UsageError(`${option}: "${text}" is not a duration (examples: 500ms, 30s, 15m, 12h, 7d)`);
  }
  return Math.round(Number(match[1]) * (UNITS_MS[match[2] ?? 'ms'] as number));
}

/** Parses a positive integer option. */
export function parsePositiveInt(text: string, option: string, max = 1_000_000): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new UsageError(`${option}: expected an integer from 1 to ${max}, got "${text}"`);
  }
  return value;
}

/** Parses a TCP port, 0 (any free port) … 65535. */
export function parsePort(text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > 65_535) {
    throw new UsageError(`--port: expected an integer from 0 to 65535, got "${text}"`);
  }
  return value;
}

/** Splits `a,b , c` into `['a', 'b', 'c']` (empty parts dropped). */
export function parseList(text: string): string[] {
  return text
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.length > 0);
}

/** The database URL of a command: its `--database-url`, else `HOTPATH_DATABASE_URL`. */
export function databaseUrl(option: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const url = option ?? env.HOTPATH_DATABASE_URL;
  if (url === undefined || url.length === 0) {
    throw new UsageError('no database: pass --database-url <url> or set HOTPATH_DATABASE_URL');
  }
  return url;
}

/** Opens storage from a URL; a bad URL is a usage error, a missing driver a failure. */
export function openStorage(url: string): StorageAdapter {
  try {
    return createStorage(url);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (/driver|install|Cannot find (module|package)/i.test(message)) throw new CommandFailure(message);
    throw new UsageError(message);
  }
}

/** A URL safe to print (password hidden). */
export function shownUrl(url: string): string {
  return redactUrl(url).replaceAll('%5BREDACTED%5D', '***');
}
