/**
 * PostgreSQL faults against real processes (RELIABILITY.md):
 * - F3: every backend of the database terminated (twice) under load — a database restart as
 *   far as the nodes can tell, without restarting the server other tests share.
 * - F12: only the LISTEN connections terminated while waits are pending.
 * - F6: a poison job that kills its worker process, on PostgreSQL and on SQLite.
 *
 * The file creates a database of its own (`CREATE DATABASE`, dropped afterwards) and only ever
 * terminates backends of that database, so test files running in parallel are not hit.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  countBackends,
  createDatabase,
  createKey,
  FAST,
  FIXTURE_JOBS,
  killAll,
  LEASE_MS,
  logLines,
  pgNodeArgs,
  pgQuery,
  readExecutions,
  spawnTessera,
  Supervisor,
  SWEEP_MS,
  terminateBackends,
  waitFor,
  type Node,
} from "../helpers/cluster.js";
import { freshSchema } from "../helpers/postgres.js";
import { bearer, http, TEST_SECRET } from "../helpers/server.js";

interface Representation {
  id: string;
  status: string;
  attempt: number;
  finishedAt: string | null;
  error: { detail: string } | null;
}

const TERMINAL = ["succeeded", "failed", "canceled", "timed_out"];

let db: Awaited<ReturnType<typeof createDatabase>>;
const dirs: string[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "tessera-pgfaults-"));
  dirs.push(dir);
  return dir;
}

beforeAll(async () => {
  db = await createDatabase("tessera_faults");
});

afterEach(async () => {
  await killAll();
});

afterAll(async () => {
  await killAll();
  await db?.drop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A fresh schema in this file's database, with an API key for tenant `t`. */
async function freshCluster(prefix: string): Promise<{ schema: string; key: string; args: string[] }> {
  const schema = freshSchema(prefix);
  const key = await createKey({ db: db.url, schema });
  return { schema, key, args: pgNodeArgs({ db: db.url, schema, secret: TEST_SECRET }) };
}

/** Submit with `Prefer: wait`; resolve with when the answer came and the job's finishedAt. */
async function submitAndWait(url: string, key: string, input: Record<string, unknown>) {
  const response = await http(`${url}/v1/jobs`, {
    json: { type: "fixture.record", input },
    headers: { ...bearer(key), prefer: "wait=20" },
  });
  const answeredAt = Date.now();
  expect(response.status, await response.clone().text()).toBe(200); // the result, after the wait
  const statusUrl = response.headers.get("content-location")!;
  const job = (await (
    await http(`${statusUrl}?onComplete=status`, { headers: bearer(key) })
  ).json()) as Representation;
  expect(job.status).toBe("succeeded");
  return answeredAt - Date.parse(job.finishedAt!);
}

