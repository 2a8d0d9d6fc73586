/**
 * Row shapes and their mapping to records, shared by the drivers: both keep the same columns
 * (times as epoch milliseconds, JSON as text), so one mapping serves both.
 */
import type { JobProblem } from "../../jobs/errors.js";
import type { JobStatus } from "../../jobs/states.js";
import type { ApiKeyRecord, ApiKeyState, ClaimedJob, JobRecord, StoredApiKey } from "../store.js";

export interface JobRow {
  id: string;
  tenant_id: string;
  type: string;
  status: JobStatus;
  input: string;
  priority: number;
  run_at: number;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  deadline_at: number;
  attempt: number;
  max_attempts: number;
  lease_token: string | null;
  lease_expires_at: number | null;
  progress_percent: number | null;
  progress_message: string | null;
  error: string | null;
  metadata: string;
  callback: string | null;
  result_purged: number | boolean;
  lifecycle_events: number | boolean;
}

export interface KeyRow {
  id: string;
  tenant_id: string;
  tenant_name: string;
  prefix: string;
  created_at: number;
  revoked_at: number | null;
  last_used_at: number | null;
  expires_at: number | null;
}

/** A key row as the authentication lookup reads it: with its hash, to compare in constant time. */
export interface KeyRowWithHash extends KeyRow {
  hash: string;
}

/** Columns every job read selects (never the result bytes). */
export const JOB_COLUMNS = `id, tenant_id, type, status, input, priority, run_at, created_at, started_at,
  finished_at, deadline_at, attempt, max_attempts, lease_token, lease_expires_at, progress_percent,
  progress_message, error, metadata, callback, result_purged, lifecycle_events`;

export const KEY_COLUMNS = `k.id, k.tenant_id, t.name AS tenant_name, k.prefix, k.created_at, k.revoked_at, k.last_used_at,
  k.expires_at`;

/** last_used_at is advisory: touching it at most once a minute keeps auth off the write path. */
export const KEY_TOUCH_INTERVAL_MS = 60_000;

export function toJob(row: JobRow): JobRecord {
  const job: JobRecord = {
    id: row.id,
    tenantId: row.tenant_id,
    type: row.type,
    status: row.status,
    input: JSON.parse(row.input) as unknown,
    priority: row.priority,
    runAt: row.run_at,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    deadlineAt: row.deadline_at,
    attempt: row.attempt,
    maxAttempts: row.max_attempts,
    progressPercent: row.progress_percent,
    progressMessage: row.progress_message,
    error: row.error === null ? null : (JSON.parse(row.error) as JobProblem),
    metadata: JSON.parse(row.metadata) as Record<string, string>,
    callback: row.callback === null ? null : (JSON.parse(row.callback) as JobRecord["callback"]),
    resultPurged: row.result_purged === 1 || row.result_purged === true,
  };
  if (row.lifecycle_events === 1 || row.lifecycle_events === true) job.lifecycleEvents = true;
  return job;
}

/**
 * What a claim returns of each row (PostgreSQL), 14 columns of 22: the others hold what the
 * claim set them to (running, started now, under its lease, no progress) or what every queued
 * job holds (not finished, result not purged). A batch of 500 jobs parses 4,000 fields fewer.
 */
export const CLAIM_COLUMNS = `id, tenant_id, type, input, priority, run_at, created_at, deadline_at, attempt,
  max_attempts, error, metadata, callback, lifecycle_events`;

export type ClaimRow = Pick<
  JobRow,
  | "id"
  | "tenant_id"
  | "type"
  | "input"
  | "priority"
  | "run_at"
  | "created_at"
  | "deadline_at"
  | "attempt"
  | "max_attempts"
  | "error"
  | "metadata"
  | "callback"
  | "lifecycle_events"
>;

/** A job as a claim at `now` under `leaseToken` left it (see CLAIM_COLUMNS). */
export function claimedJob(
  row: ClaimRow,
  leaseToken: string,
  leaseExpiresAt: number,
  now: number,
): ClaimedJob {
  const job: ClaimedJob = {
    id: row.id,
    tenantId: row.tenant_id,
    type: row.type,
    status: "running",
    input: JSON.parse(row.input) as unknown,
    priority: row.priority,
    runAt: row.run_at,
    createdAt: row.created_at,
    startedAt: now,
    finishedAt: null,
    deadlineAt: row.deadline_at,
    attempt: row.attempt,
    maxAttempts: row.max_attempts,
    progressPercent: null,
    progressMessage: null,
    error: row.error === null ? null : (JSON.parse(row.error) as JobProblem),
    metadata: JSON.parse(row.metadata) as Record<string, string>,
    callback: row.callback === null ? null : (JSON.parse(row.callback) as JobRecord["callback"]),
    resultPurged: false,
    leaseToken,
    // The statement capped each lease at its job's deadline.
    leaseExpiresAt: Math.min(leaseExpiresAt, row.deadline_at),
  };
  if (row.lifecycle_events === true || row.lifecycle_events === 1) job.lifecycleEvents = true;
  return job;
}

/** A claimed row: the job under the claim's lease (one object: a claim maps every row). */
export function toClaimedJob(row: JobRow, leaseToken: string, leaseExpiresAt: number): ClaimedJob {
  const job = toJob(row) as ClaimedJob;
  job.leaseToken = leaseToken;
  job.leaseExpiresAt = leaseExpiresAt;
  return job;
}

export function toKey(row: KeyRow): ApiKeyRecord {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    tenantName: row.tenant_name,
    prefix: row.prefix,
    createdAt: row.created_at,
    revokedAt: row.revoked_at,
    lastUsedAt: row.last_used_at,
    expiresAt: row.expires_at,
  };
}

/** Whether a key authenticates at `now`; revoked wins over expired. */
export function keyState(key: ApiKeyRecord, now: number): ApiKeyState {
  if (key.revokedAt !== null) return "revoked";
  if (key.expiresAt !== null && key.expiresAt <= now) return "expired";
  return "live";
}

/** A key found by its hash, and whether its advisory last_used_at is due a write (live keys only). */
export function lookedUpKey(row: KeyRowWithHash, now: number): { key: StoredApiKey; touch: boolean } {
  const key = toStoredKey(row, now);
  const stale = row.last_used_at === null || row.last_used_at < now - KEY_TOUCH_INTERVAL_MS;
  return { key, touch: key.state === "live" && stale };
}

export function toStoredKey(row: KeyRowWithHash, now: number): StoredApiKey {
  const key = toKey(row);
  return { ...key, hash: row.hash, state: keyState(key, now) };
}

/** Claim order: priority DESC, run_at, id (RETURNING gives no order). */
export function claimOrder(a: JobRecord, b: JobRecord): number {
  return b.priority - a.priority || a.runAt - b.runAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
