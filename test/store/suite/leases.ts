import { describe, expect, it } from "vitest";
import {
  LEASE_MS,
  T0,
  TENANT,
  TYPE,
  claimOne,
  getJob,
  labelOf,
  labelledId,
  leaseOf,
  newJob,
  submitAndClaim,
  submitJob,
  BOOM,
  type SuiteContext,
} from "./context.js";

/** The worker side: claim order, leases and the fence every worker write goes through. */
export function describeLeases(ctx: SuiteContext): void {
  const claim = (params: { types?: string[]; limit?: number; now?: number; leaseMs?: number } = {}) =>
    ctx.store.claim({
      types: params.types ?? [TYPE],
      limit: params.limit ?? 10,
      leaseMs: params.leaseMs ?? LEASE_MS,
      now: params.now ?? T0,
    });

  describe("claim", () => {
    it("claims by priority (highest first), then runAt, then id", async () => {
      await submitJob(ctx.store, { id: "a", priority: 0, runAt: T0 - 10 });
      await submitJob(ctx.store, { id: "b", priority: 5, runAt: T0 });
      await submitJob(ctx.store, { id: "d", priority: 5, runAt: T0 - 5 });
      await submitJob(ctx.store, { id: "c", priority: 5, runAt: T0 - 5 });
      await submitJob(ctx.store, { id: "e", priority: -1, runAt: T0 - 100 });

      const oneByOne: string[] = [];
      for (let i = 0; i < 5; i++) oneByOne.push(labelOf((await claimOne(ctx.store)).id));
      expect(oneByOne).toEqual(["c", "d", "b", "a", "e"]);
    });

    it("returns a batch in claim order", async () => {
      await submitJob(ctx.store, { id: "low", priority: 1 });
      await submitJob(ctx.store, { id: "high", priority: 9 });
      await submitJob(ctx.store, { id: "mid", priority: 5 });
      expect((await claim({ limit: 10 })).map((j) => labelOf(j.id))).toEqual(["high", "mid", "low"]);
    });

    it("respects limit and never hands out a running job twice", async () => {
      for (let i = 0; i < 5; i++) await submitJob(ctx.store);
      const first = await claim({ limit: 2 });
      expect(first).toHaveLength(2);
      const second = await claim({ limit: 10, now: T0 + 1 });
      expect(second).toHaveLength(3);
      const ids = new Set([...first, ...second].map((j) => j.id));
      expect(ids.size).toBe(5);
      expect(await claim({ limit: 10, now: T0 + 2 })).toEqual([]);
    });

    it("never gives one job to two concurrent claims", async () => {
      for (let i = 0; i < 5; i++) await submitJob(ctx.store);
      const batches = await Promise.all(Array.from({ length: 10 }, () => claim({ limit: 1 })));
      const ids = batches.flat().map((j) => j.id);
      expect(ids).toHaveLength(5);
      expect(new Set(ids).size).toBe(5);
    });

    it("never starts a job past its deadline (a runAt after it, or a claim after a restart)", async () => {
      const late = await submitJob(ctx.store, { id: "late", runAt: T0 + 60_000, deadlineAt: T0 + 1000 });
      const due = await submitJob(ctx.store, { id: "due", runAt: T0, deadlineAt: T0 + 120_000 });
      // At runAt, the deadline has passed: only the deadline sweep may move the late job.
      const claimed = await claim({ now: T0 + 60_000 });
      expect(claimed.map((j) => j.id)).toEqual([due.id]);
      expect((await ctx.store.get({ tenantId: late.tenantId, id: late.id }))?.status).toBe("queued");
      // Exactly at the deadline it is too late as well.
      const edge = await submitJob(ctx.store, { id: "edge", runAt: T0, deadlineAt: T0 + 5000 });
      expect((await claim({ now: T0 + 5000 })).map((j) => j.id)).not.toContain(edge.id);
    });

    it("claims only the requested types", async () => {
      const echo = await submitJob(ctx.store, { type: TYPE });
      const other = await submitJob(ctx.store, { type: "test.other" });
      expect(await claim({ types: [] })).toEqual([]);
      expect(await claim({ types: ["test.unknown"] })).toEqual([]);
      expect((await claim({ types: ["test.other"] })).map((j) => j.id)).toEqual([other.id]);
      expect((await claim({ types: [TYPE, "test.other"] })).map((j) => j.id)).toEqual([echo.id]);
    });

    it("does not claim a job before its runAt", async () => {
      const job = await submitJob(ctx.store, { runAt: T0 + 1000 });
      expect(await claim({ now: T0 + 999 })).toEqual([]);
      expect((await claim({ now: T0 + 1000 })).map((j) => j.id)).toEqual([job.id]);
    });

    it("starts an attempt: running, attempt + 1, a lease token and expiry", async () => {
      const job = await submitJob(ctx.store);
      const [claimed] = await claim({ now: T0 + 50, leaseMs: 2000 });
      expect(claimed).toMatchObject({ id: job.id, status: "running", attempt: 1, startedAt: T0 + 50 });
      expect(typeof claimed!.leaseToken).toBe("string");
      expect(claimed!.leaseToken.length).toBeGreaterThan(0);
      expect(claimed!.leaseExpiresAt).toBe(T0 + 2050);
      expect(await getJob(ctx.store, job.id)).toMatchObject({
        status: "running",
        attempt: 1,
        startedAt: T0 + 50,
      });
    });

    it("does not claim a limit of 0", async () => {
      const job = await submitJob(ctx.store);
      expect(await claim({ limit: 0 })).toEqual([]);
      expect(await getJob(ctx.store, job.id)).toMatchObject({ status: "queued", attempt: 0 });
    });
  });

  describe("lease and deadline", () => {
    it("a claim's lease never outlives the job's deadline", async () => {
      await submitJob(ctx.store, { deadlineAt: T0 + 1000 });
      await submitJob(ctx.store, { deadlineAt: T0 + LEASE_MS + 5000 });
      const claimed = await claim({ limit: 2, now: T0 });
      expect(claimed.map((j) => j.leaseExpiresAt).sort()).toEqual([T0 + 1000, T0 + LEASE_MS]);
    });
  });

  describe("submit with a lease (handoff to an idle worker)", () => {
    it("stores the job running, attempt 1, under the given lease, unannounced and never claimed", async () => {
      const events: string[] = [];
      const unsubscribe = ctx.store.subscribe((e) => events.push(e.kind));
      const outcome = await ctx.store.submit({
        job: newJob({ id: "handed" }),
        idempotency: null,
        now: T0,
        lease: { token: "tok-1", expiresAt: T0 + LEASE_MS },
      });
      unsubscribe();
      expect(outcome).toMatchObject({
        kind: "created",
        job: { status: "running", attempt: 1, startedAt: T0 },
      });
      expect(events).not.toContain("queued");
      expect(await claim({ now: T0 + 1 })).toEqual([]);
      const lease = { id: labelledId("handed"), leaseToken: "tok-1" };
      // The lease is a lease like any other: heartbeats extend it, the wrong token is fenced,
      // and the sweeper takes the job back once it lapses.
      expect(await ctx.store.heartbeat({ leases: [lease], leaseMs: LEASE_MS, now: T0 + 10 })).toEqual([]);
      expect(
        await ctx.store.complete({
          lease: { id: labelledId("handed"), leaseToken: "other" },
          result: { kind: "none" },
          now: T0 + 20,
        }),
      ).toBe(false);
      expect(await ctx.store.complete({ lease, result: { kind: "none" }, now: T0 + 20 })).toBe(true);
      expect(await getJob(ctx.store, labelledId("handed"))).toMatchObject({
        status: "succeeded",
        attempt: 1,
      });
    });

    it("an Idempotency-Key replay returns the existing job and stores nothing under the lease", async () => {
      const idempotency = { key: "k1", requestHash: "h1" };
      const first = await ctx.store.submit({ job: newJob({ id: "first" }), idempotency, now: T0 });
      expect(first).toMatchObject({ kind: "created", job: { status: "queued" } });
      const again = await ctx.store.submit({
        job: newJob({ id: "second" }),
        idempotency,
        now: T0 + 1,
        lease: { token: "tok-2", expiresAt: T0 + LEASE_MS },
      });
      expect(again).toMatchObject({
        kind: "replayed",
        job: { id: labelledId("first"), status: "queued", attempt: 0 },
      });
      expect(await ctx.store.get({ tenantId: TENANT, id: labelledId("second") })).toBeNull();
    });

    it("a lapsed lease is swept back to the queue like a claimed one", async () => {
      await ctx.store.submit({
        job: newJob({ id: "lapsed" }),
        idempotency: null,
        now: T0,
        lease: { token: "tok-3", expiresAt: T0 + 100 },
      });
      expect(await ctx.store.sweepExpiredLeases({ now: T0 + 200, retryDelayMs: 0, limit: 10 })).toBe(1);
      expect((await claimOne(ctx.store, { now: T0 + 300 })).attempt).toBe(2);
    });
  });

  describe("fencing", () => {
    it("heartbeat extends live leases and returns the ids whose lease is gone", async () => {
      const live = await submitAndClaim(ctx.store);
      const canceled = await submitAndClaim(ctx.store);
      await ctx.store.cancel({ tenantId: live.tenantId, id: canceled.id, now: T0 + 1 });

      const lost = await ctx.store.heartbeat({
        leases: [leaseOf(live), leaseOf(canceled)],
        leaseMs: LEASE_MS,
        now: T0 + 20_000,
      });
      expect(lost).toEqual([canceled.id]);
      // The original lease would have expired at T0 + 30s; the heartbeat moved it to T0 + 50s.
      expect(await ctx.store.sweepExpiredLeases({ now: T0 + 40_000, retryDelayMs: 0, limit: 10 })).toBe(0);
      expect((await getJob(ctx.store, live.id)).status).toBe("running");
      expect(await ctx.store.sweepExpiredLeases({ now: T0 + 50_000, retryDelayMs: 0, limit: 10 })).toBe(1);
    });

    it("heartbeat with a wrong token reports the lease as gone", async () => {
      const job = await submitAndClaim(ctx.store);
      expect(
        await ctx.store.heartbeat({
          leases: [{ id: job.id, leaseToken: "forged" }],
          leaseMs: LEASE_MS,
          now: T0 + 1,
        }),
      ).toEqual([job.id]);
    });

    it("progress, complete and fail with a wrong token return false and change nothing", async () => {
      const job = await submitAndClaim(ctx.store);
      const forged = { id: job.id, leaseToken: "forged" };
      const before = await getJob(ctx.store, job.id);

      expect(await ctx.store.progress({ lease: forged, percent: 50, message: "half", now: T0 })).toBe(false);
      expect(
        await ctx.store.complete({ lease: forged, result: { kind: "json", json: "1" }, now: T0 + 1 }),
      ).toBe(false);
      expect(await ctx.store.fail({ lease: forged, error: BOOM, retryAt: null, now: T0 + 1 })).toBe(false);
      expect(await ctx.store.fail({ lease: forged, error: BOOM, retryAt: T0 + 10, now: T0 + 1 })).toBe(false);

      expect(await getJob(ctx.store, job.id)).toEqual(before);
      expect(await ctx.store.getResult({ tenantId: job.tenantId, id: job.id })).toBeNull();
      // The real holder is unaffected.
      expect(await ctx.store.progress({ lease: leaseOf(job), percent: 50, message: "half", now: T0 })).toBe(
        true,
      );
      expect(await getJob(ctx.store, job.id)).toMatchObject({ progressPercent: 50, progressMessage: "half" });
    });

    it("a batch of completions from several claims records each under its own lease, and fences a stale one", async () => {
      for (let i = 0; i < 3; i++) await submitJob(ctx.store);
      const first = await claim({ limit: 2 });
      const [second] = await claim({ limit: 1 });
      const [a, b] = first;
      const done = await ctx.store.completeMany([
        { lease: leaseOf(a!), result: { kind: "json", json: '{"n":1}' }, now: T0 + 1, hasCallback: false },
        { lease: leaseOf(second!), result: { kind: "none" }, now: T0 + 2, hasCallback: false },
        // b's id under the other claim's token: not b's lease.
        { lease: { id: b!.id, leaseToken: second!.leaseToken }, result: { kind: "none" }, now: T0 + 3 },
      ]);
      expect(done).toEqual([true, true, false]);
      expect(await getJob(ctx.store, a!.id)).toMatchObject({ status: "succeeded", finishedAt: T0 + 1 });
      expect(await getJob(ctx.store, second!.id)).toMatchObject({ status: "succeeded", finishedAt: T0 + 2 });
      expect(await getJob(ctx.store, b!.id)).toMatchObject({ status: "running" });
      expect(await ctx.store.getResult({ tenantId: TENANT, id: a!.id })).toMatchObject({ kind: "json" });
      expect(await ctx.store.getResult({ tenantId: TENANT, id: second!.id })).toMatchObject({ kind: "none" });
      expect(
        await ctx.store.completeMany([{ lease: leaseOf(b!), result: { kind: "none" }, now: T0 + 4 }]),
      ).toEqual([true]);
    });

    it("requeues an expired lease with its attempt kept and fences the old token", async () => {
      const first = await submitAndClaim(ctx.store, { maxAttempts: 3 }, T0);
      expect(
        await ctx.store.sweepExpiredLeases({ now: T0 + LEASE_MS - 1, retryDelayMs: 500, limit: 10 }),
      ).toBe(0);
      const sweptAt = T0 + LEASE_MS + 1;
      expect(await ctx.store.sweepExpiredLeases({ now: sweptAt, retryDelayMs: 500, limit: 10 })).toBe(1);

      const requeued = await getJob(ctx.store, first.id);
      expect(requeued).toMatchObject({
        status: "queued",
        attempt: 1,
        runAt: sweptAt + 500,
        finishedAt: null,
      });
      expect(requeued.error?.detail).toMatch(/lease/);

      const stale = leaseOf(first);
      expect(await ctx.store.heartbeat({ leases: [stale], leaseMs: LEASE_MS, now: sweptAt })).toEqual([
        first.id,
      ]);
      expect(await ctx.store.progress({ lease: stale, percent: 10, message: null, now: T0 })).toBe(false);
      expect(await ctx.store.complete({ lease: stale, result: { kind: "none" }, now: sweptAt })).toBe(false);
      expect(await ctx.store.fail({ lease: stale, error: BOOM, retryAt: null, now: sweptAt })).toBe(false);
      expect((await getJob(ctx.store, first.id)).status).toBe("queued");

      const second = await claimOne(ctx.store, { now: sweptAt + 500 });
      expect(second).toMatchObject({ id: first.id, attempt: 2 });
      expect(second.leaseToken).not.toBe(first.leaseToken);
      // The old attempt stays fenced while the new one holds the job.
      expect(
        await ctx.store.complete({
          lease: stale,
          result: { kind: "json", json: '"old"' },
          now: sweptAt + 600,
        }),
      ).toBe(false);
      expect(
        await ctx.store.complete({ lease: leaseOf(second), result: { kind: "none" }, now: sweptAt + 700 }),
      ).toBe(true);
      expect(await getJob(ctx.store, first.id)).toMatchObject({ status: "succeeded", attempt: 2 });
    });

    it("fails a job whose lease expired on its last attempt: a crash counts as an attempt", async () => {
      const first = await submitAndClaim(ctx.store, { maxAttempts: 2 });
      await ctx.store.sweepExpiredLeases({ now: T0 + LEASE_MS, retryDelayMs: 0, limit: 10 });
      const second = await claimOne(ctx.store, { now: T0 + LEASE_MS });
      expect(second).toMatchObject({ id: first.id, attempt: 2 });

      const sweptAt = T0 + 2 * LEASE_MS + 5;
      expect(await ctx.store.sweepExpiredLeases({ now: sweptAt, retryDelayMs: 0, limit: 10 })).toBe(1);
      const failed = await getJob(ctx.store, first.id);
      expect(failed).toMatchObject({ status: "failed", attempt: 2, finishedAt: sweptAt });
      expect(failed.error).toMatchObject({ type: "/problems/job-failed", status: 500 });
      expect(failed.error?.detail).toMatch(/lost its lease|lease/);
      expect(await claim({ now: sweptAt + 10_000 })).toEqual([]);
      expect(
        await ctx.store.complete({ lease: leaseOf(second), result: { kind: "none" }, now: sweptAt }),
      ).toBe(false);
    });

    it("fails at once when maxAttempts is 1", async () => {
      const job = await submitAndClaim(ctx.store, { maxAttempts: 1 });
      await ctx.store.sweepExpiredLeases({ now: T0 + LEASE_MS, retryDelayMs: 0, limit: 10 });
      expect((await getJob(ctx.store, job.id)).status).toBe("failed");
    });

    it("sweeps at most `limit` leases and leaves live ones and queued jobs alone", async () => {
      for (let i = 0; i < 3; i++) await submitAndClaim(ctx.store, {}, T0);
      const live = await submitAndClaim(ctx.store, {}, T0 + 10_000);
      const queued = await submitJob(ctx.store, { runAt: T0 + 60_000 });
      const now = T0 + LEASE_MS;

      expect(await ctx.store.sweepExpiredLeases({ now, retryDelayMs: 0, limit: 2 })).toBe(2);
      expect(await ctx.store.sweepExpiredLeases({ now, retryDelayMs: 0, limit: 2 })).toBe(1);
      expect(await ctx.store.sweepExpiredLeases({ now, retryDelayMs: 0, limit: 2 })).toBe(0);
      expect((await getJob(ctx.store, live.id)).status).toBe("running");
      expect(await getJob(ctx.store, queued.id)).toMatchObject({ status: "queued", attempt: 0 });
    });
  });

  describe("fail", () => {
    it("with retryAt: back to queued at retryAt, keeping the error", async () => {
      const job = await submitAndClaim(ctx.store);
      expect(
        await ctx.store.fail({ lease: leaseOf(job), error: BOOM, retryAt: T0 + 5000, now: T0 + 1 }),
      ).toBe(true);
      expect(await getJob(ctx.store, job.id)).toMatchObject({
        status: "queued",
        runAt: T0 + 5000,
        attempt: 1,
        error: BOOM,
        finishedAt: null,
      });
      expect(await claim({ now: T0 + 4999 })).toEqual([]);
      expect(await claimOne(ctx.store, { now: T0 + 5000 })).toMatchObject({ id: job.id, attempt: 2 });
      // The lease of the failed attempt is over.
      expect(
        await ctx.store.complete({ lease: leaseOf(job), result: { kind: "none" }, now: T0 + 5001 }),
      ).toBe(false);
    });

    it("with retryAt null: terminal failed with finishedAt and the error", async () => {
      const job = await submitAndClaim(ctx.store);
      expect(await ctx.store.fail({ lease: leaseOf(job), error: BOOM, retryAt: null, now: T0 + 7 })).toBe(
        true,
      );
      expect(await getJob(ctx.store, job.id)).toMatchObject({
        status: "failed",
        finishedAt: T0 + 7,
        error: BOOM,
      });
      expect(await claim({ now: T0 + 10_000 })).toEqual([]);
      // Recorded exactly once: a second write by the same attempt does not apply.
      expect(await ctx.store.fail({ lease: leaseOf(job), error: BOOM, retryAt: null, now: T0 + 8 })).toBe(
        false,
      );
      expect(await ctx.store.complete({ lease: leaseOf(job), result: { kind: "none" }, now: T0 + 8 })).toBe(
        false,
      );
      expect(await getJob(ctx.store, job.id)).toMatchObject({ status: "failed", finishedAt: T0 + 7 });
    });
  });

  describe("complete", () => {
    it("records success exactly once", async () => {
      const job = await submitAndClaim(ctx.store);
      expect(
        await ctx.store.complete({ lease: leaseOf(job), result: { kind: "json", json: "1" }, now: T0 + 3 }),
      ).toBe(true);
      expect(await getJob(ctx.store, job.id)).toMatchObject({
        status: "succeeded",
        finishedAt: T0 + 3,
        attempt: 1,
      });
      expect(
        await ctx.store.complete({ lease: leaseOf(job), result: { kind: "json", json: "2" }, now: T0 + 4 }),
      ).toBe(false);
      const result = await ctx.store.getResult({ tenantId: job.tenantId, id: job.id });
      expect(Buffer.from(result!.data!).toString()).toBe("1");
      expect((await getJob(ctx.store, job.id)).finishedAt).toBe(T0 + 3);
    });
  });

  describe("release", () => {
    it("hands the job back without counting the attempt", async () => {
      const job = await submitAndClaim(ctx.store, { maxAttempts: 1 });
      expect(await ctx.store.release({ leases: [leaseOf(job)], now: T0 + 10 })).toBe(1);
      expect(await getJob(ctx.store, job.id)).toMatchObject({ status: "queued", attempt: 0 });

      const again = await claimOne(ctx.store, { now: T0 + 10 });
      expect(again).toMatchObject({ id: job.id, attempt: 1 });
      expect(await ctx.store.complete({ lease: leaseOf(job), result: { kind: "none" }, now: T0 + 11 })).toBe(
        false,
      );
    });

    it("releases only leases still held", async () => {
      const held = await submitAndClaim(ctx.store);
      const other = await submitAndClaim(ctx.store);
      const released = await ctx.store.release({
        leases: [leaseOf(held), { id: other.id, leaseToken: "forged" }],
        now: T0 + 1,
      });
      expect(released).toBe(1);
      expect((await getJob(ctx.store, held.id)).status).toBe("queued");
      expect(await getJob(ctx.store, other.id)).toMatchObject({ status: "running", attempt: 1 });
      expect(await ctx.store.release({ leases: [], now: T0 + 2 })).toBe(0);
    });
  });
}
