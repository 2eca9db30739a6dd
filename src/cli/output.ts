/**
 * What the `hotpath` command prints: human lines (with progress bars and colours only on a terminal),
 * or JSON for scripts (`--json`: one JSON document per command, or JSON lines for the long-running
 * `worker`). Every command writes through one {@link Output}, so the TTY and `--json` rules live here.
 * @module
 */
import { SingleBar } from 'cli-progress';
import type { Logger } from '../core/logger.js';

/** Where a command writes; tests and embedders pass their own streams. */
export interface OutputStreams {
  /** Results and log lines. */
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  /** Errors and usage messages. */
  stderr: NodeJS.WritableStream;
}

/** A progress display: a bar on a terminal, else a plain line per update (throttled). */
export interface Progress {
  /** Sets the position (and the total, when it became known). */
  update(done: number, total?: number): void;
  /** Ends the display with a final line. */
  stop(): void;
}

/** Minimum gap between two plain progress lines, ms (a bar redraws itself at its own pace). */
const PLAIN_PROGRESS_INTERVAL_MS = 1000;

/** The one writer of a command run. */
export class Output {
  /** True with `--json`: results are JSON, progress and decoration are off. */
  readonly isJson: boolean;
  /** True when stdout is a terminal and not `--json`: progress bars, ✓/✗ in colour. */
  readonly isTty: boolean;
  readonly #streams: OutputStreams;

  constructor(streams: OutputStreams, isJson: boolean) {
    this.#streams = streams;
    this.isJson = isJson;
    this.isTty = !isJson && streams.stdout.isTTY === true;
  }

  /** Writes one line to stdout. */
  line(text = ''): void {
    this.#streams.stdout.write(`${text}\n`);
  }

  /** Writes one line to stderr. */
  error(text: string): void {
    this.#streams.stderr.write(`${text}\n`);
  }

  /** Writes a value as one JSON document (pretty on a terminal, compact otherwise). */
  json(value: unknown): void {
    this.#streams.stdout.write(`${JSON.stringify(value, jsonReplacer, this.isTty ? 2 : undefined)}\n`);
  }

  /** A check line: `✓ label  detail` or `✗ label  detail` plus an indented `fix:` line. */
  check(ok: boolean, label: string, detail: string, fix?: string): void {
    const mark = ok ? this.#colour('32', '✓') : this.#colour('31', '✗');
    this.line(`${mark} ${label.padEnd(26)} ${detail}`);
    if (!ok && fix !== undefined) this.line(`    fix: ${fix}`);
  }

  /** A table of rows under a header; columns padded to their widest cell. */
  table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): void {
    const widths = header.map((title, column) =>
      Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)),
    );
    const format = (cells: readonly string[]) =>
      cells
        .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
        .join('  ')
        .trimEnd();
    this.line(format(header));
    for (const row of rows) this.line(format(row));
  }

  /**
   * A progress display for `label`: a cli-progress bar on a terminal; plain `label done/total` lines at
   * most once a second otherwise; nothing with `--json`.
   */
  progress(label: string, total: number): Progress {
    if (this.isJson) return { update() {}, stop() {} };
    if (this.isTty) {
      const bar = new SingleBar(
        {
          format: `${label.padEnd(20)} [{bar}] {value}/{total} {percentage}% eta {eta_formatted}`,
          stream: this.#streams.stdout as NodeJS.WriteStream,
          hideCursor: true,
        },
        undefined,
      );
      bar.start(total, 0);
      return {
        update(done, newTotal) {
          if (newTotal !== undefined) bar.setTotal(newTotal);
          bar.update(done);
        },
        stop() {
          bar.stop();
        },
      };
    }
    let lastAt = 0;
    let last = -1;
    let currentTotal = total;
    return {
      update: (done, newTotal) => {
        if (newTotal !== undefined) currentTotal = newTotal;
        const now = Date.now();
        if (now - lastAt < PLAIN_PROGRESS_INTERVAL_MS && done < currentTotal) return;
        if (done === last) return;
        lastAt = now;
        last = done;
        this.line(`${label} ${done}/${currentTotal}`);
      },
      stop: () => {},
    };
  }

  /**
   * The worker's log: JSON lines with `--json` (the shape of hotpath's console logger), otherwise
   * `time level message key=value …` lines. Both go to stdout: they are the worker's output.
   */
  logger(): Logger {
    const write = (level: string) => (fields: object, msg?: string) => {
      const time = new Date().toISOString();
      if (this.isJson) {
        this.line(JSON.stringify({ level, time, msg, ...fields }, jsonReplacer));
        return;
      }
      const pairs = Object.entries(fields)
        .filter(([, value]) => value !== undefined)
        .map(([key, value]) => `${key}=${formatValue(value)}`);
      this.line([time, level.padEnd(5), msg ?? '', ...pairs].join(' ').trimEnd());
    };
    return { debug: () => {}, info: write('info'), warn: write('warn'), error: write('error') };
  }

  #colour(code: string, text: string): string {
    return this.isTty ? `\u001b[${code}m${text}\u001b[0m` : text;
  }
}

function formatValue(value: unknown): string {
  if (value instanceof Error) return JSON.stringify(value.message);
  if (typeof value === 'string') return /[\s"=]/.test(value) ? JSON.stringify(value) : value;
  return JSON.stringify(value, jsonReplacer) ?? String(value);
}

/** Errors as `{ name, message, code? }`; everything else as is. */
export function jsonReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    const withJson = value as Error & { toJSON?: () => unknown };
    return typeof withJson.toJSON === 'function' ? withJson.toJSON() : { name: value.name, message: value.message };
  }
  return value;
}