describe("e2e: PostgreSQL faults", { timeout: 90_000 }, () => {
  it("F3: all backends terminated twice under load: no exit, 503 or 202 (never a lost 202), readyz and LISTEN recover", async () => {
    // Jobs of 100 ms: the worker drains WORKER_SLOTS × 10 a second, while the 8 submitters
    // queue as fast as the API accepts (600/s on a quick machine).
    const WORKER_SLOTS = 32;
    const { schema, key, args } = await freshCluster("f3");
    const executionLog = join(tempDir(), "executions.log");
    // The API's fallback poll is 60 s: after recovery only a re-established LISTEN ends a wait.
    const [api, worker] = await Promise.all([
      spawnTessera([...args, "--role", "api", "--poll-interval-ms", "60000"], { name: "api" }),
      spawnTessera([...args, "--role", "worker", "--concurrency", String(WORKER_SLOTS)], { name: "worker" }),
    ]);
    const nodes = [api!, worker!];

    // Readiness, sampled all along.
    const readiness: { node: string; at: number; status: number }[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        for (const node of nodes) {
          const at = Date.now();
          const status = await http(`${node.url}/readyz`).then(
            async (r) => (await r.text(), r.status),
            () => 0,
          );
          readiness.push({ node: node.name, at, status });
        }
        await sleep(50);
      }
    })();

    // Load: 8 submitters, each with its own Idempotency-Keys, until told to stop.
    const attempted = new Set<string>();
    const acked = new Map<string, string>();
    const unavailable: string[] = [];
    const unknown: string[] = [];
    const bad: string[] = [];
    let n = 0;
    let loading = true;
    const submitter = async () => {
      while (loading) {
        const idempotencyKey = `f3-${n++}`;
        attempted.add(idempotencyKey);
        try {
          const response = await http(`${api!.url}/v1/jobs`, {
            json: {
              type: "fixture.record",
              input: { value: idempotencyKey, sleepMs: 100, logPath: executionLog },
            },
            headers: { ...bearer(key), "idempotency-key": idempotencyKey },
          });
          const text = await response.text();
          if (response.status === 202) acked.set(idempotencyKey, (JSON.parse(text) as Representation).id);
          else if (
            response.status === 503 &&
            /^application\/problem\+json/.test(response.headers.get("content-type") ?? "") &&
            Number(response.headers.get("retry-after")) >= 1
          )
            unavailable.push(idempotencyKey);
          else bad.push(`${response.status} ${response.headers.get("content-type")} ${text.slice(0, 300)}`);
        } catch {
          unknown.push(idempotencyKey);
        }
      }
    };
    const submitters = Array.from({ length: 8 }, submitter);

    // The faults: every backend of this database, twice. The jobs that may lose an attempt are
    // those running at a termination: read just before and right after it (a lost completion
    // leaves its row running until the lease expires, well after the second read).
    const runningIds = async () =>
      (await pgQuery<{ id: string }>(db.url, `SELECT id FROM ${schema}.jobs WHERE status = 'running'`)).map(
        (r) => r.id,
      );
    const inFlight = new Set<string>();
    const terminations: { at: number; backends: number }[] = [];
    await waitFor("load under way", () => acked.size >= 50, 20_000);
    for (let round = 0; round < 2; round++) {
      for (const id of await runningIds()) inFlight.add(id);
      const at = Date.now();
      const backends = await terminateBackends(db.name);
      terminations.push({ at, backends });
      for (const id of await runningIds()) inFlight.add(id);
      await sleep(1500);
    }
    await sleep(1000);
    loading = false;
    await Promise.all(submitters);

    // /readyz back to 200 on both nodes soon after the last termination.
    const last = terminations[terminations.length - 1]!.at;
    await waitFor(
      "/readyz 200 on both nodes",
      () =>
        nodes.every((node) => readiness.some((s) => s.node === node.name && s.at > last && s.status === 200)),
      15_000,
    );
    sampling = false;
    await sampler;
    const recoveryMs = nodes.map(
      (node) => readiness.find((s) => s.node === node.name && s.at > last && s.status === 200)!.at - last,
    );
    expect(Math.max(...recoveryMs)).toBeLessThan(5000 * 3);
    expect(readiness.filter((s) => s.status !== 200 && s.status !== 503)).toEqual([]);

    const unhandled = logLines(api!.output()).filter((l) => l.msg === "unhandled error");
    expect(bad, JSON.stringify(unhandled.slice(0, 3), null, 1)).toEqual([]);
    expect(unknown).toEqual([]); // the API never went away
    expect(terminations.every((t) => t.backends > 0)).toBe(true);

    // Drain: every acknowledged job exists and finishes, within three times the backlog's run time.
    const drainMs = 30_000 + Math.ceil(acked.size / WORKER_SLOTS) * 100 * 3;
    await waitFor(
      "every job terminal",
      async () => {
        const [row] = await pgQuery<{ n: number }>(
          db.url,
          `SELECT count(*)::int AS n FROM ${schema}.jobs WHERE status IN ('queued', 'running')`,
        );
        return row!.n === 0;
      },
      drainMs,
      100,
    );
    const rows = await pgQuery<{ id: string; status: string; attempt: number; key: string | null }>(
      db.url,
      `SELECT j.id, j.status, j.attempt, k.key FROM ${schema}.jobs j LEFT JOIN ${schema}.idempotency_keys k ON k.job_id = j.id`,
    );
    const byId = new Map(rows.map((r) => [r.id, r]));
    const lost = [...acked.values()].filter((id) => !TERMINAL.includes(byId.get(id)?.status ?? "missing"));
    expect(lost).toEqual([]);
    expect(rows.filter((r) => r.key === null || !attempted.has(r.key))).toEqual([]); // unexpected = 0
    for (const [k, id] of acked) expect(byId.get(id)!.key).toBe(k);
    // A lost attempt costs one of three; two terminations cannot use them all up.
    expect(rows.filter((r) => r.status !== "succeeded")).toEqual([]);
    // Submits answered 503 whose commit did land anyway: Jepsen's "recovered", allowed.
    const recovered = unavailable.filter((k) => rows.some((r) => r.key === k)).length;

    // Extra executions only for jobs in flight at a termination.
    const executions = readExecutions(executionLog);
    const perJob = new Map<string, number>();
    for (const e of executions) perJob.set(e.jobId, (perJob.get(e.jobId) ?? 0) + 1);
    const duplicated = [...perJob].filter(([, count]) => count > 1).map(([id]) => id);
    expect(duplicated.filter((id) => !inFlight.has(id))).toEqual([]);
    const extra = executions.length - perJob.size;
    expect(extra).toBeLessThanOrEqual(inFlight.size);

    // No Tessera process exited; both saw their LISTEN connection go.
    for (const node of nodes) expect(node.hasExited(), node.output()).toBe(false);
    for (const node of nodes) expect(node.output()).toMatch(/LISTEN connection lost; reconnecting/);

    // LISTEN re-established on both nodes, and a wait on the API ends by NOTIFY, not by a poll.
    await waitFor(
      "both listeners back",
      async () => (await countBackends(db.name, "tessera-listener")) === 2,
      15_000,
    );
    const lagMs = await submitAndWait(api!.url, key, { value: "after", sleepMs: 300 });
    expect(lagMs).toBeLessThan(500 * 3);

    console.log(
      `F3: terminated ${terminations.map((t) => t.backends).join(" + ")} backends; attempted ${attempted.size}, ` +
        `acknowledged ${acked.size}, 503 ${unavailable.length} (recovered ${recovered}); ` +
        `executions ${executions.length} (extra ${extra}, in flight ${inFlight.size}); ` +
        `readyz 200 again ${recoveryMs.join("/")} ms after the last termination ` +
        `(503 samples: ${readiness.filter((s) => s.status === 503).length}); wait answered ${lagMs} ms after finishedAt`,
    );
  }, 150_000);

  it("F12: LISTEN connections terminated while 20 waits are pending: all answered, and LISTEN comes back", async () => {
    const { key, args } = await freshCluster("f12");
    const [api] = await Promise.all([
      spawnTessera([...args, "--role", "api", "--poll-interval-ms", "60000"], { name: "api" }),
      spawnTessera([...args, "--role", "worker", "--concurrency", "20"], { name: "worker" }),
    ]);
    const N = 20;
    const jobs = await Promise.all(
      Array.from({ length: N }, async (_, i) => {
        const response = await http(`${api!.url}/v1/jobs`, {
          json: { type: "fixture.record", input: { value: i, sleepMs: 800 + i * 100 } },
          headers: bearer(key),
        });
        expect(response.status).toBe(202);
        return (await response.json()) as Representation;
      }),
    );
    const waits = jobs.map(async (job) => {
      const response = await http(`${api!.url}/v1/jobs/${job.id}?onComplete=status`, {
        headers: { ...bearer(key), prefer: "wait=20" },
      });
      const answeredAt = Date.now();
      return { status: response.status, answeredAt, job: (await response.json()) as Representation };
    });

    // The jobs finish between 0.8 and 2.7 s from now; keep cutting the listeners meanwhile.
    let terminated = 0;
    const until = Date.now() + 3500;
    while (Date.now() < until) {
      terminated += await terminateBackends(db.name, "tessera-listener");
      await sleep(150);
    }
    const answers = await Promise.all(waits);
    const lags = answers.map((a) => {
      expect(a.status).toBe(200);
      expect(a.job.status).toBe("succeeded");
      return a.answeredAt - Date.parse(a.job.finishedAt!);
    });
    // The API's fallback poll is 60 s away: these were ended by the listener's resync.
    expect(Math.max(...lags)).toBeLessThan(1000 * 3);
    expect(terminated).toBeGreaterThan(0);
    expect(api!.output()).toMatch(/LISTEN connection lost; reconnecting/);

    const back = Date.now();
    await waitFor(
      "both listeners back",
      async () => (await countBackends(db.name, "tessera-listener")) === 2,
      5000,
    );
    const backMs = Date.now() - back;
    const lagMs = await submitAndWait(api!.url, key, { value: "after", sleepMs: 300 });
    expect(lagMs).toBeLessThan(500 * 3);
    console.log(
      `F12: ${terminated} listener connections terminated; ${N} waits answered ${Math.min(...lags)}..${Math.max(...lags)} ms ` +
        `after finishedAt; listeners back ${backMs} ms after the last cut; a later wait answered ${lagMs} ms after finishedAt`,
    );
  });
});

