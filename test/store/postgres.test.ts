import { readdirSync, readFileSync } from "node:fs";
import pg from "pg";
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { idTimeBound, newJobId, tenantIdRange } from "../../src/jobs/ids.js";
import { SQL } from "../../src/store/postgres/statements.js";
import { PostgresStore } from "../../src/store/postgres/store.js";
import { freshSchema, PG_URL } from "../helpers/postgres.js";
import { describeStoreSuite } from "./store-suite.js";
import {
  LEASE_MS,
  claimOne,
  getJob,
  leaseOf,
  newJob,
  submitAndClaim,
  submitJob,
  T0,
  TENANT,
} from "./suite/context.js";

/** Each test of the suite gets a store in a fresh schema of the database at `url`. */
const storeIn = (connectionString: string, poolSize: number) => async () => {
  const store = await new PostgresStore({
    connectionString,
    schema: freshSchema("suite"),
    inlineResultBytes: 1024,
    poolSize,
  }).open();
  const cleanup = async () => {
    await store.dropSchema();
    await store.close();
  };
  return { store, cleanup };
};

describeStoreSuite("postgres", storeIn(PG_URL, 4));

/**
 * The whole suite again in a database whose collation is not bytewise (ICU's en-US, where
 * punctuation is ignored at first), as most production databases are: job ids compare bytewise
 * there too (migration 007), and no statement may mix two collations it cannot reconcile.
 */
/** A database of its own, created with ICU's en-US collation, or null where that is impossible. */
async function createIcuDatabase(): Promise<{ name: string; url: string } | null> {
  const name = freshSchema("tessera_icu");
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  try {
    await admin.query(
      `CREATE DATABASE ${name} TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'`,
    );
  } catch (error) {
    // PostgreSQL before 15 (no LOCALE_PROVIDER), or a role without CREATEDB.
    console.warn(`ICU suite skipped: ${(error as Error).message}`);
    return null;
  } finally {
    await admin.end();
  }
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  return { name, url: url.toString() };
}

