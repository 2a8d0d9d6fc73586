/** Longest wait between two attempts, whatever the base delay. */
const MAX_BACKOFF_MS = 60 * 60 * 1000;

/**
 * Delay before the attempt after `attempt` (1-based): base × 2^(attempt−1), capped, with "equal
 * jitter" (half fixed, half random) so retries of many jobs spread out but never come early.
 */
export function retryDelay(attempt: number, baseMs: number, random: () => number = Math.random): number {
  const exp = Math.min(MAX_BACKOFF_MS, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + random() * (exp / 2));
}
