/**
 * Real processes, real signals: `tessera serve` is spawned in its own process group, killed
 * with SIGKILL or stopped with SIGTERM, and restarted on the same SQLite file.
 * Covers F2 (kill -9 under submit load: nothing acknowledged is lost), crash recovery of a
 * running job (lease + sweep), F7 (SIGTERM releases work) and `--jobs` with a TypeScript module.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import Database from "better-sqlite3";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { SqliteStore } from "../../src/store/sqlite/store.js";
import { DEV_TENANT } from "../../src/tessera.js";
import { FAST, FIXTURE_JOBS, killAll, spawnTessera, type Node } from "../helpers/cluster.js";
import { http } from "../helpers/server.js";

interface Representation {
  id: string;
  type: string;
  status: string;
  attempt: number;
  startedAt: string | null;
  error: { detail: string } | null;
}

const TERMINAL = new Set(["succeeded", "failed", "canceled", "timed_out"]);

type Server = Node;

const dirs: string[] = [];

function tempDb(): string {
  const dir = mkdtempSync(join(tmpdir(), "tessera-e2e-"));
  dirs.push(dir);
  return join(dir, "tessera.db");
}

/** Spawn `tessera serve --dev` on port 0 and resolve once it prints its address. */
function serve(db: string, args: string[] = [], { demo = true } = {}): Promise<Server> {
  return spawnTessera(["--dev", ...(demo ? ["--demo"] : []), "--db", db, ...args], { timeoutMs: 20_000 });
}

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs: number,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

