import { describe, expect, it } from "vitest";
import {
  LEASE_MS,
  T0,
  TENANT,
  TYPE,
  claimOne,
  getJob,
  leaseOf,
  newJob,
  submitAndClaim,
  submitJob,
  type SuiteContext,
} from "./context.js";

/** Deadlines, retention and the scheduler's wake-up time. */
export function describeMaintenance(ctx: SuiteContext): void {
  /** A succeeded job with a JSON result, finished at `finishedAt`. */
  async function finishedJob(finishedAt: number) {
    const claimed = await submitAndClaim(ctx.store, {}, T0);
    const json = JSON.stringify({ finishedAt });
    expect(
      await ctx.store.complete({ lease: leaseOf(claimed), result: { kind: "json", json }, now: finishedAt }),
    ).toBe(true);
    return claimed;
  }

  describe("sweepDeadlines", () => {
    it("times out queued and running jobs past their deadline, and fences the lease holder", async () => {
      const queued = await submitJob(ctx.store, { deadlineAt: T0 + 1000, runAt: T0 + 500 });
      const running = await submitAndClaim(ctx.store, { deadlineAt: T0 + 1000 });
      const later = await submitJob(ctx.store, { deadlineAt: T0 + 10_000, runAt: T0 + 500 });

      expect(await ctx.store.sweepDeadlines({ now: T0 + 999, limit: 10 })).toBe(0);
      expect(await ctx.store.sweepDeadlines({ now: T0 + 1000, limit: 10 })).toBe(2);

      for (const id of [queued.id, running.id]) {
        const job = await getJob(ctx.store, id);
        expect(job).toMatchObject({ status: "timed_out", finishedAt: T0 + 1000 });
        expect(job.error).toMatchObject({ type: "/problems/job-timed-out", status: 504 });
      }
      expect((await getJob(ctx.store, later.id)).status).toBe("queued");

      expect(
        await ctx.store.heartbeat({ leases: [leaseOf(running)], leaseMs: LEASE_MS, now: T0 + 1001 }),
      ).toEqual([running.id]);
      expect(
        await ctx.store.complete({ lease: leaseOf(running), result: { kind: "none" }, now: T0 + 1001 }),
      ).toBe(false);
      expect((await getJob(ctx.store, running.id)).status).toBe("timed_out");
      expect(await ctx.store.claim({ types: [TYPE], limit: 10, leaseMs: 1000, now: T0 + 1001 })).toHaveLength(
        1,
      );
    });

    it("leaves finished jobs alone and respects limit", async () => {
      const done = await submitAndClaim(ctx.store, { deadlineAt: T0 + 100 });
      await ctx.store.complete({ lease: leaseOf(done), result: { kind: "none" }, now: T0 + 50 });
      for (let i = 0; i < 3; i++) await submitJob(ctx.store, { deadlineAt: T0 + 100, runAt: T0 + 50 });

      expect(await ctx.store.sweepDeadlines({ now: T0 + 200, limit: 2 })).toBe(2);
      expect(await ctx.store.sweepDeadlines({ now: T0 + 200, limit: 2 })).toBe(1);
      expect(await ctx.store.sweepDeadlines({ now: T0 + 200, limit: 2 })).toBe(0);
      expect((await getJob(ctx.store, done.id)).status).toBe("succeeded");
    });
  });

  describe("deadlines and leases", () => {
    it("a running job whose lease lapsed past its deadline is timed out, not retried", async () => {
      const late = await submitAndClaim(ctx.store, { deadlineAt: T0 + 1000 }, T0);
      const lapsed = await submitAndClaim(ctx.store, { deadlineAt: T0 + 100_000 }, T0);
      const now = T0 + LEASE_MS + 1;
      // The lease sweep retries the job with time left, and leaves the other to the deadline's.
      expect(await ctx.store.sweepExpiredLeases({ now, retryDelayMs: 0, limit: 10 })).toBe(1);
      expect(await getJob(ctx.store, lapsed.id)).toMatchObject({ status: "queued", attempt: 1 });
      expect(await getJob(ctx.store, late.id)).toMatchObject({ status: "running", attempt: 1 });
      expect(await ctx.store.sweepDeadlines({ now, limit: 10 })).toBe(1);
      expect(await getJob(ctx.store, late.id)).toMatchObject({ status: "timed_out", attempt: 1 });
    });

    it("the deadline sweep's limit counts queued and running jobs together", async () => {
      for (let i = 0; i < 2; i++) await submitJob(ctx.store, { deadlineAt: T0 + 100, runAt: T0 + 50 });
      for (let i = 0; i < 2; i++) await submitAndClaim(ctx.store, { deadlineAt: T0 + 100 }, T0);
      const counts: number[] = [];
      for (let i = 0; i < 4; i++)
        counts.push(await ctx.store.sweepDeadlines({ now: T0 + LEASE_MS, limit: 3 }));
      expect(counts).toEqual([3, 1, 0, 0]);
    });
  });

  describe("purgeExpired", () => {
    it("purges results sooner than it deletes jobs, and never touches active jobs", async () => {
      const old = await finishedJob(T0 + 10);
      const mid = await finishedJob(T0 + 100);
      const recent = await finishedJob(T0 + 1000);
      const active = await submitJob(ctx.store, { runAt: T0 + 1_000_000 });
      const running = await submitAndClaim(ctx.store);

      // Results past their retention go first: the job stays, its result is gone (410).
      expect(
        await ctx.store.purgeExpired({
          resultsBefore: T0 + 500,
          jobsBefore: 0,
          idempotencyBefore: 0,
          limit: 100,
        }),
      ).toEqual({ resultsPurged: 2, jobsDeleted: 0, idempotencyDeleted: 0 });
      for (const id of [old.id, mid.id]) {
        expect(await getJob(ctx.store, id)).toMatchObject({ status: "succeeded", resultPurged: true });
        expect(await ctx.store.getResult({ tenantId: TENANT, id })).toBeNull();
      }
      expect((await getJob(ctx.store, recent.id)).resultPurged).toBe(false);
      expect(await ctx.store.getResult({ tenantId: TENANT, id: recent.id })).not.toBeNull();

      // Then whole records past the (longer) job retention: 404 from now on.
      expect(
        await ctx.store.purgeExpired({
          resultsBefore: T0 + 500,
          jobsBefore: T0 + 50,
          idempotencyBefore: 0,
          limit: 100,
        }),
      ).toEqual({ resultsPurged: 0, jobsDeleted: 1, idempotencyDeleted: 0 });
      expect(await ctx.store.get({ tenantId: TENANT, id: old.id })).toBeNull();
      expect((await getJob(ctx.store, mid.id)).resultPurged).toBe(true);

      const all = {
        resultsBefore: T0 + 10_000_000,
        jobsBefore: T0 + 10_000_000,
        idempotencyBefore: 0,
        limit: 100,
      };
      expect((await ctx.store.purgeExpired(all)).jobsDeleted).toBe(2);
      expect(await ctx.store.get({ tenantId: TENANT, id: recent.id })).toBeNull();
      expect((await getJob(ctx.store, active.id)).status).toBe("queued");
      expect((await getJob(ctx.store, running.id)).status).toBe("running");
    });

    it("deletes failed and canceled jobs past retention too", async () => {
      const failed = await submitAndClaim(ctx.store);
      const problem = { type: "/problems/job-failed", title: "The job failed", status: 500, detail: "x" };
      await ctx.store.fail({ lease: leaseOf(failed), error: problem, retryAt: null, now: T0 + 1 });
      const canceled = await submitJob(ctx.store);
      await ctx.store.cancel({ tenantId: TENANT, id: canceled.id, now: T0 + 1 });

      const purged = await ctx.store.purgeExpired({
        resultsBefore: 0,
        jobsBefore: T0 + 2,
        idempotencyBefore: 0,
        limit: 10,
      });
      expect(purged.jobsDeleted).toBe(2);
      expect(await ctx.store.get({ tenantId: TENANT, id: failed.id })).toBeNull();
      expect(await ctx.store.get({ tenantId: TENANT, id: canceled.id })).toBeNull();
    });

    it("deletes at most `limit` jobs per call", async () => {
      for (let i = 0; i < 5; i++) await finishedJob(T0 + 10);
      const batch = { resultsBefore: 0, jobsBefore: T0 + 20, idempotencyBefore: 0, limit: 2 };
      const counts: number[] = [];
      for (let i = 0; i < 4; i++) counts.push((await ctx.store.purgeExpired(batch)).jobsDeleted);
      expect(counts).toEqual([2, 2, 1, 0]);
      expect(await ctx.store.list({ tenantId: TENANT, limit: 10 })).toEqual([]);
    });

    it("purges at most `limit` results per call", async () => {
      for (let i = 0; i < 3; i++) await finishedJob(T0 + 10);
      const batch = { resultsBefore: T0 + 20, jobsBefore: 0, idempotencyBefore: 0, limit: 2 };
      const counts: number[] = [];
      for (let i = 0; i < 3; i++) counts.push((await ctx.store.purgeExpired(batch)).resultsPurged);
      expect(counts).toEqual([2, 1, 0]);
    });

    it("frees the idempotency key of a job it deleted", async () => {
      const key = { key: "k", requestHash: "h" };
      await ctx.store.submit({ job: newJob({ id: "with-key" }), idempotency: key, now: T0 });
      const claimed = await claimOne(ctx.store);
      await ctx.store.complete({ lease: leaseOf(claimed), result: { kind: "none" }, now: T0 + 1 });
      await ctx.store.purgeExpired({ resultsBefore: 0, jobsBefore: T0 + 2, idempotencyBefore: 0, limit: 10 });

      const again = await ctx.store.submit({
        job: newJob({ id: "after-purge" }),
        idempotency: { key: "k", requestHash: "other" },
        now: T0 + 3,
      });
      expect(again.kind).toBe("created");
    });
  });

  describe("terminalIds", () => {
    it("returns the ids that are terminal or gone, and not the active ones", async () => {
      const queued = await submitJob(ctx.store, { runAt: T0 + 1000 });
      const running = await submitAndClaim(ctx.store);
      const done = await finishedJob(T0 + 1);
      const canceled = await submitJob(ctx.store, { runAt: T0 + 1000 });
      await ctx.store.cancel({ tenantId: TENANT, id: canceled.id, now: T0 + 2 });

      const ids = [queued.id, running.id, done.id, canceled.id, "no-such-job"];
      expect((await ctx.store.terminalIds({ ids })).sort()).toEqual(
        [done.id, canceled.id, "no-such-job"].sort(),
      );
      expect(await ctx.store.terminalIds({ ids: [] })).toEqual([]);
    });
  });

  describe("nextRunAt", () => {
    it("is the earliest runAt of a queued job put off past its submission, among the types, or null", async () => {
      expect(await ctx.store.nextRunAt({ types: [TYPE] })).toBeNull();
      // Due when submitted: announced then, and no index entry of its own.
      await submitJob(ctx.store, { type: "test.now", runAt: T0 });
      expect(await ctx.store.nextRunAt({ types: ["test.now"] })).toBeNull();
      await submitJob(ctx.store, { runAt: T0 + 500 });
      await submitJob(ctx.store, { runAt: T0 + 300 });
      await submitJob(ctx.store, { type: "test.other", runAt: T0 + 100 });

      expect(await ctx.store.nextRunAt({ types: [TYPE] })).toBe(T0 + 300);
      expect(await ctx.store.nextRunAt({ types: [TYPE, "test.other"] })).toBe(T0 + 100);
      expect(await ctx.store.nextRunAt({ types: ["test.unknown"] })).toBeNull();
      expect(await ctx.store.nextRunAt({ types: [] })).toBeNull();

      // Running and finished jobs are not waiting to run.
      await claimOne(ctx.store, { now: T0 + 300 });
      expect(await ctx.store.nextRunAt({ types: [TYPE] })).toBe(T0 + 500);
      const last = await claimOne(ctx.store, { now: T0 + 500 });
      await ctx.store.complete({ lease: leaseOf(last), result: { kind: "none" }, now: T0 + 501 });
      expect(await ctx.store.nextRunAt({ types: [TYPE] })).toBeNull();
    });
  });
}
