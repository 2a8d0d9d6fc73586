/** What every system of the PostgreSQL comparison implements, and the bookkeeping they share. */
import { setTimeout as sleep } from "node:timers/promises";
import { distribution, type Distribution } from "../stats.js";

export type PeerName = "tessera-pg" | "pg-boss" | "graphile-worker" | "bullmq";

export interface PeerOptions {
  /** PostgreSQL URL (every system but BullMQ). */
  connectionString: string;
  /** Redis URL (BullMQ). */
  redisUrl: string;
  /** A fresh name for this run: the schema (PostgreSQL) or queue (BullMQ), dropped afterwards. */
  namespace: string;
  jobs: number;
  warmupJobs: number;
  concurrency: number;
  latencySamples: number;
  latencyWarmup: number;
  timeoutMs: number;
}

/** One drain of pre-inserted no-op jobs. */
export interface PeerDrain {
  insertMs: number;
  /** From starting the workers to the last completion being recorded in the store. */
  drainMs: number;
  cpuUs: number;
  /** CPU of the database (or Redis) server's processes during the drain; NaN off Linux. */
  serverCpuUs: number;
  /** Distinct jobs whose handler ran, extra runs, jobs that never ran. */
  handled: number;
  repeated: number;
  lost: number;
  /** What the store says afterwards, e.g. { completed: 10000 }. */
  finalStates: Record<string, number>;
}

/** Submit-to-start on an idle worker, sequential probes. */
export interface PeerLatency {
  /**
   * From the submit call resolving (the job is durable) to the handler starting; 0 when the
   * handler started before the call returned (a job handed straight to an idle worker).
   */
  distribution: Distribution;
  /** From the submit call to the handler starting: the durable insert included. */
  fromCall: Distribution;
  /** Probe jobs that did not start within the timeout, or started more than once. */
  lost: number;
  repeated: number;
}

export interface PeerResult {
  system: PeerName;
  version: string;
  /** How the system was tuned, one line each. */
  tuning: string[];
  jobs: number;
  concurrency: number;
  insertMs: number;
  drainMs: number;
  jobsPerSec: number;
  cpuUsPerJob: number;
  serverCpuUsPerJob: number;
  handled: number;
  repeated: number;
  lost: number;
  finalStates: Record<string, number>;
  latency: PeerLatency;
}

export interface Peer {
  readonly name: PeerName;
  readonly version: string;
  readonly tuning: string[];
  /** Prepare the namespace (schema, queue); called once. */
  setUp(options: PeerOptions): Promise<void>;
  /** Insert `jobs` no-op jobs, then start workers and time the drain. */
  drain(options: PeerOptions, jobs: number): Promise<PeerDrain>;
  /** Sequential probe jobs on an idle worker. */
  latency(options: PeerOptions): Promise<PeerLatency>;
  /** Drop everything this peer created; safe to call after a failure. */
  tearDown(options: PeerOptions): Promise<void>;
}

/** Counts handler runs per job key and checks them against the keys that were inserted. */
export class RunCounter {
  private readonly runs = new Map<string, number>();
  private readonly firstRunAt = new Map<string, number>();
  private readonly waiters = new Map<string, () => void>();

  record(key: string): void {
    this.runs.set(key, (this.runs.get(key) ?? 0) + 1);
    if (!this.firstRunAt.has(key)) this.firstRunAt.set(key, performance.now());
    const waiter = this.waiters.get(key);
    if (waiter) {
      this.waiters.delete(key);
      waiter();
    }
  }

  get distinct(): number {
    return this.runs.size;
  }

  /** When `key`'s handler first started (performance.now()), if it has. */
  startedAt(key: string): number | undefined {
    return this.firstRunAt.get(key);
  }

  /** Resolves when `key` has run (at once if it already has); false after `timeoutMs`. */
  started(key: string, timeoutMs: number): Promise<boolean> {
    if (this.runs.has(key)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(key);
        resolve(false);
      }, timeoutMs);
      this.waiters.set(key, () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Handled, repeated and lost, against the keys expected to run exactly once. */
  check(expected: Iterable<string>): { handled: number; repeated: number; lost: number } {
    let lost = 0;
    let handled = 0;
    let repeated = 0;
    const known = new Set<string>();
    for (const key of expected) {
      known.add(key);
      const n = this.runs.get(key) ?? 0;
      if (n === 0) lost++;
      else handled++;
      repeated += Math.max(0, n - 1);
    }
    // A run of a key nobody inserted is counted as a repeat: it should never happen.
    for (const [key, n] of this.runs) if (!known.has(key)) repeated += n;
    return { handled, repeated, lost };
  }
}

/** Poll `done` every `everyMs` until it is true; throws after `timeoutMs`. */
export async function until(
  what: string,
  done: () => Promise<boolean> | boolean,
  timeoutMs: number,
  everyMs = 10,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`${what}: not done within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

/** Keys "0" … "n-1", the payload each peer's jobs carry. */
export function keys(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${i}`);
}

/**
 * Submit-to-start on an idle worker: submit one probe, wait for its handler to start, let the
 * worker settle, submit the next. Measured from `submit` resolving to the handler starting.
 */
export async function sequentialLatency(
  options: PeerOptions,
  counter: RunCounter,
  /** Submit probe number `i`; resolves (once the submit is durable) to the key its handler records. */
  submit: (i: number) => Promise<string>,
  settleMs = 5,
): Promise<PeerLatency> {
  const afterAck: number[] = [];
  const fromCall: number[] = [];
  const probes: string[] = [];
  let lost = 0;
  for (let i = 0; i < options.latencyWarmup + options.latencySamples; i++) {
    const calledAt = performance.now();
    const key = await submit(i);
    probes.push(key);
    const submittedAt = performance.now();
    if (!(await counter.started(key, 10_000))) {
      lost++;
      continue;
    }
    await sleep(settleMs);
    if (i < options.latencyWarmup) continue;
    const startedAt = counter.startedAt(key)!;
    afterAck.push(Math.max(0, startedAt - submittedAt));
    fromCall.push(startedAt - calledAt);
  }
  const { repeated } = counter.check(probes);
  return { distribution: distribution(afterAck), fromCall: distribution(fromCall), lost, repeated };
}
