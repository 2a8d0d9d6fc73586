import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SchemaTooNewError } from "../../src/store/migrations.js";
import { SqliteStore } from "../../src/store/sqlite/store.js";
import { LARGE_RESULT_BYTES, describeStoreSuite } from "./store-suite.js";
import {
  LEASE_MS,
  T0,
  TENANT,
  claimOne,
  labelledId,
  leaseOf,
  newJob,
  submitAndClaim,
} from "./suite/context.js";

describeStoreSuite("sqlite", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tessera-store-"));
  const store = new SqliteStore({ path: join(dir, "tessera.db"), inlineResultBytes: 1024 });
  const cleanup = async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return { store, cleanup };
});

describe("SqliteStore", () => {
  let dir: string;
  let path: string;
  let blobDir: string;
  const open = (options: { migrate?: boolean } = {}) =>
    new SqliteStore({ path, blobDir, inlineResultBytes: 1024, ...options });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "tessera-sqlite-"));
    path = join(dir, "tessera.db");
    blobDir = join(dir, "blobs");
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  describe("durability settings", () => {
    it("commits with synchronous=FULL on its own connection, in WAL mode", async () => {
      const store = open();
      try {
        // synchronous is per connection, so only the store's own handle can show it; the test
        // reaches into the private field on purpose.
        const db = (store as unknown as { db: Database.Database }).db;
        expect(db.pragma("synchronous", { simple: true })).toBe(2);
        expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
      } finally {
        await store.close();
      }
      const raw = new Database(path, { readonly: true });
      try {
        expect(raw.pragma("journal_mode", { simple: true })).toBe("wal"); // persisted in the file
      } finally {
        raw.close();
      }
    });
  });

  describe("migrations", () => {
    function markNewer(version: number): void {
      const raw = new Database(path);
      raw
        .prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)")
        .run(version, `${version}_future.sql`, T0);
      raw.close();
    }

    const appliedVersions = (): unknown[] => {
      const raw = new Database(path, { readonly: true });
      const versions = raw.prepare("SELECT version FROM schema_migrations ORDER BY version").pluck().all();
      raw.close();
      return versions;
    };

    it("refuses a database migrated by a newer Tessera", async () => {
      await open().close();
      const known = appliedVersions();
      expect(known.slice(0, 3)).toEqual([1, 2, 3]);
      markNewer(999_999);
      expect(() => open()).toThrow(SchemaTooNewError);

      const unmigrated = open({ migrate: false });
      try {
        await expect(unmigrated.migrate()).rejects.toThrow(SchemaTooNewError);
      } finally {
        await unmigrated.close();
      }
      // The refusal changed nothing.
      expect(appliedVersions()).toEqual([...known, 999_999]);
    });

    it.skipIf(process.platform !== "linux")("closes the file it refused", async () => {
      await open().close();
      markNewer(999_999);
      const openFiles = () =>
        readdirSync("/proc/self/fd").filter((fd) => {
          try {
            return readlinkSync(`/proc/self/fd/${fd}`).startsWith(path);
          } catch {
            return false; // closed while listing
          }
        });
      expect(openFiles()).toEqual([]);
      expect(() => open()).toThrow(SchemaTooNewError);
      expect(openFiles()).toEqual([]);
    });

    it("applies a migration numbered below one applied already (branches merged out of order)", async () => {
      await open().close();
      // As if 008 came with a later merge than the highest applied: not recorded, not applied.
      const raw = new Database(path);
      raw.exec("ALTER TABLE saga_steps DROP COLUMN kind; DELETE FROM schema_migrations WHERE version = 8");
      raw.close();
      const known = appliedVersions();
      expect(known).not.toContain(8);
      await open().close();
      expect(appliedVersions()).toEqual([...known, 8].sort((a, b) => Number(a) - Number(b)));
      const check = new Database(path, { readonly: true });
      const columns = check.prepare("SELECT name FROM pragma_table_info('saga_steps')").pluck().all();
      check.close();
      expect(columns).toContain("kind");
    });

    it("reopens an up-to-date database without reapplying anything", async () => {
      const first = open();
      await first.submit({ job: newJob({ id: "kept" }), idempotency: null, now: T0 });
      await first.close();
      const second = open();
      try {
        expect(await second.get({ tenantId: TENANT, id: labelledId("kept") })).not.toBeNull();
      } finally {
        await second.close();
      }
    });
  });

  describe("group commit", () => {
    it("commits 200 concurrent submits, all durable after reopening", async () => {
      const store = open();
      const jobs = Array.from({ length: 200 }, (_, i) => newJob({ id: `job-${String(i).padStart(3, "0")}` }));
      const outcomes = await Promise.all(
        jobs.map((job) => store.submit({ job, idempotency: null, now: T0 })),
      );
      expect(outcomes.every((o) => o.kind === "created")).toBe(true);
      await store.close();

      const reopened = open();
      try {
        const listed = await reopened.list({ tenantId: TENANT, limit: 500 });
        expect(listed.map((j) => j.id).sort()).toEqual(jobs.map((j) => j.id));
      } finally {
        await reopened.close();
      }
    });

    it("rejects only the failing operation of a batch, rolling back all of its writes", async () => {
      const store = open();
      try {
        await store.submit({
          job: newJob({ id: "taken", input: { original: true } }),
          idempotency: null,
          now: T0,
        });
        const key = { key: "dup-key", requestHash: "h" };
        const batch = Array.from({ length: 10 }, (_, i) =>
          i === 5
            ? store.submit({
                job: newJob({ id: "taken", input: { original: false } }),
                idempotency: key,
                now: T0,
              })
            : store.submit({ job: newJob({ id: `ok-${i}` }), idempotency: null, now: T0 }),
        );
        const settled = await Promise.allSettled(batch);
        expect(settled.map((s) => s.status)).toEqual([
          ...Array(5).fill("fulfilled"),
          "rejected",
          ...Array(4).fill("fulfilled"),
        ]);

        expect(await store.list({ tenantId: TENANT, limit: 50 })).toHaveLength(10);
        expect((await store.get({ tenantId: TENANT, id: labelledId("taken") }))?.input).toEqual({
          original: true,
        });
        // The failed submit's idempotency record was rolled back with it: the key is free.
        const retry = await store.submit({ job: newJob({ id: "retried" }), idempotency: key, now: T0 + 1 });
        expect(retry.kind).toBe("created");
      } finally {
        await store.close();
      }
    });

    it("close waits for writes already enqueued", async () => {
      const store = open();
      const pending = store.submit({ job: newJob({ id: "in-flight" }), idempotency: null, now: T0 });
      await store.close();
      expect((await pending).kind).toBe("created");
      const reopened = open();
      try {
        expect(await reopened.get({ tenantId: TENANT, id: labelledId("in-flight") })).not.toBeNull();
      } finally {
        await reopened.close();
      }
    });
  });

  describe("events", () => {
    it("are published after the commit: another connection already sees the change", async () => {
      const store = open();
      const reader = new Database(path, { readonly: true });
      try {
        const status = reader.prepare("SELECT status FROM jobs WHERE id = ?").pluck();
        const seen: unknown[] = [];
        store.subscribe((event) => {
          if (event.kind === "queued") seen.push(status.get(labelledId("watched")) ?? "missing");
          if (event.kind === "terminal") seen.push(status.get(event.jobId) ?? "missing");
        });
        await store.submit({ job: newJob({ id: "watched" }), idempotency: null, now: T0 });
        const claimed = await claimOne(store);
        await store.complete({ lease: leaseOf(claimed), result: { kind: "none" }, now: T0 + 1 });
        expect(seen).toEqual(["queued", "succeeded"]);
      } finally {
        reader.close();
        await store.close();
      }
    });
  });

  describe("large results on disk", () => {
    const blobs = () => readdirSync(blobDir);
    const large = () => ({
      kind: "bytes" as const,
      contentType: "application/x-test",
      data: randomBytes(LARGE_RESULT_BYTES),
    });

    it("keeps small results in the database and large ones in one blob file", async () => {
      const store = open();
      try {
        const small = await submitAndClaim(store);
        await store.complete({ lease: leaseOf(small), result: { kind: "json", json: "[1]" }, now: T0 + 1 });
        expect(blobs()).toEqual([]);
        const big = await submitAndClaim(store);
        await store.complete({ lease: leaseOf(big), result: large(), now: T0 + 1 });
        expect(blobs()).toHaveLength(1);
      } finally {
        await store.close();
      }
    });

    it("removes the blob file when retention purges the result", async () => {
      const store = open();
      try {
        const job = await submitAndClaim(store);
        await store.complete({ lease: leaseOf(job), result: large(), now: T0 + 1 });
        expect(blobs()).toHaveLength(1);
        const purged = await store.purgeExpired({
          resultsBefore: T0 + 2,
          jobsBefore: 0,
          idempotencyBefore: 0,
          limit: 10,
        });
        expect(purged.resultsPurged).toBe(1);
        expect(blobs()).toEqual([]);
        expect(await store.getResult({ tenantId: TENANT, id: job.id })).toBeNull();
        expect((await store.get({ tenantId: TENANT, id: job.id }))?.resultPurged).toBe(true);
      } finally {
        await store.close();
      }
    });

    it("removes the blob file when the job is deleted or retention deletes it", async () => {
      const store = open();
      try {
        const deleted = await submitAndClaim(store);
        await store.complete({ lease: leaseOf(deleted), result: large(), now: T0 + 1 });
        const expired = await submitAndClaim(store);
        await store.complete({ lease: leaseOf(expired), result: large(), now: T0 + 1 });
        expect(blobs()).toHaveLength(2);

        expect(await store.delete({ tenantId: TENANT, id: deleted.id, now: T0 + 2 })).toBe(true);
        expect(blobs()).toHaveLength(1);
        await store.purgeExpired({ resultsBefore: 0, jobsBefore: T0 + 2, idempotencyBefore: 0, limit: 10 });
        expect(blobs()).toEqual([]);
      } finally {
        await store.close();
      }
    });

    it("leaves no file behind for a fenced attempt's large output", async () => {
      const store = open();
      try {
        const stale = await submitAndClaim(store);
        await store.sweepExpiredLeases({ now: T0 + LEASE_MS, retryDelayMs: 0, limit: 10 });
        await claimOne(store, { now: T0 + LEASE_MS });
        expect(await store.complete({ lease: leaseOf(stale), result: large(), now: T0 + LEASE_MS + 1 })).toBe(
          false,
        );
        expect(blobs()).toEqual([]);
      } finally {
        await store.close();
      }
    });
  });
});
