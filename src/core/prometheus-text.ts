/**
 * Helpers for the Prometheus text exposition format (version 0.0.4): metric-name sanitising,
 * label-value escaping and sample lines.
 * @module
 */

/**
 * Turns any string into a valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`): invalid characters become `_`,
 * and a leading digit gets a `_` in front.
 */
export function sanitizeMetricName(name: string): string {
  const cleaned = name.replace(/[^a-zA-Z0-9_:]/g, '_');
  return /^[0-9]/.test(cleaned) || cleaned === '' ? `_${cleaned}` : cleaned;
}

/** True for a valid label name that is not reserved (`__` prefix). */
export function isValidLabelName(name: string): boolean {
  return /^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name) && !name.startsWith('__');
}

/** Escapes a label value: backslash, double quote and line feed. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Escapes HELP text: backslash and line feed. */
export function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** Formats a sample value as Prometheus expects (`NaN`, `+Inf`, `-Inf` spelled out). */
export function formatSampleValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

/** `{a="x",b="y"}` from raw name/value pairs (values escaped here), or '' when there are none. */
export function formatLabels(pairs: ReadonlyArray<readonly [string, string]>): string {
  if (pairs.length === 0) return '';
  return `{${pairs.map(([key, value]) => `${key}="${escapeLabelValue(value)}"`).join(',')}}`;
}

/** Prometheus metric types hotpath writes. */
export type MetricType = 'counter' | 'gauge' | 'summary';

/** One sample line of a family: `<name><suffix>{labels} value`. */
export interface MetricSample {
  /** Appended to the family name: `_sum` / `_count` for summaries, '' (default) otherwise. */
  suffix?: '' | '_sum' | '_count';
  /** Label pairs (values escaped by the writer); constant labels come first. */
  labels?: ReadonlyArray<readonly [string, string]>;
  /** The value (`NaN` and infinities spelled as Prometheus expects). */
  value: number;
}

/** A metric family as plain data: name, type, help text and its samples. */
export interface MetricFamily {
  /** Full metric name; a `counter` must end in `_total`, nothing else may. */
  name: string;
  /** Prometheus type. */
  type: MetricType;
  /** One line of help text. */
  help: string;
  /** Samples; a family without samples still writes its HELP and TYPE lines. */
  samples: readonly MetricSample[];
}

/**
 * The one writer of the Prometheus text exposition format (0.0.4) in hotpath: the profiler's families and
 * the app's cache, limiter, storage and queue families all go through it, so the rules promtool checks
 * (one HELP/TYPE per family, counters named `…_total`, valid names) are enforced in one place.
 * @param constantLabels - label pairs put first on every sample (e.g. `service="api"`).
 * @throws Error when a name is invalid, a family repeats, or a counter's name does not end in `_total`
 *   (or another type's does) — a programming error, not user input.
 */
export function writeExposition(
  families: Iterable<MetricFamily>,
  constantLabels: ReadonlyArray<readonly [string, string]> = [],
): string {
  const lines: string[] = [];
  const seen = new Set<string>();
  for (const family of families) {
    const { name, type } = family;
    if (sanitizeMetricName(name) !== name) throw new Error(`invalid metric name ${JSON.stringify(name)}`);
    if (seen.has(name)) throw new Error(`metric family ${name} written twice`);
    if ((type === 'counter') !== name.endsWith('_total')) {
      throw new Error(`metric ${name}: counters, and only counters, are named …_total`);
    }
    seen.add(name);
    lines.push(`# HELP ${name} ${escapeHelp(family.help)}`, `# TYPE ${name} ${type}`);
    for (const sample of family.samples) {
      const labels = sample.labels === undefined ? constantLabels : [...constantLabels, ...sample.labels];
      lines.push(`${name}${sample.suffix ?? ''}${formatLabels(labels)} ${formatSampleValue(sample.value)}`);
    }
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}
