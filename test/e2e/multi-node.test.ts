/**
 * Many nodes around one PostgreSQL database, as real processes (RELIABILITY.md [P]):
 * - F1: 2 API + 2 worker nodes under submit load; worker 1 is SIGKILLed mid-run. Checked the
 *   Jepsen way against the client's acknowledgement log and the handlers' execution log.
 * - L4 (small): a `Prefer: wait` on API node 1 ends when a worker node finishes the job, with
 *   every fallback poll set to 60 s, so only LISTEN/NOTIFY can end it.
 * - F10 (small): expired leases on 2 worker nodes are swept exactly once.
 * Each test uses a fresh schema (`--db-schema`) of the test database, dropped afterwards.
 */
import { appendFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  createKey,
  groupAlive,
  killAll,
  LEASE_MS,
  recordTerminalMoves,
  logLines,
  pgNodeArgs,
  pgQuery,
  readExecutions,
  spawnTessera,
  SWEEP_MS,
  waitFor,
  type Node,
} from "../helpers/cluster.js";
import { freshSchema, PG_URL } from "../helpers/postgres.js";
import { bearer, http, TEST_SECRET } from "../helpers/server.js";

interface Representation {
  id: string;
  status: string;
  attempt: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

const schemas: string[] = [];
const dirs: string[] = [];
const closers: (() => Promise<unknown>)[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "tessera-multi-"));
  dirs.push(dir);
  return dir;
}

/** A fresh schema with an API key for tenant `t` (the CLI migrates it). */
async function freshCluster(prefix: string): Promise<{ schema: string; key: string; args: string[] }> {
  const schema = freshSchema(prefix);
  schemas.push(schema);
  const key = await createKey({ db: PG_URL, schema });
  return { schema, key, args: pgNodeArgs({ db: PG_URL, schema, secret: TEST_SECRET }) };
}

afterEach(async () => {
  await killAll();
  for (const close of closers.splice(0)) await close();
});

