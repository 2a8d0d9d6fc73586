/** Timers and signals that work the same in browsers, Node, Deno and Bun. */

/** Resolve after `ms`, or reject with the signal's reason as soon as it aborts. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(
      () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      },
      Math.max(0, ms),
    );
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * A signal that aborts when any of `signals` does, or after `timeoutMs` with `timeoutReason`.
 * `clearTimer()` stops the timeout only (say, once an answer's headers arrived); `dispose()`
 * removes the listeners too (call it when the operation is over: Node warns about listeners
 * piling up on a long-lived signal). Written by hand because `AbortSignal.any` is missing from
 * older browsers and Node before 20.3.
 */
export function linkedSignal(
  signals: readonly (AbortSignal | undefined)[],
  timeoutMs?: number,
  timeoutReason?: unknown,
): { signal: AbortSignal; clearTimer: () => void; dispose: () => void } {
  const controller = new AbortController();
  const cleanups: (() => void)[] = [];
  for (const s of signals) {
    if (!s) continue;
    if (s.aborted) {
      controller.abort(s.reason);
      break;
    }
    const onAbort = () => controller.abort(s.reason);
    s.addEventListener("abort", onAbort, { once: true });
    cleanups.push(() => s.removeEventListener("abort", onAbort));
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  if (timeoutMs !== undefined && !controller.signal.aborted) {
    timer = setTimeout(() => controller.abort(timeoutReason), Math.max(0, timeoutMs));
  }
  const clearTimer = () => clearTimeout(timer);
  return {
    signal: controller.signal,
    clearTimer,
    dispose: () => {
      clearTimer();
      cleanups.forEach((c) => c());
    },
  };
}
