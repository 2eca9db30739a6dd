/** A logger for the cache tests that keeps `[level, message, fields]` of every call. */
import type { Logger } from 'hotpath/core';

export function logSpy(): { lines: Array<[string, string | undefined, Record<string, unknown>]>; logger: Logger } {
  const lines: Array<[string, string | undefined, Record<string, unknown>]> = [];
  const at =
    (level: string) =>
    (fields: object, message?: string): void => {
      lines.push([level, message, fields as Record<string, unknown>]);
    };
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { lines, logger };
}
