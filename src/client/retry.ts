/**
 * Bounded retries of one request: exponential backoff with full jitter (1 s, 2 s, 4 s, …
 * capped, each delay drawn uniformly below its bound, so clients that failed together do not
 * come back together), a limit on attempts and an overall deadline. See sindresorhus/ky
 * `source/core/retry-timing.ts` and the AWS note "Exponential Backoff And Jitter".
 */
import { delay } from "./delay.js";
import { RetryExhaustedError } from "./errors.js";

export interface RetryOptions {
  /** Tries of one request, the first included (1: never retry). @default 6 */
  attempts?: number;
  /** Bound of the first retry delay; it doubles with each retry. @default 1000 */
  baseDelayMs?: number;
  /** Cap on the bound of one retry delay. @default 30000 */
  maxDelayMs?: number;
  /** Give up when the next try would start later than this after the first one. @default 60000 */
  deadlineMs?: number;
  /** Time one attempt may take until the answer's headers arrive (a long poll adds its wait). @default 30000 */
  timeoutMs?: number;
}

export type RetryPolicy = Readonly<Required<RetryOptions>>;

export const DEFAULT_RETRY: RetryPolicy = Object.freeze({
  attempts: 6,
  baseDelayMs: 1000,
  maxDelayMs: 30_000,
  deadlineMs: 60_000,
  timeoutMs: 30_000,
} satisfies Required<RetryOptions>);

/** The defaults with `options` applied, checked once (a bad value fails at `createClient`). */
export function retryPolicy(options: RetryOptions = {}, base: RetryPolicy = DEFAULT_RETRY): RetryPolicy {
  const policy = { ...base, ...options };
  if (!Number.isInteger(policy.attempts) || policy.attempts < 1)
    throw new RangeError("retry.attempts must be an integer >= 1");
  for (const name of ["baseDelayMs", "maxDelayMs", "deadlineMs", "timeoutMs"] as const) {
    if (!Number.isFinite(policy[name]) || policy[name] < 0)
      throw new RangeError(`retry.${name} must be a number >= 0`);
  }
  return Object.freeze(policy);
}

/** Full jitter: uniform in [0, min(maxDelayMs, baseDelayMs * 2^(retry-1))). `retry` counts from 1. */
export function backoffDelay(
  retry: number,
  policy: Pick<RetryPolicy, "baseDelayMs" | "maxDelayMs">,
  random: () => number = Math.random,
): number {
  const bound = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(retry - 1, 52));
  return Math.floor(random() * bound);
}

/** What one attempt came to: an answer to hand back, or a fault worth another try. */
export type AttemptOutcome<T> =
  | { done: T }
  | {
      fault: string;
      /** HTTP status of the faulty answer; null when there was none (network error, timeout). */
      status: number | null;
      /** The server's `Retry-After`, which wins over the backoff. */
      retryAfterMs?: number | undefined;
      cause?: unknown;
    };

/**
 * Run `attempt` until it is done, the attempts run out or the deadline would pass; then throw
 * a `RetryExhaustedError` that says what happened, how often and for how long. An abort of
 * `signal` rejects at once with its reason.
 */
export async function withRetries<T>(
  request: { method: string; url: string },
  policy: RetryPolicy,
  signal: AbortSignal | undefined,
  attempt: (n: number) => Promise<AttemptOutcome<T>>,
  clock: { now: () => number; random: () => number } = { now: Date.now, random: Math.random },
): Promise<T> {
  const started = clock.now();
  for (let n = 1; ; n++) {
    const outcome = await attempt(n);
    if ("done" in outcome) return outcome.done;
    const elapsed = clock.now() - started;
    const giveUp = (reason: "attempts" | "deadline", detail = outcome.fault) =>
      new RetryExhaustedError(request.method, request.url, n, elapsed, outcome.status, detail, reason, {
        cause: outcome.cause,
      });
    if (n >= policy.attempts) throw giveUp("attempts");
    const wait = outcome.retryAfterMs ?? backoffDelay(n, policy, clock.random);
    if (elapsed + wait > policy.deadlineMs) {
      const asked =
        outcome.retryAfterMs !== undefined
          ? ` (the server asked to retry after ${Math.ceil(wait / 1000)} s)`
          : "";
      throw giveUp("deadline", `${outcome.fault}${asked}`);
    }
    await delay(wait, signal);
  }
}
