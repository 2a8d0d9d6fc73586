/** The statements of retention (see statements.ts). */
export const RETENTION_SQL = {
  // Deleted rows with the blob file to remove, if any.
  deleteFinished: `DELETE FROM jobs WHERE id IN (
         SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ? LIMIT ?)
       RETURNING id, CASE WHEN result_data IS NULL THEN result_location END AS blob`,
  // Finished jobs whose result retention is over, with the blob file to remove, if any.
  expiredResults: `SELECT id, CASE WHEN result_data IS NULL THEN result_location END AS blob FROM jobs
       WHERE finished_at IS NOT NULL AND finished_at < ? AND result_purged = 0 LIMIT ?`,
  purgeResult: `UPDATE jobs SET result_purged = 1, result_data = NULL, result_location = NULL WHERE id = ?`,
  purgeIdempotency: `DELETE FROM idempotency_keys WHERE created_at < ?`,
  // Finished events (and their attempts) past retention.
  purgeEvents: `DELETE FROM webhook_events WHERE id IN (
         SELECT id FROM webhook_events WHERE status <> 'pending' AND occurred_at < ? LIMIT ?)
       RETURNING id`,
  purgeAttempts: `DELETE FROM webhook_attempts WHERE event_id = ?`,
  // Events (CloudEvents) dispatched and past the jobs' retention.
  purgeCloudEvents: `DELETE FROM events WHERE seq IN (
         SELECT seq FROM events WHERE dispatched_at IS NOT NULL AND received_at < ? LIMIT ?)`,
} as const;