afterAll(async () => {
  for (const schema of schemas) await pgQuery(PG_URL, `DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Log lines at error level or above (pino: 50 error, 60 fatal). */
function errors(node: Node): string[] {
  return logLines(node.output())
    .filter((l) => l.level >= 50)
    .map((l) => JSON.stringify(l));
}

describe("e2e: many nodes on PostgreSQL", { timeout: 90_000 }, () => {
  it("F1: 2 API + 2 worker nodes, worker 1 killed mid-run: nothing lost, extra executions only for its leases", async () => {
    const { schema, key, args } = await freshCluster("mn");
    const dir = tempDir();
    const executionLog = join(dir, "executions.log");
    const ackLog = join(dir, "acks.log");
    const terminal = await recordTerminalMoves(PG_URL, schema);

    const [api1, api2, worker1, worker2] = await Promise.all([
      spawnTessera([...args, "--role", "api"], { name: "api1" }),
      spawnTessera([...args, "--role", "api"], { name: "api2" }),
      spawnTessera([...args, "--role", "worker", "--concurrency", "16"], { name: "worker1" }),
      spawnTessera([...args, "--role", "worker", "--concurrency", "16"], { name: "worker2" }),
    ]);
    const apis = [api1!, api2!];

    // --- load: 2,000 submits through both API nodes alternately, 32 at a time ---------------
    const TOTAL = 2000;
    const SUBMITTERS = 32;
    const KILL_AFTER = 700;
    const attempted = new Set<string>();
    const acked = new Map<string, string>(); // idempotency key -> job id
    const refused: string[] = [];
    let next = 0;
    let kill: Promise<void> | null = null;
    let snapshot: { id: string; attempt: number }[] = [];
    let killedAt = 0;

    // Worker 1's leases at the kill, read from the store. SIGSTOP first: a stopped worker can
    // neither claim nor finish anything more, so after a short settle (for a statement already
    // on the wire to commit) the running rows are exactly the leases held at the kill. If none
    // of them can be worker 1's yet (worker 2 logged them all), let it run on and try again.
    const killWorker1 = async () => {
      for (let tries = 0; ; tries++) {
        worker1!.signal("SIGSTOP");
        await sleep(300);
        snapshot = await pgQuery<{ id: string; attempt: number }>(
          PG_URL,
          `SELECT id, attempt FROM ${schema}.jobs WHERE status = 'running'`,
        );
        const onWorker2 = new Set(
          readExecutions(executionLog)
            .filter((e) => e.pid === worker2!.pid)
            .map((e) => `${e.jobId}#${e.attempt}`),
        );
        if (tries >= 20 || snapshot.some((r) => !onWorker2.has(`${r.id}#${r.attempt}`))) break;
        worker1!.signal("SIGCONT");
        await sleep(100);
      }
      killedAt = Date.now();
      await worker1!.kill();
    };

    const submitter = async () => {
      while (next < TOTAL) {
        const i = next++;
        const idempotencyKey = `mn-${i}`;
        const api = apis[i % 2]!;
        attempted.add(idempotencyKey);
        try {
          const response = await http(`${api.url}/v1/jobs`, {
            json: {
              type: "fixture.record",
              input: { value: i, sleepMs: 20 + ((i * 37) % 81), logPath: executionLog },
            },
            headers: { ...bearer(key), "idempotency-key": idempotencyKey },
          });
          const text = await response.text();
          if (response.status === 202) {
            const id = (JSON.parse(text) as Representation).id;
            appendFileSync(
              ackLog,
              JSON.stringify({ key: idempotencyKey, outcome: "acked", id, node: api.name }) + "\n",
            );
            acked.set(idempotencyKey, id);
          } else {
            appendFileSync(
              ackLog,
              JSON.stringify({ key: idempotencyKey, outcome: "failed", status: response.status }) + "\n",
            );
            refused.push(`${idempotencyKey}: ${response.status} ${text.slice(0, 200)}`);
          }
        } catch (error) {
          appendFileSync(ackLog, JSON.stringify({ key: idempotencyKey, outcome: "unknown" }) + "\n");
          refused.push(`${idempotencyKey}: ${String(error)}`);
        }
        if (acked.size >= KILL_AFTER && kill === null) kill = killWorker1();
      }
    };
    const loadStarted = Date.now();
    await Promise.all(Array.from({ length: SUBMITTERS }, submitter));
    const loadMs = Date.now() - loadStarted;
    await kill;
    expect(killedAt).toBeGreaterThan(0);
    expect(refused).toEqual([]);
    expect(acked.size).toBe(TOTAL);

    // --- drain --------------------------------------------------------------------------------
    const drainStarted = Date.now();
    await waitFor(
      "every job terminal",
      async () => {
        const [row] = await pgQuery<{ n: number }>(
          PG_URL,
          `SELECT count(*)::int AS n FROM ${schema}.jobs WHERE status IN ('queued', 'running')`,
        );
        return row!.n === 0;
      },
      60_000,
      100,
    );
    const drainMs = Date.now() - drainStarted;

    // --- check (Jepsen total-queue + extra executions, double terminal, stuck) ----------------
    const rows = await pgQuery<{ id: string; status: string; attempt: number; result: string | null }>(
      PG_URL,
      `SELECT id, status, attempt, convert_from(result_data, 'UTF8') AS result FROM ${schema}.jobs`,
    );
    const byId = new Map(rows.map((r) => [r.id, r]));
    const ackedIds = new Set(acked.values());
    const lost = [...ackedIds].filter(
      (id) =>
        !byId.has(id) || !["succeeded", "failed", "canceled", "timed_out"].includes(byId.get(id)!.status),
    );
    const unexpected = rows.filter((r) => !ackedIds.has(r.id)).map((r) => r.id);
    expect(lost).toEqual([]);
    expect(unexpected).toEqual([]);
    expect(rows.filter((r) => r.status !== "succeeded")).toEqual([]); // also: stuck = 0

    const executions = readExecutions(executionLog);
    const perJob = new Map<string, typeof executions>();
    for (const e of executions) perJob.set(e.jobId, [...(perJob.get(e.jobId) ?? []), e]);
    expect(executions.filter((e) => !ackedIds.has(e.jobId))).toEqual([]); // no unexpected executions
    expect(perJob.size).toBe(TOTAL); // every job ran
    // One claim is one (job, attempt): never run by two processes.
    const pairs = executions.map((e) => `${e.jobId}#${e.attempt}`);
    expect(pairs.length - new Set(pairs).size).toBe(0);

    // K: the leases worker 1 held at the kill. A running row belongs to worker 2 only if worker 2
    // logged that (job, attempt): the fixture logs synchronously when its attempt starts, and
    // worker 2 stayed alive. Anything else was claimed by worker 1 (whether it started or not).
    const ranOn = new Map(executions.map((e) => [`${e.jobId}#${e.attempt}`, e.pid]));
    const leasedByWorker1 = snapshot.filter((r) => ranOn.get(`${r.id}#${r.attempt}`) !== worker2!.pid);
    const K = new Set(leasedByWorker1.map((r) => r.id));
    const duplicated = [...perJob].filter(([, list]) => list.length > 1).map(([id]) => id);
    const extra = executions.length - perJob.size;
    expect(duplicated.filter((id) => !K.has(id))).toEqual([]);
    expect(extra).toBeLessThanOrEqual(K.size);
    expect(K.size).toBeGreaterThan(0); // the fault did hit work in flight

    // Every job of K was retried on worker 2 as the next attempt, soon after the kill.
    let slowestRestartMs = 0;
    for (const { id, attempt } of leasedByWorker1) {
      const retry = perJob.get(id)!.find((e) => e.attempt === attempt + 1);
      expect(retry, `job ${id} retried`).toBeDefined();
      expect(retry!.pid).toBe(worker2!.pid);
      expect(byId.get(id)!.attempt).toBe(attempt + 1);
      slowestRestartMs = Math.max(slowestRestartMs, retry!.start - killedAt);
    }
    // lease + sweep interval + 2 s (RELIABILITY.md F1), with 3x slack.
    expect(slowestRestartMs).toBeLessThan((LEASE_MS + SWEEP_MS + 2000) * 3);

    // double terminal = 0: exactly one terminal transition per job, and the stored result is
    // the one the recorded attempt returned (its attempt and its process).
    const moves = await terminal.moves();
    expect(moves.size).toBe(TOTAL);
    const twice = [...moves].filter(([, list]) => list.length !== 1);
    expect(twice).toEqual([]);
    for (const row of rows) {
      const result = JSON.parse(row.result!) as { attempt: number; pid: number };
      expect(result.attempt).toBe(row.attempt);
      expect(result.pid).toBe(ranOn.get(`${row.id}#${row.attempt}`));
    }

    // No orphan left of worker 1's group; every other node still up.
    expect(groupAlive(worker1!.pid)).toBe(false);
    for (const node of [api1!, api2!, worker2!]) expect(node.hasExited(), node.output()).toBe(false);
    for (const node of [api1!, api2!, worker2!]) expect(errors(node)).toEqual([]);

    console.log(
      `F1: acknowledged ${acked.size} in ${loadMs} ms; executions ${executions.length} (extra ${extra}); ` +
        `worker 1 held K=${K.size} leases at the kill (${snapshot.length} running in all); ` +
        `slowest retry started ${slowestRestartMs} ms after the kill; drain ${drainMs} ms after the last submit`,
    );
  });

  it("L4 (small): a wait on API node 1 ends when a worker node finishes the job, by NOTIFY alone", async () => {
    const { key, args } = await freshCluster("mnw");
    // Every fallback poll at 60 s: only LISTEN/NOTIFY can wake the worker or end the waits.
    const slow = ["--poll-interval-ms", "60000"];
    const [api1, api2] = await Promise.all([
      spawnTessera([...args, "--role", "api", ...slow], { name: "api1" }),
      spawnTessera([...args, "--role", "api", ...slow], { name: "api2" }),
      spawnTessera([...args, "--role", "worker", "--concurrency", "20", ...slow], { name: "worker" }),
    ]);

    const N = 20;
    const jobs = await Promise.all(
      Array.from({ length: N }, async (_, i) => {
        const response = await http(`${api2!.url}/v1/jobs`, {
          json: { type: "fixture.record", input: { value: i, sleepMs: 1500 + i * 20 } },
          headers: bearer(key),
        });
        expect(response.status).toBe(202);
        return (await response.json()) as Representation;
      }),
    );
    const answers = await Promise.all(
      jobs.map(async (job) => {
        const askedAt = Date.now();
        const response = await http(`${api1!.url}/v1/jobs/${job.id}?onComplete=status`, {
          headers: { ...bearer(key), prefer: "wait=20" },
        });
        const answeredAt = Date.now();
        return {
          askedAt,
          answeredAt,
          status: response.status,
          job: (await response.json()) as Representation,
        };
      }),
    );
    const lags: number[] = [];
    for (const a of answers) {
      expect(a.status).toBe(200);
      expect(a.job.status).toBe("succeeded");
      const finishedAt = Date.parse(a.job.finishedAt!);
      expect(a.askedAt).toBeLessThan(finishedAt); // it really waited
      lags.push(a.answeredAt - finishedAt);
      // The worker woke on the API node's NOTIFY (its own poll is 60 s away).
      expect(Date.parse(a.job.startedAt!) - Date.parse(a.job.createdAt)).toBeLessThan(3000);
    }
    expect(Math.max(...lags)).toBeLessThan(1000);

    // A submit that waits (the synchronous facade): its job is announced from its insert on.
    const submitLags = await Promise.all(
      Array.from({ length: 5 }, async (_, i) => {
        const response = await http(`${api1!.url}/v1/jobs`, {
          json: { type: "fixture.record", input: { value: i, sleepMs: 300 } },
          headers: { ...bearer(key), prefer: "wait=20" },
        });
        const answeredAt = Date.now();
        expect(response.status).toBe(200); // the result itself, its job at Content-Location
        const location = response.headers.get("content-location")!;
        const job = (await (
          await http(new URL(location, api1!.url).toString(), { headers: bearer(key) })
        ).json()) as Representation;
        expect(job.status).toBe("succeeded");
        return answeredAt - Date.parse(job.finishedAt!);
      }),
    );
    expect(Math.max(...submitLags)).toBeLessThan(1000);
    console.log(
      `L4: ${N} cross-node waits answered ${Math.min(...lags)}..${Math.max(...lags)} ms after finishedAt; ` +
        `waiting submits ${Math.min(...submitLags)}..${Math.max(...submitLags)} ms`,
    );
  });

  it("a long poll on an API node answers when a worker node reports progress, by NOTIFY alone", async () => {
    const { key, args } = await freshCluster("mnp");
    const slow = ["--poll-interval-ms", "60000"];
    const [api] = await Promise.all([
      spawnTessera([...args, "--role", "api", ...slow], { name: "api" }),
      spawnTessera([...args, "--role", "worker", ...slow], { name: "worker" }),
    ]);
    // Progress 25, 50, 75 at about 1.5, 3 and 4.5 s; done at 6 s.
    const submitted = await http(`${api!.url}/v1/jobs`, {
      json: { type: "fixture.record", input: { value: 1, sleepMs: 6000, steps: 4 } },
      headers: bearer(key),
    });
    const job = (await submitted.json()) as Representation;
    const seen: (number | null)[] = [];
    for (let polls = 0; polls < 20; polls++) {
      const response = await http(`${api!.url}/v1/jobs/${job.id}?onComplete=status`, {
        headers: { ...bearer(key), prefer: "wait=20" },
      });
      const body = (await response.json()) as Representation & { progress: { percent: number } | null };
      if (response.status === 200) break;
      expect(response.status).toBe(202);
      seen.push(body.progress?.percent ?? null);
    }
    // Without the worker's notifications each 20 s poll would have been held to the job's end.
    expect(seen.filter((p) => p !== null && p < 100).length).toBeGreaterThanOrEqual(2);
    expect(errors(api!)).toEqual([]);
  });

  it("F10 (small): 200 expired leases on 2 worker nodes are each swept exactly once", async () => {
    const { schema, key, args } = await freshCluster("mns");
    const dir = tempDir();
    const executionLog = join(dir, "executions.log");
    const info = ["--log-level", "info"];
    const [api, worker1, worker2] = await Promise.all([
      spawnTessera([...args, "--role", "api"], { name: "api" }),
      spawnTessera([...args, "--role", "worker", "--concurrency", "8", ...info], { name: "worker1" }),
      spawnTessera([...args, "--role", "worker", "--concurrency", "8", ...info], { name: "worker2" }),
    ]);

    // 200 jobs scheduled far ahead (so no worker claims them), then made to look like attempt 1
    // of a worker that died long ago.
    const N = 200;
    const runAt = new Date(Date.now() + 600_000).toISOString();
    let i = 0;
    const ids: string[] = [];
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (i < N) {
          const n = i++;
          const response = await http(`${api!.url}/v1/jobs`, {
            json: {
              type: "fixture.record",
              input: { value: n, sleepMs: 10, logPath: executionLog },
              runAt,
              timeoutSeconds: 3600,
            },
            headers: bearer(key),
          });
          expect(response.status).toBe(202);
          ids.push(((await response.json()) as Representation).id);
        }
      }),
    );
    // Each under a lease of its own, with the lease row a claim writes (migration 010).
    const forced = await pgQuery(
      PG_URL,
      `WITH f AS (
         UPDATE ${schema}.jobs SET status = 'running', attempt = 1, lease_token = 'x-' || id, lease_expires_at = 0,
           started_at = $1
         WHERE status = 'queued' RETURNING id, lease_token, deadline_at),
       l AS (INSERT INTO ${schema}.leases (token, job_ids, expires_at, deadline_at)
         SELECT lease_token, ARRAY[id], 0, deadline_at FROM f)
       SELECT id FROM f`,
      [Date.now()],
    );
    expect(forced.length).toBe(N);

    await waitFor(
      "every job terminal",
      async () => {
        const [row] = await pgQuery<{ n: number }>(
          PG_URL,
          `SELECT count(*)::int AS n FROM ${schema}.jobs WHERE status IN ('queued', 'running')`,
        );
        return row!.n === 0;
      },
      30_000,
      100,
    );
    const rows = await pgQuery<{ id: string; status: string; attempt: number }>(
      PG_URL,
      `SELECT id, status, attempt FROM ${schema}.jobs`,
    );
    expect(rows.length).toBe(N);
    // Swept once (attempt 1 counted, requeued), then claimed once: attempt 2, one execution.
    expect(rows.filter((r) => r.status !== "succeeded" || r.attempt !== 2)).toEqual([]);
    const executions = readExecutions(executionLog);
    expect(executions.length).toBe(N);
    expect(new Set(executions.map((e) => e.jobId))).toEqual(new Set(ids));
    expect(executions.every((e) => e.attempt === 2)).toBe(true);

    // The sweepers' own count: the rows they moved add up to exactly N across both nodes.
    const swept = [worker1!, worker2!].map((w) =>
      logLines(w.output())
        .filter((l) => l.msg === "expired leases swept")
        .reduce((sum, l) => sum + Number(l.jobs), 0),
    );
    expect(swept[0]! + swept[1]!).toBe(N);
    for (const node of [api!, worker1!, worker2!]) {
      expect(errors(node)).toEqual([]);
      expect(node.hasExited()).toBe(false);
    }
    console.log(
      `F10: ${N} expired leases swept ${swept.join(" + ")} by the two workers; each job ran once, attempt 2`,
    );
  });
});
