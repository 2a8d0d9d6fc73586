/** The statements of heartbeats, releases and the sweeps (see statements.ts). */
import { JOB_COLUMNS } from "../shared/rows.js";

export const LEASES_SQL = {
  // 0 changes: the lease is gone (expired and swept, canceled, timed out).
  heartbeat: `UPDATE jobs SET lease_expires_at = min(?, deadline_at) WHERE id = ? AND lease_token = ? AND status = 'running'`,
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
} as const;
