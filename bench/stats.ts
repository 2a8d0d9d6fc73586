/** Small statistics helpers and the clock shared by the benchmark's processes. */
import { readdirSync, readFileSync } from "node:fs";

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

/**
 * CPU time (µs) used so far by every process of the given names on this machine (Linux /proc),
 * e.g. the database server's backends. NaN where /proc is not readable. Backends that exit
 * between two readings are lost, so read both ends of a window while its connections are open.
 */
export function serverCpuMicros(names: readonly string[]): number {
  let ticks = 0;
  let dir: string[];
  try {
    dir = readdirSync("/proc");
  } catch {
    return Number.NaN;
  }
  for (const pid of dir) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const open = stat.indexOf("(");
      const close = stat.lastIndexOf(")");
      if (!names.includes(stat.slice(open + 1, close))) continue;
      const fields = stat.slice(close + 2).split(" ");
      // utime and stime are fields 14 and 15 of the whole line (11 and 12 after the name).
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // The process exited meanwhile.
    }
  }
  return (ticks * 1_000_000) / CLOCK_TICKS_PER_SECOND;
}

/** USER_HZ: 100 on every Linux this runs on (the kernel's ABI constant for /proc). */
const CLOCK_TICKS_PER_SECOND = 100;

export const POSTGRES_PROCESSES = ["postgres"] as const;
export const REDIS_PROCESSES = ["redis-server"] as const;