/**
 * F6: the poison job kills its worker on every attempt; a supervisor restarts the worker. The
 * crash counts as an attempt (lease expiry), so after exactly 3 the job is failed.
 * The normal jobs are submitted once the first crash happened: a crash costs every job running
 * in that process an attempt, and a job caught in all three crashes would fail too (that is the
 * at-least-once contract, not a bug), so none is ever co-claimed with the poison's attempt 1.
 */
async function poisonScenario(options: {
  baseUrl: () => Promise<string>;
  headers: Record<string, string>;
  worker: Supervisor;
  executionLog: string;
}) {
  const { headers, worker, executionLog } = options;
  /** An HTTP call that rides out a restarting node (connection refused or reset). */
  const call = async (path: string, init: { json?: unknown; headers?: Record<string, string> } = {}) => {
    for (let tries = 0; ; tries++) {
      try {
        const response = await http(`${await options.baseUrl()}${path}`, {
          ...init,
          headers: { ...headers, ...init.headers },
        });
        return { status: response.status, body: (await response.json()) as Representation };
      } catch (error) {
        if (tries > 100) throw error;
        await sleep(100);
      }
    }
  };
  const submit = async (idempotencyKey: string, input: Record<string, unknown>) => {
    const answer = await call("/v1/jobs", {
      json: { type: "fixture.poison", input: { ...input, logPath: executionLog } },
      headers: { "idempotency-key": idempotencyKey },
    });
    expect(answer.status).toBe(202);
    return answer.body;
  };
  const status = async (id: string) => (await call(`/v1/jobs/${id}?onComplete=status`)).body;

  const started = Date.now();
  const poison = await submit("poison", { poison: true });
  await waitFor("the first crash", () => worker.crashes >= 1, 15_000);

  const normal: Representation[] = [];
  for (let i = 0; i < 20; i++) {
    normal.push(await submit(`normal-${i}`, { sleepMs: 50 }));
    await sleep(200);
  }

  const failed = await waitFor(
    "the poison job terminal",
    async () => {
      const job = await status(poison.id);
      return TERMINAL.includes(job.status) ? job : undefined;
    },
    (LEASE_MS + SWEEP_MS + 3000) * 3 * 3,
    100,
  );
  const poisonMs = Date.now() - started;
  expect(failed.status).toBe("failed");
  expect(failed.attempt).toBe(3);
  expect(failed.error?.detail).toMatch(/attempt 3 lost its lease/);

  for (const job of normal) {
    const done = await waitFor(
      `normal job ${job.id}`,
      async () => {
        const current = await status(job.id);
        return TERMINAL.includes(current.status) ? current : undefined;
      },
      20_000,
      100,
    );
    expect(done.status).toBe("succeeded");
  }

  // Exactly three crashes, one per attempt, and none after the job failed.
  await sleep(LEASE_MS);
  expect(worker.crashes).toBe(3);
  expect(worker.exits.every((e) => e.code === 1)).toBe(true);
  const poisonRuns = readExecutions(executionLog).filter((e) => e.jobId === poison.id);
  expect(poisonRuns.map((e) => e.attempt)).toEqual([1, 2, 3]);
  expect(new Set(poisonRuns.map((e) => e.pid)).size).toBe(3);

  // Nothing of the type is left held: a new job of it runs at once.
  const after = await submit("after", { sleepMs: 0 });
  const done = await waitFor(
    "a job after the poison",
    async () => {
      const job = await status(after.id);
      return job.status === "succeeded" ? job : undefined;
    },
    5000,
  );
  expect(done.attempt).toBe(1);
  return { poisonMs, crashes: worker.crashes };
}

