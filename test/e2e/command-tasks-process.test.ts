/**
 * Command tasks under a spawned `tessera serve --jobs`: a 50 MB binary file result streamed in
 * and out on SQLite and on PostgreSQL while the server's peak RSS stays flat (VmHWM), the
 * server's SIGTERM stopping every task before it releases their leases, and a restart after a
 * SIGKILL killing what the dead server's tasks left running.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { killAll, pgQuery, spawnTessera, waitFor, FAST, ROOT, type Node } from "../helpers/cluster.js";
import { freshSchema, PG_URL } from "../helpers/postgres.js";
import { alive, gone, pidsFrom } from "../helpers/processes.js";
import { http } from "../helpers/server.js";

const JOBS = join(ROOT, "test/fixtures/tasks/jobs.ts");
const scratch = mkdtempSync(join(tmpdir(), "tessera-tasks-proc-"));
const schemas: string[] = [];

afterEach(killAll);
afterAll(async () => {
  rmSync(scratch, { recursive: true, force: true });
  for (const schema of schemas) await pgQuery(PG_URL, `DROP SCHEMA IF EXISTS ${schema} CASCADE`);
});

interface Job {
  id: string;
  status: string;
  error: unknown;
  links: { result?: string };
}

function serve(db: string[], taskDir: string, extra: string[] = []): Promise<Node> {
  return spawnTessera(["--dev", ...db, "--jobs", JOBS, "--task-dir", taskDir, ...FAST, ...extra], {
    timeoutMs: 30_000,
  });
}

async function submit(node: Node, type: string, input: unknown): Promise<Job> {
  const response = await http(`${node.url}/v1/jobs`, { json: { type, input } });
  expect(response.status, await response.clone().text()).toBe(202);
  return (await response.json()) as Job;
}

async function settled(node: Node, id: string): Promise<Job> {
  for (;;) {
    const response = await http(`${node.url}/v1/jobs/${id}?onComplete=status`, {
      headers: { prefer: "wait=30" },
    });
    if (response.status === 200) return (await response.json()) as Job;
  }
}

/** The peak resident set of a process so far, in bytes. */
function peakRss(pid: number): number {
  const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return Number(kb) * 1024;
}

const MB = 1024 * 1024;

/** Submit a file job of `mb` MiB, wait for it, download its result hashing as it comes. */
async function fileRoundTrip(node: Node, mb: number): Promise<void> {
  const bytes = mb * MB;
  const job = await settled(
    node,
    (await submit(node, "task.file", { name: "big.bin", bytes, type: "application/octet-stream" })).id,
  );
  expect(job.status, JSON.stringify(job.error)).toBe("succeeded");
  const response = await fetch(job.links.result!);
  expect(response.headers.get("content-type")).toBe("application/octet-stream");
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    hash.update(chunk);
    size += chunk.length;
  }
  expect(size).toBe(bytes);
  // The same pattern the task wrote: 1 MiB blocks of i % 251.
  const block = Buffer.alloc(MB);
  for (let i = 0; i < block.length; i++) block[i] = i % 251;
  const expected = createHash("sha256");
  for (let i = 0; i < mb; i++) expected.update(block);
  expect(hash.digest("hex")).toBe(expected.digest("hex"));
}

describe.each([
  ["SQLite", () => ["--db", join(mkdtempSync(join(scratch, "db-")), "t.db")]],
  [
    "PostgreSQL",
    () => {
      const schema = freshSchema("tasks");
      schemas.push(schema);
      return ["--db", PG_URL, "--db-schema", schema];
    },
  ],
])("file results on %s", (_name, db) => {
  it("a 50 MB file, then a 100 MB one, stored and served as streams: peak RSS stays flat", async () => {
    const node = await serve(db(), join(scratch, "tasks"), ["--max-result-bytes", String(128 * MB)]);
    // The first file brings the heap to its working size (V8 grows it lazily, then reuses it).
    await fileRoundTrip(node, 50);
    const before = peakRss(node.pid);
    // Read whole, the file would need 100 MB more at once; streamed, it needs (next to) nothing more
    // (the margin is for GC timing on a busy machine).
    await fileRoundTrip(node, 100);
    const growth = peakRss(node.pid) - before;
    expect(growth, `peak RSS grew by ${(growth / MB).toFixed(1)} MB`).toBeLessThan(50 * MB);
  }, 120_000);
});

describe("the server's own stop", () => {
  it("SIGTERM mid-task: every task's tree is stopped, then the lease released (the job queued again)", async () => {
    const dbPath = join(mkdtempSync(join(scratch, "db-")), "t.db");
    const node = await serve(["--db", dbPath], join(scratch, "tasks"), ["--shutdown-grace-ms", "300"]);
    const files = [join(scratch, "term-1.pids"), join(scratch, "term-2.pids")];
    const jobs = [
      await submit(node, "task.tree", { pidFile: files[0] }),
      await submit(node, "task.stubborn", { pidFile: files[1] }),
    ];
    const pids = [...(await pidsFrom(files[0]!)), ...(await pidsFrom(files[1]!))];
    expect(pids.every(alive)).toBe(true);
    node.signal("SIGTERM");
    const exit = await node.exited;
    expect(exit.code, node.output()).toBe(0);
    // Gone by the time the server exited: it waits for them before releasing the leases.
    expect(pids.filter(alive)).toEqual([]);
    const db = new Database(dbPath, { readonly: true });
    const rows = db
      .prepare(`SELECT id, status FROM jobs WHERE id IN (?, ?)`)
      .all(jobs[0]!.id, jobs[1]!.id) as { status: string }[];
    db.close();
    expect(rows.map((r) => r.status)).toEqual(["queued", "queued"]);
  }, 60_000);

  it("a SIGKILL of the server alone: its launcher sees the channel close and stops the tasks", async () => {
    const dbPath = join(mkdtempSync(join(scratch, "db-")), "t.db");
    const node = await serve(["--db", dbPath], join(scratch, "tasks"));
    const pidFile = join(scratch, "orphaned.pids");
    await submit(node, "task.stubborn", { pidFile });
    const pids = await pidsFrom(pidFile);
    process.kill(node.pid, "SIGKILL"); // the server's process only, not its group
    await node.exited;
    expect(await gone(pids)).toEqual([]);
  }, 60_000);

  it("after a SIGKILL, the next start kills what the dead server's tasks left running", async () => {
    const dbPath = join(mkdtempSync(join(scratch, "db-")), "t.db");
    const taskDir = join(scratch, "tasks-killed");
    const node = await serve(["--db", dbPath], taskDir);
    const pidFile = join(scratch, "killed.pids");
    await submit(node, "task.tree", { pidFile });
    const pids = await pidsFrom(pidFile);
    await node.kill(); // the server's own group only: its tasks live in groups of their own
    // The strays that still carry the task's environment (the detached sleep does too).
    expect(pids.filter(alive).length).toBeGreaterThan(0);
    const again = await serve(["--db", dbPath], taskDir);
    expect(await gone(pids)).toEqual([]);
    await waitFor(
      "the restarted server to answer",
      async () => (await http(`${again.url}/healthz`)).ok,
      5000,
    );
  }, 60_000);
});
