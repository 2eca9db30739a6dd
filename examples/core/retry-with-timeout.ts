/**
 * Retry a flaky async call with the core backoff policy, each attempt bounded by a timeout.
 * Run: node --import tsx examples/core/retry-with-timeout.ts
 */
import { isHotpathError, resolveRetryOptions, retryAsync, TimeoutError, withTimeout } from 'hotpath/core';

let calls = 0;
async function flakyFetch(signal: AbortSignal): Promise<string> {
  calls++;
  // The first two attempts hang until their timeout aborts them; the third answers.
  if (calls < 3) {
    await new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
  }
  return `answer after ${calls} attempts`;
}

const retry = resolveRetryOptions('example.retry', { retries: 4, baseDelayMs: 10, maxDelayMs: 50 });
const result = await retryAsync(() => withTimeout((signal) => flakyFetch(signal), 50), {
  retry,
  shouldRetry: (error) => isHotpathError(error) && error instanceof TimeoutError,
});
console.log(result);
