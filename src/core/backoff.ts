/**
 * The one backoff policy of hotpath: client retries, batch retries and queue job retries all compute
 * their delays here. Exponential with full jitter by default (AWS "Exponential Backoff and Jitter":
 * full jitter spreads retries of many clients best), or fixed with `factor: 1, jitter: false`.
 * @module
 */
import { sleep, throwIfAborted, type WaitOptions } from './abort.js';
import { ConfigError } from './errors.js';
import { validateOptions } from './options.js';

/** Jitter mode: `true`/`'full'` = uniform in [0, delay]; `'equal'` = [delay/2, delay]; `false` = none. */
export type JitterMode = boolean | 'full' | 'equal';

/** The retry-options shape shared by client, batch and queue. Durations in milliseconds. */
export interface RetryOptions {
  /** Retries after the first attempt (0 = try once). */
  retries: number;
  /** Delay before the first retry, before jitter, in ms. */
  baseDelayMs: number;
  /** Upper bound of any single delay, in ms. */
  maxDelayMs: number;
  /** Growth per retry (default 2; 1 = fixed delay). */
  factor?: number;
  /** Jitter mode (default: full jitter). */
  jitter?: JitterMode;
}

/** Validated retry options with defaults filled in. */
export type ResolvedRetryOptions = Required<RetryOptions>;

/** Defaults used when a module does not pass its own. */
export const DEFAULT_RETRY: ResolvedRetryOptions = {
  retries: 3,
  baseDelayMs: 100,
  maxDelayMs: 10_000,
  factor: 2,
  jitter: true,
};

const RETRY_SCHEMA = {
  retries: { type: 'number', min: 0, max: 1000, integer: true },
  baseDelayMs: { type: 'number', min: 0, max: 86_400_000 },
  maxDelayMs: { type: 'number', min: 0, max: 86_400_000 },
  factor: { type: 'number', min: 1, max: 100 },
  jitter: { type: 'any' },
} as const;

/**
 * Validates partial retry options and fills the gaps from `defaults`.
 * @param scope - names the options in errors, e.g. `APIClient.retry`.
 * @throws ConfigError for unknown keys, negative or non-finite values, or `maxDelayMs < baseDelayMs`.
 */
export function resolveRetryOptions(
  scope: string,
  input: Partial<RetryOptions> | undefined,
  defaults: ResolvedRetryOptions = DEFAULT_RETRY,
): ResolvedRetryOptions {
  validateOptions(scope, input, RETRY_SCHEMA);
  const jitter = input?.jitter ?? defaults.jitter;
  if (jitter !== true && jitter !== false && jitter !== 'full' && jitter !== 'equal') {
    throw new ConfigError(`${scope}.jitter`, `${scope}.jitter must be true, false, "full" or "equal"`);
  }
  const resolved: ResolvedRetryOptions = {
    retries: input?.retries ?? defaults.retries,
    baseDelayMs: input?.baseDelayMs ?? defaults.baseDelayMs,
    maxDelayMs: input?.maxDelayMs ?? Math.max(defaults.maxDelayMs, input?.baseDelayMs ?? 0),
    factor: input?.factor ?? defaults.factor,
    jitter,
  };
  if (resolved.maxDelayMs < resolved.baseDelayMs) {
    throw new ConfigError(
      `${scope}.maxDelayMs`,
      `${scope}.maxDelayMs (${resolved.maxDelayMs}) must be >= baseDelayMs (${resolved.baseDelayMs})`,
    );
  }
  return resolved;
}

/**
 * Delay before retry number `retry` (1 = the first retry), in ms:
 * `min(maxDelayMs, baseDelayMs * factor^(retry-1))`, then jittered.
 * @param random - source of uniform numbers in [0, 1) (tests pass a fixed one).
 */
export function backoffDelay(retry: number, options: ResolvedRetryOptions, random: () => number = Math.random): number {
  const exponent = Math.max(0, retry - 1);
  const raw = Math.min(options.maxDelayMs, options.baseDelayMs * options.factor ** exponent);
  const capped = Number.isFinite(raw) ? raw : options.maxDelayMs;
  switch (options.jitter) {
    case false:
      return capped;
    case 'equal':
      return capped / 2 + random() * (capped / 2);
    default:
      return random() * capped;
  }
}

/** What a retry decision may say: retry or not, and optionally a delay that overrides the policy. */
export type RetryDecision =
  | boolean
  | {
      /** Whether to try again. */
      retry: boolean;
      /** Wait this many ms instead of the policy's delay (e.g. a server's `Retry-After`). */
      delayMs?: number;
    };

/** Options of {@link retryAsync}. */
export interface RetryAsyncOptions extends WaitOptions {
  /** The policy (already resolved). */
  retry: ResolvedRetryOptions;
  /** Decides per error whether to retry (default: always); may return a server-mandated delay. */
  shouldRetry?: (error: unknown, attempt: number) => RetryDecision;
  /** Called before each wait with the delay chosen, for metrics and logs. */
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
  /** Source of randomness for jitter. */
  random?: () => number;
}

/**
 * Runs `fn(attempt)` until it succeeds, retrying per the policy. Attempts are numbered from 1.
 * @throws the last error when retries are exhausted or `shouldRetry` says no; the signal's reason on abort.
 */
export async function retryAsync<T>(fn: (attempt: number) => Promise<T>, options: RetryAsyncOptions): Promise<T> {
  const { retry, shouldRetry, onRetry, signal, clock, random } = options;
  for (let attempt = 1; ; attempt++) {
    throwIfAborted(signal);
    try {
      return await fn(attempt);
    } catch (error) {
      if (attempt > retry.retries) throw error;
      const decision = shouldRetry ? shouldRetry(error, attempt) : true;
      const again = typeof decision === 'boolean' ? decision : decision.retry;
      if (!again) throw error;
      const forced = typeof decision === 'object' ? decision.delayMs : undefined;
      const delayMs = forced ?? backoffDelay(attempt, retry, random);
      onRetry?.(error, attempt, delayMs);
      await sleep(delayMs, { signal, clock });
    }
  }
}
