import pg from "pg";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { PostgresStore } from "../../src/store/postgres/store.js";
import { freshSchema, PG_URL } from "../helpers/postgres.js";
import { describeStoreSuite } from "./store-suite.js";
import { LEASE_MS, newJob, submitJob, T0, TENANT } from "./suite/context.js";

describeStoreSuite("postgres", async () => {
  const store = await new PostgresStore({
    connectionString: PG_URL,
    schema: freshSchema("suite"),
    inlineResultBytes: 1024,
    poolSize: 4,
  }).open();
  const cleanup = async () => {
    await store.dropSchema();
    await store.close();
  };
  return { store, cleanup };
});

/**
 * Answers lost after a commit (the connection dies between the two): the driver must not leave
 * a job running for a whole lease, nor run it twice, nor drop a result it stored.
 */
describe("postgres: answers lost to a dead connection", () => {
  let store: PostgresStore;
  const dead = () => new Error("Connection terminated unexpectedly");

  beforeEach(async () => {
    store = await new PostgresStore({
      connectionString: PG_URL,
      schema: freshSchema("lost"),
      inlineResultBytes: 16,
      poolSize: 2,
    }).open();
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await store.dropSchema();
    await store.close();
  });

  /** The next query on `pool` whose text contains `marker` commits, then its answer is lost. */
  function loseAnswer(pool: pg.Pool, marker: string): void {
    const real = pool.query.bind(pool) as (...args: unknown[]) => Promise<unknown>;
    let armed = true;
    vi.spyOn(pool, "query").mockImplementation((async (...args: unknown[]) => {
      const result = await real(...args);
      if (armed && typeof args[0] === "string" && args[0].includes(marker)) {
        armed = false;
        throw dead();
      }
      return result;
    }) as never);
  }

  const pools = (s: PostgresStore) => s as unknown as { pool: pg.Pool; leasePool: pg.Pool };

  it("a claim whose answer is lost hands its jobs back at once, attempt unchanged", async () => {
    const tenantId = TENANT;
    const job = await submitJob(store);
    loseAnswer(pools(store).leasePool, "SET status = 'running'");
    await expect(
      store.claim({ types: [job.type], limit: 5, leaseMs: LEASE_MS, now: T0 + 1 }),
    ).rejects.toThrow();
    await vi.waitFor(async () => expect((await store.get({ tenantId, id: job.id }))?.status).toBe("queued"), {
      timeout: 3000,
    });
    // Queued again as of the release (the real clock), for any worker to claim.
    const [again] = await store.claim({ types: [job.type], limit: 5, leaseMs: LEASE_MS, now: Date.now() });
    expect(again).toMatchObject({ id: job.id, attempt: 1 });
  });

  it("a submit under a worker's lease whose answer is lost queues the job instead (attempt 0)", async () => {
    const job = newJob();
    loseAnswer(pools(store).pool, "INSERT INTO");
    await expect(
      store.submit({
        job,
        idempotency: null,
        now: T0,
        lease: { token: "lost-tok", expiresAt: T0 + LEASE_MS },
      }),
    ).rejects.toThrow();
    await vi.waitFor(
      async () =>
        expect(await store.get({ tenantId: TENANT, id: job.id })).toMatchObject({
          status: "queued",
          attempt: 0,
        }),
      { timeout: 3000 },
    );
  });

  it("a completion whose answer is lost is retried and reported done; a chunked result survives", async () => {
    const tenantId = TENANT;
    const job = await submitJob(store);
    const [claimed] = await store.claim({ types: [job.type], limit: 1, leaseMs: LEASE_MS, now: T0 + 1 });
    loseAnswer(pools(store).pool, "SET status = 'succeeded'");
    const bytes = Buffer.from("a result larger than the 16 inline bytes");
    const done = await store.complete({
      lease: { id: claimed!.id, leaseToken: claimed!.leaseToken },
      result: { kind: "bytes", data: bytes, contentType: "text/plain" },
      now: T0 + 2,
    });
    expect(done).toBe(true);
    const stored = await store.get({ tenantId, id: job.id });
    expect(stored).toMatchObject({ status: "succeeded", attempt: 1 });
    const result = await store.getResult({ tenantId, id: job.id });
    expect(result).toMatchObject({ kind: "bytes", size: bytes.length });
    const chunks: Buffer[] = [];
    for await (const chunk of result!.open!()) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe(bytes.toString());
  });
});

describe("postgres: a heartbeat never waits for a row another write holds", () => {
  it("skips a locked job (reported still leased, not extended) and extends it once the lock is gone", async () => {
    const schema = freshSchema("hb");
    const store = await new PostgresStore({ connectionString: PG_URL, schema, poolSize: 2 }).open();
    const locker = new pg.Client({ connectionString: PG_URL });
    await locker.connect();
    try {
      const job = await submitJob(store);
      const [claimed] = await store.claim({ types: [job.type], limit: 1, leaseMs: LEASE_MS, now: T0 + 1 });
      const lease = { id: claimed!.id, leaseToken: claimed!.leaseToken };
      const expiry = async () =>
        (
          await locker.query<{ e: string }>(
            `SELECT lease_expires_at AS e FROM ${schema}.jobs WHERE id = $1`,
            [job.id],
          )
        ).rows[0]!.e;
      // Another transaction (a completion in flight, say) holds the row.
      await locker.query("BEGIN");
      await locker.query(`SELECT 1 FROM ${schema}.jobs WHERE id = $1 FOR UPDATE`, [job.id]);
      expect(await store.heartbeat({ leases: [lease], leaseMs: LEASE_MS, now: T0 + 10 })).toEqual([]);
      await locker.query("COMMIT");
      expect(Number(await expiry())).toBe(T0 + 1 + LEASE_MS);
      expect(await store.heartbeat({ leases: [lease], leaseMs: LEASE_MS, now: T0 + 20 })).toEqual([]);
      expect(Number(await expiry())).toBe(T0 + 20 + LEASE_MS);
      // A lease that is gone is reported, locked or not.
      expect(
        await store.heartbeat({
          leases: [{ id: job.id, leaseToken: "other" }],
          leaseMs: LEASE_MS,
          now: T0 + 30,
        }),
      ).toEqual([job.id]);
    } finally {
      await locker.end();
      await store.dropSchema();
      await store.close();
    }
  });
});
