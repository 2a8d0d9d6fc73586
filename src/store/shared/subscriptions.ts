/** Subscriptions' rows as both drivers keep them (types and filter as JSON text). */
import type { NewSubscription, SubscriptionRecord } from "../store.js";

export interface SubscriptionRow {
  id: string;
  tenant_id: string;
  url: string;
  types: string;
  filter: string | null;
  created_at: number;
}

export const SUBSCRIPTION_COLUMNS = "id, tenant_id, url, types, filter, created_at";

/** The values of SUBSCRIPTION_COLUMNS, in that order. */
export function subscriptionValues(subscription: NewSubscription, now: number): unknown[] {
  return [
    subscription.id,
    subscription.tenantId,
    subscription.url,
    JSON.stringify(subscription.types),
    subscription.filter === null ? null : JSON.stringify(subscription.filter),
    now,
  ];
}

export function toSubscription(row: SubscriptionRow): SubscriptionRecord {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    url: row.url,
    types: JSON.parse(row.types) as string[],
    filter: row.filter === null ? null : (JSON.parse(row.filter) as SubscriptionRecord["filter"]),
    createdAt: row.created_at,
  };
}