async function submit(
  url: string,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<Representation> {
  const response = await http(`${url}/v1/jobs`, { json: body, headers });
  expect(response.status, await response.clone().text()).toBe(202);
  return (await response.json()) as Representation;
}

async function status(url: string, id: string): Promise<Representation> {
  const response = await http(`${url}/v1/jobs/${id}?onComplete=status`);
  expect([200, 202], `GET ${id}`).toContain(response.status);
  return (await response.json()) as Representation;
}

function running(url: string, id: string, attempt: number, timeoutMs: number): Promise<Representation> {
  return waitFor(
    `job ${id} running attempt ${attempt}`,
    async () => {
      const job = await status(url, id);
      return job.status === "running" && job.attempt === attempt ? job : undefined;
    },
    timeoutMs,
  );
}

function terminal(url: string, id: string, timeoutMs: number): Promise<Representation> {
  return waitFor(
    `job ${id} terminal`,
    async () => {
      const job = await status(url, id);
      return TERMINAL.has(job.status) ? job : undefined;
    },
    timeoutMs,
  );
}

/** Read jobs straight from the file (another process may hold it open: WAL allows that). */
async function readJobs(db: string, ids: string[]) {
  const store = new SqliteStore({ path: db });
  try {
    const tenantId = await store.ensureTenant({ name: DEV_TENANT, now: Date.now() });
    return await Promise.all(ids.map(async (id) => (await store.get({ tenantId, id }))!));
  } finally {
    await store.close();
  }
}

afterEach(async () => {
  await killAll();
});

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe("e2e: crashes and restarts of real processes", { timeout: 60_000 }, () => {
  it("kill -9 mid-job: a second server on the same file finishes it as attempt 2", async () => {
    const db = tempDb();
    const log = join(dirname(db), "executions.log");
    const first = await serve(db, [...FAST, "--jobs", FIXTURE_JOBS]);
    const sleepJob = await submit(first.url, { type: "demo.sleep", input: { ms: 4000 } });
    const recorded = await submit(first.url, {
      type: "fixture.record",
      input: { value: 1, sleepMs: 4000, logPath: log },
    });
    await running(first.url, sleepJob.id, 1, 5000);
    await running(first.url, recorded.id, 1, 5000);

    await first.kill();
    const killedAt = Date.now();
    expect((await first.exited).signal).toBe("SIGKILL");

    const second = await serve(db, [...FAST, "--jobs", FIXTURE_JOBS]);
    // Recovery: lease (2 s) + sweep (0.2 s) + the retry delay (1 s); bound with slack.
    const restarted = await running(second.url, sleepJob.id, 2, 15_000);
    expect(Date.parse(restarted.startedAt!) - killedAt).toBeLessThan((2000 + 200 + 1000) * 3);
    expect(restarted.error?.detail).toMatch(/lost its lease/);

    for (const job of [sleepJob, recorded]) {
      const done = await terminal(second.url, job.id, 4000 * 3);
      expect(done).toMatchObject({ status: "succeeded", attempt: 2, error: null });
    }
    // The execution log: exactly one extra execution (the lost lease), one per process.
    const lines = readFileSync(log, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { attempt: number; pid: number });
    expect(lines.map((l) => l.attempt)).toEqual([1, 2]);
    expect(lines.map((l) => l.pid)).toEqual([first.pid, second.pid]);
  });

  it("kill -9 under concurrent submits: every acknowledged job survives and finishes, one job per key (F2)", async () => {
    const db = tempDb();
    const first = await serve(db, [...FAST, "--concurrency", "0"]);
    const TOTAL = 200;
    const SUBMITTERS = 64;
    const KILL_AFTER = 80;
    const attempted: string[] = [];
    const acked = new Map<string, string>();
    const unknown = new Set<string>();
    let next = 0;
    let killing: Promise<void> | null = null;

    const submitter = async () => {
      while (killing === null && next < TOTAL) {
        const key = `key-${next++}`;
        attempted.push(key);
        try {
          const response = await http(`${first.url}/v1/jobs`, {
            json: { type: "demo.echo", input: { key } },
            headers: { "idempotency-key": key },
          });
          if (response.status === 202) acked.set(key, ((await response.json()) as Representation).id);
          else unknown.add(key); // not acknowledged (e.g. 503); resubmitted below like an unknown
        } catch {
          unknown.add(key); // connection refused or reset: outcome unknown
        }
        if (acked.size >= KILL_AFTER && killing === null) killing = first.kill();
      }
    };
    await Promise.all(Array.from({ length: SUBMITTERS }, submitter));
    await killing;
    expect((await first.exited).signal).toBe("SIGKILL");
    expect(acked.size).toBeGreaterThanOrEqual(KILL_AFTER);
    expect(attempted.length).toBe(acked.size + unknown.size);

    const second = await serve(db, [...FAST, "--concurrency", "32"]);
    // Every acknowledged id is there.
    for (const [, id] of acked) {
      const response = await http(`${second.url}/v1/jobs/${id}`);
      expect([202, 303], `acknowledged job ${id}`).toContain(response.status);
      expect(((await response.json()) as Representation).id).toBe(id);
    }
    // Resubmitting every key gives exactly one job per key: a replay of an acknowledged or
    // committed-but-unanswered job, or a fresh one for a submit that never committed.
    const byKey = new Map<string, string>();
    for (const key of attempted) {
      const job = await submit(second.url, { type: "demo.echo", input: { key } }, { "idempotency-key": key });
      byKey.set(key, job.id);
      if (acked.has(key)) expect(job.id).toBe(acked.get(key));
    }
    expect(new Set(byKey.values()).size).toBe(attempted.length);

    // With workers on, all of them finish; nothing unexpected appears.
    const listed = await waitFor(
      "every job terminal",
      async () => {
        const response = await http(`${second.url}/v1/jobs?limit=500`);
        const { items } = (await response.json()) as { items: Representation[] };
        return items.length === attempted.length && items.every((j) => TERMINAL.has(j.status))
          ? items
          : undefined;
      },
      20_000,
    );
    expect(new Set(listed.map((j) => j.id))).toEqual(new Set(byKey.values()));
    expect(listed.every((j) => j.status === "succeeded")).toBe(true);

    await second.kill();
    const check = new Database(db, { readonly: true });
    try {
      expect(check.pragma("integrity_check", { simple: true })).toBe("ok");
      expect(check.pragma("journal_mode", { simple: true })).toBe("wal");
    } finally {
      check.close();
    }
  });

  it("SIGTERM: the short job completes, long jobs are released, exit 0 within grace + 2 s (F7)", async () => {
    const db = tempDb();
    const GRACE = 1500;
    // A 5 s lease: a job picked up in under that was released, not left to expire.
    const args = [
      "--lease-ms",
      "5000",
      "--heartbeat-ms",
      "1000",
      "--sweep-interval-ms",
      "200",
      "--poll-interval-ms",
      "500",
      "--concurrency",
      "3",
      "--shutdown-grace-ms",
      String(GRACE),
    ];
    const first = await serve(db, args);
    const longA = await submit(first.url, { type: "demo.sleep", input: { ms: 60_000 } });
    const longB = await submit(first.url, { type: "demo.sleep", input: { ms: 60_000 } });
    await running(first.url, longA.id, 1, 5000);
    await running(first.url, longB.id, 1, 5000);
    const short = await submit(first.url, { type: "demo.sleep", input: { ms: 1000 } });
    await running(first.url, short.id, 1, 5000);
    // Waits for a slot; when the short job frees one during the grace, it must not start here.
    const waiting = await submit(first.url, { type: "demo.echo", input: "after" });

    const signaledAt = Date.now();
    first.child.kill("SIGTERM");
    const exit = await Promise.race([first.exited, sleep(GRACE + 2000 * 3).then(() => null)]);
    expect(exit, first.output()).toEqual({ code: 0, signal: null });
    expect(Date.now() - signaledAt).toBeLessThan(GRACE + 2000);
    expect(first.output()).toMatch(/SIGTERM: stopping/);

    const [s, a, b, w] = await readJobs(db, [short.id, longA.id, longB.id, waiting.id]);
    expect(s).toMatchObject({ status: "succeeded", attempt: 1 });
    for (const job of [a!, b!]) {
      expect(job).toMatchObject({ status: "queued", attempt: 0 });
      expect(job.runAt).toBeLessThanOrEqual(Date.now());
    }
    expect(w).toMatchObject({ status: "queued", attempt: 0 });

    const second = await serve(db, args);
    const listeningAt = Date.now();
    await Promise.all([running(second.url, longA.id, 1, 5000), running(second.url, longB.id, 1, 5000)]);
    expect(Date.now() - listeningAt).toBeLessThan(1000 * 3);
    expect(await terminal(second.url, waiting.id, 5000)).toMatchObject({ status: "succeeded", attempt: 1 });
  });

  it("--jobs loads a TypeScript job module and runs its jobs", async () => {
    const db = tempDb();
    const server = await serve(db, ["--jobs", join(FIXTURE_JOBS, "record.ts")], { demo: false });
    expect(server.output()).toMatch(/types: fixture\.record\b/);
    const types = (await (await http(`${server.url}/v1/job-types`)).json()) as { items: { type: string }[] };
    expect(types.items.map((t) => t.type)).toEqual(["fixture.record"]);

    const response = await http(`${server.url}/v1/jobs`, {
      json: { type: "fixture.record", input: { value: { hello: "world" } } },
      headers: { prefer: "wait=10" },
    });
    expect([200, 202]).toContain(response.status);
    const id =
      response.headers.get("content-location")?.split("/").pop() ??
      ((await response.clone().json()) as Representation).id;
    const done = await terminal(server.url, id, 10_000);
    expect(done).toMatchObject({ type: "fixture.record", status: "succeeded", attempt: 1 });
    const result = await http(`${server.url}/v1/jobs/${id}/result`);
    expect(result.status).toBe(200);
    expect(await result.json()).toEqual({ value: { hello: "world" }, attempt: 1, pid: server.pid });
  });
});
