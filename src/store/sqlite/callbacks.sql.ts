/** The statements of deliveries and webhook secrets (see statements.ts). */
export const CALLBACKS_SQL = {
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
  nextDeliveryAt: `SELECT min(next_attempt_at) AS at FROM webhook_events WHERE status = 'pending'`,
  getSecrets: `SELECT secret, previous_secret, previous_until FROM webhook_secrets WHERE tenant_id = ?`,
  insertSecret: `INSERT INTO webhook_secrets (tenant_id, secret, updated_at) VALUES (?, ?, ?) ON CONFLICT (tenant_id) DO NOTHING`,
  rotateSecret: `INSERT INTO webhook_secrets (tenant_id, secret, updated_at) VALUES ($tenant, $secret, $now)
       ON CONFLICT (tenant_id) DO UPDATE SET previous_secret = secret, previous_until = $until,
         secret = $secret, updated_at = $now`,
} as const;
