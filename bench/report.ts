import type { CallbackResult } from "./callbacks.js";
/** The benchmark's report: one JSON document, or a readable table with the ratios. */
import type { LoadResult } from "./http-load.js";
import type { PgComparison } from "./pg-compare.js";
import type { SubmitToStart } from "./latency.js";
import type { DrainResult } from "./protocol.js";
import type { Distribution } from "./stats.js";

export interface Settings {
  connections: number;
  warmupSeconds: number;
  seconds: number;
  drainJobs: number;
  drainWarmupJobs: number;
  drainConcurrency: number;
  latencySamples: number;
  latencyWarmup: number;
}

export interface Report {
  environment: {
    node: string;
    platform: string;
    cpus: number;
    cpuModel: string;
    tmpdir: string;
    /** 1-minute load average before and after the run: other work on the machine skews every figure. */
    loadAverage: { before: number; after: number };
  };
  settings: Settings;
  /** POST /v1/jobs: Tessera (durable commit, workers off) vs. a bare Fastify 202 route. Ratio: Tessera / bare req/s. */
  submit: { tessera: LoadResult; reference: LoadResult; ratio: number };
  /** GET /v1/jobs/{id} of a queued job (202) vs. the bare route. Ratio: Tessera / bare req/s. */
  poll: { tessera: LoadResult; reference: LoadResult; ratio: number };
  /** Draining pre-inserted no-op jobs vs. the raw better-sqlite3 floor. Ratio: Tessera / floor jobs/s. */
  noopJobs: { tessera: DrainResult; reference: DrainResult; ratio: number };
  /** Submit-to-start on an idle worker vs. one bare HTTP round trip. Ratios: Tessera / reference. */
  submitToStart: { tessera: SubmitToStart; reference: Distribution; ratioP50: number; ratioP99: number };
  /** Tessera on PostgreSQL beside pg-boss, graphile-worker and BullMQ (absent with --no-pg). */
  postgres?: PgComparison;
  callbacks?: CallbackResult;
  checks: { passed: boolean; failures: string[] };
  elapsedSeconds: number;
}

const int = (n: number) => Math.round(n).toLocaleString("en-US");
const ms = (n: number) => (Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2));
const ratio = (n: number) => `${n.toFixed(2)}×`;

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) =>
    r
      .map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join("  ")
      .trimEnd();
  const rule = widths.map((w) => "-".repeat(w)).join("  ");
  return [line(rows[0]!), rule, ...rows.slice(1).map(line)].join("\n");
}

function loadRows(title: string, m: Report["submit"]): string[][] {
  const { tessera: t, reference: r } = m;
  return [
    [title, "req/s", int(t.requestsPerSec), int(r.requestsPerSec), ratio(m.ratio)],
    ["", "latency p50 ms", ms(t.p50Ms), ms(r.p50Ms), ratio(t.p50Ms / r.p50Ms)],
    ["", "latency p99 ms", ms(t.p99Ms), ms(r.p99Ms), ratio(t.p99Ms / r.p99Ms)],
    [
      "",
      "server CPU µs/request",
      int(t.serverCpuUsPerRequest),
      int(r.serverCpuUsPerRequest),
      ratio(t.serverCpuUsPerRequest / r.serverCpuUsPerRequest),
    ],
    ["", "server CPU (cores)", t.serverCpuShare.toFixed(2), r.serverCpuShare.toFixed(2), ""],
    ["", "requests / non-2xx", `${int(t.requests)} / ${t.non2xx}`, `${int(r.requests)} / ${r.non2xx}`, ""],
  ];
}

const claimCell = (d: DrainResult) =>
  `${int(d.claims)} / ${d.meanClaimSize.toFixed(1)} / ${int(d.partialClaims)}`;

export function renderTable(report: Report): string {
  const s = report.settings;
  const { noopJobs: j, submitToStart: l } = report;
  const rows: string[][] = [
    ["Measurement", "", "Tessera", "Reference", "Ratio"],
    ...loadRows(`Submit POST /v1/jobs (${s.connections} conn, ${s.seconds} s)`, report.submit),
    ...loadRows(`Status poll GET /v1/jobs/{id} (queued)`, report.poll),
    [
      `No-op jobs (${int(j.tessera.jobs)}, concurrency ${j.tessera.concurrency})`,
      "jobs/s",
      int(j.tessera.jobsPerSec),
      int(j.reference.jobsPerSec),
      ratio(j.ratio),
    ],
    [
      "",
      "CPU µs/job",
      int(j.tessera.cpuUsPerJob),
      int(j.reference.cpuUsPerJob),
      ratio(j.tessera.cpuUsPerJob / j.reference.cpuUsPerJob),
    ],
    ["", "drain s", (j.tessera.drainMs / 1000).toFixed(2), (j.reference.drainMs / 1000).toFixed(2), ""],
    ["", "claims / mean rows / partial", claimCell(j.tessera), claimCell(j.reference), ""],
    [
      `Request sent → start (${l.tessera.fromRequest.count} sequential)`,
      "p50 ms",
      ms(l.tessera.fromRequest.p50Ms),
      ms(l.reference.p50Ms),
      ratio(l.ratioP50),
    ],
    ["", "p99 ms", ms(l.tessera.fromRequest.p99Ms), ms(l.reference.p99Ms), ratio(l.ratioP99)],
    [
      "",
      "commit→start p50/p99 ms",
      `${ms(l.tessera.afterCommit.p50Ms)} / ${ms(l.tessera.afterCommit.p99Ms)}`,
      "",
      "",
    ],
    [
      "",
      "submit RTT p50/p99 ms",
      `${ms(l.tessera.submitRoundTrip.p50Ms)} / ${ms(l.tessera.submitRoundTrip.p99Ms)}`,
      "",
      "",
    ],
  ];
  const e = report.environment;
  return [
    `Tessera benchmark — node ${e.node}, ${e.platform}, ${e.cpus} × ${e.cpuModel}; ${report.elapsedSeconds.toFixed(0)} s; ` +
      `load average ${e.loadAverage.before.toFixed(1)} before, ${e.loadAverage.after.toFixed(1)} after`,
    "",
    table(rows),
    "",
    "Ratios (Tessera / reference):",
    `  submit throughput       ${ratio(report.submit.ratio)} of bare Fastify req/s`,
    `  status-poll throughput  ${ratio(report.poll.ratio)} of bare Fastify req/s`,
    `  no-op job throughput    ${ratio(j.ratio)} of the raw better-sqlite3 floor's jobs/s`,
    `  submit-to-start         ${ratio(l.ratioP50)} (p50), ${ratio(l.ratioP99)} (p99) of one bare HTTP round trip`,
    "",
    "References, measured in the same run: a bare Fastify 202 route in its own process (submit, poll; one",
    "sequential round trip for submit-to-start); a raw better-sqlite3 claim/complete loop with the same schema,",
    "WAL and synchronous=FULL (no-op jobs). Throughput below 1× is slower; latency or CPU above 1× is costlier.",
    "The load generator shares this machine's cores: compare server CPU µs/request when req/s looks client-bound.",
    ...(e.loadAverage.before > e.cpus / 2
      ? [
          `WARNING: the machine was busy before the run (load ${e.loadAverage.before.toFixed(1)} on ${e.cpus} CPUs): figures are noisy.`,
        ]
      : []),
    "",
    report.checks.passed
      ? "Checks: passed (every response 202; every job ran once and succeeded)"
      : `Checks FAILED:\n  ${report.checks.failures.join("\n  ")}`,
    "",
  ].join("\n");
}
