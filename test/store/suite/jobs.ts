import { describe, expect, it } from "vitest";
import {
  OTHER_TENANT,
  T0,
  TENANT,
  TYPE,
  claimOne,
  getJob,
  labelOf,
  leaseOf,
  newJob,
  submitAndClaim,
  submitJob,
  type SuiteContext,
} from "./context.js";

/** Submit, read, list, idempotency, cancel and delete: the API side of the store. */
export function describeJobs(ctx: SuiteContext): void {
  describe("submit and get", () => {
    it("stores a queued job with everything the client sent", async () => {
      const spec = newJob({
        input: { text: "héllo", nested: [1, { a: null }] },
        priority: 7,
        runAt: T0 + 5000,
        metadata: { team: "blue" },
        callback: { url: "https://example.com/hook", events: ["job.succeeded"] },
      });
      const outcome = await ctx.store.submit({ job: spec, idempotency: null, now: T0 });
      expect(outcome.kind).toBe("created");

      const job = await getJob(ctx.store, spec.id);
      expect(job).toEqual({
        id: spec.id,
        tenantId: TENANT,
        type: TYPE,
        status: "queued",
        input: spec.input,
        priority: 7,
        runAt: T0 + 5000,
        createdAt: T0,
        startedAt: null,
        finishedAt: null,
        deadlineAt: spec.deadlineAt,
        attempt: 0,
        maxAttempts: 3,
        progressPercent: null,
        progressMessage: null,
        error: null,
        metadata: { team: "blue" },
        callback: { url: "https://example.com/hook", events: ["job.succeeded"] },
        resultPurged: false,
      });
      expect(outcome.kind === "created" && outcome.job).toEqual(job);
    });

    it("returns null for an unknown id", async () => {
      expect(await ctx.store.get({ tenantId: TENANT, id: "no-such-job" })).toBeNull();
    });
  });

  describe("tenant scoping", () => {
    it("answers another tenant's id exactly like an unknown id, everywhere, and changes nothing", async () => {
      const running = await submitAndClaim(ctx.store);
      await ctx.store.complete({
        lease: leaseOf(running),
        result: { kind: "json", json: "{}" },
        now: T0 + 1,
      });
      const queued = await submitJob(ctx.store);
      const asOther = { tenantId: OTHER_TENANT, now: T0 + 2 };

      for (const id of [running.id, queued.id]) {
        expect(await ctx.store.get({ tenantId: OTHER_TENANT, id })).toBeNull();
        expect(await ctx.store.getResult({ tenantId: OTHER_TENANT, id })).toBeNull();
        expect(await ctx.store.cancel({ ...asOther, id })).toEqual({ kind: "not-found" });
        expect(await ctx.store.delete({ ...asOther, id })).toBe(false);
      }
      expect(await ctx.store.list({ tenantId: OTHER_TENANT, limit: 100 })).toEqual([]);

      expect((await getJob(ctx.store, running.id)).status).toBe("succeeded");
      expect(await ctx.store.getResult({ tenantId: TENANT, id: running.id })).not.toBeNull();
      expect((await getJob(ctx.store, queued.id)).status).toBe("queued");
    });

    it("lists only the caller's jobs, whatever the cursor says", async () => {
      const mine = await submitJob(ctx.store, { id: "a-mine" }, T0);
      await submitJob(ctx.store, { id: "b-theirs", tenantId: OTHER_TENANT }, T0 + 1);
      const page = await ctx.store.list({
        tenantId: TENANT,
        limit: 10,
        before: { createdAt: T0 + 10, id: "zzz" },
      });
      expect(page.map((j) => j.id)).toEqual([mine.id]);
    });
  });

  describe("list", () => {
    async function seed() {
      // Three jobs share createdAt so the tie-break by id shows, across a page boundary too.
      await submitJob(ctx.store, { id: "job-e" }, T0);
      await submitJob(ctx.store, { id: "job-a" }, T0 + 1);
      await submitJob(ctx.store, { id: "job-b" }, T0 + 2);
      await submitJob(ctx.store, { id: "job-d" }, T0 + 2);
      await submitJob(ctx.store, { id: "job-c" }, T0 + 2);
    }

    it("lists newest first, ties by id descending", async () => {
      await seed();
      const page = await ctx.store.list({ tenantId: TENANT, limit: 50 });
      expect(page.map((j) => labelOf(j.id))).toEqual(["job-d", "job-c", "job-b", "job-a", "job-e"]);
    });

    it("pages with `before` without skipping or repeating a job", async () => {
      await seed();
      const seen: string[] = [];
      let before: { createdAt: number; id: string } | undefined;
      for (let pages = 0; pages < 10; pages++) {
        const page = await ctx.store.list({ tenantId: TENANT, limit: 2, ...(before ? { before } : {}) });
        expect(page.length).toBeLessThanOrEqual(2);
        if (page.length === 0) break;
        seen.push(...page.map((j) => labelOf(j.id)));
        const last = page[page.length - 1]!;
        before = { createdAt: last.createdAt, id: last.id };
      }
      expect(seen).toEqual(["job-d", "job-c", "job-b", "job-a", "job-e"]);
    });

    it("filters by status and by type", async () => {
      await submitJob(ctx.store, { id: "q-echo" }, T0);
      await submitJob(ctx.store, { id: "q-other", type: "test.other" }, T0 + 1);
      await submitJob(ctx.store, { id: "r-echo" }, T0 + 2);
      await claimOne(ctx.store, { now: T0 + 3 }); // claims q-echo: same priority, same runAt, lowest id

      const ids = async (filter: { status?: "queued" | "running"; type?: string }) =>
        (await ctx.store.list({ tenantId: TENANT, limit: 50, ...filter })).map((j) => labelOf(j.id));
      expect(await ids({ status: "running" })).toEqual(["q-echo"]);
      expect(await ids({ status: "queued" })).toEqual(["r-echo", "q-other"]);
      expect(await ids({ type: "test.other" })).toEqual(["q-other"]);
      expect(await ids({ type: TYPE, status: "queued" })).toEqual(["r-echo"]);
    });
  });

  describe("idempotency", () => {
    const key = { key: "key-1", requestHash: "hash-1" };

    it("replays the first job for the same key and request, without creating another", async () => {
      const first = await ctx.store.submit({ job: newJob(), idempotency: key, now: T0 });
      expect(first.kind).toBe("created");
      const firstId = first.kind === "created" ? first.job.id : "";
      await claimOne(ctx.store, { now: T0 + 1 });

      const retry = newJob();
      const replay = await ctx.store.submit({ job: retry, idempotency: key, now: T0 + 2 });
      expect(replay.kind).toBe("replayed");
      if (replay.kind !== "replayed") return;
      expect(replay.job.id).toBe(firstId);
      // The current representation, not the one of the first answer.
      expect(replay.job.status).toBe("running");
      expect(await ctx.store.get({ tenantId: TENANT, id: retry.id })).toBeNull();
      expect(await ctx.store.list({ tenantId: TENANT, limit: 10 })).toHaveLength(1);
    });

    it("creates exactly one job for concurrent submits with the same key", async () => {
      const outcomes = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          ctx.store.submit({ job: newJob(), idempotency: key, now: T0 + i }),
        ),
      );
      const created = outcomes.filter((o) => o.kind === "created");
      expect(created).toHaveLength(1);
      const id = created[0]!.kind === "created" ? created[0]!.job.id : "";
      for (const o of outcomes) expect(o.kind !== "key-mismatch" && o.job.id).toBe(id);
      expect(await ctx.store.list({ tenantId: TENANT, limit: 50 })).toHaveLength(1);
    });

    it("refuses the same key with a different request", async () => {
      await ctx.store.submit({ job: newJob(), idempotency: key, now: T0 });
      const other = newJob();
      const outcome = await ctx.store.submit({
        job: other,
        idempotency: { key: key.key, requestHash: "hash-2" },
        now: T0 + 1,
      });
      expect(outcome).toEqual({ kind: "key-mismatch" });
      expect(await ctx.store.get({ tenantId: TENANT, id: other.id })).toBeNull();
      expect(await ctx.store.list({ tenantId: TENANT, limit: 10 })).toHaveLength(1);
    });

    it("gives another tenant using the same key its own new job", async () => {
      const mine = await ctx.store.submit({ job: newJob(), idempotency: key, now: T0 });
      const theirs = await ctx.store.submit({
        job: newJob({ tenantId: OTHER_TENANT }),
        idempotency: key,
        now: T0 + 1,
      });
      expect(theirs.kind).toBe("created");
      if (mine.kind !== "created" || theirs.kind !== "created") return;
      expect(theirs.job.id).not.toBe(mine.job.id);
      expect(theirs.job.tenantId).toBe(OTHER_TENANT);
    });

    it("does not reveal another tenant's use of a key, whatever the request", async () => {
      await ctx.store.submit({ job: newJob(), idempotency: key, now: T0 });
      const theirs = await ctx.store.submit({
        job: newJob({ tenantId: OTHER_TENANT }),
        idempotency: { key: key.key, requestHash: "their-own-body" },
        now: T0 + 1,
      });
      expect(theirs.kind).toBe("created");
    });

    it("frees the key when the job is deleted", async () => {
      const first = await ctx.store.submit({ job: newJob(), idempotency: key, now: T0 });
      if (first.kind !== "created") throw new Error("not created");
      expect(await ctx.store.delete({ tenantId: TENANT, id: first.job.id, now: T0 + 1 })).toBe(true);

      const again = newJob();
      const outcome = await ctx.store.submit({
        job: again,
        idempotency: { key: key.key, requestHash: "hash-2" },
        now: T0 + 2,
      });
      expect(outcome.kind).toBe("created");
      expect(outcome.kind === "created" && outcome.job.id).toBe(again.id);
    });

    it("frees the key once purgeExpired removed its record, keeping the job", async () => {
      const first = await ctx.store.submit({ job: newJob(), idempotency: key, now: T0 });
      if (first.kind !== "created") throw new Error("not created");
      const purged = await ctx.store.purgeExpired({
        resultsBefore: 0,
        jobsBefore: 0,
        idempotencyBefore: T0 + 1,
        limit: 100,
      });
      expect(purged).toEqual({ resultsPurged: 0, jobsDeleted: 0, idempotencyDeleted: 1 });

      const again = newJob();
      const outcome = await ctx.store.submit({ job: again, idempotency: key, now: T0 + 2 });
      expect(outcome.kind).toBe("created");
      expect(outcome.kind === "created" && outcome.job.id).toBe(again.id);
      expect((await getJob(ctx.store, first.job.id)).status).toBe("queued");
    });

    it("keeps a record younger than idempotencyBefore", async () => {
      await ctx.store.submit({ job: newJob(), idempotency: key, now: T0 });
      const purged = await ctx.store.purgeExpired({
        resultsBefore: 0,
        jobsBefore: 0,
        idempotencyBefore: T0,
        limit: 100,
      });
      expect(purged.idempotencyDeleted).toBe(0);
      expect((await ctx.store.submit({ job: newJob(), idempotency: key, now: T0 + 1 })).kind).toBe(
        "replayed",
      );
    });
  });

  describe("cancel", () => {
    it("cancels a queued job, which is then never claimed", async () => {
      const job = await submitJob(ctx.store);
      const outcome = await ctx.store.cancel({ tenantId: TENANT, id: job.id, now: T0 + 5 });
      expect(outcome.kind).toBe("canceled");
      const canceled = await getJob(ctx.store, job.id);
      expect(outcome.kind === "canceled" && outcome.job).toEqual(canceled);
      expect(canceled.status).toBe("canceled");
      expect(canceled.finishedAt).toBe(T0 + 5);
      // The result resource answers a canceled job with its persisted 409 problem.
      expect(canceled.error).toMatchObject({ type: "/problems/job-canceled", status: 409 });
      expect(await ctx.store.claim({ types: [TYPE], limit: 10, leaseMs: 1000, now: T0 + 10 })).toEqual([]);
    });

    it("fences the lease holder of a canceled running job", async () => {
      const claimed = await submitAndClaim(ctx.store);
      expect((await ctx.store.cancel({ tenantId: TENANT, id: claimed.id, now: T0 + 5 })).kind).toBe(
        "canceled",
      );

      expect(
        await ctx.store.complete({
          lease: leaseOf(claimed),
          result: { kind: "json", json: "1" },
          now: T0 + 6,
        }),
      ).toBe(false);
      expect(await ctx.store.heartbeat({ leases: [leaseOf(claimed)], leaseMs: 1000, now: T0 + 6 })).toEqual([
        claimed.id,
      ]);
      const job = await getJob(ctx.store, claimed.id);
      expect(job.status).toBe("canceled");
      expect(job.finishedAt).toBe(T0 + 5);
      expect(await ctx.store.getResult({ tenantId: TENANT, id: claimed.id })).toBeNull();
    });

    it("answers already-canceled, finished and not-found without changing the job", async () => {
      const job = await submitJob(ctx.store);
      await ctx.store.cancel({ tenantId: TENANT, id: job.id, now: T0 + 1 });
      const again = await ctx.store.cancel({ tenantId: TENANT, id: job.id, now: T0 + 2 });
      expect(again.kind).toBe("already-canceled");
      expect(again.kind === "already-canceled" && again.job.finishedAt).toBe(T0 + 1);

      const done = await submitAndClaim(ctx.store, {}, T0 + 3);
      await ctx.store.complete({ lease: leaseOf(done), result: { kind: "none" }, now: T0 + 4 });
      const finished = await ctx.store.cancel({ tenantId: TENANT, id: done.id, now: T0 + 5 });
      expect(finished.kind).toBe("finished");
      expect(finished.kind === "finished" && finished.job.status).toBe("succeeded");
      expect((await getJob(ctx.store, done.id)).status).toBe("succeeded");

      const failed = await submitAndClaim(ctx.store, {}, T0 + 6);
      const problem = { type: "/problems/job-failed", title: "The job failed", status: 500, detail: "boom" };
      await ctx.store.fail({ lease: leaseOf(failed), error: problem, retryAt: null, now: T0 + 7 });
      const failedOutcome = await ctx.store.cancel({ tenantId: TENANT, id: failed.id, now: T0 + 8 });
      expect(failedOutcome.kind === "finished" && failedOutcome.job.status).toBe("failed");

      expect(await ctx.store.cancel({ tenantId: TENANT, id: "no-such-job", now: T0 })).toEqual({
        kind: "not-found",
      });
    });
  });

  describe("delete", () => {
    it("removes the job, its result and its idempotency record", async () => {
      const key = { key: "key-del", requestHash: "hash-1" };
      const submitted = await ctx.store.submit({ job: newJob(), idempotency: key, now: T0 });
      if (submitted.kind !== "created") throw new Error("not created");
      const claimed = await claimOne(ctx.store, { now: T0 + 1 });
      await ctx.store.complete({
        lease: leaseOf(claimed),
        result: { kind: "json", json: '{"ok":true}' },
        now: T0 + 2,
      });

      expect(await ctx.store.delete({ tenantId: TENANT, id: claimed.id, now: T0 + 3 })).toBe(true);
      expect(await ctx.store.get({ tenantId: TENANT, id: claimed.id })).toBeNull();
      expect(await ctx.store.getResult({ tenantId: TENANT, id: claimed.id })).toBeNull();
      expect(await ctx.store.list({ tenantId: TENANT, limit: 10 })).toEqual([]);
      expect(await ctx.store.cancel({ tenantId: TENANT, id: claimed.id, now: T0 + 4 })).toEqual({
        kind: "not-found",
      });
      const again = await ctx.store.submit({ job: newJob(), idempotency: key, now: T0 + 4 });
      expect(again.kind).toBe("created");

      expect(await ctx.store.delete({ tenantId: TENANT, id: claimed.id, now: T0 + 5 })).toBe(false);
    });

    it("returns false for an unknown id", async () => {
      expect(await ctx.store.delete({ tenantId: TENANT, id: "no-such-job", now: T0 })).toBe(false);
    });

    it("fences the lease holder of a deleted running job", async () => {
      const claimed = await submitAndClaim(ctx.store);
      expect(await ctx.store.delete({ tenantId: TENANT, id: claimed.id, now: T0 + 1 })).toBe(true);
      expect(await ctx.store.heartbeat({ leases: [leaseOf(claimed)], leaseMs: 1000, now: T0 + 2 })).toEqual([
        claimed.id,
      ]);
      expect(
        await ctx.store.complete({
          lease: leaseOf(claimed),
          result: { kind: "json", json: "1" },
          now: T0 + 2,
        }),
      ).toBe(false);
      expect(await ctx.store.get({ tenantId: TENANT, id: claimed.id })).toBeNull();
    });
  });
}
