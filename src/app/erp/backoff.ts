/**
 * Retry delay with "full jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter"): a
 * uniformly random wait in [0, min(max, base × 2^attempt)]. Full jitter spreads the retries of many
 * failed deliveries over the whole window, so a recovering ERP is not hit by one synchronized wave.
 *
 * `failedAttempts` counts the failures so far, before this one is retried (0 after the first
 * failure, so the first retry waits at most `baseMs`). `random` returns a number in [0, 1), like
 * `Math.random`; tests inject a fixed one.
 */
export function retryDelayMs(
  failedAttempts: number,
  policy: { readonly baseMs: number; readonly maxMs: number },
  random: () => number,
): number {
  const exponent = Math.max(0, Math.floor(failedAttempts));
  // 2^exponent overflows to Infinity long before it matters; min() keeps the cap exact.
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(exponent, 1023));
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.floor(r * ceiling);
}