describe("e2e: F6 poison job that crashes its worker", { timeout: 90_000 }, () => {
  it("PostgreSQL: 1 API node + 1 supervised worker node", async () => {
    const { key, args } = await freshCluster("f6");
    const executionLog = join(tempDir(), "executions.log");
    const api: Node = await spawnTessera([...args, "--role", "api"], { name: "api" });
    const worker = new Supervisor([...args, "--role", "worker", "--concurrency", "4"], "worker");
    await worker.current();
    const { poisonMs, crashes } = await poisonScenario({
      baseUrl: async () => api.url,
      headers: bearer(key),
      worker,
      executionLog,
    });
    expect(api.hasExited()).toBe(false);
    console.log(
      `F6 (PostgreSQL): poison failed after ${crashes} crashes, ${poisonMs} ms; 20 normal jobs succeeded`,
    );
  });

  it("SQLite: one supervised node (API and worker in one process)", async () => {
    const dir = tempDir();
    const executionLog = join(dir, "executions.log");
    const node = new Supervisor(
      ["--dev", "--db", join(dir, "tessera.db"), "--jobs", FIXTURE_JOBS, ...FAST, "--concurrency", "4"],
      "node",
    );
    await node.current();
    const { poisonMs, crashes } = await poisonScenario({
      baseUrl: async () => (await node.current()).url,
      headers: {},
      worker: node,
      executionLog,
    });
    console.log(
      `F6 (SQLite): poison failed after ${crashes} crashes, ${poisonMs} ms; 20 normal jobs succeeded`,
    );
  });
});
