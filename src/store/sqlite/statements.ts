import { JOB_COLUMNS, KEY_COLUMNS } from "../shared/rows.js";

/** Every statement, prepared once. Each header says what it returns and what 0 rows means. */
export const STATEMENTS = {
  // The job of this tenant, or none (unknown id or another tenant's: the same answer).
  getJob: `SELECT ${JOB_COLUMNS} FROM jobs WHERE tenant_id = ? AND id = ?`,
  getResult: `SELECT status, result_kind, result_type, result_data, result_location, result_size, result_purged
       FROM jobs WHERE tenant_id = ? AND id = ?`,
  // The inserted row.
  // Queued, or running under the lease a local worker took for it (token, expiry given).
  insertJob: `INSERT INTO jobs (id, tenant_id, type, status, input, priority, run_at, created_at, deadline_at,
         max_attempts, metadata, callback, attempt, started_at, lease_token, lease_expires_at)
       VALUES ($id, $tenant, $type, CASE WHEN $token IS NULL THEN 'queued' ELSE 'running' END, $input,
         $priority, $runAt, $now, $deadlineAt, $maxAttempts, $metadata, $callback,
         CASE WHEN $token IS NULL THEN 0 ELSE 1 END, CASE WHEN $token IS NULL THEN NULL ELSE $now END,
         $token, min($expiresAt, $deadlineAt)) RETURNING ${JOB_COLUMNS}`,
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
  // The claimed rows (any order). Uses the partial index jobs_claim.
  // A lease never outlives its job's deadline (as on PostgreSQL, where the deadline sweep relies on it).
  claim: `UPDATE jobs SET status = 'running', attempt = attempt + 1, lease_token = ?, lease_expires_at = min(?, deadline_at),
         started_at = ?, progress_percent = NULL, progress_message = NULL
       WHERE id IN (
         SELECT id FROM jobs
         WHERE status = 'queued' AND run_at <= ? AND deadline_at > ? AND type IN (SELECT value FROM json_each(?))
         ORDER BY priority DESC, run_at, id LIMIT ?)
       RETURNING ${JOB_COLUMNS}`,
  // 0 changes: the lease is gone (expired and swept, canceled, timed out).
  heartbeat: `UPDATE jobs SET lease_expires_at = min(?, deadline_at) WHERE id = ? AND lease_token = ? AND status = 'running'`,
  progress: `UPDATE jobs SET progress_percent = ?, progress_message = ?
       WHERE id = ? AND lease_token = ? AND status = 'running' RETURNING ${JOB_COLUMNS}`,
  // The updated row when applied; no row: fenced.
  complete: `UPDATE jobs SET status = 'succeeded', finished_at = ?, error = NULL, lease_token = NULL,
         lease_expires_at = NULL, progress_percent = 100, result_kind = ?, result_type = ?,
         result_data = ?, result_location = ?, result_size = ?
       WHERE id = ? AND lease_token = ? AND status = 'running' RETURNING ${JOB_COLUMNS}`,
  failFinal: `UPDATE jobs SET status = 'failed', finished_at = ?, error = ?, lease_token = NULL, lease_expires_at = NULL
       WHERE id = ? AND lease_token = ? AND status = 'running' RETURNING ${JOB_COLUMNS}`,
  failRetry: `UPDATE jobs SET status = 'queued', run_at = ?, error = ?, lease_token = NULL, lease_expires_at = NULL
       WHERE id = ? AND lease_token = ? AND status = 'running' RETURNING type`,
  // Released attempts do not count against maxAttempts.
  release: `UPDATE jobs SET status = 'queued', attempt = attempt - 1, run_at = ?, lease_token = NULL,
         lease_expires_at = NULL
       WHERE id = ? AND lease_token = ? AND status = 'running' RETURNING type`,
  // A job past its deadline is the deadline sweep's: timed out, not retried.
  expiredLeases: `SELECT ${JOB_COLUMNS} FROM jobs WHERE status = 'running' AND lease_expires_at <= ?
       AND deadline_at > ? ORDER BY lease_expires_at LIMIT ?`,
  requeueExpired: `UPDATE jobs SET status = 'queued', run_at = ?, error = ?, lease_token = NULL, lease_expires_at = NULL
       WHERE id = ? AND lease_token = ? AND status = 'running'`,
  failExpired: `UPDATE jobs SET status = 'failed', finished_at = ?, error = ?, lease_token = NULL, lease_expires_at = NULL
       WHERE id = ? AND lease_token = ? AND status = 'running' RETURNING ${JOB_COLUMNS}`,
  pastDeadline: `SELECT ${JOB_COLUMNS} FROM jobs WHERE status IN ('queued', 'running') AND deadline_at <= ?
       ORDER BY deadline_at LIMIT ?`,
  // Deleted rows with the blob file to remove, if any.
  deleteFinished: `DELETE FROM jobs WHERE id IN (
         SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ? LIMIT ?)
       RETURNING id, CASE WHEN result_data IS NULL THEN result_location END AS blob`,
  // Finished jobs whose result retention is over, with the blob file to remove, if any.
  expiredResults: `SELECT id, CASE WHEN result_data IS NULL THEN result_location END AS blob FROM jobs
       WHERE finished_at IS NOT NULL AND finished_at < ? AND result_purged = 0 LIMIT ?`,
  purgeResult: `UPDATE jobs SET result_purged = 1, result_data = NULL, result_location = NULL WHERE id = ?`,
  purgeIdempotency: `DELETE FROM idempotency_keys WHERE created_at < ?`,
  nextRunAt: `SELECT min(run_at) AS run_at FROM jobs
       WHERE status = 'queued' AND run_at > created_at AND type IN (SELECT value FROM json_each(?))`,
  getTenant: `SELECT id FROM tenants WHERE name = ?`,
  insertTenant: `INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)`,
  insertKey: `INSERT INTO api_keys (id, tenant_id, prefix, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
  getKeyById: `SELECT ${KEY_COLUMNS} FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.id = ?`,
  // Any state: authentication tells live, revoked and expired apart (for the audit log only).
  getKeyByHash: `SELECT ${KEY_COLUMNS}, k.hash FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.hash = ?`,
  // The live key to rotate (not revoked, not expired at $now), or none.
  getLiveKey: `SELECT ${KEY_COLUMNS} FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
       WHERE (k.id = $key OR k.prefix = $key) AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > $now)`,
  // The rotated key expires at the end of the overlap, or sooner if it already did.
  shortenKey: `UPDATE api_keys SET expires_at = CASE WHEN expires_at IS NULL OR expires_at > $until THEN $until ELSE expires_at END
       WHERE id = $id`,
  listKeys: `SELECT ${KEY_COLUMNS} FROM api_keys k JOIN tenants t ON t.id = k.tenant_id ORDER BY k.created_at`,
  touchKey: `UPDATE api_keys SET last_used_at = ? WHERE id = ?`,
  revokeKey: `UPDATE api_keys SET revoked_at = ? WHERE (id = ? OR prefix = ?) AND revoked_at IS NULL`,
  // --- callbacks ---
  insertOutbox: `INSERT INTO webhook_events (id, job_id, tenant_id, event, url, occurred_at, job_snapshot, next_attempt_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  dropPendingProgress: `DELETE FROM webhook_events WHERE job_id = ? AND event = 'job.progress' AND status = 'pending' AND attempts = 0`,
  // Not yet handed to a deliverer: one in flight has its body rendered already, so a later
  // state gets an event of its own.
  pendingProgress: `SELECT id FROM webhook_events
       WHERE job_id = ? AND event = 'job.progress' AND status = 'pending' AND attempts = 0 AND lease_token IS NULL`,
  refreshProgress: `UPDATE webhook_events SET job_snapshot = ?, occurred_at = ? WHERE id = ?`,
  lastProgress: `SELECT max(occurred_at) AS at FROM webhook_events WHERE job_id = ? AND event = 'job.progress'`,
  // The leased events; another deliverer's live lease keeps an event out.
  claimDeliveries: `UPDATE webhook_events SET lease_token = ?, lease_expires_at = ?
       WHERE id IN (
         SELECT id FROM webhook_events
         WHERE status = 'pending' AND next_attempt_at <= ? AND (lease_expires_at IS NULL OR lease_expires_at <= ?)
           AND tenant_id NOT IN (SELECT value FROM json_each(?))
         ORDER BY next_attempt_at, id LIMIT ?)
       RETURNING *`,
  // 0 changes: the lease was lost.
  recordDelivery: `UPDATE webhook_events SET body = coalesce(body, ?), attempts = ?, status = ?,
         next_attempt_at = coalesce(?, next_attempt_at), lease_token = NULL, lease_expires_at = NULL
       WHERE id = ? AND lease_token = ? RETURNING job_id`,
  insertAttempt: `INSERT INTO webhook_attempts (event_id, attempt, job_id, event, at, status_code, latency_ms, error, next_attempt_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  listDeliveries: `SELECT a.* FROM webhook_attempts a JOIN webhook_events e ON e.id = a.event_id
       WHERE a.job_id = ? AND e.tenant_id = ? ORDER BY a.at, a.event_id, a.attempt`,
  // Of the given ids (a JSON array), those terminal or gone.
  terminalIds: `SELECT c.value AS id FROM json_each(?) c LEFT JOIN jobs j ON j.id = c.value
       WHERE j.id IS NULL OR j.status NOT IN ('queued', 'running')`,
  nextDeliveryAt: `SELECT min(next_attempt_at) AS at FROM webhook_events WHERE status = 'pending'`,
  // Finished events (and their attempts) past retention.
  purgeEvents: `DELETE FROM webhook_events WHERE id IN (
         SELECT id FROM webhook_events WHERE status <> 'pending' AND occurred_at < ? LIMIT ?)
       RETURNING id`,
  purgeAttempts: `DELETE FROM webhook_attempts WHERE event_id = ?`,
  getSecrets: `SELECT secret, previous_secret, previous_until FROM webhook_secrets WHERE tenant_id = ?`,
  insertSecret: `INSERT INTO webhook_secrets (tenant_id, secret, updated_at) VALUES (?, ?, ?) ON CONFLICT (tenant_id) DO NOTHING`,
  rotateSecret: `INSERT INTO webhook_secrets (tenant_id, secret, updated_at) VALUES ($tenant, $secret, $now)
       ON CONFLICT (tenant_id) DO UPDATE SET previous_secret = secret, previous_until = $until,
         secret = $secret, updated_at = $now`,
} as const;
