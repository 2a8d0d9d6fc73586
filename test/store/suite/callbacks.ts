import { describe, expect, it } from "vitest";
import type {
  CallbackEvent,
  CallbackSpec,
  ClaimedDelivery,
  DeliveryAttempt,
} from "../../../src/store/store.js";
import {
  LEASE_MS,
  OTHER_TENANT,
  T0,
  TENANT,
  claimOne,
  leaseOf,
  submitAndClaim,
  submitJob,
  BOOM,
  type SuiteContext,
} from "./context.js";

const URL_A = "https://receiver.example/hook";

/** Far enough ahead that every event written by a test is due. */
const LATER = T0 + 3_600_000;

function callback(events?: CallbackEvent[]): CallbackSpec {
  return { url: URL_A, ...(events ? { events } : {}) };
}

function attempt(event: ClaimedDelivery, overrides: Partial<DeliveryAttempt> = {}): DeliveryAttempt {
  return {
    eventId: event.id,
    event: event.event,
    attempt: event.attempts + 1,
    at: T0 + 10,
    statusCode: 500,
    latencyMs: 12,
    error: "HTTP 500",
    nextAttemptAt: null,
    ...overrides,
  };
}

type JobDelivery = Extract<ClaimedDelivery, { kind: "job" }>;

/** A claimed delivery that must be a job's callback (all of them are, here). */
function jobCallback(delivery: ClaimedDelivery): JobDelivery {
  expect(delivery.kind).toBe("job");
  return delivery as JobDelivery;
}

