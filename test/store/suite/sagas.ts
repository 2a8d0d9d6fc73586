import { describe, expect, it } from "vitest";
import type { StepRecord } from "../../../src/store/store.js";
import {
  LEASE_MS,
  OTHER_TENANT,
  T0,
  TENANT,
  leaseOf,
  submitAndClaim,
  BOOM,
  type SuiteContext,
} from "./context.js";

function step(seq: number, overrides: Partial<StepRecord> = {}): StepRecord {
  return {
    seq,
    name: `step-${seq}`,
    kind: "step",
    status: "running",
    attempts: 1,
    startedAt: T0 + seq,
    finishedAt: null,
    result: null,
    error: null,
    compensatedAt: null,
    compensationError: null,
    ...overrides,
  };
}

/** A saga's journal: one row per step, written only by the attempt that holds the job. */
export function describeSagas(ctx: SuiteContext): void {
  describe("saga journal", () => {
    it("records steps by their place, replaces a step's row, and reads them back in order", async () => {
      const job = await submitAndClaim(ctx.store);
      const lease = leaseOf(job);
      expect(await ctx.store.recordStep({ lease, step: step(1) })).toBe(true);
      expect(await ctx.store.recordStep({ lease, step: step(0) })).toBe(true);
      const done = step(0, {
        status: "succeeded",
        finishedAt: T0 + 5,
        result: { reserved: 42, tags: ["a"] },
      });
      expect(await ctx.store.recordStep({ lease, step: done })).toBe(true);
      const failed = step(1, {
        kind: "call",
        status: "failed",
        attempts: 3,
        finishedAt: T0 + 9,
        error: BOOM,
      });
      expect(await ctx.store.recordStep({ lease, step: failed })).toBe(true);
      expect(await ctx.store.listSteps({ tenantId: TENANT, jobId: job.id })).toEqual([done, failed]);

      const undone = { ...done, status: "compensated" as const, compensatedAt: T0 + 12 };
      expect(await ctx.store.recordStep({ lease, step: undone })).toBe(true);
      const [first] = await ctx.store.listSteps({ tenantId: TENANT, jobId: job.id });
      expect(first).toEqual(undone);
    });

    it("a result that is null or missing reads back as null", async () => {
      const job = await submitAndClaim(ctx.store);
      await ctx.store.recordStep({
        lease: leaseOf(job),
        step: step(0, { status: "succeeded", result: undefined }),
      });
      const [row] = await ctx.store.listSteps({ tenantId: TENANT, jobId: job.id });
      expect(row!.result).toBeNull();
    });

    it("is fenced: a stale lease token, or a job no longer running, writes nothing", async () => {
      const job = await submitAndClaim(ctx.store);
      const stale = { id: job.id, leaseToken: "not-the-token" };
      expect(await ctx.store.recordStep({ lease: stale, step: step(0) })).toBe(false);
      expect(await ctx.store.listSteps({ tenantId: TENANT, jobId: job.id })).toEqual([]);
      // Lease lost to the sweep: the old attempt cannot record what it did afterwards.
      await ctx.store.sweepExpiredLeases({ now: T0 + LEASE_MS + 1, retryDelayMs: 0, limit: 10 });
      expect(await ctx.store.recordStep({ lease: leaseOf(job), step: step(0) })).toBe(false);
      expect(await ctx.store.listSteps({ tenantId: TENANT, jobId: job.id })).toEqual([]);
    });

    it("is the tenant's: another tenant reads no steps of it", async () => {
      const job = await submitAndClaim(ctx.store);
      await ctx.store.recordStep({ lease: leaseOf(job), step: step(0) });
      expect(await ctx.store.listSteps({ tenantId: OTHER_TENANT, jobId: job.id })).toEqual([]);
      expect(await ctx.store.listSteps({ tenantId: TENANT, jobId: job.id })).toHaveLength(1);
    });

    it("writes and reads issued together (one batch): each one's own, fenced and tenant-scoped apart", async () => {
      const a = await submitAndClaim(ctx.store);
      const b = await submitAndClaim(ctx.store);
      const outcome = step(0, { status: "succeeded", finishedAt: T0 + 3, result: "a0" });
      // A step's outcome and the next step's start of one saga, another saga's, and a stale write.
      const written = await Promise.all([
        ctx.store.recordStep({ lease: leaseOf(a), step: outcome }),
        ctx.store.recordStep({ lease: leaseOf(a), step: step(1) }),
        ctx.store.recordStep({ lease: leaseOf(b), step: step(0, { result: "b0" }) }),
        ctx.store.recordStep({ lease: { id: b.id, leaseToken: "stale" }, step: step(1) }),
      ]);
      expect(written).toEqual([true, true, true, false]);
      const [ofA, ofB, ofBElsewhere] = await Promise.all([
        ctx.store.listSteps({ tenantId: TENANT, jobId: a.id }),
        ctx.store.listSteps({ tenantId: TENANT, jobId: b.id }),
        ctx.store.listSteps({ tenantId: OTHER_TENANT, jobId: b.id }),
      ]);
      expect(ofA).toEqual([outcome, step(1)]);
      expect(ofB).toEqual([step(0, { result: "b0" })]);
      expect(ofBElsewhere).toEqual([]);
    });

    it("a compensation job writes the journal of the saga it names, fenced by its own lease", async () => {
      const saga = await submitAndClaim(ctx.store);
      const done = step(0, { status: "succeeded", finishedAt: T0 + 2, result: "a" });
      expect(await ctx.store.recordStep({ lease: leaseOf(saga), step: done })).toBe(true);
      await ctx.store.cancel({ tenantId: TENANT, id: saga.id, now: T0 + 3 });
      // The canceled saga's own attempt can write nothing more.
      expect(await ctx.store.recordStep({ lease: leaseOf(saga), step: step(1) })).toBe(false);

      const compensation = await submitAndClaim(ctx.store);
      const undone = { ...done, status: "compensated" as const, compensatedAt: T0 + 4 };
      const [own, stale] = await Promise.all([
        ctx.store.recordStep({ lease: leaseOf(compensation), step: undone, sagaId: saga.id }),
        ctx.store.recordStep({
          lease: { id: compensation.id, leaseToken: "stale" },
          step: step(1),
          sagaId: saga.id,
        }),
      ]);
      expect([own, stale]).toEqual([true, false]);
      expect(await ctx.store.listSteps({ tenantId: TENANT, jobId: saga.id })).toEqual([undone]);
      expect(await ctx.store.listSteps({ tenantId: TENANT, jobId: compensation.id })).toEqual([]);
    });

    it("a compensation job writes only its own tenant's sagas, and a deleted saga's journal not at all", async () => {
      const saga = await submitAndClaim(ctx.store);
      const done = step(0, { status: "succeeded", finishedAt: T0 + 2, result: "a" });
      await ctx.store.recordStep({ lease: leaseOf(saga), step: done });
      await ctx.store.cancel({ tenantId: TENANT, id: saga.id, now: T0 + 3 });
      const foreign = await submitAndClaim(ctx.store, { tenantId: OTHER_TENANT });
      const mine = await submitAndClaim(ctx.store);
      const undone = { ...done, status: "compensated" as const, compensatedAt: T0 + 4 };
      const other = await submitAndClaim(ctx.store);
      // In one batch: another tenant's lease (refused), this tenant's (written), and a write of
      // another saga beside them, which is not failed by theirs.
      const written = await Promise.all([
        ctx.store.recordStep({ lease: leaseOf(foreign), step: undone, sagaId: saga.id }),
        ctx.store.recordStep({ lease: leaseOf(mine), step: undone, sagaId: saga.id }),
        ctx.store.recordStep({ lease: leaseOf(other), step: step(0) }),
      ]);
      expect(written).toEqual([false, true, true]);
      expect(await ctx.store.listSteps({ tenantId: TENANT, jobId: saga.id })).toEqual([undone]);

      expect(await ctx.store.delete({ tenantId: TENANT, id: saga.id, now: T0 + 5 })).toBe(true);
      const late = await Promise.all([
        ctx.store.recordStep({ lease: leaseOf(mine), step: undone, sagaId: saga.id }),
        ctx.store.recordStep({ lease: leaseOf(other), step: step(1) }),
      ]);
      expect(late).toEqual([false, true]);
    });

    it("one step written twice in one batch: each write fenced on its own, applied in order", async () => {
      const saga = await submitAndClaim(ctx.store);
      await ctx.store.recordStep({ lease: leaseOf(saga), step: step(0, { status: "succeeded" }) });
      await ctx.store.cancel({ tenantId: TENANT, id: saga.id, now: T0 + 3 });
      const first = await submitAndClaim(ctx.store);
      const second = await submitAndClaim(ctx.store);
      const failedUndo = step(0, { status: "compensation_failed", compensationError: BOOM });
      const undone = step(0, { status: "compensated", compensatedAt: T0 + 9 });
      const written = await Promise.all([
        ctx.store.recordStep({ lease: leaseOf(first), step: failedUndo, sagaId: saga.id }),
        ctx.store.recordStep({
          lease: { id: first.id, leaseToken: "stale" },
          step: step(0),
          sagaId: saga.id,
        }),
        ctx.store.recordStep({ lease: leaseOf(second), step: undone, sagaId: saga.id }),
      ]);
      expect(written).toEqual([true, false, true]);
      expect(await ctx.store.listSteps({ tenantId: TENANT, jobId: saga.id })).toEqual([undone]);
    });

    it("goes with its job when the job is deleted", async () => {
      const job = await submitAndClaim(ctx.store);
      await ctx.store.recordStep({ lease: leaseOf(job), step: step(0) });
      expect(await ctx.store.delete({ tenantId: TENANT, id: job.id, now: T0 + 1 })).toBe(true);
      expect(await ctx.store.listSteps({ tenantId: TENANT, jobId: job.id })).toEqual([]);
    });

    it("events: kept once per name, a resend harmless, another of that name refused, tenants apart", async () => {
      const job = await submitAndClaim(ctx.store);
      const send = (eventId: string, tenantId = TENANT, name = "approved") =>
        ctx.store.deliverEvent({
          tenantId,
          jobId: job.id,
          name,
          eventId,
          data: { by: eventId },
          now: T0 + 5,
        });
      expect(await ctx.store.sagaEvent({ jobId: job.id, name: "approved" })).toBeNull();
      expect(await send("ev-1")).toBe("delivered");
      expect(await send("ev-1")).toBe("duplicate");
      expect(await send("ev-2")).toBe("conflict");
      expect(await send("ev-1", OTHER_TENANT)).toBe("not-found");
      expect(await ctx.store.sagaEvent({ jobId: job.id, name: "approved" })).toEqual({
        eventId: "ev-1",
        data: { by: "ev-1" },
        receivedAt: T0 + 5,
      });
      expect(await send("ev-3", TENANT, "other-name")).toBe("delivered");
      await ctx.store.complete({ lease: leaseOf(job), result: { kind: "none" }, now: T0 + 6 });
      expect(await send("ev-4", TENANT, "late")).toBe("finished");
    });

    it("an event wakes its saga when it waits queued for later; wake makes a queued job due", async () => {
      const job = await submitAndClaim(ctx.store);
      // The saga waits: given back until a minute from now.
      expect(await ctx.store.release({ leases: [leaseOf(job)], now: T0 + 60_000 })).toBe(1);
      expect(await ctx.store.nextRunAt({ types: [job.type] })).toBe(T0 + 60_000);
      expect(
        await ctx.store.deliverEvent({
          tenantId: TENANT,
          jobId: job.id,
          name: "go",
          eventId: "e",
          data: 1,
          now: T0 + 10,
        }),
      ).toBe("delivered");
      const [woken] = await ctx.store.claim({ types: [job.type], limit: 1, leaseMs: LEASE_MS, now: T0 + 10 });
      expect(woken?.id).toBe(job.id);

      await ctx.store.release({ leases: [leaseOf(woken!)], now: T0 + 60_000 });
      expect(await ctx.store.wake({ jobId: job.id, now: T0 + 20 })).toBe(true);
      expect(await ctx.store.wake({ jobId: job.id, now: T0 + 20 })).toBe(false); // due already
      const [again] = await ctx.store.claim({ types: [job.type], limit: 1, leaseMs: LEASE_MS, now: T0 + 20 });
      expect(again?.id).toBe(job.id);
    });
  });
}
