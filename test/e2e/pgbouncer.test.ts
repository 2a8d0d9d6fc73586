/**
 * Tessera behind pgbouncer in transaction mode (docs/deployment.md): an API node and a worker
 * node whose statements all go through pgbouncer, with more client connections than pgbouncer
 * has server connections, `--db-no-prepare` (pgbouncer before 1.21 cannot carry named prepared
 * statements) and the LISTEN connection pointed at PostgreSQL itself (`--db-listen-url`).
 * Every fallback poll is 60 s away, so the worker's wake-ups and the waits' answers can only
 * come from LISTEN/NOTIFY.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  createKey,
  killAll,
  logLines,
  pgNodeArgs,
  pgQuery,
  spawnTessera,
  type Node,
} from "../helpers/cluster.js";
import { hasPgbouncer, startPgbouncer } from "../helpers/pgbouncer.js";
import { freshSchema, PG_URL } from "../helpers/postgres.js";
import { bearer, http, TEST_SECRET } from "../helpers/server.js";
import type { Job } from "./support.js";

describe.skipIf(!hasPgbouncer())("e2e: behind pgbouncer in transaction mode", { timeout: 60_000 }, () => {
  const schema = freshSchema("pgb");
  let bouncer: { url: string; stop: () => Promise<void> };

  beforeAll(async () => {
    bouncer = await startPgbouncer(PG_URL, { serverConnections: 2 });
  });
  afterEach(async () => {
    await killAll();
  });
  afterAll(async () => {
    await bouncer?.stop();
    await pgQuery(PG_URL, `DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  });

  const errors = (node: Node) =>
    logLines(node.output())
      .filter((l) => l.level >= 50)
      .map((l) => JSON.stringify(l));

  it("runs jobs and answers cross-node waits, statements through pgbouncer and LISTEN direct", async () => {
    const key = await createKey({ db: PG_URL, schema });
    const args = [
      ...pgNodeArgs({ db: bouncer.url, schema, secret: TEST_SECRET }),
      "--db-no-prepare",
      "--db-listen-url",
      PG_URL,
      "--poll-interval-ms",
      "60000",
    ];
    // 2 nodes × (4 pool + 3 lease-pool connections) share pgbouncer's 2 server connections.
    const [api, worker] = await Promise.all([
      spawnTessera([...args, "--role", "api"], { name: "api" }),
      spawnTessera([...args, "--role", "worker", "--concurrency", "8"], { name: "worker" }),
    ]);

    const N = 20;
    const jobs = await Promise.all(
      Array.from({ length: N }, async (_, i) => {
        const response = await http(`${api!.url}/v1/jobs`, {
          json: { type: "fixture.record", input: { value: i, sleepMs: 300 } },
          headers: bearer(key),
        });
        expect(response.status).toBe(202);
        return (await response.json()) as Job;
      }),
    );
    const answers = await Promise.all(
      jobs.map(async (job) => {
        const response = await http(`${api!.url}/v1/jobs/${job.id}?onComplete=status`, {
          headers: { ...bearer(key), prefer: "wait=20" },
        });
        return {
          status: response.status,
          answeredAt: Date.now(),
          job: (await response.json()) as Job,
        };
      }),
    );
    for (const a of answers) {
      expect(a.status).toBe(200);
      expect(a.job.status).toBe("succeeded");
      // The worker woke on the API node's NOTIFY, and the wait ended on the worker's.
      expect(Date.parse(a.job.startedAt!) - Date.parse(a.job.createdAt)).toBeLessThan(5000);
      expect(a.answeredAt - Date.parse(a.job.finishedAt!)).toBeLessThan(2000);
    }
    const [row] = await pgQuery<{ n: string }>(
      PG_URL,
      `SELECT count(*) AS n FROM ${schema}.jobs WHERE status = 'succeeded' AND attempt = 1`,
    );
    expect(Number(row!.n)).toBe(N);
    expect([...errors(api!), ...errors(worker!)]).toEqual([]);
  });
});
