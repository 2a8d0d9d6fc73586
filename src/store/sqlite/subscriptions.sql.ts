/** The statements of subscriptions and their deliveries (see statements.ts). */
import { SUBSCRIPTION_COLUMNS } from "../shared/subscriptions.js";

export const SUBSCRIPTIONS_SQL = {
  insertSubscription: `INSERT INTO subscriptions (${SUBSCRIPTION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)
       RETURNING ${SUBSCRIPTION_COLUMNS}`,
  getSubscription: `SELECT ${SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE tenant_id = ? AND id = ?`,
  // The tenant's, newest first, before a place ($beforeAt null: from the newest).
  listSubscriptions: `SELECT ${SUBSCRIPTION_COLUMNS} FROM subscriptions
       WHERE tenant_id = $tenantId
         AND ($beforeAt IS NULL OR created_at < $beforeAt OR (created_at = $beforeAt AND id < $beforeId))
       ORDER BY created_at DESC, id DESC LIMIT $limit`,
  // 0 changes: not found (or another tenant's).
  deleteSubscription: `DELETE FROM subscriptions WHERE tenant_id = ? AND id = ?`,
  // Its pending deliveries end; a lease cleared means an attempt in flight records nothing.
  stopSubscriptionDeliveries: `UPDATE webhook_events SET status = 'stopped', lease_token = NULL, lease_expires_at = NULL
       WHERE subscription_id = ? AND status = 'pending'`,
  // 0 changes: the subscription is gone, or this event was enqueued for it already.
  enqueueEventDelivery: `INSERT INTO webhook_events (id, tenant_id, event, url, occurred_at, body, next_attempt_at,
         subscription_id, event_id)
       SELECT $id, s.tenant_id, $type, s.url, $now, $body, $now, s.id, $eventId
       FROM subscriptions s WHERE s.tenant_id = $tenantId AND s.id = $subscriptionId
       ON CONFLICT (subscription_id, event_id) WHERE subscription_id IS NOT NULL DO NOTHING`,
} as const;