/** The callback outbox, through the Store interface only. */
export function describeCallbacks(ctx: SuiteContext): void {
  /** Every due event (leased for a minute), as the deliverer would claim them. */
  const claimAll = async (now = LATER, leaseMs = 60_000) =>
    (await ctx.store.claimDeliveries({ limit: 100, leaseMs, now })).map(jobCallback);

  /** The one event the outbox holds, after checking there is exactly one. */
  async function onlyEvent(now = LATER): Promise<JobDelivery> {
    const events = await claimAll(now);
    expect(events).toHaveLength(1);
    return events[0]!;
  }

  describe("callback outbox", () => {
    it("complete writes one job.succeeded event with the terminal snapshot", async () => {
      const job = await submitAndClaim(ctx.store, { callback: callback() });
      expect(
        await ctx.store.complete({ lease: leaseOf(job), result: { kind: "json", json: "1" }, now: T0 + 5 }),
      ).toBe(true);
      const event = await onlyEvent();
      expect(event).toMatchObject({
        jobId: job.id,
        tenantId: TENANT,
        event: "job.succeeded",
        url: URL_A,
        occurredAt: T0 + 5,
        attempts: 0,
        body: null,
      });
      expect(event.id).toMatch(/^msg_[0-9a-f]{32}$/);
      expect(event.leaseToken).toEqual(expect.any(String));
      expect(event.job).toMatchObject({ id: job.id, status: "succeeded", finishedAt: T0 + 5 });
    });

    it("the event is due at the moment of the change", async () => {
      const job = await submitAndClaim(ctx.store, { callback: callback() });
      await ctx.store.complete({ lease: leaseOf(job), result: { kind: "none" }, now: T0 + 5 });
      expect(await ctx.store.nextDeliveryAt()).toBe(T0 + 5);
      expect(await ctx.store.claimDeliveries({ limit: 10, leaseMs: 1000, now: T0 + 4 })).toEqual([]);
      expect(await ctx.store.claimDeliveries({ limit: 10, leaseMs: 1000, now: T0 + 5 })).toHaveLength(1);
    });

    it("a final fail writes one job.failed event; a retried fail writes none", async () => {
      const job = await submitAndClaim(ctx.store, { callback: callback() });
      await ctx.store.fail({ lease: leaseOf(job), error: BOOM, retryAt: T0 + 10, now: T0 + 1 });
      expect(await claimAll()).toEqual([]);
      const again = await claimOne(ctx.store, { now: T0 + 10 });
      await ctx.store.fail({ lease: leaseOf(again), error: BOOM, retryAt: null, now: T0 + 20 });
      const event = await onlyEvent();
      expect(event).toMatchObject({ jobId: job.id, event: "job.failed", occurredAt: T0 + 20 });
      expect(event.job).toMatchObject({ status: "failed", attempt: 2, error: { detail: "boom" } });
    });

    it("the lease sweep writes job.failed only when no attempts are left", async () => {
      const retried = await submitAndClaim(ctx.store, { callback: callback(), maxAttempts: 2 });
      const lost = await submitAndClaim(ctx.store, { callback: callback(), maxAttempts: 1 });
      expect(await ctx.store.sweepExpiredLeases({ now: T0 + LEASE_MS, retryDelayMs: 0, limit: 10 })).toBe(2);
      const event = await onlyEvent();
      expect(event).toMatchObject({ jobId: lost.id, event: "job.failed", occurredAt: T0 + LEASE_MS });
      expect(event.job.status).toBe("failed");
      expect(event.jobId).not.toBe(retried.id);
    });

    it("cancel writes one job.canceled event; canceling again writes none", async () => {
      const queued = await submitJob(ctx.store, { callback: callback() });
      expect((await ctx.store.cancel({ tenantId: TENANT, id: queued.id, now: T0 + 3 })).kind).toBe(
        "canceled",
      );
      expect((await ctx.store.cancel({ tenantId: TENANT, id: queued.id, now: T0 + 4 })).kind).toBe(
        "already-canceled",
      );
      const event = await onlyEvent();
      expect(event).toMatchObject({ jobId: queued.id, event: "job.canceled", occurredAt: T0 + 3 });
      expect(event.job.status).toBe("canceled");
    });

    it("deleting an active job writes job.canceled; deleting a finished one writes nothing more", async () => {
      const running = await submitAndClaim(ctx.store, { callback: callback() });
      expect(await ctx.store.delete({ tenantId: TENANT, id: running.id, now: T0 + 7 })).toBe(true);
      const event = await onlyEvent();
      expect(event).toMatchObject({ jobId: running.id, event: "job.canceled", occurredAt: T0 + 7 });
      expect(event.job).toMatchObject({ id: running.id, status: "canceled", finishedAt: T0 + 7 });

      const done = await submitAndClaim(ctx.store, { callback: callback(["job.failed"]) });
      await ctx.store.complete({ lease: leaseOf(done), result: { kind: "none" }, now: T0 + 8 });
      expect(await ctx.store.delete({ tenantId: TENANT, id: done.id, now: T0 + 9 })).toBe(true);
      expect(await claimAll(LATER + 1)).toEqual([]); // the first event is still leased: nothing new
    });

    it("the deadline sweep writes one job.timed_out event per job", async () => {
      const queued = await submitJob(ctx.store, {
        callback: callback(),
        deadlineAt: T0 + 100,
        runAt: T0 + 50,
      });
      const running = await submitAndClaim(ctx.store, { callback: callback(), deadlineAt: T0 + 100 });
      expect(await ctx.store.sweepDeadlines({ now: T0 + 100, limit: 10 })).toBe(2);
      const events = await claimAll();
      expect(events.map((e) => e.event)).toEqual(["job.timed_out", "job.timed_out"]);
      expect(events.map((e) => e.jobId).sort()).toEqual([queued.id, running.id].sort());
      expect(events.every((e) => e.job.status === "timed_out" && e.occurredAt === T0 + 100)).toBe(true);
    });

    it("jobs without a callback write no events", async () => {
      const done = await submitAndClaim(ctx.store);
      await ctx.store.complete({ lease: leaseOf(done), result: { kind: "none" }, now: T0 + 1 });
      const failed = await submitAndClaim(ctx.store);
      await ctx.store.fail({ lease: leaseOf(failed), error: BOOM, retryAt: null, now: T0 + 1 });
      const canceled = await submitJob(ctx.store);
      await ctx.store.cancel({ tenantId: TENANT, id: canceled.id, now: T0 + 1 });
      const deleted = await submitAndClaim(ctx.store);
      await ctx.store.progress({ lease: leaseOf(deleted), percent: 10, message: null, now: T0 + 1 });
      await ctx.store.delete({ tenantId: TENANT, id: deleted.id, now: T0 + 1 });
      await submitJob(ctx.store, { deadlineAt: T0 + 10 });
      await ctx.store.sweepDeadlines({ now: T0 + 10, limit: 10 });
      expect(await claimAll()).toEqual([]);
      expect(await ctx.store.nextDeliveryAt()).toBeNull();
    });

    it("job.succeeded only when `events` lists it; failures always", async () => {
      const onlyFailed = callback(["job.failed"]);
      const done = await submitAndClaim(ctx.store, { callback: onlyFailed });
      await ctx.store.complete({ lease: leaseOf(done), result: { kind: "none" }, now: T0 + 1 });
      expect(await claimAll()).toEqual([]);

      const onlySucceeded = callback(["job.succeeded"]);
      const failed = await submitAndClaim(ctx.store, { callback: onlySucceeded });
      await ctx.store.fail({ lease: leaseOf(failed), error: BOOM, retryAt: null, now: T0 + 2 });
      const canceled = await submitJob(ctx.store, { callback: callback(["job.progress"]) });
      await ctx.store.cancel({ tenantId: TENANT, id: canceled.id, now: T0 + 3 });
      const late = await submitJob(ctx.store, { callback: onlySucceeded, deadlineAt: T0 + 4 });
      await ctx.store.sweepDeadlines({ now: T0 + 4, limit: 10 });
      const events = await claimAll(LATER + 1);
      expect(events.map((e) => [e.jobId, e.event])).toEqual([
        [failed.id, "job.failed"],
        [canceled.id, "job.canceled"],
        [late.id, "job.timed_out"],
      ]);

      const listed = await submitAndClaim(ctx.store, {
        callback: callback(["job.progress", "job.succeeded"]),
      });
      await ctx.store.complete({ lease: leaseOf(listed), result: { kind: "none" }, now: T0 + 5 });
      expect((await claimAll(LATER + 2)).map((e) => [e.jobId, e.event])).toEqual([
        [listed.id, "job.succeeded"],
      ]);
    });

    describe("progress events", () => {
      const withProgress = () => callback(["job.progress", "job.succeeded"]);
      const progress = (job: ReturnType<typeof leaseOf>, percent: number, now: number) =>
        ctx.store.progress({ lease: job, percent, message: `at ${percent}`, now });

      it("only when job.progress is listed", async () => {
        const plain = await submitAndClaim(ctx.store, { callback: callback() });
        expect(await progress(leaseOf(plain), 50, T0 + 1)).toBe(true);
        const none = await submitAndClaim(ctx.store);
        expect(await progress(leaseOf(none), 50, T0 + 1)).toBe(true);
        expect(await claimAll()).toEqual([]);

        const wanted = await submitAndClaim(ctx.store, { callback: withProgress() });
        expect(await progress(leaseOf(wanted), 50, T0 + 2)).toBe(true);
        const event = await onlyEvent();
        expect(event).toMatchObject({ jobId: wanted.id, event: "job.progress", occurredAt: T0 + 2 });
        expect(event.job).toMatchObject({ status: "running", progressPercent: 50, progressMessage: "at 50" });
      });

      it("are coalesced: a pending event takes the latest state", async () => {
        const job = await submitAndClaim(ctx.store, { callback: withProgress() });
        await progress(leaseOf(job), 10, T0 + 1);
        await progress(leaseOf(job), 20, T0 + 2);
        await progress(leaseOf(job), 30, T0 + 3);
        const event = await onlyEvent();
        expect(event.job.progressPercent).toBe(30);
        expect(event.occurredAt).toBe(T0 + 3);
      });

      it("a new one is due at least a second after the previous", async () => {
        const job = await submitAndClaim(ctx.store, { callback: withProgress() });
        await progress(leaseOf(job), 10, T0 + 10);
        const [first] = await ctx.store.claimDeliveries({ limit: 10, leaseMs: 1000, now: T0 + 10 });
        expect(jobCallback(first!).job.progressPercent).toBe(10);
        await ctx.store.recordDelivery({
          eventId: first!.id,
          leaseToken: first!.leaseToken,
          body: "{}",
          outcome: "delivered",
          attempt: attempt(first!, { at: T0 + 20, statusCode: 204, error: null }),
        });

        await progress(leaseOf(job), 40, T0 + 100);
        await progress(leaseOf(job), 50, T0 + 200);
        const due = await ctx.store.nextDeliveryAt();
        expect(due).not.toBeNull();
        expect(due!).toBeGreaterThanOrEqual(first!.occurredAt + 1000);
        expect(
          await ctx.store.claimDeliveries({ limit: 10, leaseMs: 1000, now: first!.occurredAt + 999 }),
        ).toEqual([]);
        const second = await onlyEvent(due!);
        expect(second.id).not.toBe(first!.id);
        expect(second.job.progressPercent).toBe(50);
      });

      it("an update while the pending one is being delivered is not lost", async () => {
        const job = await submitAndClaim(ctx.store, { callback: withProgress() });
        await progress(leaseOf(job), 10, T0 + 10);
        const [first] = await ctx.store.claimDeliveries({ limit: 10, leaseMs: 5000, now: T0 + 10 });
        expect(jobCallback(first!).job.progressPercent).toBe(10);
        await progress(leaseOf(job), 70, T0 + 20); // while `first` is in flight
        expect(
          await ctx.store.recordDelivery({
            eventId: first!.id,
            leaseToken: first!.leaseToken,
            body: "{}",
            outcome: "delivered",
            attempt: attempt(first!, { at: T0 + 30, statusCode: 200, error: null }),
          }),
        ).toBe(true);
        const next = await onlyEvent();
        expect(next.id).not.toBe(first!.id);
        expect(next.job.progressPercent).toBe(70);
        expect(next.occurredAt).toBeGreaterThanOrEqual(T0 + 20);
      });

      it("pending ones are dropped by a terminal move", async () => {
        const done = await submitAndClaim(ctx.store, { callback: withProgress() });
        await progress(leaseOf(done), 50, T0 + 1);
        await ctx.store.complete({ lease: leaseOf(done), result: { kind: "none" }, now: T0 + 2 });
        const failed = await submitAndClaim(ctx.store, { callback: withProgress() });
        await progress(leaseOf(failed), 50, T0 + 1);
        await ctx.store.fail({ lease: leaseOf(failed), error: BOOM, retryAt: null, now: T0 + 2 });
        const deleted = await submitAndClaim(ctx.store, { callback: withProgress() });
        await progress(leaseOf(deleted), 50, T0 + 1);
        await ctx.store.delete({ tenantId: TENANT, id: deleted.id, now: T0 + 2 });
        const late = await submitAndClaim(ctx.store, { callback: withProgress(), deadlineAt: T0 + 2 });
        await progress(leaseOf(late), 50, T0 + 1);
        await ctx.store.sweepDeadlines({ now: T0 + 2, limit: 10 });

        const events = await claimAll();
        expect(events.map((e) => e.event).sort()).toEqual([
          "job.canceled",
          "job.failed",
          "job.succeeded",
          "job.timed_out",
        ]);
        // Progress after the terminal move (a fenced worker) writes nothing.
        expect(await progress(leaseOf(done), 60, T0 + 3)).toBe(false);
        expect(await claimAll(LATER + 1)).toEqual([]);
      });
    });

    describe("delivery", () => {
      /** A succeeded job with a callback: its event is pending. */
      async function pendingEvent(now = T0 + 1): Promise<string> {
        const job = await submitAndClaim(ctx.store, { callback: callback() });
        await ctx.store.complete({ lease: leaseOf(job), result: { kind: "none" }, now });
        return job.id;
      }

      it("claimDeliveries leases: another claim skips leased events until the lease expires", async () => {
        await pendingEvent();
        await pendingEvent();
        const first = await ctx.store.claimDeliveries({ limit: 1, leaseMs: 1000, now: T0 + 10 });
        expect(first).toHaveLength(1);
        const second = await ctx.store.claimDeliveries({ limit: 10, leaseMs: 1000, now: T0 + 11 });
        expect(second).toHaveLength(1);
        expect(second[0]!.id).not.toBe(first[0]!.id);
        expect(await ctx.store.claimDeliveries({ limit: 10, leaseMs: 1000, now: T0 + 1009 })).toEqual([]);
        const reclaimed = await ctx.store.claimDeliveries({ limit: 10, leaseMs: 1000, now: T0 + 1010 });
        expect(reclaimed.map((e) => e.id)).toEqual([first[0]!.id]);
        expect(reclaimed[0]!.leaseToken).not.toBe(first[0]!.leaseToken);
      });

      it("claimDeliveries leaves the tenants in skipTenants alone", async () => {
        const mine = await pendingEvent();
        const other = await submitAndClaim(ctx.store, { tenantId: OTHER_TENANT, callback: callback() });
        await ctx.store.complete({ lease: leaseOf(other), result: { kind: "none" }, now: T0 + 2 });
        const claimed = await ctx.store.claimDeliveries({
          limit: 10,
          leaseMs: 1000,
          now: T0 + 10,
          skipTenants: [TENANT],
        });
        expect(claimed.map((e) => jobCallback(e).jobId)).toEqual([other.id]);
        const rest = await ctx.store.claimDeliveries({
          limit: 10,
          leaseMs: 1000,
          now: T0 + 11,
          skipTenants: [],
        });
        expect(rest.map((e) => jobCallback(e).jobId)).toEqual([mine]);
      });

      it("concurrent claims never hand one event out twice", async () => {
        for (let i = 0; i < 6; i++) await pendingEvent();
        const batches = await Promise.all(
          Array.from({ length: 8 }, () =>
            ctx.store.claimDeliveries({ limit: 2, leaseMs: 1000, now: T0 + 10 }),
          ),
        );
        const ids = batches.flat().map((e) => e.id);
        expect(ids).toHaveLength(6);
        expect(new Set(ids).size).toBe(6);
      });

      it("recordDelivery with a stale lease token returns false and records nothing", async () => {
        const jobId = await pendingEvent();
        const [stale] = await ctx.store.claimDeliveries({ limit: 1, leaseMs: 1000, now: T0 + 10 });
        const [fresh] = await ctx.store.claimDeliveries({ limit: 1, leaseMs: 1000, now: T0 + 2000 });
        expect(fresh!.id).toBe(stale!.id);
        expect(
          await ctx.store.recordDelivery({
            eventId: stale!.id,
            leaseToken: stale!.leaseToken,
            body: "stale",
            outcome: "delivered",
            attempt: attempt(stale!, { statusCode: 200, error: null }),
          }),
        ).toBe(false);
        expect(await ctx.store.listDeliveries({ tenantId: TENANT, jobId })).toEqual([]);
        expect(
          await ctx.store.recordDelivery({
            eventId: fresh!.id,
            leaseToken: fresh!.leaseToken,
            body: "fresh",
            outcome: "delivered",
            attempt: attempt(fresh!, { at: T0 + 2001, statusCode: 200, error: null }),
          }),
        ).toBe(true);
        expect(await ctx.store.listDeliveries({ tenantId: TENANT, jobId })).toHaveLength(1);
      });

      it("retry reschedules, keeps the first body, and counts attempts", async () => {
        const jobId = await pendingEvent();
        const [first] = await ctx.store.claimDeliveries({ limit: 1, leaseMs: 1000, now: T0 + 10 });
        const firstAttempt = attempt(first!, {
          at: T0 + 10,
          statusCode: 500,
          error: "HTTP 500",
          nextAttemptAt: T0 + 5000,
        });
        expect(
          await ctx.store.recordDelivery({
            eventId: first!.id,
            leaseToken: first!.leaseToken,
            body: "body-1",
            outcome: "retry",
            attempt: firstAttempt,
          }),
        ).toBe(true);
        expect(await ctx.store.nextDeliveryAt()).toBe(T0 + 5000);
        expect(await ctx.store.claimDeliveries({ limit: 1, leaseMs: 1000, now: T0 + 4999 })).toEqual([]);

        const [second] = await ctx.store.claimDeliveries({ limit: 1, leaseMs: 1000, now: T0 + 5000 });
        expect(second).toMatchObject({ id: first!.id, attempts: 1, body: "body-1" });
        const secondAttempt = attempt(second!, {
          at: T0 + 5000,
          statusCode: null,
          error: "ECONNREFUSED",
          nextAttemptAt: T0 + 15_000,
        });
        await ctx.store.recordDelivery({
          eventId: second!.id,
          leaseToken: second!.leaseToken,
          body: "body-2",
          outcome: "retry",
          attempt: secondAttempt,
        });

        const [third] = await ctx.store.claimDeliveries({ limit: 1, leaseMs: 1000, now: T0 + 15_000 });
        expect(third).toMatchObject({ id: first!.id, attempts: 2, body: "body-1" });
        const thirdAttempt = attempt(third!, { at: T0 + 15_000, statusCode: 200, error: null });
        await ctx.store.recordDelivery({
          eventId: third!.id,
          leaseToken: third!.leaseToken,
          body: "body-3",
          outcome: "delivered",
          attempt: thirdAttempt,
        });

        expect(await ctx.store.listDeliveries({ tenantId: TENANT, jobId })).toEqual([
          firstAttempt,
          secondAttempt,
          thirdAttempt,
        ]);
        expect(firstAttempt.attempt).toBe(1);
        expect(thirdAttempt.attempt).toBe(3);
      });

      for (const outcome of ["delivered", "stopped", "failed"] as const) {
        it(`${outcome} ends the delivery`, async () => {
          const jobId = await pendingEvent();
          const [event] = await ctx.store.claimDeliveries({ limit: 1, leaseMs: 1000, now: T0 + 10 });
          const statusCode = outcome === "delivered" ? 200 : outcome === "stopped" ? 410 : 503;
          const recorded = attempt(event!, {
            statusCode,
            error: outcome === "delivered" ? null : `HTTP ${statusCode}`,
          });
          expect(
            await ctx.store.recordDelivery({
              eventId: event!.id,
              leaseToken: event!.leaseToken,
              body: "b",
              outcome,
              attempt: recorded,
            }),
          ).toBe(true);
          expect(await ctx.store.nextDeliveryAt()).toBeNull();
          expect(await claimAll(LATER + 1)).toEqual([]);
          expect(await ctx.store.listDeliveries({ tenantId: TENANT, jobId })).toEqual([recorded]);
        });
      }

      it("listDeliveries is scoped by tenant and job", async () => {
        const jobId = await pendingEvent();
        const other = await submitAndClaim(ctx.store, { tenantId: OTHER_TENANT, callback: callback() });
        await ctx.store.complete({ lease: leaseOf(other), result: { kind: "none" }, now: T0 + 1 });
        for (const event of await claimAll(T0 + 10)) {
          await ctx.store.recordDelivery({
            eventId: event.id,
            leaseToken: event.leaseToken,
            body: "b",
            outcome: "delivered",
            attempt: attempt(event, { statusCode: 200, error: null }),
          });
        }
        expect((await ctx.store.listDeliveries({ tenantId: TENANT, jobId })).map((a) => a.attempt)).toEqual([
          1,
        ]);
        expect(await ctx.store.listDeliveries({ tenantId: OTHER_TENANT, jobId })).toEqual([]);
        expect(await ctx.store.listDeliveries({ tenantId: TENANT, jobId: other.id })).toEqual([]);
        expect(await ctx.store.listDeliveries({ tenantId: OTHER_TENANT, jobId: other.id })).toHaveLength(1);
        expect(await ctx.store.listDeliveries({ tenantId: TENANT, jobId: "no-such-job" })).toEqual([]);
      });
    });

    describe("webhook secrets", () => {
      const secretBytes = (secret: string) => Buffer.from(secret.slice("whsec_".length), "base64").length;

      it("one whsec_ secret per tenant, created on first use and then stable", async () => {
        const a = await ctx.store.ensureTenant({ name: "acme", now: T0 });
        const b = await ctx.store.ensureTenant({ name: "globex", now: T0 });
        const [secretA] = await ctx.store.webhookSecrets({ tenantId: a, now: T0 });
        expect(secretA).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
        expect(secretBytes(secretA!)).toBeGreaterThanOrEqual(24);
        expect(await ctx.store.webhookSecrets({ tenantId: a, now: T0 + 1 })).toEqual([secretA]);
        const secretsB = await ctx.store.webhookSecrets({ tenantId: b, now: T0 });
        expect(secretsB).toHaveLength(1);
        expect(secretsB[0]).not.toBe(secretA);
      });

      it("concurrent first uses agree on one secret", async () => {
        const a = await ctx.store.ensureTenant({ name: "acme", now: T0 });
        const all = await Promise.all(
          Array.from({ length: 5 }, () => ctx.store.webhookSecrets({ tenantId: a, now: T0 })),
        );
        expect(new Set(all.map((s) => s.join(" "))).size).toBe(1);
        expect(all[0]).toHaveLength(1);
      });

      it("rotation: both sign until previousUntil, then only the new one", async () => {
        const a = await ctx.store.ensureTenant({ name: "acme", now: T0 });
        const [old] = await ctx.store.webhookSecrets({ tenantId: a, now: T0 });
        const next = `whsec_${Buffer.alloc(32, 7).toString("base64")}`;
        expect(
          await ctx.store.rotateWebhookSecret({
            tenantName: "acme",
            secret: next,
            previousUntil: T0 + 1000,
            now: T0,
          }),
        ).toEqual([next, old]);
        expect(await ctx.store.webhookSecrets({ tenantId: a, now: T0 + 999 })).toEqual([next, old]);
        expect(await ctx.store.webhookSecrets({ tenantId: a, now: T0 + 1000 })).toEqual([next]);
        // Another tenant is untouched.
        const b = await ctx.store.ensureTenant({ name: "globex", now: T0 });
        expect(await ctx.store.webhookSecrets({ tenantId: b, now: T0 })).not.toContain(next);
      });

      it("rotating a tenant without a secret yet sets it", async () => {
        const next = `whsec_${Buffer.alloc(32, 9).toString("base64")}`;
        expect(
          await ctx.store.rotateWebhookSecret({
            tenantName: "fresh",
            secret: next,
            previousUntil: T0 + 1000,
            now: T0,
          }),
        ).toEqual([next]);
        const id = await ctx.store.ensureTenant({ name: "fresh", now: T0 });
        expect(await ctx.store.webhookSecrets({ tenantId: id, now: T0 })).toEqual([next]);
      });
    });
  });
}
