/** The statements of submits, reads, cancel and delete (see statements.ts). */
import { JOB_COLUMNS } from "../shared/rows.js";

export const JOBS_SQL = {
  // The job of this tenant, or none (unknown id or another tenant's: the same answer).
  getJob: `SELECT ${JOB_COLUMNS} FROM jobs WHERE tenant_id = ? AND id = ?`,
  // The inserted row.
  // Queued, or running under the lease a local worker took for it (token, expiry given).
  insertJob: `INSERT INTO jobs (id, tenant_id, type, status, input, priority, run_at, created_at, deadline_at,
         max_attempts, metadata, callback, attempt, started_at, lease_token, lease_expires_at, lifecycle_events)
       VALUES ($id, $tenant, $type, CASE WHEN $token IS NULL THEN 'queued' ELSE 'running' END, $input,
         $priority, $runAt, $now, $deadlineAt, $maxAttempts, $metadata, $callback,
         CASE WHEN $token IS NULL THEN 0 ELSE 1 END, CASE WHEN $token IS NULL THEN NULL ELSE $now END,
         $token, min($expiresAt, $deadlineAt), $lifecycle) RETURNING ${JOB_COLUMNS}`,
  // One page, newest first; the tenant bound is always applied, whatever the cursor says.
  listJobs: `SELECT ${JOB_COLUMNS} FROM jobs
       WHERE tenant_id = $tenant
         AND ($status IS NULL OR status = $status)
         AND ($type IS NULL OR type = $type)
         AND ($beforeCreated IS NULL OR created_at < $beforeCreated
              OR (created_at = $beforeCreated AND id < $beforeId))
       ORDER BY created_at DESC, id DESC LIMIT $limit`,
  getIdempotency: `SELECT request_hash, job_id FROM idempotency_keys WHERE tenant_id = ? AND key = ?`,
  insertIdempotency: `INSERT INTO idempotency_keys (tenant_id, key, request_hash, job_id, created_at) VALUES (?, ?, ?, ?, ?)`,
  deleteIdempotency: `DELETE FROM idempotency_keys WHERE tenant_id = ? AND key = ?`,
  deleteIdempotencyForJob: `DELETE FROM idempotency_keys WHERE job_id = ?`,
  deleteJob: `DELETE FROM jobs WHERE id = ?`,
  // Terminal move of an active job (cancel, deadline); no row: it was no longer active.
  finishActive: `UPDATE jobs SET status = ?, finished_at = ?, error = ?, lease_token = NULL, lease_expires_at = NULL
       WHERE id = ? AND status IN ('queued', 'running') RETURNING ${JOB_COLUMNS}`,
  // Of the given ids (a JSON array), those terminal or gone.
  terminalIds: `SELECT c.value AS id FROM json_each(?) c LEFT JOIN jobs j ON j.id = c.value
       WHERE j.id IS NULL OR j.status NOT IN ('queued', 'running')`,
} as const;
