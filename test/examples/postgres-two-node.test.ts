/**
 * examples/postgres-two-node as its README runs it, on a fresh schema of the test database:
 * `tessera migrate`, `tessera keys create`, two built `tessera serve` nodes (NODE_NAME a and b,
 * the same TESSERA_SECRET), then the example's demo script, which submits every job to node A
 * and follows each one on node B only. Checked: every job succeeded, both nodes ran some, the
 * two nodes agree on each job; then by hand, a `Prefer: wait` on B ended by the job finishing,
 * B's signed result URL, A's signed URL honoured by B, and the rows in the database.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  createKey,
  killAll,
  pgQuery,
  ROOT,
  spawnTessera,
  tesseraCli,
  type Node,
} from "../helpers/cluster.js";
import { runExample, stopExamples } from "../helpers/example-process.js";
import { freshSchema, PG_URL } from "../helpers/postgres.js";
import { bearer, http } from "../helpers/server.js";

const JOBS = "examples/postgres-two-node/jobs.ts";
const schema = freshSchema("ex2n");

afterAll(async () => {
  await stopExamples();
  await killAll();
  await pgQuery(PG_URL, `DROP SCHEMA IF EXISTS ${schema} CASCADE`);
});

/** A node as the README starts it: the database, schema and secret from the environment. */
function node(name: string, secret: string): Promise<Node> {
  return spawnTessera(["--jobs", JOBS, "--concurrency", "4"], {
    built: true,
    name,
    env: {
      NODE_NAME: name,
      TESSERA_DATABASE_URL: PG_URL,
      TESSERA_DB_SCHEMA: schema,
      TESSERA_SECRET: secret,
    },
  });
}

describe("examples/postgres-two-node", { timeout: 90_000 }, () => {
  it("jobs submitted to node A run on both nodes and are followed to their results on node B", async () => {
    expect(existsSync(join(ROOT, "dist/main.js")), "npm run build first").toBe(true);
    const migrated = await tesseraCli(["migrate", "--db", PG_URL, "--db-schema", schema]);
    expect(migrated.code, migrated.stderr).toBe(0);
    const key = await createKey({ db: PG_URL, schema, tenant: "demo" });
    const secret = randomBytes(32).toString("hex");
    const [a, b] = await Promise.all([node("a", secret), node("b", secret)]);

    // --- the example's script: 24 jobs of 500 ms; A alone (4 at a time) would need 3 s --------
    const demo = runExample("examples/postgres-two-node/demo.ts", {
      NODE_A: a!.url,
      NODE_B: b!.url,
      TESSERA_API_KEY: key,
      JOBS: "24",
      JOB_MS: "500",
    });
    const exit = await demo.exited;
    expect(exit.code, demo.stdout() + demo.stderr()).toBe(0);
    const lines = demo.jsonLines<{
      id?: string;
      n?: number;
      ranOn?: unknown;
      readFrom?: string;
      agree?: boolean;
    }>();
    const jobs = lines.filter((l) => l.id !== undefined);
    const summary = lines.at(-1) as { jobs: number; ranOn: Record<string, number>; disagreements: number };
    expect(jobs).toHaveLength(24);
    expect(new Set(jobs.map((j) => j.n))).toEqual(new Set(Array.from({ length: 24 }, (_, n) => n)));
    expect(jobs.every((j) => j.readFrom === "B" && j.agree === true)).toBe(true);
    expect(summary.disagreements).toBe(0);
    expect(Object.keys(summary.ranOn).sort()).toEqual(["a", "b"]);
    expect(summary.ranOn.a! + summary.ranOn.b!).toBe(24);

    // --- by hand: submit to A, wait on B --------------------------------------------------------
    const submitted = await http(`${a!.url}/v1/jobs`, {
      headers: bearer(key),
      json: { type: "cluster.where", input: { n: 99, ms: 1500 } },
    });
    expect(submitted.status).toBe(202);
    const { id } = (await submitted.json()) as { id: string };
    // B holds the request until the job ends (on whichever node) and answers with a URL it signed.
    const waited = await http(`${b!.url}/v1/jobs/${id}`, { headers: { ...bearer(key), prefer: "wait=30" } });
    expect(waited.status).toBe(303);
    const onB = new URL(waited.headers.get("location")!);
    expect(onB.origin).toBe(b!.url);
    const result = await http(onB.href); // no credentials: the signature is the capability
    expect(result.status).toBe(200);
    const value = (await result.json()) as { n: number; ranOn: string };
    expect(value.n).toBe(99);
    expect(["a", "b"]).toContain(value.ranOn);

    // A signed the same result with the same secret: B honours A's URL too.
    const onA = new URL(
      (await http(`${a!.url}/v1/jobs/${id}`, { headers: bearer(key) })).headers.get("location")!,
    );
    expect(onA.origin).toBe(a!.url);
    const viaB = await http(`${b!.url}${onA.pathname}${onA.search}`);
    expect(viaB.status).toBe(200);
    expect(await viaB.json()).toEqual(value);

    // One database: every job's row, once, succeeded.
    const rows = await pgQuery<{ status: string; n: number }>(
      PG_URL,
      `SELECT status, count(*)::int AS n FROM ${schema}.jobs GROUP BY status`,
    );
    expect(rows).toEqual([{ status: "succeeded", n: 25 }]);
  });
});
