import { describe, expect, it } from "vitest";
import type { ClaimedDelivery, NewSubscription } from "../../../src/store/store.js";
import { newSubscriptionId } from "../../../src/subscriptions/subscription.js";
import { LEASE_MS, OTHER_TENANT, T0, TENANT, leaseOf, submitAndClaim, type SuiteContext } from "./context.js";

const URL_S = "https://receiver.example/events";

function subscription(overrides: Partial<NewSubscription> = {}): NewSubscription {
  return {
    id: newSubscriptionId(),
    tenantId: TENANT,
    url: URL_S,
    types: ["orders.created"],
    filter: null,
    ...overrides,
  };
}

const order = (id: string) => ({ tenantId: TENANT, id, type: "orders.created" });

/** Subscriptions, and their deliveries in the outbox beside jobs' callbacks. */
export function describeSubscriptions(ctx: SuiteContext): void {
  const claimAll = (now = T0 + 60_000) => ctx.store.claimDeliveries({ limit: 100, leaseMs: LEASE_MS, now });

  describe("subscriptions", () => {
    it("keeps a subscription as sent, the tenant's own only", async () => {
      const sent = subscription({ types: ["a", "b"], filter: { subject: { prefix: "eu-" }, region: "eu" } });
      const created = await ctx.store.createSubscription({ subscription: sent, now: T0 });
      expect(created).toEqual({ ...sent, createdAt: T0 });
      expect(await ctx.store.getSubscription({ tenantId: TENANT, id: sent.id })).toEqual(created);
      expect(await ctx.store.getSubscription({ tenantId: OTHER_TENANT, id: sent.id })).toBeNull();
      expect(await ctx.store.listSubscriptions({ tenantId: OTHER_TENANT, limit: 10 })).toEqual([]);
      expect(await ctx.store.deleteSubscription({ tenantId: OTHER_TENANT, id: sent.id, now: T0 })).toBe(
        false,
      );
      expect(await ctx.store.getSubscription({ tenantId: TENANT, id: sent.id })).toEqual(created);
    });

    it("lists newest first, ties by id, in pages", async () => {
      const made = [];
      for (const [i, at] of [T0, T0 + 1, T0 + 1, T0 + 2].entries())
        made.push(
          await ctx.store.createSubscription({ subscription: subscription({ types: [`t${i}`] }), now: at }),
        );
      const order = [...made].sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1));
      const first = await ctx.store.listSubscriptions({ tenantId: TENANT, limit: 2 });
      expect(first.map((s) => s.id)).toEqual(order.slice(0, 2).map((s) => s.id));
      const last = first[1]!;
      const rest = await ctx.store.listSubscriptions({
        tenantId: TENANT,
        limit: 10,
        before: { createdAt: last.createdAt, id: last.id },
      });
      expect(rest.map((s) => s.id)).toEqual(order.slice(2).map((s) => s.id));
    });

    it("enqueues an event's delivery once per subscription, however often it is asked", async () => {
      const a = await ctx.store.createSubscription({ subscription: subscription(), now: T0 });
      const b = await ctx.store.createSubscription({
        subscription: subscription({ url: `${URL_S}/b` }),
        now: T0,
      });
      const params = {
        event: order("e1"),
        subscriptionIds: [a.id, b.id],
        body: '{"type":"orders.created"}',
        now: T0 + 5,
      };
      expect(await ctx.store.enqueueEventDeliveries(params)).toBe(2);
      expect(await ctx.store.enqueueEventDeliveries({ ...params, now: T0 + 6 })).toBe(0);
      const claimed = await claimAll();
      expect(claimed).toHaveLength(2);
      const byUrl = Object.fromEntries(claimed.map((d) => [d.url, d]));
      expect(byUrl[URL_S]).toMatchObject({
        kind: "subscription",
        subscriptionId: a.id,
        eventId: "e1",
        event: "orders.created",
        tenantId: TENANT,
        occurredAt: T0 + 5,
        attempts: 0,
        body: '{"type":"orders.created"}',
      });
      expect(byUrl[`${URL_S}/b`]).toMatchObject({ subscriptionId: b.id });
      expect(claimed[0]!.id).toMatch(/^msg_[0-9a-f]{32}$/);
    });

    it("enqueues nothing for a subscription that is gone or another tenant's", async () => {
      const mine = await ctx.store.createSubscription({ subscription: subscription(), now: T0 });
      const theirs = await ctx.store.createSubscription({
        subscription: subscription({ tenantId: OTHER_TENANT }),
        now: T0,
      });
      expect(await ctx.store.deleteSubscription({ tenantId: TENANT, id: mine.id, now: T0 })).toBe(true);
      expect(
        await ctx.store.enqueueEventDeliveries({
          event: order("e1"),
          subscriptionIds: [mine.id, theirs.id],
          body: "{}",
          now: T0,
        }),
      ).toBe(0);
      expect(await claimAll()).toEqual([]);
    });

    it("delete stops the pending deliveries; one in flight records nothing", async () => {
      const s = await ctx.store.createSubscription({ subscription: subscription(), now: T0 });
      for (const id of ["e1", "e2"])
        await ctx.store.enqueueEventDeliveries({
          event: order(id),
          subscriptionIds: [s.id],
          body: "{}",
          now: T0,
        });
      const [inFlight] = await ctx.store.claimDeliveries({ limit: 1, leaseMs: LEASE_MS, now: T0 + 1 });
      expect(await ctx.store.deleteSubscription({ tenantId: TENANT, id: s.id, now: T0 + 2 })).toBe(true);
      expect(await ctx.store.getSubscription({ tenantId: TENANT, id: s.id })).toBeNull();
      expect(await ctx.store.nextDeliveryAt()).toBeNull();
      expect(await claimAll(T0 + 10 * LEASE_MS)).toEqual([]);
      const recorded = await ctx.store.recordDelivery({
        eventId: inFlight!.id,
        leaseToken: inFlight!.leaseToken,
        body: "{}",
        outcome: "retry",
        attempt: {
          eventId: inFlight!.id,
          event: inFlight!.event,
          attempt: 1,
          at: T0 + 3,
          statusCode: 500,
          latencyMs: 1,
          error: "HTTP 500",
          nextAttemptAt: T0 + 1000,
        },
      });
      expect(recorded).toBe(false);
      expect(await ctx.store.deleteSubscription({ tenantId: TENANT, id: s.id, now: T0 + 4 })).toBe(false);
    });

    it("records a subscription's attempts, and leaves jobs' callbacks as they were", async () => {
      const s = await ctx.store.createSubscription({ subscription: subscription(), now: T0 });
      await ctx.store.enqueueEventDeliveries({
        event: order("e1"),
        subscriptionIds: [s.id],
        body: "{}",
        now: T0,
      });
      const job = await submitAndClaim(ctx.store, { callback: { url: "https://receiver.example/jobs" } });
      await ctx.store.complete({ lease: leaseOf(job), result: { kind: "none" }, now: T0 + 1 });
      const claimed = await claimAll();
      expect(claimed.map((d) => d.kind).sort()).toEqual(["job", "subscription"]);
      const delivery = claimed.find((d) => d.kind === "subscription") as ClaimedDelivery;
      expect(
        await ctx.store.recordDelivery({
          eventId: delivery.id,
          leaseToken: delivery.leaseToken,
          body: "{}",
          outcome: "delivered",
          attempt: {
            eventId: delivery.id,
            event: delivery.event,
            attempt: 1,
            at: T0 + 2,
            statusCode: 204,
            latencyMs: 3,
            error: null,
            nextAttemptAt: null,
          },
        }),
      ).toBe(true);
      const callback = claimed.find((d) => d.kind === "job");
      expect(callback).toMatchObject({
        kind: "job",
        jobId: job.id,
        event: "job.succeeded",
        url: "https://receiver.example/jobs",
      });
      expect(await ctx.store.listDeliveries({ tenantId: TENANT, jobId: job.id })).toEqual([]);
    });
  });
}
