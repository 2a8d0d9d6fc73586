/** The statements of claims, progress, completions and failures (see statements.ts). */
import { JOB_COLUMNS } from "../shared/rows.js";

export const CLAIMS_SQL = {
  // The claimed rows (any order). Uses the partial index jobs_claim.
  // A lease never outlives its job's deadline (as on PostgreSQL, where the deadline sweep relies on it).
  claim: `UPDATE jobs SET status = 'running', attempt = attempt + 1, lease_token = ?, lease_expires_at = min(?, deadline_at),
         started_at = ?, progress_percent = NULL, progress_message = NULL
       WHERE id IN (
         SELECT id FROM jobs
         WHERE status = 'queued' AND run_at <= ? AND deadline_at > ? AND type IN (SELECT value FROM json_each(?))
         ORDER BY priority DESC, run_at, id LIMIT ?)
       RETURNING ${JOB_COLUMNS}`,
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
  nextRunAt: `SELECT min(run_at) AS run_at FROM jobs
       WHERE status = 'queued' AND run_at > created_at AND type IN (SELECT value FROM json_each(?))`,
} as const;
