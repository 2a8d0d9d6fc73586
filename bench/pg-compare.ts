/**
 * The PostgreSQL comparison: Tessera on PostgreSQL, pg-boss, graphile-worker (same database,
 * each in a fresh schema) and BullMQ (the machine's Redis), one child process each, one after
 * the other, with the same no-op workload and the same concurrency.
 */
import { randomBytes } from "node:crypto";
import { startChild } from "./children.js";
import type { PeerChildOptions } from "./peers/child.js";
import type { PeerName, PeerResult } from "./peers/types.js";

export interface PgSettings {
  connectionString: string;
  redisUrl: string;
  jobs: number;
  warmupJobs: number;
  concurrency: number;
  latencySamples: number;
  latencyWarmup: number;
  timeoutMs: number;
  peers: PeerName[];
}

export interface PgComparison {
  settings: Omit<PgSettings, "connectionString" | "redisUrl"> & { postgres: string; redis: string };
  /** Every system measured, Tessera-PG first. */
  results: PeerResult[];
  /** Systems that could not be measured, with the reason. */
  skipped: { system: PeerName; reason: string }[];
  /**
   * Ratios to Tessera-PG: jobs/s (higher is better for the peer), p50/p99 of submit call to
   * start (lower is better).
   */
  ratios: { system: PeerName; jobsPerSec: number; p50: number; p99: number }[];
}

export const ALL_PEERS: PeerName[] = ["tessera-pg", "pg-boss", "graphile-worker", "bullmq"];

const progress = (message: string) => process.stderr.write(`bench: ${message}\n`);
/** Credentials never reach the report. */
const redact = (url: string) => url.replace(/\/\/[^@/]*@/, "//");

export async function comparePostgres(settings: PgSettings): Promise<PgComparison> {
  const results: PeerResult[] = [];
  const skipped: PgComparison["skipped"] = [];
  const suffix = randomBytes(4).toString("hex");
  for (const [i, peer] of settings.peers.entries()) {
    progress(
      `pg ${i + 1}/${settings.peers.length}: ${peer} (${settings.jobs} jobs, then ${settings.latencySamples} probes)`,
    );
    const options: PeerChildOptions = {
      peer,
      connectionString: settings.connectionString,
      redisUrl: settings.redisUrl,
      namespace: `bench_${peer.replace(/-/g, "_")}_${suffix}`,
      jobs: settings.jobs,
      warmupJobs: settings.warmupJobs,
      concurrency: settings.concurrency,
      latencySamples: settings.latencySamples,
      latencyWarmup: settings.latencyWarmup,
      timeoutMs: settings.timeoutMs,
    };
    const child = startChild("./peers/child.ts", options);
    try {
      results.push((await child.next("peer", undefined, settings.timeoutMs * 3 + 60_000)).result);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      progress(`pg: ${peer} failed: ${reason.split("\n")[0]}`);
      skipped.push({ system: peer, reason });
    } finally {
      await child.stop(15_000);
    }
  }
  const base = results.find((r) => r.system === "tessera-pg");
  return {
    settings: {
      jobs: settings.jobs,
      warmupJobs: settings.warmupJobs,
      concurrency: settings.concurrency,
      latencySamples: settings.latencySamples,
      latencyWarmup: settings.latencyWarmup,
      timeoutMs: settings.timeoutMs,
      peers: settings.peers,
      postgres: redact(settings.connectionString),
      redis: redact(settings.redisUrl),
    },
    results,
    skipped,
    ratios: results.map((r) => ({
      system: r.system,
      jobsPerSec: base ? r.jobsPerSec / base.jobsPerSec : Number.NaN,
      p50: base ? r.latency.fromCall.p50Ms / base.latency.fromCall.p50Ms : Number.NaN,
      p99: base ? r.latency.fromCall.p99Ms / base.latency.fromCall.p99Ms : Number.NaN,
    })),
  };
}

/** Lost or repeated jobs, missing completions, failed systems. */
export function pgProblems(c: PgComparison): string[] {
  const problems: string[] = [];
  for (const r of c.results) {
    if (r.lost > 0) problems.push(`${r.system}: ${r.lost} jobs never ran`);
    if (r.repeated > 0) problems.push(`${r.system}: ${r.repeated} repeated handler runs`);
    if (r.latency.lost > 0) problems.push(`${r.system}: ${r.latency.lost} probe jobs never started`);
    const ok =
      r.finalStates["succeeded (attempt 1)"] ??
      r.finalStates["completed"] ??
      r.finalStates["completed (row deleted)"] ??
      0;
    const total = Object.values(r.finalStates).reduce((a, b) => a + b, 0);
    if (ok !== r.jobs || total !== r.jobs)
      problems.push(
        `${r.system}: store holds ${JSON.stringify(r.finalStates)}, expected ${r.jobs} completed`,
      );
    if (r.latency.repeated > 0) problems.push(`${r.system}: ${r.latency.repeated} repeated probe runs`);
  }
  for (const s of c.skipped) problems.push(`${s.system}: not measured: ${s.reason.split("\n")[0]}`);
  return problems;
}
