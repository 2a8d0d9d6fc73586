import { describe, expect, it } from "vitest";
import { lifecycleEvent, type TerminalStatus } from "../../../src/events/lifecycle.js";
import type { EventRecord, StoreEvent } from "../../../src/store/store.js";
import {
  LEASE_MS,
  T0,
  claimOne,
  TENANT,
  getJob,
  leaseOf,
  recordEvents,
  submitAndClaim,
  submitJob,
  BOOM,
  type SuiteContext,
} from "./context.js";

const ASKED = { lifecycleEvents: true };

/**
 * The job lifecycle's events: a job submitted with `lifecycleEvents` appends one
 * `tessera.job.<status>` event in the commit of its terminal move, whichever move it is; a job
 * without the flag appends none.
 */
export function describeLifecycleEvents(ctx: SuiteContext): void {
  const eventsOf = async (jobId: string): Promise<EventRecord[]> =>
    (await ctx.store.listEvents({ tenantId: TENANT, limit: 100 })).filter((e) => e.subject === jobId);

  /** The job's one lifecycle event, as `lifecycleEvent` makes it from the job as it ended. */
  async function expectLifecycle(jobId: string, status: TerminalStatus): Promise<EventRecord> {
    const job = await getJob(ctx.store, jobId);
    expect(job.status).toBe(status);
    const events = await eventsOf(jobId);
    expect(events).toHaveLength(1);
    expect(events[0]).toEqual({
      ...lifecycleEvent(job, status, job.finishedAt!),
      seq: events[0]!.seq,
      receivedAt: job.finishedAt,
      dispatchedAt: null,
      triggered: null,
    });
    return events[0]!;
  }

  const announced = (events: StoreEvent[]) => events.filter((e) => e.kind === "events").length;

  describe("lifecycle events", () => {
    it("a completion keeps tessera.job.succeeded in its commit: there when its end is announced", async () => {
      const claimed = await submitAndClaim(ctx.store, ASKED);
      expect(claimed.lifecycleEvents).toBe(true);
      expect(await eventsOf(claimed.id)).toEqual([]);
      let seen: EventRecord | null | undefined;
      const stop = ctx.store.subscribe((event) => {
        if (event.kind === "terminal")
          void ctx.store.getEvent({ tenantId: TENANT, id: `tessera:${claimed.id}-succeeded` }).then((e) => {
            seen = e;
          });
      });
      const recorded = recordEvents(ctx.store);
      expect(
        await ctx.store.complete({
          lease: leaseOf(claimed),
          result: { kind: "json", json: "{}" },
          now: T0 + 10,
          lifecycleEvents: true,
        }),
      ).toBe(true);
      stop();
      recorded.stop();
      const event = await expectLifecycle(claimed.id, "succeeded");
      await expect.poll(() => seen).toEqual(event);
      expect(event).toMatchObject({
        id: `tessera:${claimed.id}-succeeded`,
        type: "tessera.job.succeeded",
        source: `/jobs/${claimed.type}`,
        subject: claimed.id,
        time: T0 + 10,
        data: {
          id: claimed.id,
          type: claimed.type,
          status: "succeeded",
          attempt: 1,
          result: `/v1/jobs/${claimed.id}/result`,
        },
      });
      // The worker that completed it dispatches it: no announcement.
      expect(announced(recorded.events)).toBe(0);
    });

    it("a batch of completions keeps one event for each job that asked, none for the others", async () => {
      const asked = await submitAndClaim(ctx.store, { ...ASKED, id: "asked" });
      const plain = await submitAndClaim(ctx.store, { id: "plain" });
      const emitted = {
        tenantId: TENANT,
        id: `tessera:${asked.id}-1-0`,
        source: `/jobs/${asked.type}`,
        type: "orders.placed",
        subject: asked.id,
        time: T0 + 5,
        datacontenttype: "application/json",
        data: { n: 1 },
        traceparent: null,
        extensions: {},
        hash: "h",
      };
      const applied = await ctx.store.completeMany([
        {
          lease: leaseOf(asked),
          result: { kind: "none" },
          now: T0 + 5,
          lifecycleEvents: true,
          events: [emitted],
        },
        { lease: leaseOf(plain), result: { kind: "none" }, now: T0 + 5, lifecycleEvents: false },
      ]);
      expect(applied).toEqual([true, true]);
      const events = await eventsOf(asked.id);
      expect(events.map((e) => e.type).sort()).toEqual(["orders.placed", "tessera.job.succeeded"]);
      expect(await eventsOf(plain.id)).toEqual([]);
    });

    it("a fenced completion keeps nothing; a job ends once, so its event is one", async () => {
      const claimed = await submitAndClaim(ctx.store, ASKED);
      const canceled = await ctx.store.cancel({ tenantId: TENANT, id: claimed.id, now: T0 + 1 });
      expect(canceled.kind).toBe("canceled");
      const done = { lease: leaseOf(claimed), result: { kind: "none" } as const, now: T0 + 2 };
      expect(await ctx.store.complete({ ...done, lifecycleEvents: true })).toBe(false);
      expect(await ctx.store.fail({ ...done, error: BOOM, retryAt: null })).toBe(false);
      expect((await ctx.store.cancel({ tenantId: TENANT, id: claimed.id, now: T0 + 3 })).kind).toBe(
        "already-canceled",
      );
      await expectLifecycle(claimed.id, "canceled");
    });

    it("none when the job did not ask, whatever its end", async () => {
      const completed = await submitAndClaim(ctx.store, { id: "completed" });
      await ctx.store.complete({ lease: leaseOf(completed), result: { kind: "none" }, now: T0 + 1 });
      const failed = await submitAndClaim(ctx.store, { id: "failed" });
      await ctx.store.fail({ lease: leaseOf(failed), error: BOOM, retryAt: null, now: T0 + 1 });
      const canceled = await submitJob(ctx.store, { id: "canceled" });
      const recorded = recordEvents(ctx.store);
      await ctx.store.cancel({ tenantId: TENANT, id: canceled.id, now: T0 + 1 });
      const late = await submitJob(ctx.store, { id: "late", deadlineAt: T0 + 100 });
      await ctx.store.sweepDeadlines({ now: T0 + 200, limit: 10 });
      recorded.stop();
      expect((await getJob(ctx.store, late.id)).status).toBe("timed_out");
      expect(await ctx.store.listEvents({ tenantId: TENANT, limit: 10 })).toEqual([]);
      expect(announced(recorded.events)).toBe(0);
    });

    it("a cancel of a queued job keeps tessera.job.canceled with its problem, and announces it", async () => {
      const job = await submitJob(ctx.store, ASKED);
      const recorded = recordEvents(ctx.store);
      const outcome = await ctx.store.cancel({ tenantId: TENANT, id: job.id, now: T0 + 7 });
      recorded.stop();
      expect(outcome.kind).toBe("canceled");
      const event = await expectLifecycle(job.id, "canceled");
      expect(event.data).toEqual({
        id: job.id,
        type: job.type,
        status: "canceled",
        attempt: 0,
        error: (await getJob(ctx.store, job.id)).error,
      });
      expect(event.time).toBe(T0 + 7);
      expect(announced(recorded.events)).toBe(1);
    });

    it("a cancel of a running job, and a delete of an active one, keep tessera.job.canceled", async () => {
      const running = await submitAndClaim(ctx.store, { ...ASKED, id: "running" });
      await ctx.store.cancel({ tenantId: TENANT, id: running.id, now: T0 + 1 });
      await expectLifecycle(running.id, "canceled");
      const deleted = await submitAndClaim(ctx.store, { ...ASKED, id: "deleted" });
      const recorded = recordEvents(ctx.store);
      expect(await ctx.store.delete({ tenantId: TENANT, id: deleted.id, now: T0 + 2 })).toBe(true);
      recorded.stop();
      const [event, ...rest] = await eventsOf(deleted.id);
      expect(rest).toEqual([]);
      expect(event).toMatchObject({
        id: `tessera:${deleted.id}-canceled`,
        type: "tessera.job.canceled",
        time: T0 + 2,
        data: { id: deleted.id, status: "canceled", attempt: 1, error: { type: "/problems/job-canceled" } },
      });
      expect(announced(recorded.events)).toBe(1);
      // A finished job deleted ends nothing: nothing more is kept.
      const done = await submitAndClaim(ctx.store, { ...ASKED, id: "done" });
      await ctx.store.complete({ lease: leaseOf(done), result: { kind: "none" }, now: T0 + 3 });
      await ctx.store.delete({ tenantId: TENANT, id: done.id, now: T0 + 4 });
      expect((await eventsOf(done.id)).map((e) => e.type)).toEqual(["tessera.job.succeeded"]);
    });

    it("a final failure keeps tessera.job.failed; a retried attempt keeps nothing", async () => {
      const job = await submitAndClaim(ctx.store, ASKED);
      const recorded = recordEvents(ctx.store);
      await ctx.store.fail({ lease: leaseOf(job), error: BOOM, retryAt: T0 + 5, now: T0 + 1 });
      expect(await eventsOf(job.id)).toEqual([]);
      const retried = await claimOne(ctx.store, { now: T0 + 5, types: [job.type] });
      expect(retried.id).toBe(job.id);
      await ctx.store.fail({ lease: leaseOf(retried), error: BOOM, retryAt: null, now: T0 + 6 });
      recorded.stop();
      const event = await expectLifecycle(job.id, "failed");
      expect(event.data).toEqual({ id: job.id, type: job.type, status: "failed", attempt: 2, error: BOOM });
      expect(announced(recorded.events)).toBe(1);
    });

    it("a lease lost on the last attempt keeps tessera.job.failed; one requeued keeps nothing", async () => {
      const last = await submitAndClaim(ctx.store, { ...ASKED, id: "last", maxAttempts: 1 });
      const requeued = await submitAndClaim(ctx.store, { ...ASKED, id: "requeued", maxAttempts: 3 });
      const recorded = recordEvents(ctx.store);
      expect(await ctx.store.sweepExpiredLeases({ now: T0 + LEASE_MS + 1, retryDelayMs: 0, limit: 10 })).toBe(
        2,
      );
      recorded.stop();
      const event = await expectLifecycle(last.id, "failed");
      expect(event.data).toMatchObject({
        status: "failed",
        attempt: 1,
        error: { type: "/problems/job-failed" },
      });
      expect(await eventsOf(requeued.id)).toEqual([]);
      expect(announced(recorded.events)).toBe(1);
    });

    it("a deadline keeps tessera.job.timed_out, for queued and running jobs alike", async () => {
      const running = await submitAndClaim(ctx.store, { ...ASKED, id: "running", deadlineAt: T0 + 1000 });
      const queued = await submitJob(ctx.store, { ...ASKED, id: "queued", deadlineAt: T0 + 1000 });
      const recorded = recordEvents(ctx.store);
      expect(await ctx.store.sweepDeadlines({ now: T0 + 2000, limit: 10 })).toBe(2);
      recorded.stop();
      for (const id of [queued.id, running.id]) {
        const event = await expectLifecycle(id, "timed_out");
        expect(event).toMatchObject({
          type: "tessera.job.timed_out",
          time: T0 + 2000,
          data: { status: "timed_out", error: { type: "/problems/job-timed-out" } },
        });
      }
      expect(announced(recorded.events)).toBeGreaterThanOrEqual(1);
      // Kept undispatched: the dispatcher (told by the announcement) or the sweep runs them.
      const due = await ctx.store.undispatchedEvents({ receivedBefore: T0 + 2001, limit: 10 });
      expect(due.map((e) => e.subject).sort()).toEqual([queued.id, running.id].sort());
    });
  });
}
