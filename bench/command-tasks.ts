/**
 * Command tasks: how close a process per job comes to spawning the process yourself.
 *
 *   npm run bench:tasks [-- --tasks 2000 --concurrency 4 --probes 200 --json]   (builds; runs dist/)
 *
 * 1. Throughput: `/bin/true` as a command job (SQLite store, fsync'd commits; each job is
 *    claimed, run in its own process group, recorded) beside a bare `child_process.spawn` loop
 *    of `/bin/true` with the same number in flight, in the same run, alternated three times.
 *    The loop runs in a small Node process of its own (bare-spawn.mjs), as a script of your
 *    own would: a fork costs more the more memory its caller holds.
 * 2. Start latency: submit (HTTP POST, `202` after the commit) → the process is executing (it
 *    prints its own clock: `date +%s.%N`), one job at a time on an idle server, beside
 *    spawn → executing for the bare loop. p50 and p99.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { pino } from "pino";
import { createTessera } from "../dist/tessera.js";
import { defineCommandJob } from "../dist/worker/command/define-command-job.js";
import { newJobId } from "../dist/jobs/ids.js";

const { values } = parseArgs({
  options: {
    tasks: { type: "string", default: "2000" },
    concurrency: { type: "string", default: "4" },
    probes: { type: "string", default: "200" },
    rounds: { type: "string", default: "3" },
    json: { type: "boolean", default: false },
    /** A postgres:// URL: the drain on PostgreSQL instead of SQLite (a schema of its own, dropped after). */
    pg: { type: "string" },
  },
});
const TASKS = Number(values.tasks);
const CONCURRENCY = Number(values.concurrency);
const PROBES = Number(values.probes);
const ROUNDS = Number(values.rounds);
const log = (m: string) => process.stderr.write(`bench:tasks: ${m}\n`);

/** The reference, in a Node process of its own: see bare-spawn.mjs. */
async function bare<T>(...args: string[]): Promise<T> {
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, [new URL("./bare-spawn.mjs", import.meta.url).pathname, ...args], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let text = "";
    child.stdout.on("data", (c: Buffer) => (text += c.toString()));
    child.once("error", reject);
    child.once("close", (code) =>
      code === 0 ? resolve(text) : reject(new Error(`bare-spawn exited ${code}`)),
    );
  });
  return JSON.parse(out) as T;
}
const bareLoop = (n: number, concurrency: number) => bare<number>("loop", String(n), String(concurrency));

