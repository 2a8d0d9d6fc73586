/** The job types the benchmark runs, and the jobs it inserts directly through the store. */
import Database from "better-sqlite3";
import { defineJob, type JobDefinition } from "../dist/jobs/define.js";
import { newJobId } from "../dist/jobs/ids.js";
import type { NewJob, Store } from "../dist/store/store.js";
import type { DrainResult } from "./protocol.js";

export const NOOP_TYPE = "bench.noop";
export const PROBE_TYPE = "bench.probe";

/** A no-op job; `onRun` sees every handler invocation (to count repeats). */
export function noopJob(onRun: (jobId: string) => void = () => undefined): JobDefinition {
  return defineJob({
    type: NOOP_TYPE,
    description: "Does nothing (benchmark)",
    input: {},
    maxAttempts: 1,
    run: (_input: unknown, ctx) => {
      onRun(ctx.jobId);
      return null;
    },
  }) as JobDefinition;
}

/** A no-op job that reports when its handler starts, for the submit-to-start latency. */
export function probeJob(onStart: (jobId: string) => void): JobDefinition {
  return defineJob({
    type: PROBE_TYPE,
    description: "Reports its start (benchmark)",
    input: {},
    maxAttempts: 1,
    run: (_input: unknown, ctx) => {
      onStart(ctx.jobId);
      return null;
    },
  }) as JobDefinition;
}

export function newNoopJob(tenantId: string, now: number): NewJob {
  return {
    id: newJobId(now, tenantId),
    tenantId,
    type: NOOP_TYPE,
    input: {},
    priority: 0,
    runAt: now,
    deadlineAt: now + 3_600_000,
    maxAttempts: 1,
    metadata: {},
    callback: null,
  };
}

/** Insert `count` queued no-op jobs through `store.submit`, up to one group commit at a time. */
export async function insertNoopJobs(store: Store, tenantId: string, count: number): Promise<void> {
  const BATCH = 1000; // the group commit's largest transaction
  for (let done = 0; done < count; done += BATCH) {
    const now = Date.now();
    const size = Math.min(BATCH, count - done);
    await Promise.all(
      Array.from({ length: size }, () =>
        store.submit({ job: newNoopJob(tenantId, now), idempotency: null, now }),
      ),
    );
  }
}

/**
 * A view of `store` whose `submit` and `claim` report to the given observers after they
 * resolve; everything else is the store itself.
 */
export function observeStore(
  store: Store,
  observers: {
    submitted?: (job: NewJob) => void;
    claimed?: (limit: number, got: number) => void;
  },
): Store {
  return new Proxy(store, {
    get(target, property) {
      if (property === "submit" && observers.submitted) {
        const submitted = observers.submitted;
        const submit: Store["submit"] = async (params) => {
          const outcome = await target.submit(params);
          submitted(params.job);
          return outcome;
        };
        return submit;
      }
      if (property === "claim" && observers.claimed) {
        const claimed = observers.claimed;
        const claim: Store["claim"] = async (params) => {
          const jobs = await target.claim(params);
          claimed(params.limit, jobs.length);
          return jobs;
        };
        return claim;
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** Rows per (status, attempt) of the jobs table, read on a separate connection after a drain. */
export function finalRows(path: string): DrainResult["finalRows"] {
  const db = new Database(path, { readonly: true });
  try {
    return db
      .prepare(
        "SELECT status, attempt, count(*) AS count FROM jobs GROUP BY status, attempt ORDER BY status, attempt",
      )
      .all() as DrainResult["finalRows"];
  } finally {
    db.close();
  }
}
