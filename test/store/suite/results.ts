import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { ResultPayload, StoredResult } from "../../../src/store/store.js";
import {
  LEASE_MS,
  T0,
  TENANT,
  claimOne,
  getJob,
  leaseOf,
  readAll,
  submitAndClaim,
  submitJob,
  type SuiteContext,
} from "./context.js";

/**
 * Larger than any inline threshold a driver should use (the SQLite default is 64 KiB; the suite's
 * SQLite factory sets 1 KiB), so it must be streamed rather than handed over whole.
 */
export const LARGE_RESULT_BYTES = 200_000;

/** The result resource's view of what a handler returned. */
export function describeResults(ctx: SuiteContext): void {
  async function completeWith(result: ResultPayload): Promise<StoredResult | null> {
    const job = await submitAndClaim(ctx.store);
    expect(await ctx.store.complete({ lease: leaseOf(job), result, now: T0 + 1 })).toBe(true);
    return ctx.store.getResult({ tenantId: TENANT, id: job.id });
  }

  /** The bytes of a stored result, whether inline or streamed. */
  async function bytesOf(result: StoredResult): Promise<Buffer> {
    if (result.data) return Buffer.from(result.data);
    expect(result.open).not.toBeNull();
    return readAll(result.open!());
  }

  describe("results", () => {
    it("kind none: nothing to send", async () => {
      const result = await completeWith({ kind: "none" });
      expect(result).toMatchObject({ kind: "none", size: 0, location: null });
    });

    it("kind json: the JSON text as application/json, sized in bytes", async () => {
      const json = JSON.stringify({ name: "héllo", list: [1, 2, 3] });
      const result = await completeWith({ kind: "json", json });
      expect(result).toMatchObject({ kind: "json", contentType: "application/json", location: null });
      expect(result!.size).toBe(Buffer.byteLength(json));
      expect((await bytesOf(result!)).toString("utf8")).toBe(json);
    });

    it("kind bytes: the bytes with their content type", async () => {
      const data = new Uint8Array([0, 1, 2, 255, 0, 128]);
      const result = await completeWith({ kind: "bytes", contentType: "image/png", data });
      expect(result).toMatchObject({ kind: "bytes", contentType: "image/png", size: 6, location: null });
      expect([...(await bytesOf(result!))]).toEqual([...data]);
    });

    it("kind created: the location of the resource and its JSON", async () => {
      const json = JSON.stringify({ id: "r-1" });
      const result = await completeWith({
        kind: "created",
        location: "https://example.com/things/r-1",
        json,
      });
      expect(result).toMatchObject({ kind: "created", location: "https://example.com/things/r-1" });
      expect((await bytesOf(result!)).toString("utf8")).toBe(json);
    });

    it("a large result is streamed, byte for byte, as often as it is opened", async () => {
      const data = randomBytes(LARGE_RESULT_BYTES);
      const result = await completeWith({ kind: "bytes", contentType: "application/x-test", data });
      expect(result).toMatchObject({
        kind: "bytes",
        contentType: "application/x-test",
        size: LARGE_RESULT_BYTES,
      });
      expect(result!.data).toBeNull();
      expect(result!.open).not.toBeNull();
      expect((await readAll(result!.open!())).equals(data)).toBe(true);
      expect((await readAll(result!.open!())).equals(data)).toBe(true);
    });

    it("a large JSON result is streamed too", async () => {
      const json = JSON.stringify({ blob: "x".repeat(LARGE_RESULT_BYTES) });
      const result = await completeWith({ kind: "json", json });
      expect(result).toMatchObject({ kind: "json", contentType: "application/json", data: null });
      expect((await readAll(result!.open!())).toString("utf8")).toBe(json);
    });

    it("is null while the job is not succeeded", async () => {
      const queued = await submitJob(ctx.store);
      expect(await ctx.store.getResult({ tenantId: TENANT, id: queued.id })).toBeNull();
      const running = await claimOne(ctx.store);
      expect(await ctx.store.getResult({ tenantId: TENANT, id: running.id })).toBeNull();
      const problem = { type: "/problems/job-failed", title: "The job failed", status: 500, detail: "x" };
      await ctx.store.fail({ lease: leaseOf(running), error: problem, retryAt: null, now: T0 + 1 });
      expect(await ctx.store.getResult({ tenantId: TENANT, id: running.id })).toBeNull();
    });

    it("a fenced attempt's large output never replaces the winner's result", async () => {
      const stale = await submitAndClaim(ctx.store);
      await ctx.store.sweepExpiredLeases({ now: T0 + LEASE_MS, retryDelayMs: 0, limit: 10 });
      const winner = await claimOne(ctx.store, { now: T0 + LEASE_MS });
      expect(
        await ctx.store.complete({
          lease: leaseOf(winner),
          result: { kind: "json", json: '"winner"' },
          now: T0 + LEASE_MS + 1,
        }),
      ).toBe(true);

      const late = {
        kind: "bytes" as const,
        contentType: "application/x-stale",
        data: randomBytes(LARGE_RESULT_BYTES),
      };
      expect(await ctx.store.complete({ lease: leaseOf(stale), result: late, now: T0 + LEASE_MS + 2 })).toBe(
        false,
      );
      const result = await ctx.store.getResult({ tenantId: TENANT, id: stale.id });
      expect(result).toMatchObject({ kind: "json", contentType: "application/json" });
      expect((await bytesOf(result!)).toString()).toBe('"winner"');
    });

    it("completions batched together land on their own jobs, whatever characters their values hold", async () => {
      // Batches of values that a driver may write bare in a PostgreSQL array literal, one of them
      // spelled like its NULL, and of values it must quote or escape: each job gets its own.
      const batches = [
        ["plain-type", "NULL", "null", "plain_2"],
        ['a,b "c" {d} \\e', " spaced ", "plain-3"],
      ];
      let n = 0;
      for (const types of batches) {
        const jobs = [];
        for (const _ of types) jobs.push(await submitAndClaim(ctx.store));
        const done = await Promise.all(
          jobs.map((job, i) =>
            ctx.store.complete({
              lease: leaseOf(job),
              result: { kind: "bytes", contentType: types[i]!, data: Buffer.from(job.id) },
              now: T0 + ++n,
            }),
          ),
        );
        expect(done).toEqual(types.map(() => true));
        for (const [i, job] of jobs.entries()) {
          expect(await getJob(ctx.store, job.id)).toMatchObject({ status: "succeeded" });
          const result = await ctx.store.getResult({ tenantId: TENANT, id: job.id });
          expect(result?.contentType).toBe(types[i]);
          expect((await bytesOf(result!)).toString()).toBe(job.id);
        }
      }
    });

    it("a purged large result is gone and the job says so", async () => {
      const data = randomBytes(LARGE_RESULT_BYTES);
      const job = await submitAndClaim(ctx.store);
      await ctx.store.complete({
        lease: leaseOf(job),
        result: { kind: "bytes", contentType: "a/b", data },
        now: T0 + 1,
      });
      const purged = await ctx.store.purgeExpired({
        resultsBefore: T0 + 2,
        jobsBefore: 0,
        idempotencyBefore: 0,
        limit: 10,
      });
      expect(purged.resultsPurged).toBe(1);
      expect(await ctx.store.getResult({ tenantId: TENANT, id: job.id })).toBeNull();
      expect(await getJob(ctx.store, job.id)).toMatchObject({ status: "succeeded", resultPurged: true });
    });
  });
}
