/**
 * Logger interface: the pino-compatible subset hotpath calls. Pass a pino logger, or anything with
 * these four methods. Silent by default.
 * @module
 */

/** A structured logger; `obj` carries fields, `msg` the human-readable text. */
export interface Logger {
  /** Verbose diagnostics. */
  debug(obj: object, msg?: string): void;
  /** Normal operation worth noting. */
  info(obj: object, msg?: string): void;
  /** Something degraded but handled (e.g. a stalled job, a slow operation). */
  warn(obj: object, msg?: string): void;
  /** A failure that lost work or needs attention. */
  error(obj: object, msg?: string): void;
}

/** Log levels, from most to least verbose. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

const noop = (): void => {};

/** A logger that drops everything (the default). */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/**
 * A small JSON-lines logger to stderr, for apps without pino. Lines below `level` are dropped.
 */
export function createConsoleLogger(
  level: LogLevel = 'info',
  write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Logger {
  const threshold = LEVELS[level];
  const make =
    (name: Exclude<LogLevel, 'silent'>) =>
    (obj: object, msg?: string): void => {
      if (LEVELS[name] < threshold) return;
      write(JSON.stringify({ level: name, time: new Date().toISOString(), msg, ...obj }, errorReplacer));
    };
  return { debug: make('debug'), info: make('info'), warn: make('warn'), error: make('error') };
}

function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    const withJson = value as Error & { toJSON?: () => unknown };
    return typeof withJson.toJSON === 'function'
      ? withJson.toJSON()
      : { name: value.name, message: value.message, stack: value.stack };
  }
  return value;
}
