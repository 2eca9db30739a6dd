/**
 * The background job of the example services: a Monte Carlo price forecast. It reads the spot price
 * through the same cache as `GET /quotes/:symbol`, simulates geometric-Brownian-motion price paths in
 * slices, reports progress after each slice and stops at the next slice when its signal aborts
 * (cancel, timeout, shutdown).
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { JobContext, JobHandler } from 'hotpath/queue';
import { InputError } from './http-errors.js';
import { parseSymbol, type QuoteService } from './quotes.js';

/** What a client submits to `POST /jobs/forecast`. */
export interface ForecastInput {
  symbol: string;
  /** Trading days ahead, 1–2,520 (ten years); default 30. */
  horizonDays: number;
  /** Simulated price paths, 100–200,000; default 10,000. */
  paths: number;
}

/** The job's result, served in the status payload once it succeeded. */
export interface ForecastResult {
  symbol: string;
  spot: number;
  horizonDays: number;
  paths: number;
  /** Percentiles of the price at the horizon. */
  p5: number;
  p50: number;
  p95: number;
  /** Share of paths ending above the spot price. */
  probabilityUp: number;
  /** Share of paths that fell 10 % below the spot price at some point. */
  probabilityDrawdown10: number;
}

const INPUT_KEYS = new Set(['symbol', 'horizonDays', 'paths']);
const MAX_PATHS = 200_000;
const MAX_HORIZON_DAYS = 2_520;
/**
 * Random draws per slice before yielding to the event loop: at ~30 ns a draw on an idle core (measured
 * 48 ms for 200,000 on a 2-core machine running 15 busy processes) a slice is ~1.5 ms, so HTTP requests
 * served by the same process wait about that long behind a running forecast, and a cancel is noticed
 * within one slice. CPU-heavy jobs that must not share the event loop at all belong in `WorkerPool`
 * (hotpath/batch).
 */
const DRAWS_PER_SLICE = 50_000;
const TRADING_DAYS_PER_YEAR = 252;

function integerField(body: Record<string, unknown>, name: string, fallback: number, min: number, max: number): number {
  const value = body[name] ?? fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InputError(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * Validates a forecast request body `{ symbol, horizonDays?, paths? }`.
 * @throws InputError naming the field, the value and what is allowed.
 */
export function parseForecastInput(body: unknown): ForecastInput {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new InputError('body must be a JSON object { symbol, horizonDays?, paths? }');
  }
  const fields = body as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (!INPUT_KEYS.has(key)) throw new InputError(`unknown field ${JSON.stringify(key)}`);
  }
  return {
    symbol: parseSymbol(fields.symbol),
    horizonDays: integerField(fields, 'horizonDays', 30, 1, MAX_HORIZON_DAYS),
    paths: integerField(fields, 'paths', 10_000, 100, MAX_PATHS),
  };
}

/**
 * The submission the queue's HTTP `submit` handler expects, for a validated forecast request. The key makes
 * an identical forecast submitted while one is queued or running return that job instead of a second one.
 * @throws InputError for a bad body.
 */
export function forecastSubmission(body: unknown): { type: 'forecast'; data: ForecastInput; key: string } {
  const data = parseForecastInput(body);
  return { type: 'forecast', data, key: `forecast:${data.symbol}:${data.horizonDays}:${data.paths}` };
}

/** mulberry32: a tiny seeded generator, so one input always yields the same forecast. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function seedOf(input: ForecastInput): number {
  let hash = 2166136261;
  for (const char of `${input.symbol}:${input.horizonDays}:${input.paths}`) {
    hash = Math.imul(hash ^ char.charCodeAt(0), 16777619);
  }
  return hash;
}

function percentile(sorted: Float64Array, q: number): number {
  const value = sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
  return Math.round(value * 100) / 100;
}

/**
 * Builds the `forecast` job handler over the quote reader. It takes `unknown` data on purpose: any process
 * may enqueue, so the handler validates what it is given instead of trusting a type.
 */
export function createForecastHandler(quotes: QuoteService): JobHandler<unknown, ForecastResult> {
  return async (data: unknown, job: JobContext) => {
    const input = parseForecastInput(data);
    job.progress(0, input.paths, 'fetching quote');
    const quote = await quotes.get(input.symbol);
    job.signal.throwIfAborted();

    const random = seededRandom(seedOf(input));
    const dt = 1 / TRADING_DAYS_PER_YEAR;
    const drift = -0.5 * quote.volatility ** 2 * dt;
    const step = quote.volatility * Math.sqrt(dt);
    const drawdownLevel = Math.log(0.9);
    const terminal = new Float64Array(input.paths);
    const pathsPerSlice = Math.max(1, Math.floor(DRAWS_PER_SLICE / input.horizonDays));
    let up = 0;
    let drawdowns = 0;
    for (let done = 0; done < input.paths; ) {
      const end = Math.min(input.paths, done + pathsPerSlice);
      for (; done < end; done++) {
        let logPrice = 0;
        let lowest = 0;
        for (let day = 0; day < input.horizonDays; day++) {
          // Box–Muller: one standard normal draw from two uniforms.
          const normal = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
          logPrice += drift + step * normal;
          if (logPrice < lowest) lowest = logPrice;
        }
        terminal[done] = quote.price * Math.exp(logPrice);
        if (logPrice > 0) up++;
        if (lowest <= drawdownLevel) drawdowns++;
      }
      job.progress(done, input.paths, 'simulating');
      await yieldToEventLoop();
      // Cancel, timeout or shutdown: stop within one slice; the queue records why.
      job.signal.throwIfAborted();
    }

    terminal.sort();
    return {
      symbol: quote.symbol,
      spot: quote.price,
      horizonDays: input.horizonDays,
      paths: input.paths,
      p5: percentile(terminal, 0.05),
      p50: percentile(terminal, 0.5),
      p95: percentile(terminal, 0.95),
      probabilityUp: up / input.paths,
      probabilityDrawdown10: drawdowns / input.paths,
    };
  };
}