async function tesseraDrain(n: number, concurrency: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "tessera-bench-tasks-"));
  const job = defineCommandJob({ type: "bench.true", command: ["/bin/true"], concurrency, maxAttempts: 1 });
  const tessera = await createTessera({
    jobs: [job],
    logger: pino({ level: "silent" }),
    config: {
      db: values.pg ?? join(dir, "t.db"),
      ...(values.pg ? { dbSchema: `bench_tasks_${process.pid}` } : {}),
      dev: true,
      concurrency,
      maxTasks: concurrency,
      prefetch: Number(process.env.PREFETCH ?? 0),
      pollIntervalMs: 1000,
    },
  });
  try {
    const tenantId = await tessera.store.ensureTenant({ name: "bench", now: Date.now() });
    const now = Date.now();
    // Queued before the worker starts: the drain measures claim → process → record only.
    await Promise.all(
      Array.from({ length: n }, () =>
        tessera.store.submit({
          job: {
            id: newJobId(now, tenantId),
            tenantId,
            type: job.type,
            input: null,
            priority: 0,
            runAt: now,
            deadlineAt: now + 3_600_000,
            maxAttempts: 1,
            metadata: {},
            callback: null,
          },
          idempotency: null,
          now,
        }),
      ),
    );
    let done = 0;
    let failed = 0;
    const finished = new Promise<void>((resolve) =>
      tessera.store.subscribe((e) => {
        if (e.kind !== "terminal") return;
        if (e.status !== "succeeded") failed++;
        if (++done === n) resolve();
      }),
    );
    const t0 = performance.now();
    await tessera.start();
    await finished;
    const rate = n / ((performance.now() - t0) / 1000);
    if (failed > 0) throw new Error(`${failed} of ${n} tasks did not succeed`);
    return rate;
  } finally {
    await tessera.close();
    if (values.pg) await dropSchema(values.pg, `bench_tasks_${process.pid}`);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
const epochMs = () => performance.timeOrigin + performance.now();

/** spawn → the process prints its clock, one at a time. */
const bareStart = (n: number) => bare<number[]>("latency", String(n));

/** POST /v1/jobs → the process prints its clock, one at a time, on an idle server. */
async function tesseraStart(n: number): Promise<number[]> {
  const dir = mkdtempSync(join(tmpdir(), "tessera-bench-tasks-"));
  const job = defineCommandJob({ type: "bench.date", command: ["date", "+%s.%N"], maxAttempts: 1 });
  const tessera = await createTessera({
    jobs: [job],
    logger: pino({ level: "silent" }),
    config: { db: join(dir, "t.db"), dev: true, concurrency: 4, maxTasks: 4 },
  });
  try {
    const url = await tessera.listen({ port: 0, host: "127.0.0.1" });
    const samples: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = epochMs();
      const res = await fetch(`${url}/v1/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json", prefer: "wait=10" },
        body: JSON.stringify({ type: job.type, input: null }),
      });
      const body = (await res.json()) as number;
      if (res.status !== 200 || typeof body !== "number")
        throw new Error(`probe: ${res.status} ${JSON.stringify(body)}`);
      samples.push(body * 1000 - t0);
    }
    return samples.sort((a, b) => a - b);
  } finally {
    await tessera.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const rounds: { bare: number; tessera: number }[] = [];
await bareLoop(200, CONCURRENCY); // warm-up: page cache, the first spawns
await tesseraDrain(200, CONCURRENCY);
for (let r = 1; r <= ROUNDS; r++) {
  const bare = await bareLoop(TASKS, CONCURRENCY);
  const tessera = await tesseraDrain(TASKS, CONCURRENCY);
  rounds.push({ bare, tessera });
  log(
    `round ${r}: bare ${bare.toFixed(0)}/s, Tessera ${tessera.toFixed(0)}/s (${(tessera / bare).toFixed(2)}×)`,
  );
}
const bareLatency = await bareStart(PROBES);
const tesseraLatency = await tesseraStart(PROBES);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const report = {
  tasks: TASKS,
  concurrency: CONCURRENCY,
  rounds,
  throughput: {
    bare: median(rounds.map((r) => r.bare)),
    tessera: median(rounds.map((r) => r.tessera)),
    ratio: median(rounds.map((r) => r.tessera / r.bare)),
  },
  startLatencyMs: {
    bare: { p50: percentile(bareLatency, 0.5), p99: percentile(bareLatency, 0.99) },
    tessera: { p50: percentile(tesseraLatency, 0.5), p99: percentile(tesseraLatency, 0.99) },
  },
};
if (values.json) console.log(JSON.stringify(report, null, 2));
else {
  const f = (x: number) => x.toFixed(2);
  console.log(
    `Command tasks: /bin/true, ${TASKS} per round, ${CONCURRENCY} in flight, ${ROUNDS} rounds (median)`,
  );
  console.log(`  bare spawn loop     ${report.throughput.bare.toFixed(0)} tasks/s`);
  console.log(
    `  Tessera (SQLite)    ${report.throughput.tessera.toFixed(0)} tasks/s   ${f(report.throughput.ratio)}× the bare loop`,
  );
  console.log(`Start latency (${PROBES} sequential probes), ms: p50 / p99`);
  console.log(
    `  bare spawn → exec         ${f(report.startLatencyMs.bare.p50)} / ${f(report.startLatencyMs.bare.p99)}`,
  );
  console.log(
    `  Tessera submit → exec     ${f(report.startLatencyMs.tessera.p50)} / ${f(report.startLatencyMs.tessera.p99)}`,
  );
}
