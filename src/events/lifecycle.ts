/**
 * The job lifecycle's own events: `tessera.job.succeeded|failed|canceled|timed_out`, one per job
 * (terminal states are final), kept in the commit of the job's terminal move, never before it.
 * Only jobs submitted with `lifecycleEvents` have them, so that jobs nobody listens to pay
 * nothing. The SQLite driver and the worker make them with `lifecycleEvent`; the PostgreSQL
 * statements with LIFECYCLE (src/store/postgres/sql.ts), which the store suite holds to the
 * same output.
 */
import { createHash } from "node:crypto";
import { RESERVED_KEY_PREFIX } from "../http/idempotency.js";
import type { JobProblem } from "../jobs/errors.js";
import type { JobRecord, NewEvent, NewJob } from "../store/store.js";
import type { EventTrigger } from "./triggers.js";

/** The types of lifecycle events begin so; refused from clients and from `ctx.emit`. */
export const LIFECYCLE_TYPE_PREFIX = "tessera.job.";

export type TerminalStatus = "succeeded" | "failed" | "canceled" | "timed_out";

/** A lifecycle event's data: small, no result inline. */
export interface LifecycleData {
  id: string;
  type: string;
  status: TerminalStatus;
  attempt: number;
  /** The problem, as the job's representation shows it (failed, timed_out, canceled). */
  error?: JobProblem;
  /** Succeeded: the path of its result resource, on the server's origin (an API key reads it). */
  result?: string;
}

/** One per job: its terminal status names it, in Tessera's own namespace (refused from clients). */
export function lifecycleEventId(jobId: string, status: TerminalStatus): string {
  return `${RESERVED_KEY_PREFIX}${jobId}-${status}`;
}

/**
 * The event of `job`'s move to `status` at `at` (the move's time); `job` as the move left it.
 * Its hash is of its id (PostgreSQL makes the same in SQL): no client sends one, and each id
 * has one event.
 */
export function lifecycleEvent(
  job: Pick<JobRecord, "id" | "tenantId" | "type" | "attempt" | "error">,
  status: TerminalStatus,
  at: number,
): NewEvent {
  const id = lifecycleEventId(job.id, status);
  const data: LifecycleData = { id: job.id, type: job.type, status, attempt: job.attempt };
  if (status === "succeeded") data.result = `/v1/jobs/${job.id}/result`;
  else if (job.error) data.error = job.error;
  return {
    tenantId: job.tenantId,
    id,
    source: `/jobs/${job.type}`,
    type: `${LIFECYCLE_TYPE_PREFIX}${status}`,
    subject: job.id,
    time: at,
    datacontenttype: "application/json",
    data,
    traceparent: null,
    extensions: {},
    hash: createHash("sha256").update(id).digest("base64url"),
  };
}

/**
 * Whether a job gets lifecycle events, decided at submit. Rules are or'ed: the configuration,
 * the triggers, and later ones (a tenant's webhook subscription to `tessera.job.*`, a broker
 * bridge) are one more predicate each.
 */
export type LifecycleRule = (job: Pick<NewJob, "tenantId" | "type">) => boolean;

/** On for the jobs some trigger may be started by: by type, and by `source` when it filters on it. */
export function triggerRule(triggers: readonly EventTrigger[]): LifecycleRule {
  const listening = triggers.filter((t) => t.type.startsWith(LIFECYCLE_TYPE_PREFIX));
  if (listening.length === 0) return () => false;
  const byType = new Map<string, boolean>();
  return ({ type }) => {
    let on = byType.get(type);
    if (on === undefined) {
      const source = `/jobs/${type}`;
      on = listening.some(({ filter }) => {
        const wanted = filter?.source;
        if (wanted === undefined) return true;
        if (typeof wanted === "string") return wanted === source;
        return "prefix" in wanted ? source.startsWith(wanted.prefix) : source.endsWith(wanted.suffix);
      });
      byType.set(type, on);
    }
    return on;
  };
}

/** The submit with the job marked when a rule asks for its lifecycle events. */
export function withLifecycle<P extends { job: NewJob }>(params: P, rule: LifecycleRule): P {
  if (params.job.lifecycleEvents !== undefined || !rule(params.job)) return params;
  return { ...params, job: { ...params.job, lifecycleEvents: true } };
}
