/** What both drivers share about the callback outbox. */
import { randomUUID } from "node:crypto";
import type { JobStatus } from "../../jobs/states.js";
import { toJob, type JobRow } from "./rows.js";
import type { CallbackEvent, CallbackSpec, ClaimedDelivery, DeliveryAttempt, OutboxEvent } from "../store.js";

/** Delivered even when `events` does not list them: a receiver is never left waiting. */
export const ALWAYS_DELIVERED: readonly CallbackEvent[] = ["job.failed", "job.timed_out", "job.canceled"];
export const DEFAULT_EVENTS: readonly CallbackEvent[] = [
  "job.succeeded",
  "job.failed",
  "job.canceled",
  "job.timed_out",
];

export const EVENT_OF_STATUS: Partial<Record<JobStatus, CallbackEvent>> = {
  succeeded: "job.succeeded",
  failed: "job.failed",
  canceled: "job.canceled",
  timed_out: "job.timed_out",
};

/** Progress events of one job go out at most this often (coalesced: the latest state wins). */
export const PROGRESS_EVENT_INTERVAL_MS = 1000;

export function wantsEvent(callback: CallbackSpec | null, event: CallbackEvent): boolean {
  if (!callback) return false;
  return ALWAYS_DELIVERED.includes(event) || (callback.events ?? DEFAULT_EVENTS).includes(event);
}

/** A `webhook-id`: `msg_` and 32 hex digits, unique per event, the same on every attempt. */
export function newEventId(): string {
  return `msg_${randomUUID().replaceAll("-", "")}`;
}

/** An outbox row: a job's callback (job_id, job_snapshot) or a subscription's delivery. */
export interface OutboxRow {
  id: string;
  job_id: string | null;
  tenant_id: string;
  event: string;
  url: string;
  occurred_at: number;
  job_snapshot: string | null;
  body: string | null;
  attempts: number;
  subscription_id: string | null;
  event_id: string | null;
}

export interface AttemptRow {
  event_id: string;
  event: string;
  attempt: number;
  at: number;
  status_code: number | null;
  latency_ms: number;
  error: string | null;
  next_attempt_at: number | null;
}

export interface SecretRow {
  secret: string;
  previous_secret: string | null;
  previous_until: number | null;
}

export function toOutboxEvent(row: OutboxRow): OutboxEvent {
  const common = {
    id: row.id,
    tenantId: row.tenant_id,
    url: row.url,
    occurredAt: row.occurred_at,
    attempts: row.attempts,
  };
  if (row.subscription_id !== null)
    return {
      ...common,
      kind: "subscription",
      subscriptionId: row.subscription_id,
      eventId: row.event_id!,
      event: row.event,
      body: row.body!,
    };
  return {
    ...common,
    kind: "job",
    jobId: row.job_id!,
    event: row.event as CallbackEvent,
    body: row.body,
    job: toJob(JSON.parse(row.job_snapshot!) as JobRow),
  };
}

export function toAttempt(row: AttemptRow): DeliveryAttempt {
  return {
    eventId: row.event_id,
    event: row.event,
    attempt: row.attempt,
    at: row.at,
    statusCode: row.status_code,
    latencyMs: row.latency_ms,
    error: row.error,
    nextAttemptAt: row.next_attempt_at,
  };
}

/** The secrets that sign now: the current one, and the previous one until its rotation ends. */
export function secretsOf(row: SecretRow, now: number): string[] {
  return row.previous_secret !== null && (row.previous_until ?? 0) > now
    ? [row.secret, row.previous_secret]
    : [row.secret];
}

/** The events a claim of deliveries leased (to `token`), oldest first. */
export function leasedDeliveries(rows: OutboxRow[], token: string): ClaimedDelivery[] {
  return rows
    .map((row) => ({ ...toOutboxEvent(row), leaseToken: token }))
    .sort((a, b) => a.occurredAt - b.occurredAt);
}
