/** The statements of the outbox rows a move owes (see statements.ts). */
export const OUTBOX_SQL = {
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
} as const;
