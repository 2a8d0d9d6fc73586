/** Messages the benchmark's child processes send to the parent over the IPC channel. */
import type { PeerResult } from "./peers/types.js";
import { cpuMicros } from "./stats.js";

/** Options of a drain child: a measured round, after a smaller warm-up round on another file. */
export interface DrainOptions {
  db: string;
  warmupDb: string;
  jobs: number;
  warmupJobs: number;
  concurrency: number;
  timeoutMs: number;
}

/** What a drain (no-op job throughput) child measured. */
export interface DrainResult {
  label: string;
  jobs: number;
  concurrency: number;
  /** Time to pre-insert the jobs (not part of the throughput). */
  insertMs: number;
  /** From starting the workers to the last job's completion being committed. */
  drainMs: number;
  jobsPerSec: number;
  /** CPU time (user + system) of the draining process per job, in microseconds. */
  cpuUsPerJob: number;
  /** Distinct jobs whose handler ran, handler runs beyond one per job, jobs never run. */
  handled: number;
  repeated: number;
  lost: number;
  /** Rows per (status, attempt) read back from the database after the drain. */
  finalRows: { status: string; attempt: number; count: number }[];
  /** Claims issued and their average size (how well the worker batches). */
  claims: number;
  meanClaimSize: number;
  /** Claims that asked for fewer rows than `concurrency`. */
  partialClaims: number;
  /** How many claims returned each number of rows ("rows": claims). */
  claimSizes: Record<string, number>;
}

export type ChildMessage =
  /** A server child is listening. */
  | { kind: "ready"; url: string }
  /** A probe job's submit committed (server side), in shared-clock milliseconds. */
  | { kind: "committed"; jobId: string; at: number }
  /** A probe job's handler started. */
  | { kind: "started"; jobId: string; at: number }
  /** A probe job reached a terminal state. */
  | { kind: "finished"; jobId: string; at: number; status: string }
  | { kind: "drained"; result: DrainResult }
  /** One system of the PostgreSQL comparison. */
  | { kind: "peer"; result: PeerResult }
  /** The child's CPU time so far (user + system), in microseconds. */
  | { kind: "cpu"; micros: number }
  | { kind: "failed"; message: string };

/** Messages the parent sends to a child. */
export type ParentMessage = { kind: "cpu?" };

/** Send a message to the parent; a child run without an IPC channel is a usage error. */
export function toParent(message: ChildMessage): void {
  if (!process.send) throw new Error("this module is a benchmark child: run it through bench/run.ts");
  process.send(message);
}

/** Send a child's last message, then close the channel so the child can exit. */
export function sendLast(message: ChildMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!process.send) throw new Error("this module is a benchmark child: run it through bench/run.ts");
    process.send(message, undefined, {}, (error: Error | null) => {
      if (error) reject(error);
      else {
        process.disconnect();
        resolve();
      }
    });
  });
}

/** The JSON options a child gets as its one argument. */
export function childOptions<T>(): T {
  const raw = process.argv[2];
  if (raw === undefined) throw new Error("missing options argument");
  return JSON.parse(raw) as T;
}

/** Run a child's main, reporting a failure to the parent before exiting non-zero. */
export function runChild(main: () => Promise<void>): void {
  // Orphaned (the parent died without stopping us): leave at once.
  process.once("disconnect", () => process.exit(0));
  process.on("message", (message: ParentMessage) => {
    if (message.kind !== "cpu?") return;
    toParent({ kind: "cpu", micros: cpuMicros() });
  });
  main().catch((error: unknown) => {
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    try {
      toParent({ kind: "failed", message });
    } finally {
      process.exitCode = 1;
      setTimeout(() => process.exit(1), 100).unref();
    }
  });
}
