/** Subscriptions on PostgreSQL: their rows, and their deliveries enqueued in the outbox. */
import {
  SUBSCRIPTION_COLUMNS,
  subscriptionValues,
  toSubscription,
  type SubscriptionRow,
} from "../shared/subscriptions.js";
import type { StoreParams, SubscriptionRecord } from "../store.js";
import type { PgDb } from "./db.js";

export class PgSubscriptions {
  constructor(private readonly db: PgDb) {}

  async createSubscription({
    subscription,
    now,
  }: StoreParams<"createSubscription">): Promise<SubscriptionRecord> {
    const [row] = await this.db.query<SubscriptionRow>(
      `INSERT INTO {{s}}.subscriptions (${SUBSCRIPTION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)
       RETURNING ${SUBSCRIPTION_COLUMNS}`,
      subscriptionValues(subscription, now),
    );
    return toSubscription(row!);
  }

  async getSubscription({
    tenantId,
    id,
  }: StoreParams<"getSubscription">): Promise<SubscriptionRecord | null> {
    const [row] = await this.db.query<SubscriptionRow>(
      `SELECT ${SUBSCRIPTION_COLUMNS} FROM {{s}}.subscriptions WHERE tenant_id = $1 AND id = $2`,
      [tenantId, id],
    );
    return row ? toSubscription(row) : null;
  }

  async listSubscriptions({
    tenantId,
    limit,
    before,
  }: StoreParams<"listSubscriptions">): Promise<SubscriptionRecord[]> {
    const rows = await this.db.query<SubscriptionRow>(
      `SELECT ${SUBSCRIPTION_COLUMNS} FROM {{s}}.subscriptions
       WHERE tenant_id = $1 AND ($2::bigint IS NULL OR (created_at, id) < ($2, $3::text))
       ORDER BY created_at DESC, id DESC LIMIT $4`,
      [tenantId, before?.createdAt ?? null, before?.id ?? null, limit],
    );
    return rows.map(toSubscription);
  }

  /**
   * Two statements in one transaction: the delete waits for an enqueue that holds the
   * subscription (FOR SHARE, below) to commit, and the next statement's snapshot then sees that
   * enqueue's rows, so none is left pending. (One statement's snapshot would predate them.)
   */
  async deleteSubscription({ tenantId, id }: StoreParams<"deleteSubscription">): Promise<boolean> {
    const client = await this.db.pool.connect();
    try {
      await client.query("BEGIN");
      const deleted = await client.query(
        this.db.t(`DELETE FROM {{s}}.subscriptions WHERE tenant_id = $1 AND id = $2`),
        [tenantId, id],
      );
      if (deleted.rowCount !== 0)
        await client.query(
          this.db
            .t(`UPDATE {{s}}.webhook_events SET status = 'stopped', lease_token = NULL, lease_expires_at = NULL
           WHERE subscription_id = $1 AND status = 'pending'`),
          [id],
        );
      await client.query("COMMIT");
      return deleted.rowCount !== 0;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  async enqueueEventDeliveries(params: StoreParams<"enqueueEventDeliveries">): Promise<number> {
    const { event, subscriptionIds, body, now } = params;
    if (subscriptionIds.length === 0) return 0;
    // Only subscriptions that still exist, held until the commit (see deleteSubscription).
    const rows = await this.db.query<{ id: string }>(
      `INSERT INTO {{s}}.webhook_events (id, tenant_id, event, url, occurred_at, body, next_attempt_at,
         subscription_id, event_id)
       SELECT 'msg_' || replace(gen_random_uuid()::text, '-', ''), s.tenant_id, $3, s.url, $4, $5, $4, s.id, $2
       FROM {{s}}.subscriptions s WHERE s.tenant_id = $1 AND s.id = ANY($6::text[])
       FOR SHARE
       ON CONFLICT (subscription_id, event_id) WHERE subscription_id IS NOT NULL DO NOTHING
       RETURNING id`,
      [event.tenantId, event.id, event.type, now, body, [...subscriptionIds]],
    );
    if (rows.length > 0) this.db.events.emit({ kind: "outbox", at: now });
    return rows.length;
  }
}
