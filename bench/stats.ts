/** Small statistics helpers and the clock shared by the benchmark's processes. */

/**
 * Epoch milliseconds with sub-millisecond resolution, comparable across processes on one host
 * (each process's `timeOrigin` is read from the same system clock).
 */
export function sharedNow(): number {
  return performance.timeOrigin + performance.now();
}

/** This process's CPU time so far (user + system), in microseconds. */
export function cpuMicros(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

/** Nearest-rank percentile (p in 0–100) of unsorted samples; NaN when there are none. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

export interface Distribution {
  count: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
}

export function distribution(samples: readonly number[]): Distribution {
  const sum = samples.reduce((a, b) => a + b, 0);
  return {
    count: samples.length,
    p50Ms: percentile(samples, 50),
    p99Ms: percentile(samples, 99),
    meanMs: samples.length === 0 ? Number.NaN : sum / samples.length,
    maxMs: samples.length === 0 ? Number.NaN : Math.max(...samples),
  };
}
