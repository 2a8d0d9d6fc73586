/** Subscriptions on SQLite: their rows, and their deliveries enqueued in the outbox. */
import { newEventId } from "../shared/outbox.js";
import { subscriptionValues, toSubscription, type SubscriptionRow } from "../shared/subscriptions.js";
import type { StoreParams, SubscriptionRecord } from "../store.js";
import type { SqliteDb } from "./db.js";

export class SqliteSubscriptions {
  constructor(private readonly db: SqliteDb) {}

  async createSubscription({
    subscription,
    now,
  }: StoreParams<"createSubscription">): Promise<SubscriptionRecord> {
    const row = await this.db.writes.run(
      () => this.db.sql.insertSubscription.get(...subscriptionValues(subscription, now)) as SubscriptionRow,
    );
    return toSubscription(row);
  }

  async getSubscription({
    tenantId,
    id,
  }: StoreParams<"getSubscription">): Promise<SubscriptionRecord | null> {
    const row = this.db.sql.getSubscription.get(tenantId, id) as SubscriptionRow | undefined;
    return row ? toSubscription(row) : null;
  }

  async listSubscriptions({
    tenantId,
    limit,
    before,
  }: StoreParams<"listSubscriptions">): Promise<SubscriptionRecord[]> {
    const rows = this.db.sql.listSubscriptions.all({
      tenantId,
      limit,
      beforeAt: before?.createdAt ?? null,
      beforeId: before?.id ?? null,
    }) as SubscriptionRow[];
    return rows.map(toSubscription);
  }

  async deleteSubscription({ tenantId, id }: StoreParams<"deleteSubscription">): Promise<boolean> {
    return this.db.writes.run(() => {
      if (this.db.sql.deleteSubscription.run(tenantId, id).changes === 0) return false;
      this.db.sql.stopSubscriptionDeliveries.run(id);
      return true;
    });
  }

  async enqueueEventDeliveries(params: StoreParams<"enqueueEventDeliveries">): Promise<number> {
    const { event, subscriptionIds, body, now } = params;
    if (subscriptionIds.length === 0) return 0;
    const added = await this.db.writes.run(() => {
      let n = 0;
      for (const subscriptionId of subscriptionIds)
        n += this.db.sql.enqueueEventDelivery.run({
          id: newEventId(),
          tenantId: event.tenantId,
          subscriptionId,
          eventId: event.id,
          type: event.type,
          body,
          now,
        }).changes;
      return n;
    });
    if (added > 0) this.db.events.emit({ kind: "outbox", at: now });
    return added;
  }
}
