/**
 * `SeriesHistory`: the dashboard's chart history — a fixed ring of timestamps and one `Float64Array` per series,
 * allocated once at its full size, so memory is `points × (series + 1) × 8` bytes whatever runs for how long.
 * @module
 */

/** Chart history as plain arrays, oldest first: `t` in epoch seconds, one array per series (`null` = no sample). */
export interface HistoryJSON {
  /** Rows ever pushed; a client asks for the rows after the `seq` it has. */
  seq: number;
  /** Rows kept at most (the client trims to it). */
  capacity: number;
  /** True when this holds only the rows after a given `seq` (append them), false for the whole history. */
  isTail: boolean;
  /** Sample times, epoch seconds (uPlot's x axis). */
  t: number[];
  /** Values per series name, aligned with `t`. */
  series: Record<string, Array<number | null>>;
}

/** A bounded ring of samples for a fixed-at-most set of series. */
export class SeriesHistory {
  readonly #capacity: number;
  readonly #maxSeries: number;
  readonly #times: Float64Array;
  readonly #series = new Map<string, Float64Array>();
  #next = 0;
  #count = 0;
  #seq = 0;

  /**
   * @param capacity - samples kept per series (the oldest is overwritten).
   * @param maxSeries - most distinct series; samples for series past it are dropped (bounded whatever the names).
   */
  constructor(capacity: number, maxSeries: number) {
    this.#capacity = capacity;
    this.#maxSeries = maxSeries;
    this.#times = new Float64Array(capacity);
  }

  /** Bytes held by the arrays now (at most `capacity × (maxSeries + 1) × 8`). */
  get bytes(): number {
    return (this.#series.size + 1) * this.#capacity * 8;
  }

  /** Rows ever pushed. */
  get seq(): number {
    return this.#seq;
  }

  /** Samples held (≤ capacity). */
  get length(): number {
    return this.#count;
  }

  /** Appends one sample row at `atMs`; series missing from `values` get NaN (a gap in the chart). */
  push(atMs: number, values: ReadonlyMap<string, number>): void {
    const slot = this.#next;
    this.#times[slot] = atMs / 1000;
    for (const [name, value] of values) {
      let column = this.#series.get(name);
      if (column === undefined) {
        if (this.#series.size >= this.#maxSeries) continue;
        column = new Float64Array(this.#capacity).fill(Number.NaN);
        this.#series.set(name, column);
      }
      column[slot] = value;
    }
    for (const [name, column] of this.#series) if (!values.has(name)) column[slot] = Number.NaN;
    this.#next = (slot + 1) % this.#capacity;
    if (this.#count < this.#capacity) this.#count++;
    this.#seq++;
  }

  /**
   * The history, oldest first, as JSON-ready arrays: all of it, or with `afterSeq` only the rows pushed after
   * that point (what a connected page lacks) — so a live stream sends one row per sample, not the whole hour.
   */
  toJSON(afterSeq?: number): HistoryJSON {
    const rows = afterSeq === undefined ? this.#count : Math.min(this.#count, Math.max(0, this.#seq - afterSeq));
    // Index of the oldest row to send, in ring order.
    const oldest = this.#count < this.#capacity ? 0 : this.#next;
    const start = oldest + (this.#count - rows);
    const order = (column: Float64Array): Array<number | null> => {
      const out = new Array<number | null>(rows);
      for (let i = 0; i < rows; i++) {
        const value = column[(start + i) % this.#capacity] as number;
        out[i] = Number.isFinite(value) ? Math.round(value * 1000) / 1000 : null;
      }
      return out;
    };
    const series: Record<string, Array<number | null>> = Object.create(null);
    for (const [name, column] of this.#series) series[name] = order(column);
    return {
      seq: this.#seq,
      capacity: this.#capacity,
      isTail: afterSeq !== undefined,
      t: order(this.#times) as number[],
      series,
    };
  }
}
