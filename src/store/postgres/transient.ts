/** Which PostgreSQL failures are worth another try, and trying again with backoff. */

/** Backoff between attempts at a write whose connection failed (up to ~8 s in all). */
const RETRY_DELAYS_MS = [50, 100, 200, 400, 800, 1600, 2000, 3000];

/**
 * Run `write` again, with backoff, while it fails transiently (see `isTransient`); `retried`
 * tells it whether an earlier try may have committed. Other errors, and the last one, are
 * thrown. `firstTry`: the caller made the first try itself (its fast path), which failed so.
 */
export async function retryTransient<T>(
  write: (retried: boolean) => Promise<T>,
  firstTry?: { error: unknown },
): Promise<T> {
  let error = firstTry?.error;
  for (let attempt = firstTry ? 1 : 0; ; attempt++) {
    if (attempt > 0) {
      const delay = RETRY_DELAYS_MS[attempt - 1];
      if (!isTransient(error) || delay === undefined) throw error;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
    try {
      return await write(attempt > 0);
    } catch (caught) {
      error = caught;
    }
  }
}

/**
 * A failure of the connection, not of the statement (SQLSTATE 08xxx connection exceptions,
 * 57P0x shutdowns and terminations, or a socket error without a SQLSTATE): the statement may
 * or may not have committed, and trying again on a fresh connection may succeed.
 */
export function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return error instanceof Error;
  return code.startsWith("08") || code.startsWith("57P") || /^E[A-Z]+$/.test(code);
}

/**
 * Worth another try: a lost connection, or a deadlock (40P01) or serialization failure (40001),
 * whose statement was rolled back. Batched writes lock rows in id order and the heartbeat
 * never waits for a lock, so deadlocks are rare, but other writers (cancel, sweepers) exist.
 */
function isTransient(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "40P01" || code === "40001" || isConnectionError(error);
}
