import { describe, expect, it } from "vitest";
import type { NewEvent } from "../../../src/store/store.js";
import { OTHER_TENANT, T0, TENANT, type SuiteContext } from "./context.js";

function event(id: string, overrides: Partial<NewEvent> = {}): NewEvent {
  return {
    tenantId: TENANT,
    id,
    source: "/orders",
    type: "orders.created",
    subject: `order-${id}`,
    time: T0,
    datacontenttype: "application/json",
    data: { id, items: [1, 2] },
    traceparent: null,
    extensions: { region: "eu", priority: 2 },
    hash: `hash-${id}`,
    ...overrides,
  };
}

/** CloudEvents: kept once per (tenant, id), listed newest first, dispatched once each. */
export function describeCloudEvents(ctx: SuiteContext): void {
  describe("cloud events", () => {
    it("keeps an event once per id: the same again is a duplicate, another a conflict", async () => {
      const first = await ctx.store.appendEvent({ event: event("e1"), now: T0 + 1 });
      expect(first.kind).toBe("created");
      expect(first.event).toMatchObject({
        ...event("e1"),
        receivedAt: T0 + 1,
        dispatchedAt: null,
        triggered: null,
      });
      const again = await ctx.store.appendEvent({ event: event("e1"), now: T0 + 2 });
      expect(again).toEqual({ kind: "duplicate", event: first.event });
      const other = await ctx.store.appendEvent({ event: event("e1", { hash: "other" }), now: T0 + 3 });
      expect(other).toEqual({ kind: "conflict", event: first.event });
      // Ids are the tenant's: another tenant's e1 is its own event.
      const elsewhere = await ctx.store.appendEvent({
        event: event("e1", { tenantId: OTHER_TENANT }),
        now: T0,
      });
      expect(elsewhere.kind).toBe("created");
      expect(await ctx.store.getEvent({ tenantId: TENANT, id: "e1" })).toEqual(first.event);
      expect(await ctx.store.getEvent({ tenantId: TENANT, id: "nope" })).toBeNull();
    });

    it("lists the tenant's events newest first, by type, in pages", async () => {
      for (const id of ["a", "b", "c"]) await ctx.store.appendEvent({ event: event(id), now: T0 });
      await ctx.store.appendEvent({ event: event("d", { type: "orders.shipped" }), now: T0 });
      await ctx.store.appendEvent({ event: event("x", { tenantId: OTHER_TENANT }), now: T0 });
      const all = await ctx.store.listEvents({ tenantId: TENANT, limit: 10 });
      expect(all.map((e) => e.id)).toEqual(["d", "c", "b", "a"]);
      const created = await ctx.store.listEvents({ tenantId: TENANT, type: "orders.created", limit: 2 });
      expect(created.map((e) => e.id)).toEqual(["c", "b"]);
      const next = await ctx.store.listEvents({
        tenantId: TENANT,
        type: "orders.created",
        limit: 2,
        beforeSeq: created[1]!.seq,
      });
      expect(next.map((e) => e.id)).toEqual(["a"]);
    });

    it("hands out events not yet dispatched, oldest first, until they are", async () => {
      await ctx.store.appendEvent({ event: event("p"), now: T0 });
      await ctx.store.appendEvent({ event: event("q", { tenantId: OTHER_TENANT }), now: T0 + 1 });
      await ctx.store.appendEvent({ event: event("r"), now: T0 + 5 });
      const due = await ctx.store.undispatchedEvents({ receivedBefore: T0 + 5, limit: 10 });
      expect(due.map((e) => e.id)).toEqual(["p", "q"]);
      const triggered = [
        { type: "orders.bill", jobId: "job_1" },
        { type: "orders.audit", error: "refused" },
      ];
      await ctx.store.markDispatched({ tenantId: TENANT, id: "p", triggered, now: T0 + 6 });
      const after = await ctx.store.undispatchedEvents({ receivedBefore: T0 + 10, limit: 10 });
      expect(after.map((e) => e.id)).toEqual(["q", "r"]);
      expect(await ctx.store.getEvent({ tenantId: TENANT, id: "p" })).toMatchObject({
        dispatchedAt: T0 + 6,
        triggered,
      });
    });

    it("dispatched events go with the jobs' retention; undispatched ones stay", async () => {
      await ctx.store.appendEvent({ event: event("old"), now: T0 });
      await ctx.store.appendEvent({ event: event("waiting"), now: T0 });
      await ctx.store.appendEvent({ event: event("new"), now: T0 + 100 });
      for (const id of ["old", "new"])
        await ctx.store.markDispatched({ tenantId: TENANT, id, triggered: [], now: T0 + 200 });
      await ctx.store.purgeExpired({
        resultsBefore: 0,
        jobsBefore: T0 + 50,
        idempotencyBefore: 0,
        limit: 100,
      });
      const left = await ctx.store.listEvents({ tenantId: TENANT, limit: 10 });
      expect(left.map((e) => e.id)).toEqual(["new", "waiting"]);
    });

    it("relays each event once, in the order it came; one from the broker is never sent back", async () => {
      for (const id of ["r1", "r2", "r3"]) await ctx.store.appendEvent({ event: event(id), now: T0 + 5 });
      await ctx.store.appendEvent({ event: event("b1"), now: T0 + 6, received: true });
      expect(await ctx.store.oldestUnpublished()).toBe(T0 + 5);
      const first = await ctx.store.unpublishedEvents({ limit: 2 });
      expect(first.map((e) => e.id)).toEqual(["r1", "r2"]);
      await ctx.store.markPublished({ seqs: first.map((e) => e.seq), now: T0 + 7 });
      expect((await ctx.store.unpublishedEvents({ limit: 10 })).map((e) => e.id)).toEqual(["r3"]);
      await ctx.store.markPublished({ seqs: [], now: T0 + 8 });
      await ctx.store.markPublished({
        seqs: [(await ctx.store.getEvent({ tenantId: TENANT, id: "r3" }))!.seq],
        now: T0 + 8,
      });
      expect(await ctx.store.unpublishedEvents({ limit: 10 })).toEqual([]);
      expect(await ctx.store.oldestUnpublished()).toBeNull();
    });

    it("lets one relay at a time hold a partition's lease, until it lapses or is given up", async () => {
      const hold = (owner: string, now: number) =>
        ctx.store.holdRelayLease({ part: 0, owner, leaseMs: 1000, now });
      expect(await hold("a", T0)).toBe(true);
      expect(await hold("b", T0 + 500)).toBe(false);
      expect(await hold("a", T0 + 900)).toBe(true); // renewed: now until T0 + 1900
      expect(await hold("b", T0 + 1500)).toBe(false);
      expect(await hold("b", T0 + 1900)).toBe(true); // lapsed
      expect(await hold("a", T0 + 2000)).toBe(false);
      await ctx.store.releaseRelayLease({ part: 0, owner: "a" }); // not a's: no effect
      expect(await hold("a", T0 + 2000)).toBe(false);
      await ctx.store.releaseRelayLease({ part: 0, owner: "b" });
      expect(await hold("a", T0 + 2000)).toBe(true);
      expect(await ctx.store.holdRelayLease({ part: 1, owner: "b", leaseMs: 1000, now: T0 + 2000 })).toBe(
        true,
      );
    });
  });
}
