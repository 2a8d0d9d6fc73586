/**
 * Tessera's benchmark: `npm run bench` prints a table, `npm run bench -- --json` one JSON
 * document on stdout (progress always goes to stderr). `--quick` shortens every phase (a smoke
 * run; its figures are not comparable). Each figure sits beside a reference measured in the same
 * run, on the same machine:
 *
 * 1. submit throughput: POST /v1/jobs against a Tessera server in a child process (durable
 *    commits, workers off) vs. a bare Fastify 202 route in another child;
 * 2. status-poll throughput: GET /v1/jobs/{id} of a queued job vs. the bare route;
 * 3. no-op job throughput: draining pre-inserted jobs with Tessera's workers vs. the same
 *    claim/complete work straight on better-sqlite3;
 * 4. submit-to-start latency on an idle worker vs. one bare HTTP round trip;
 * 5. on PostgreSQL: Tessera's no-op drain and submit-to-start beside pg-boss, graphile-worker
 *    and BullMQ (on Redis) with the same workload (bench/pg-compare.ts, bench/peers/).
 *    `--pg-only` runs only this part, `--skip-peers` only Tessera-PG, `--no-pg` skips it.
 *    TESSERA_BENCH_PG and TESSERA_BENCH_REDIS override the database URLs.
 *
 * Databases live in a temporary directory that is removed at the end; every child process is
 * stopped at the end and killed if the run fails or is interrupted.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, platform, tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { NOOP_TYPE } from "./bench-jobs.js";
import { startChild, stopAll, type Child } from "./children.js";
import { measureLoad, type LoadResult, type LoadSettings } from "./http-load.js";
import { drainProblems, measureDrain } from "./job-throughput.js";
import { measureRoundTrip, measureSubmitToStart } from "./latency.js";
import type { DrainOptions } from "./protocol.js";
import { ALL_PEERS, comparePostgres, pgProblems, type PgComparison, type PgSettings } from "./pg-compare.js";
import { renderPgTable } from "./pg-report.js";
import { renderTable, type Report, type Settings } from "./report.js";
import { measureCallbacks, renderCallbackTable, type CallbackResult } from "./callbacks.js";

const FULL: Settings = {
  connections: 64,
  warmupSeconds: 2,
  seconds: 6,
  drainJobs: 20_000,
  drainWarmupJobs: 2_000,
  drainConcurrency: 32,
  latencySamples: 500,
  latencyWarmup: 50,
};
const QUICK: Settings = {
  ...FULL,
  warmupSeconds: 1,
  seconds: 2,
  drainJobs: 4_000,
  drainWarmupJobs: 500,
  latencySamples: 100,
  latencyWarmup: 10,
};
const DRAIN_TIMEOUT_MS = 60_000;

const PG_FULL: Omit<PgSettings, "peers"> = {
  connectionString: process.env["TESSERA_BENCH_PG"] ?? "postgres://postgres@127.0.0.1:5432/test",
  redisUrl: process.env["TESSERA_BENCH_REDIS"] ?? "redis://127.0.0.1:6379",
  jobs: 10_000,
  warmupJobs: 1_000,
  concurrency: 32,
  latencySamples: 200,
  latencyWarmup: 20,
  timeoutMs: 60_000,
};
const PG_QUICK: Omit<PgSettings, "peers"> = {
  ...PG_FULL,
  jobs: 2_000,
  warmupJobs: 200,
  latencySamples: 40,
  latencyWarmup: 5,
};
const FLAGS = ["--json", "--quick", "--pg-only", "--skip-peers", "--no-pg"];

const progress = (message: string) => process.stderr.write(`bench: ${message}\n`);

function loadProblems(name: string, result: LoadResult): string[] {
  const problems: string[] = [];
  const other = Object.keys(result.statusCodes).filter((code) => code !== "202");
  if (other.length > 0)
    problems.push(`${name}: answers other than 202: ${JSON.stringify(result.statusCodes)}`);
  if (result.non2xx > 0) problems.push(`${name}: ${result.non2xx} non-2xx responses`);
  if (result.errors > 0 || result.timeouts > 0)
    problems.push(`${name}: ${result.errors} errors, ${result.timeouts} timeouts`);
  if (result.requests === 0) problems.push(`${name}: no responses at all`);
  return problems;
}

async function ready(child: Child): Promise<string> {
  return (await child.next("ready")).url;
}

async function queuedJob(apiUrl: string): Promise<string> {
  const response = await fetch(`${apiUrl}/v1/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ type: NOOP_TYPE, input: {} }),
  });
  if (response.status !== 202)
    throw new Error(`submit answered ${response.status}: ${await response.text()}`);
  return ((await response.json()) as { id: string }).id;
}

function environment(loadBefore: number): Report["environment"] {
  return {
    node: process.version,
    platform: platform(),
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? "unknown",
    tmpdir: tmpdir(),
    loadAverage: { before: loadBefore, after: loadavg()[0]! },
  };
}

async function run(
  settings: Settings,
  dir: string,
  children: Child[],
): Promise<Omit<Report, "elapsedSeconds">> {
  const loadBefore = loadavg()[0]!;
  const load: LoadSettings = {
    connections: settings.connections,
    warmupSeconds: settings.warmupSeconds,
    seconds: settings.seconds,
  };
  const spawn = (script: string, options: object) => {
    const child = startChild(script, options);
    children.push(child);
    return child;
  };

  const bare = spawn("./bare-server.ts", {});
  const api = spawn("./tessera-server.ts", { db: join(dir, "api.db"), concurrency: 0 });
  const [bareUrl, apiUrl] = await Promise.all([ready(bare), ready(api)]);
  const submitBody = JSON.stringify({ type: NOOP_TYPE, input: {} });

  progress("1/4 submit throughput: Tessera, then bare Fastify");
  const submitTessera = await measureLoad(
    api,
    { url: `${apiUrl}/v1/jobs`, method: "POST", body: submitBody },
    load,
  );
  const submitBare = await measureLoad(
    bare,
    { url: `${bareUrl}/v1/jobs`, method: "POST", body: submitBody },
    load,
  );

  progress("2/4 status-poll throughput: Tessera, then bare Fastify");
  const pollTessera = await measureLoad(
    api,
    { url: `${apiUrl}/v1/jobs/${await queuedJob(apiUrl)}`, method: "GET" },
    load,
  );
  const pollBare = await measureLoad(
    bare,
    { url: `${bareUrl}/v1/jobs/${randomUUID()}`, method: "GET" },
    load,
  );
  await api.stop();

  progress("3/4 submit-to-start latency: Tessera (idle worker), then bare round trip");
  const worker = spawn("./tessera-server.ts", { db: join(dir, "latency.db"), concurrency: 8 });
  const latency = await measureSubmitToStart(
    worker,
    await ready(worker),
    settings.latencySamples,
    settings.latencyWarmup,
  );
  const roundTrip = await measureRoundTrip(
    `${bareUrl}/v1/jobs`,
    settings.latencySamples,
    settings.latencyWarmup,
  );
  await Promise.all([worker.stop(), bare.stop()]);

  progress(`4/4 no-op job throughput: raw better-sqlite3 floor, then Tessera (${settings.drainJobs} jobs)`);
  const drain = (name: string): DrainOptions => ({
    db: join(dir, `${name}.db`),
    warmupDb: join(dir, `${name}-warmup.db`),
    jobs: settings.drainJobs,
    warmupJobs: settings.drainWarmupJobs,
    concurrency: settings.drainConcurrency,
    timeoutMs: DRAIN_TIMEOUT_MS,
  });
  const drainRaw = await measureDrain("raw", drain("raw"));
  const drainTessera = await measureDrain("tessera", drain("tessera"));

  const failures = [
    ...loadProblems("submit (Tessera)", submitTessera),
    ...loadProblems("submit (bare)", submitBare),
    ...loadProblems("poll (Tessera)", pollTessera),
    ...loadProblems("poll (bare)", pollBare),
    ...drainProblems(drainTessera),
    ...drainProblems(drainRaw),
    ...(latency.notSucceeded > 0
      ? [`submit-to-start: ${latency.notSucceeded} probe jobs did not succeed`]
      : []),
  ];
  return {
    environment: environment(loadBefore),
    settings,
    submit: {
      tessera: submitTessera,
      reference: submitBare,
      ratio: submitTessera.requestsPerSec / submitBare.requestsPerSec,
    },
    poll: {
      tessera: pollTessera,
      reference: pollBare,
      ratio: pollTessera.requestsPerSec / pollBare.requestsPerSec,
    },
    noopJobs: {
      tessera: drainTessera,
      reference: drainRaw,
      ratio: drainTessera.jobsPerSec / drainRaw.jobsPerSec,
    },
    submitToStart: {
      tessera: latency,
      reference: roundTrip,
      ratioP50: latency.fromRequest.p50Ms / roundTrip.p50Ms,
      ratioP99: latency.fromRequest.p99Ms / roundTrip.p99Ms,
    },
    checks: { passed: failures.length === 0, failures },
  };
}

async function main(argv: string[]): Promise<number> {
  const usage =
    "usage: npm run -s bench [-- [--json] [--quick] [--pg-only | --no-pg] [--skip-peers]]   (-s keeps npm's banner off stdout)\n";
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(usage);
    return 0;
  }
  const unknown = argv.filter((a) => !FLAGS.includes(a));
  if (unknown.length > 0) {
    process.stderr.write(`${usage}unknown argument(s): ${unknown.join(" ")}\n`);
    return 2;
  }
  const started = performance.now();
  const dir = mkdtempSync(join(tmpdir(), "tessera-bench-"));
  const removeDir = () => rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  // Also on an interrupted run (children.ts exits on SIGINT/SIGTERM after killing the children).
  process.once("exit", removeDir);
  const children: Child[] = [];
  const quick = argv.includes("--quick");
  const pgOnly = argv.includes("--pg-only");
  const withPg = !argv.includes("--no-pg");
  const pgSettings: PgSettings = {
    ...(quick ? PG_QUICK : PG_FULL),
    peers: argv.includes("--skip-peers") ? ["tessera-pg"] : ALL_PEERS,
  };
  try {
    const loadBefore = loadavg()[0]!;
    const measured = pgOnly ? null : await run(quick ? QUICK : FULL, dir, children);
    let callbacks: CallbackResult | undefined;
    if (!pgOnly) {
      progress("callbacks: delivery throughput, then completion-to-callback latency");
      callbacks = await measureCallbacks({
        dir,
        events: quick ? 300 : 2_000,
        latencySamples: quick ? 20 : 100,
      });
    }
    let postgres: PgComparison | undefined;
    if (withPg || pgOnly) postgres = await comparePostgres(pgSettings);
    const pgFailures = postgres ? pgProblems(postgres) : [];
    const elapsedSeconds = (performance.now() - started) / 1000;
    const callbackFailures =
      callbacks && (callbacks.duplicates > 0 || callbacks.missing > 0)
        ? [`callbacks: ${callbacks.missing} missing, ${callbacks.duplicates} duplicated`]
        : [];
    const failures = [...(measured?.checks.failures ?? []), ...callbackFailures, ...pgFailures];
    const checks = { passed: failures.length === 0, failures };
    if (measured === null) {
      const report = { environment: environment(loadBefore), postgres, checks, elapsedSeconds };
      process.stdout.write(
        argv.includes("--json")
          ? `${JSON.stringify(report, null, 2)}\n`
          : `${renderPgTable(postgres!)}\n${checks.passed ? "Checks: passed (every job ran once)" : `Checks FAILED:\n  ${failures.join("\n  ")}`}\n`,
      );
      return checks.passed ? 0 : 1;
    }
    const report: Report = { ...measured, environment: environment(loadBefore), checks, elapsedSeconds };
    if (postgres) report.postgres = postgres;
    if (callbacks) report.callbacks = callbacks;
    process.stdout.write(
      argv.includes("--json")
        ? `${JSON.stringify(report, null, 2)}\n`
        : `${renderTable(report)}${callbacks ? `\n${renderCallbackTable(callbacks)}` : ""}${postgres ? `\n${renderPgTable(postgres)}` : ""}`,
    );
    return checks.passed ? 0 : 1;
  } finally {
    await stopAll(children);
    removeDir();
  }
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (error: unknown) => {
    process.stderr.write(
      `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  },
);
