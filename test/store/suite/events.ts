import { describe, expect, it } from "vitest";
import type { StoreEvent } from "../../../src/store/store.js";
import {
  LEASE_MS,
  T0,
  TENANT,
  TYPE,
  getJob,
  leaseOf,
  recordEvents,
  submitAndClaim,
  submitJob,
  BOOM,
  type SuiteContext,
} from "./context.js";

/** Events wake workers (`queued`) and waiters (`terminal`); both act on them at once. */
export function describeEvents(ctx: SuiteContext): void {
  /**
   * Runs `act` while a listener reads the store the moment each event arrives, as a waiter
   * does; returns each event with what that read saw.
   */
  async function observe<T>(
    act: () => Promise<unknown>,
    read: (event: StoreEvent) => Promise<T>,
  ): Promise<{ event: StoreEvent; seen: T }[]> {
    const reads: { event: StoreEvent; seen: Promise<T> }[] = [];
    const stop = ctx.store.subscribe((event) => {
      const seen = read(event);
      seen.catch(() => undefined); // awaited below; avoid an unhandled rejection meanwhile
      reads.push({ event, seen });
    });
    try {
      await act();
    } finally {
      stop();
    }
    return Promise.all(reads.map(async ({ event, seen }) => ({ event, seen: await seen })));
  }

  const statusOf = async (event: StoreEvent) =>
    event.kind === "terminal"
      ? ((await ctx.store.get({ tenantId: TENANT, id: event.jobId }))?.status ?? null)
      : null;

  describe("events", () => {
    it("queued after submit, once the job is visible", async () => {
      const seen = await observe(
        () => submitJob(ctx.store, { runAt: T0 + 250 }),
        () => ctx.store.nextRunAt({ types: [TYPE] }),
      );
      expect(seen).toEqual([{ event: { kind: "queued", type: TYPE, runAt: T0 + 250 }, seen: T0 + 250 }]);
    });

    it("progress after a progress report is applied, once it is visible; none when fenced", async () => {
      const job = await submitAndClaim(ctx.store);
      const seen = await observe(
        () => ctx.store.progress({ lease: leaseOf(job), percent: 40, message: "m", now: T0 + 1 }),
        async (event) =>
          event.kind === "progress"
            ? ((await ctx.store.get({ tenantId: TENANT, id: event.jobId }))?.progressPercent ?? null)
            : null,
      );
      expect(seen).toEqual([{ event: { kind: "progress", jobId: job.id }, seen: 40 }]);
      const fenced = await observe(
        () =>
          ctx.store.progress({
            lease: { ...leaseOf(job), leaseToken: "not-the-token" },
            percent: 50,
            message: null,
            now: T0 + 2,
          }),
        async () => null,
      );
      expect(fenced).toEqual([]);
    });

    it("queued after a failed attempt is scheduled for retry", async () => {
      const job = await submitAndClaim(ctx.store);
      const seen = await observe(
        () => ctx.store.fail({ lease: leaseOf(job), error: BOOM, retryAt: T0 + 900, now: T0 + 1 }),
        () => ctx.store.nextRunAt({ types: [TYPE] }),
      );
      expect(seen).toEqual([{ event: { kind: "queued", type: TYPE, runAt: T0 + 900 }, seen: T0 + 900 }]);
    });

    it("queued after a release", async () => {
      const job = await submitAndClaim(ctx.store);
      const seen = await observe(
        () => ctx.store.release({ leases: [leaseOf(job)], now: T0 + 5 }),
        () => ctx.store.nextRunAt({ types: [TYPE] }),
      );
      expect(seen).toEqual([{ event: { kind: "queued", type: TYPE, runAt: T0 + 5 }, seen: T0 + 5 }]);
    });

    it("queued after a lease sweep requeues a job", async () => {
      await submitAndClaim(ctx.store, { maxAttempts: 3 });
      const requeuedAt = T0 + LEASE_MS + 100;
      const seen = await observe(
        () => ctx.store.sweepExpiredLeases({ now: T0 + LEASE_MS, retryDelayMs: 100, limit: 10 }),
        () => ctx.store.nextRunAt({ types: [TYPE] }),
      );
      expect(seen).toEqual([{ event: { kind: "queued", type: TYPE, runAt: requeuedAt }, seen: requeuedAt }]);
    });

    it("terminal after complete, fail and cancel, once the new state is visible", async () => {
      const done = await submitAndClaim(ctx.store);
      const failed = await submitAndClaim(ctx.store);
      const canceled = await submitJob(ctx.store);
      const seen = await observe(async () => {
        await ctx.store.complete({ lease: leaseOf(done), result: { kind: "json", json: "1" }, now: T0 + 1 });
        await ctx.store.fail({ lease: leaseOf(failed), error: BOOM, retryAt: null, now: T0 + 1 });
        await ctx.store.cancel({ tenantId: TENANT, id: canceled.id, now: T0 + 1 });
      }, statusOf);
      expect(seen).toEqual([
        { event: { kind: "terminal", jobId: done.id, type: TYPE, status: "succeeded" }, seen: "succeeded" },
        { event: { kind: "terminal", jobId: failed.id, type: TYPE, status: "failed" }, seen: "failed" },
        { event: { kind: "terminal", jobId: canceled.id, type: TYPE, status: "canceled" }, seen: "canceled" },
      ]);
    });

    it("a waiter woken by success can read the result at once", async () => {
      const job = await submitAndClaim(ctx.store);
      const seen = await observe(
        () =>
          ctx.store.complete({ lease: leaseOf(job), result: { kind: "json", json: '"ok"' }, now: T0 + 1 }),
        () => ctx.store.getResult({ tenantId: TENANT, id: job.id }),
      );
      expect(seen).toHaveLength(1);
      expect(Buffer.from(seen[0]!.seen!.data!).toString()).toBe('"ok"');
    });

    it("terminal after the lease and deadline sweeps", async () => {
      const lost = await submitAndClaim(ctx.store, { maxAttempts: 1 });
      const late = await submitJob(ctx.store, { deadlineAt: T0 + 100, runAt: T0 + 50 });
      const seen = await observe(async () => {
        await ctx.store.sweepExpiredLeases({ now: T0 + LEASE_MS, retryDelayMs: 0, limit: 10 });
        await ctx.store.sweepDeadlines({ now: T0 + LEASE_MS, limit: 10 });
      }, statusOf);
      expect(seen).toEqual([
        { event: { kind: "terminal", jobId: lost.id, type: TYPE, status: "failed" }, seen: "failed" },
        { event: { kind: "terminal", jobId: late.id, type: TYPE, status: "timed_out" }, seen: "timed_out" },
      ]);
    });

    it("terminal after deleting an active job, once it is gone", async () => {
      const running = await submitAndClaim(ctx.store);
      const seen = await observe(
        () => ctx.store.delete({ tenantId: TENANT, id: running.id, now: T0 + 1 }),
        async (event) =>
          event.kind === "terminal" ? ctx.store.get({ tenantId: TENANT, id: event.jobId }) : undefined,
      );
      expect(seen).toHaveLength(1);
      expect(seen[0]!.event).toMatchObject({ kind: "terminal", jobId: running.id, type: TYPE });
      expect(seen[0]!.seen).toBeNull();
    });

    it("nothing for writes that did not apply", async () => {
      const job = await submitAndClaim(ctx.store);
      const forged = { id: job.id, leaseToken: "forged" };
      const { events, stop } = recordEvents(ctx.store);
      await ctx.store.complete({ lease: forged, result: { kind: "none" }, now: T0 + 1 });
      await ctx.store.fail({ lease: forged, error: BOOM, retryAt: null, now: T0 + 1 });
      await ctx.store.fail({ lease: forged, error: BOOM, retryAt: T0 + 5, now: T0 + 1 });
      await ctx.store.release({ leases: [forged], now: T0 + 1 });
      await ctx.store.cancel({ tenantId: TENANT, id: "no-such-job", now: T0 + 1 });
      await ctx.store.sweepExpiredLeases({ now: T0 + 1, retryDelayMs: 0, limit: 10 });
      await ctx.store.sweepDeadlines({ now: T0 + 1, limit: 10 });
      stop();
      expect(events).toEqual([]);
      expect((await getJob(ctx.store, job.id)).status).toBe("running");
    });

    it("a throwing listener does not fail the write, and unsubscribe stops delivery", async () => {
      const stopThrowing = ctx.store.subscribe(() => {
        throw new Error("listener bug");
      });
      const { events, stop } = recordEvents(ctx.store);
      const job = await submitJob(ctx.store);
      expect((await getJob(ctx.store, job.id)).status).toBe("queued");
      expect(events).toHaveLength(1);
      stop();
      stopThrowing();
      await submitJob(ctx.store);
      expect(events).toHaveLength(1);
    });
  });
}