const icuDatabase = await createIcuDatabase();
afterAll(async () => {
  if (!icuDatabase) return;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${icuDatabase.name} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
});
if (icuDatabase) describeStoreSuite("postgres, ICU en-US collation", storeIn(icuDatabase.url, 2));

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
      // A statement is its text, or { name, text, values } when it is sent prepared.
      const text = typeof args[0] === "string" ? args[0] : (args[0] as { text: string }).text;
      if (armed && text.includes(marker)) {
        armed = false;
        throw dead();
      }
      return result;
    }) as never);
  }

  const pools = (s: PostgresStore) => s as unknown as { pool: pg.Pool; leasePool: pg.Pool };

  it("a claim whose answer is lost hands its jobs back at once, attempt unchanged", async () => {
    const tenantId = TENANT;
    // Its deadline after the real clock: it is claimed again at the real clock, below.
    const job = await submitJob(store, { deadlineAt: Date.now() + 3_600_000 });
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

  it("a batch of submits whose answer is lost is tried again: each caller learns its job was stored", async () => {
    const jobs = Array.from({ length: 5 }, () => newJob());
    loseAnswer(pools(store).pool, "ON CONFLICT (id) DO NOTHING");
    const outcomes = await Promise.all(jobs.map((job) => store.submit({ job, idempotency: null, now: T0 })));
    expect(outcomes.map((o) => o.kind === "created" && o.job.id)).toEqual(jobs.map((j) => j.id));
    expect(await store.list({ tenantId: TENANT, limit: 10 })).toHaveLength(5);
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
  it("extends the claim's lease row while a job's own row is locked; a lease gone is reported", async () => {
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
          await locker.query<{ e: string }>(`SELECT expires_at AS e FROM ${schema}.leases WHERE token = $1`, [
            claimed!.leaseToken,
          ])
        ).rows[0]!.e;
      // Another transaction (a completion in flight, say) holds the row.
      await locker.query("BEGIN");
      await locker.query(`SELECT 1 FROM ${schema}.jobs WHERE id = $1 FOR UPDATE`, [job.id]);
      // The heartbeat writes the lease row only (migration 010): it does not wait for the job's.
      expect(await store.heartbeat({ leases: [lease], leaseMs: LEASE_MS, now: T0 + 10 })).toEqual([]);
      expect(Number(await expiry())).toBe(T0 + 10 + LEASE_MS);
      await locker.query("COMMIT");
      // A lease row held by a sweep is not waited for either (the sweep is expiring it).
      await locker.query("BEGIN");
      await locker.query(`SELECT 1 FROM ${schema}.leases WHERE token = $1 FOR UPDATE`, [lease.leaseToken]);
      expect(await store.heartbeat({ leases: [lease], leaseMs: LEASE_MS, now: T0 + 15 })).toEqual([]);
      await locker.query("COMMIT");
      expect(Number(await expiry())).toBe(T0 + 10 + LEASE_MS);
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

describe("postgres: migration 010 (leases table)", () => {
  it("gives the jobs running before it their lease rows, which the sweeps then serve", async () => {
    const schema = freshSchema("m010");
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    const dir = new URL("../../src/store/postgres/migrations/", import.meta.url);
    try {
      // The schema as a node of the previous version left it: migrations 001–009 applied.
      await client.query(`CREATE SCHEMA ${schema}`);
      await client.query(
        `CREATE TABLE ${schema}.schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)`,
      );
      for (const file of readdirSync(dir)
        .filter((f) => /^00\d_.+\.sql$/.test(f))
        .sort()) {
        await client.query(readFileSync(new URL(file, dir), "utf8").replaceAll("{{schema}}", schema));
        await client.query(`INSERT INTO ${schema}.schema_migrations VALUES ($1, $2, 0)`, [
          Number(file.slice(0, 3)),
          file,
        ]);
      }
      const ids = [newJobId(T0, TENANT), newJobId(T0, TENANT)];
      for (const [i, id] of ids.entries())
        await client.query(
          `INSERT INTO ${schema}.jobs (id, tenant_id, type, status, input, run_at, created_at, deadline_at,
             max_attempts, attempt, started_at, lease_token, lease_expires_at)
           VALUES ($1, $2, 'test.job', 'running', '{}', $3, $3, $4, 3, 1, $3, 'tok', $5)`,
          [id, TENANT, T0, T0 + 10 * LEASE_MS + i, T0 + LEASE_MS + i],
        );
      const store = await new PostgresStore({ connectionString: PG_URL, schema, poolSize: 1 }).open();
      try {
        const { rows } = await client.query<{
          token: string;
          job_ids: string[];
          expires_at: string;
          deadline_at: string;
        }>(`SELECT token, job_ids, expires_at, deadline_at FROM ${schema}.leases`);
        expect(rows.map((r) => ({ ...r, job_ids: [...r.job_ids].sort() }))).toEqual([
          {
            token: "tok",
            job_ids: [...ids].sort(),
            expires_at: String(T0 + LEASE_MS + 1),
            deadline_at: String(T0 + 10 * LEASE_MS),
          },
        ]);
        expect(await store.sweepExpiredLeases({ now: T0 + LEASE_MS + 1, retryDelayMs: 0, limit: 10 })).toBe(
          2,
        );
        for (const id of ids) expect(await getJob(store, id)).toMatchObject({ status: "queued", attempt: 1 });
      } finally {
        await store.dropSchema();
        await store.close();
      }
    } finally {
      await client.end();
    }
  });
});

describe("postgres: statements per job", () => {
  const poolOf = (s: PostgresStore) => (s as unknown as { pool: pg.Pool }).pool;

  const COMPLETION = "text[], int[], text[], text[], bytea[], text[], bigint[], bigint[], text, text, text[]";
  /** The parameter types of the per-job statements, as PREPARE wants them. */
  const PARAM_TYPES = {
    completeMany: COMPLETION,
    completeManyLean: COMPLETION,
    claim: "text, bigint, bigint, text[], integer",
    heartbeat: "bigint, text[], text[]",
    progress: "text[], text[], float8[], text[], text, text",
    failRetry: "text, text, bigint, text, text, text",
    release: "bigint, text[], text[], text, text",
  } as const;
  type Typed = keyof typeof PARAM_TYPES;

  /** The test's own connection beside the store's: to set the scene and read plans. */
  function sceneOf(client: pg.Client, schema: string) {
    const explain = async (sql: string) =>
      (await client.query<{ "QUERY PLAN": string }>(`EXPLAIN ${sql}`)).rows
        .map((r) => r["QUERY PLAN"])
        .join("\n");
    return {
      client,
      /** `n` copies of the table's first job, ids bulk-1 … bulk-n (`tenant`: SQL, of n), analyzed. */
      async bulkJobs(n: number, tenant = "tenant_id") {
        await client.query(
          `INSERT INTO ${schema}.jobs (id, tenant_id, type, status, input, run_at, created_at, deadline_at, max_attempts)
           SELECT 'bulk-' || n, ${tenant}, type, status, input, run_at, created_at, deadline_at, max_attempts
           FROM (SELECT * FROM ${schema}.jobs LIMIT 1) AS j, generate_series(1, ${n}) AS n`,
        );
        await client.query(`ANALYZE ${schema}.jobs`);
      },
      /** The plan of `sql` with its parameters written in as the given SQL literals. */
      plan: (sql: string, args: string[]) =>
        explain(sql.replaceAll("{{s}}", schema).replace(/\$(\d+)/g, (_, n: string) => args[Number(n) - 1]!)),
      /** The plan a prepared `sql` gets for `args`, under plan_cache_mode `mode`. */
      async preparedPlan(mode: "force_custom_plan" | "force_generic_plan", statement: Typed, args: string) {
        await client.query(`SET plan_cache_mode = ${mode}`);
        await client.query(
          `PREPARE p(${PARAM_TYPES[statement]}) AS ${SQL[statement].replaceAll("{{s}}", schema)}`,
        );
        try {
          return await explain(`EXECUTE p(${args})`);
        } finally {
          await client.query("DEALLOCATE p");
        }
      },
    };
  }

  async function withStore(
    options: { preparedStatements?: boolean },
    body: (store: PostgresStore, schema: string, scene: ReturnType<typeof sceneOf>) => Promise<void>,
  ): Promise<void> {
    const schema = freshSchema("stmt");
    // One connection: the prepared statements it holds are the ones this store made.
    const store = await new PostgresStore({
      connectionString: PG_URL,
      schema,
      poolSize: 1,
      ...options,
    }).open();
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    try {
      await body(store, schema, sceneOf(client, schema));
    } finally {
      await client.end();
      await store.dropSchema();
      await store.close();
    }
  }

  const preparedNames = async (store: PostgresStore) =>
    (
      await poolOf(store).query<{ name: string }>("SELECT name FROM pg_prepared_statements ORDER BY name")
    ).rows.map((r) => r.name);

  it("are prepared once per connection, and not at all with preparedStatements: false", async () => {
    await withStore({}, async (store) => {
      const first = await submitJob(store);
      await submitJob(store);
      expect(await store.get({ tenantId: TENANT, id: first.id })).toMatchObject({ status: "queued" });
      expect(await preparedNames(store)).toEqual(["tessera_getJob", "tessera_insertJobs"]);
      await store.claim({ types: [first.type], limit: 5, leaseMs: LEASE_MS, now: T0 + 1 });
      // The claim runs on the lease pool (its one connection so far).
      const leasePool = (store as unknown as { leasePool: pg.Pool }).leasePool;
      const leased = await leasePool.query<{ name: string }>("SELECT name FROM pg_prepared_statements");
      expect(leased.rows.map((r) => r.name)).toEqual(["tessera_claim"]);
    });
    await withStore({ preparedStatements: false }, async (store) => {
      const job = await submitJob(store);
      expect(await store.get({ tenantId: TENANT, id: job.id })).toMatchObject({ status: "queued" });
      expect(await preparedNames(store)).toEqual([]);
    });
  });

  it("a completion rewrites its job's row in place (a HOT update: no index entry)", async () => {
    await withStore({}, async (store, schema, scene) => {
      const type = (await submitJob(store)).type;
      for (let i = 0; i < 2; i++) await submitJob(store);
      const claimed = await store.claim({ types: [type], limit: 3, leaseMs: LEASE_MS, now: T0 + 1 });
      expect(claimed).toHaveLength(3);
      // Each pool has one connection here; its statistics reach the shared counters as it idles.
      const updates = async () => {
        for (const pool of [poolOf(store), (store as unknown as { leasePool: pg.Pool }).leasePool])
          await pool.query("SELECT pg_stat_force_next_flush()");
        const { rows } = await scene.client.query<{ upd: string; hot: string }>(
          `SELECT n_tup_upd AS upd, n_tup_hot_upd AS hot FROM pg_stat_user_tables
           WHERE schemaname = $1 AND relname = 'jobs'`,
          [schema],
        );
        return { all: Number(rows[0]!.upd), hot: Number(rows[0]!.hot) };
      };
      const before = await updates();
      const done = await store.completeMany(
        claimed.map((job, i) => ({
          lease: leaseOf(job),
          result: i === 0 ? { kind: "json" as const, json: '{"ok":true}' } : { kind: "none" as const },
          now: T0 + 2,
        })),
      );
      expect(done).toEqual([true, true, true]);
      const after = await updates();
      expect(after.all - before.all).toBe(3);
      expect(after.hot - before.hot).toBe(3);
    });
  });

  it("a claim's lease is one row for all its jobs: heartbeats extend it, the sweeps move it on and remove it", async () => {
    await withStore({}, async (store, schema, scene) => {
      const early = await submitJob(store, { deadlineAt: T0 + 100 });
      const late = await submitJob(store, { deadlineAt: T0 + LEASE_MS * 10 });
      const ended = await submitJob(store, { deadlineAt: T0 + LEASE_MS * 10 });
      const leases = async () =>
        (
          await scene.client.query<{
            token: string;
            job_ids: string[];
            expires_at: string;
            deadline_at: string;
          }>(`SELECT token, job_ids, expires_at, deadline_at FROM ${schema}.leases ORDER BY token`)
        ).rows.map((r) => ({
          ...r,
          job_ids: [...r.job_ids].sort(),
          expires_at: Number(r.expires_at),
          deadline_at: Number(r.deadline_at),
        }));
      const claimed = await store.claim({ types: [early.type], limit: 3, leaseMs: LEASE_MS, now: T0 + 1 });
      const token = claimed[0]!.leaseToken;
      expect(await leases()).toEqual([
        {
          token,
          job_ids: [early.id, late.id, ended.id].sort(),
          expires_at: T0 + 1 + LEASE_MS,
          deadline_at: T0 + 100,
        },
      ]);
      const byId = (id: string) => claimed.find((j) => j.id === id)!;
      expect(
        await store.complete({ lease: leaseOf(byId(ended.id)), result: { kind: "none" }, now: T0 + 2 }),
      ).toBe(true);
      // A heartbeat for any of the claim's jobs extends the one row.
      expect(
        await store.heartbeat({ leases: [leaseOf(byId(late.id))], leaseMs: LEASE_MS, now: T0 + 50 }),
      ).toEqual([]);
      expect((await leases())[0]).toMatchObject({ expires_at: T0 + 50 + LEASE_MS });
      // Past the first deadline: that job times out, the row waits for the next deadline among
      // the jobs still running (not the one that ended).
      expect(await store.sweepDeadlines({ now: T0 + 150, limit: 10 })).toBe(1);
      expect(await getJob(store, early.id)).toMatchObject({ status: "timed_out" });
      expect((await leases())[0]).toMatchObject({ deadline_at: T0 + LEASE_MS * 10 });
      // The worker stops heartbeating: the lease expires, its job still running is queued again,
      // and the row goes.
      expect(await store.sweepExpiredLeases({ now: T0 + 51 + LEASE_MS, retryDelayMs: 0, limit: 10 })).toBe(1);
      expect(await getJob(store, late.id)).toMatchObject({ status: "queued", attempt: 1 });
      expect(await leases()).toEqual([]);
      // A claim whose jobs all ended leaves a row until it expires; the lease sweep removes it.
      const again = await store.claim({
        types: [early.type],
        limit: 3,
        leaseMs: LEASE_MS,
        now: T0 + 2 * LEASE_MS,
      });
      expect(
        await store.complete({ lease: leaseOf(again[0]!), result: { kind: "none" }, now: T0 + 2 * LEASE_MS }),
      ).toBe(true);
      expect(await leases()).toHaveLength(1);
      expect(await store.sweepExpiredLeases({ now: T0 + 3 * LEASE_MS, retryDelayMs: 0, limit: 10 })).toBe(0);
      expect(await leases()).toEqual([]);
    });
  });

  it("the lease sweep is not held back by the rows of claims whose jobs have all ended", async () => {
    await withStore({}, async (store, schema, scene) => {
      const type = (await submitJob(store)).type;
      // Three claims of one job each, completed: their rows stay until they expire.
      for (let i = 0; i < 3; i++) {
        const [job] = await store.claim({ types: [type], limit: 1, leaseMs: LEASE_MS, now: T0 + i });
        expect(await store.complete({ lease: leaseOf(job!), result: { kind: "none" }, now: T0 + 5 })).toBe(
          true,
        );
        await submitJob(store);
      }
      // A fourth claim whose worker died: its job still runs, its row expires last.
      const [lost] = await store.claim({ types: [type], limit: 1, leaseMs: LEASE_MS, now: T0 + 10 });
      const count = async () =>
        Number(
          (await scene.client.query<{ n: string }>(`SELECT count(*) AS n FROM ${schema}.leases`)).rows[0]!.n,
        );
      expect(await count()).toBe(4);
      // Two rows a statement: the call goes on past the ended claims' rows to the lost one.
      expect(await store.sweepExpiredLeases({ now: T0 + 10 + LEASE_MS, retryDelayMs: 0, limit: 2 })).toBe(1);
      expect(await getJob(store, lost!.id)).toMatchObject({ status: "queued", attempt: 1 });
      expect(await count()).toBe(0);
    });
  });

  it("fenced by a lease, they find jobs by primary key whatever the statistics say; the claim by address", async () => {
    await withStore({}, async (store, _schema, scene) => {
      const job = await submitJob(store);
      // Statistics of a table full of jobs, and a plan made for any parameters (what a
      // prepared statement ends up with). (Before migration 010 a jobs_lease index of running
      // jobs looked free to such a plan, yet its dead entries grew with every job that ran.)
      await scene.bulkJobs(5000);
      const plan = (statement: Typed, args: string) =>
        scene.preparedPlan("force_generic_plan", statement, args);
      const completion = `'{${job.id}}', '{1}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{1}', 'c', 'n', '{t}'`;
      const fenced = [
        await plan("completeManyLean", completion),
        await plan("completeMany", completion),
        await plan("heartbeat", `1, '{${job.id}}', '{t}'`),
        await plan("progress", `'{${job.id}}', '{t}', '{1}', '{m}', 'c', 'n'`),
        await plan("failRetry", `'${job.id}', 't', 1, 'e', 'c', 'n'`),
        await plan("release", `1, '{${job.id}}', '{t}', 'c', 'n'`),
      ];
      for (const text of fenced) {
        expect(text).toContain("jobs_pkey");
        expect(text).not.toMatch(/Seq Scan on jobs/);
      }
      // The claim updates the rows claimable() locked at the addresses it read them at.
      const claim = await plan("claim", `'t', 1, 1, '{x}', 32`);
      expect(claim).toContain("Tid Scan on jobs");
      expect(claim).not.toMatch(/Seq Scan|jobs_lease|jobs_pkey/);
    });
  });

  it("with hundreds of ids, a plan made for their values finds the jobs by primary key too", async () => {
    await withStore({}, async (store, _schema, scene) => {
      const job = await submitJob(store);
      await scene.bulkJobs(20_000);
      // The plans PostgreSQL makes for a prepared statement's first five runs on a connection:
      // given 500 ids, it would rather scan 20,000 rows and hash them than look 500 up.
      const array = (values: string[]) => `'{${values.join(",")}}'`;
      const ids = array([job.id, ...Array.from({ length: 499 }, (_, i) => `bulk-${i + 1}`)]);
      const tokens = array(Array.from({ length: 500 }, () => "t"));
      const nows = array(Array.from({ length: 500 }, () => "1"));
      for (const [statement, args] of [
        ["completeManyLean", `${ids}, ${nows}, NULL, NULL, NULL, NULL, NULL, ${nows}, 'c', 'n', '{t}'`],
        ["heartbeat", `1, ${ids}, ${tokens}`],
        ["progress", `${ids}, ${tokens}, NULL, NULL, 'c', 'n'`],
        ["release", `1, ${ids}, ${tokens}, 'c', 'n'`],
      ] as const) {
        const text = await scene.preparedPlan("force_custom_plan", statement, args);
        expect(text).toContain("jobs_pkey");
        expect(text).not.toMatch(/Seq Scan on jobs/);
      }
    });
  });

  it("joins on job ids use the other tables' job_id indexes (the collations agree)", async () => {
    await withStore({}, async (store, schema, scene) => {
      const job = await submitJob(store);
      // Tables large enough that only their job_id indexes make these statements cheap.
      const { client } = scene;
      await client.query(
        `INSERT INTO ${schema}.idempotency_keys SELECT 't', 'k' || n, 'h', 'job_' || n, 0 FROM generate_series(1, 20000) AS n`,
      );
      await client.query(
        `INSERT INTO ${schema}.result_chunks SELECT 'job_' || n, 't', 0, '\\x00' FROM generate_series(1, 20000) AS n`,
      );
      await client.query(
        `INSERT INTO ${schema}.webhook_events (id, job_id, tenant_id, event, url, occurred_at, job_snapshot, next_attempt_at, status)
         SELECT 'msg_' || n, 'job_' || n, 't', 'job.progress', 'https://x', 0, '{}', 0, 'delivered' FROM generate_series(1, 20000) AS n`,
      );
      for (const table of ["idempotency_keys", "result_chunks", "webhook_events"])
        await client.query(`ANALYZE ${schema}.${table}`);
      const id = `'${job.id}'`;
      for (const text of [
        // The problems are JSON (a lifecycle event shows them as such).
        await scene.plan(SQL.deleteJob, [`'${TENANT}'`, id, "'c'", "'n'", "1", "'{}'"]),
        await scene.plan(SQL.deleteFinished, ["1", "10", "'0000000000'"]),
        await scene.plan(SQL.progressEvents, [`ARRAY[${id}]`, "1", "1000"]),
        await scene.plan(SQL.finishActive, [`'${TENANT}'`, id, "'canceled'", "1", "'{}'", "'c'", "'n'"]),
      ])
        expect(text).not.toMatch(/Seq Scan on (idempotency_keys|result_chunks|webhook_events)/);
    });
  });

  it("retention finds old jobs of every tenant in the primary key, ids from before 007 too", async () => {
    await withStore({}, async (store, schema, scene) => {
      const finish = async (tenantId: string, createdAt: number, finishedAt: number) => {
        const job = await submitJob(store, { tenantId, runAt: createdAt }, createdAt);
        const [claimed] = await store.claim({
          types: [job.type],
          limit: 1,
          leaseMs: LEASE_MS,
          now: createdAt,
        });
        await store.complete({ lease: leaseOf(claimed!), result: { kind: "none" }, now: finishedAt });
        return job.id;
      };
      const old = [await finish("tenant-x", T0, T0 + 10), await finish("tenant-y", T0 + 1, T0 + 20)];
      // Created before the cutoff, finished after it; and created after it.
      const kept = [await finish("tenant-x", T0 + 2, T0 + 500), await finish("tenant-y", T0 + 400, T0 + 450)];
      const running = await submitAndClaim(store, { tenantId: "tenant-z" }, T0 + 3);
      const legacy = "0f0e0d0c-0b0a-4908-8706-050403020100";
      await scene.client.query(
        `INSERT INTO ${schema}.jobs (id, tenant_id, type, status, input, run_at, created_at, deadline_at, max_attempts, finished_at)
         SELECT $1, tenant_id, type, 'succeeded', input, run_at, created_at, deadline_at, max_attempts, $2 FROM ${schema}.jobs LIMIT 1`,
        [legacy, T0 + 30],
      );
      const cutoff = T0 + 100;
      expect(
        await store.purgeExpired({ resultsBefore: 0, jobsBefore: cutoff, idempotencyBefore: 0, limit: 10 }),
      ).toMatchObject({ jobsDeleted: 3 });
      const { rows } = await scene.client.query<{ id: string }>(`SELECT id FROM ${schema}.jobs ORDER BY id`);
      expect(rows.map((r) => r.id).sort()).toEqual([...kept, running.id].sort());
      expect(old.every((id) => !rows.some((r) => r.id === id))).toBe(true);
      // With thousands of jobs under many tenants' prefixes, the statement reads the primary
      // key, never the table.
      await scene.bulkJobs(5000, "'tenant-' || (n % 50)");
      await scene.client.query(`UPDATE ${schema}.jobs SET id = 'job_' || md5(id) WHERE id LIKE 'bulk-%'`);
      await scene.client.query(`ANALYZE ${schema}.jobs`);
      const plan = await scene.plan(SQL.deleteFinished, [String(cutoff), "10", `'${idTimeBound(cutoff)}'`]);
      expect(plan).toContain("jobs_pkey");
      expect(plan).not.toMatch(/Seq Scan on jobs/);
    });
  });

  it("the tenant listing reads its range of the primary key backwards: no other index, no sort", async () => {
    await withStore({}, async (store, _schema, scene) => {
      for (let i = 0; i < 3; i++) await submitJob(store, {}, T0 + i);
      await scene.bulkJobs(5000, "'tenant-' || (n % 50)");
      const { first, last } = tenantIdRange(TENANT);
      const literal = (value: string | null) => (value === null ? "NULL" : `'${value}'`);
      const filters: [status: string | null, type: string | null, before: string | null][] = [
        [null, null, null],
        ["queued", "test.echo", newJobId(T0 + 1, TENANT)],
      ];
      for (const [status, type, before] of filters) {
        const text = await scene.plan(SQL.listJobs, [
          literal(TENANT),
          literal(status),
          literal(type),
          literal(first),
          literal(last),
          literal(before),
          "50",
        ]);
        expect(text).toContain("Index Scan Backward using jobs_pkey");
        expect(text).not.toContain("Sort");
      }
      // And the listing is the tenant's jobs, newest first, whatever else the table holds.
      const listed = await store.list({ tenantId: TENANT, limit: 50 });
      expect(listed.map((j) => j.createdAt)).toEqual([T0 + 2, T0 + 1, T0]);
    });
  });

  it("submits without a key arriving together are inserted in one statement; a bad one fails alone", async () => {
    await withStore({}, async (store) => {
      const query = vi.spyOn(poolOf(store), "query");
      const named = (name: string) =>
        query.mock.calls.filter(([config]) => (config as { name?: string }).name === name).length;
      const jobs = Array.from({ length: 50 }, (_, i) => newJob({ priority: i }));
      const outcomes = await Promise.all(
        jobs.map((job) => store.submit({ job, idempotency: null, now: T0 })),
      );
      expect(outcomes.map((o) => o.kind === "created" && o.job.id)).toEqual(jobs.map((j) => j.id));
      expect(outcomes.map((o) => o.kind === "created" && o.job.priority)).toEqual(
        jobs.map((j) => j.priority),
      );
      expect([named("tessera_insertJobs"), named("tessera_insertJob")]).toEqual([1, 0]);

      // One job of the next batch has an id that exists already: only its submit fails.
      const fresh = Array.from({ length: 10 }, () => newJob());
      const settled = await Promise.allSettled(
        [...fresh, jobs[0]!].map((job) => store.submit({ job, idempotency: null, now: T0 + 1 })),
      );
      expect(settled.map((r) => r.status)).toEqual([...fresh.map(() => "fulfilled"), "rejected"]);
      expect(String((settled[10] as PromiseRejectedResult).reason)).toMatch(/exists already/);
      // In one statement still: the clash fails its own submit, not the batch.
      expect([named("tessera_insertJobs"), named("tessera_insertJob")]).toEqual([2, 0]);
      for (const job of fresh) expect(await store.get({ tenantId: TENANT, id: job.id })).not.toBeNull();
      expect(await store.list({ tenantId: TENANT, limit: 100 })).toHaveLength(60);
    });
  });

  it("a batch's notifications stay below PostgreSQL's payload limit, whatever the job types' lengths", async () => {
    await withStore({}, async (store) => {
      const query = vi.spyOn(poolOf(store), "query");
      const types = Array.from({ length: 70 }, (_, i) => `test.${"long-type-name-".repeat(8)}${i}`);
      // 70 lines of ~150 bytes (submits) and ~200 (completions of watched jobs): more than one
      // payload each.
      await Promise.all(
        types.map((type) =>
          store.submit({ job: newJob({ type, watched: true }), idempotency: null, now: T0 }),
        ),
      );
      expect(
        query.mock.calls.filter(([c]) => (c as { name?: string }).name === "tessera_insertJobs"),
      ).toHaveLength(1);
      const claimed = await store.claim({ types, limit: 100, leaseMs: LEASE_MS, now: T0 });
      expect(claimed).toHaveLength(70);
      // As a worker completes them: it knows they asked for no lifecycle events.
      const done = await store.completeMany(
        claimed.map((job) => ({
          lease: leaseOf(job),
          result: { kind: "none" },
          now: T0,
          lifecycleEvents: false,
        })),
      );
      expect(done).toEqual(claimed.map(() => true));
      expect(
        query.mock.calls.filter(([c]) => (c as { name?: string }).name === "tessera_completeMany"),
      ).toHaveLength(1);
    });
  });

  it("a job's end is announced to other nodes if a request waits for it; a failure always", async () => {
    await withStore({}, async (store, schema) => {
      const lines: string[] = []; // t|… (ends)
      const queuedLines: string[] = []; // q|… (work queued)
      const listener = new pg.Client({ connectionString: PG_URL });
      listener.on("notification", (m) => {
        for (const line of (m.payload ?? "").split("\n")) {
          if (line.startsWith("t|")) lines.push(line);
          else if (line.startsWith("q|")) queuedLines.push(line);
        }
      });
      await listener.connect();
      await listener.query(`LISTEN tessera_${schema}`);
      try {
        const quiet = await submitJob(store, { id: "quiet" });
        const submittedWaited = await submitJob(store, { id: "waited", watched: true });
        const waitedLater = await submitJob(store, { id: "later" });
        const failing = await submitJob(store, { id: "failing", maxAttempts: 1 });
        // A wait that began after the submit, while the job is queued: workers are told again
        // (a claim running then may have left it), here and on other nodes.
        await vi.waitFor(() => expect(queuedLines).toHaveLength(4), { timeout: 2000 }); // the submits'
        queuedLines.length = 0;
        const queuedEvents: string[] = [];
        const unsubscribe = store.subscribe((e) => {
          if (e.kind === "queued") queuedEvents.push(e.type);
        });
        await store.watch({ tenantId: TENANT, id: waitedLater.id });
        unsubscribe();
        expect(queuedEvents).toEqual([waitedLater.type]);
        await vi.waitFor(() => expect(queuedLines).toHaveLength(1), { timeout: 2000 });
        expect(queuedLines[0]).toContain(`|${waitedLater.type}|`);
        const jobs = await store.claim({ types: [quiet.type], limit: 10, leaseMs: LEASE_MS, now: T0 + 1 });
        expect(jobs).toHaveLength(4);
        const byId = new Map(jobs.map((j) => [j.id, j]));
        const applied = await store.completeMany(
          [quiet, submittedWaited, waitedLater].map((j) => ({
            lease: leaseOf(byId.get(j.id)!),
            result: { kind: "none" },
            now: T0 + 2,
          })),
        );
        expect(applied).toEqual([true, true, true]);
        await store.watch({ tenantId: TENANT, id: quiet.id });
        const error = { type: "about:blank", title: "boom", status: 500, detail: "boom" };
        await store.fail({ lease: leaseOf(byId.get(failing.id)!), error, retryAt: null, now: T0 + 3 });

        await vi.waitFor(() => expect(lines).toHaveLength(3), { timeout: 2000 });
        await new Promise((resolve) => setTimeout(resolve, 100)); // nothing more comes
        const announced = lines.map((l) => l.split("|").slice(2, 4).join(" "));
        expect(announced.sort()).toEqual(
          [`${submittedWaited.id} succeeded`, `${waitedLater.id} succeeded`, `${failing.id} failed`].sort(),
        );
      } finally {
        await listener.end();
      }
    });
  });

  it("refuses a job whose id was not made for its tenant: it would never be listed", async () => {
    await withStore({}, async (store) => {
      for (const id of [newJobId(T0, "tenant-b"), "a-uuid-or-anything", newJobId(T0, TENANT).slice(0, -1)])
        await expect(store.submit({ job: { ...newJob(), id }, idempotency: null, now: T0 })).rejects.toThrow(
          /not made by newJobId/,
        );
      expect(await store.list({ tenantId: TENANT, limit: 10 })).toEqual([]);
    });
  });

  it("a lease never outlives its job's deadline, and the deadline sweep finds the job through it", async () => {
    await withStore({}, async (store, schema, scene) => {
      const deadlineAt = T0 + 10_000;
      await submitJob(store, { deadlineAt });
      const claimed = await claimOne(store, { leaseMs: LEASE_MS });
      expect(claimed.leaseExpiresAt).toBe(deadlineAt);
      const lease = { id: claimed.id, leaseToken: claimed.leaseToken };
      expect(await store.heartbeat({ leases: [lease], leaseMs: LEASE_MS, now: T0 + 5000 })).toEqual([]);
      const handed = newJob({ deadlineAt });
      await store.submit({
        job: handed,
        idempotency: null,
        now: T0,
        lease: { token: "h", expiresAt: T0 + LEASE_MS },
      });
      const { rows } = await scene.client.query<{ lease_expires_at: string }>(
        `SELECT lease_expires_at FROM ${schema}.jobs WHERE id = ANY($1)`,
        [[claimed.id, handed.id]],
      );
      expect(rows.map((r) => Number(r.lease_expires_at))).toEqual([deadlineAt, deadlineAt]);
      // Past the deadline: the lease sweep leaves the jobs alone (they are not retried) ...
      expect(await store.sweepExpiredLeases({ now: deadlineAt, retryDelayMs: 0, limit: 10 })).toBe(0);
      // ... and the deadline sweep times them out.
      expect(await store.sweepDeadlines({ now: deadlineAt, limit: 10 })).toBe(2);
      for (const id of [claimed.id, handed.id])
        expect(await store.get({ tenantId: TENANT, id })).toMatchObject({ status: "timed_out", attempt: 1 });
    });
  });

  it("a lease token and expiry exist exactly while a job runs (the database refuses anything else)", async () => {
    await withStore({}, async (store, schema) => {
      const job = await submitJob(store);
      const update = (set: string) =>
        poolOf(store).query(`UPDATE ${schema}.jobs SET ${set} WHERE id = $1`, [job.id]);
      await expect(update("lease_token = 'x'")).rejects.toThrow(/jobs_lease_while_running/);
      await expect(update("status = 'running', lease_expires_at = 1")).rejects.toThrow(
        /jobs_lease_while_running/,
      );
      // Without an expiry, neither sweep would ever find the job.
      await expect(update("status = 'running', lease_token = 'x'")).rejects.toThrow(
        /jobs_lease_expiry_while_running/,
      );
      await update("status = 'running', lease_token = 'x', lease_expires_at = 1");
    });
  });
});
