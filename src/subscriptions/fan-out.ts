/** An event's deliveries to the subscriptions of its tenant that match it. */
import type { NewEvent, Store, SubscriptionRecord } from "../store/store.js";
import { subscriptionMatches, webhookBody } from "./subscription.js";

const PAGE = 500;

/**
 * Enqueue the event's delivery to each matching subscription, once per (subscription, event)
 * however often the event is dispatched; resolves to how many were new. No write when none
 * matches.
 */
export async function enqueueSubscriptionDeliveries(
  store: Store,
  event: NewEvent,
  now: number,
): Promise<number> {
  const matching: string[] = [];
  let page: SubscriptionRecord[];
  let before: { createdAt: number; id: string } | undefined;
  do {
    page = await store.listSubscriptions({
      tenantId: event.tenantId,
      limit: PAGE,
      ...(before ? { before } : {}),
    });
    for (const subscription of page)
      if (subscriptionMatches(subscription, event)) matching.push(subscription.id);
    const last = page[page.length - 1];
    before = last && { createdAt: last.createdAt, id: last.id };
  } while (page.length === PAGE);
  if (matching.length === 0) return 0;
  return store.enqueueEventDeliveries({
    event: { tenantId: event.tenantId, id: event.id, type: event.type },
    subscriptionIds: matching,
    body: webhookBody(event),
    now,
  });
}
