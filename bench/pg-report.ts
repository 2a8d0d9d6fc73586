/** The PostgreSQL comparison's table: jobs/s and submit-to-start side by side, ratios to Tessera-PG. */
import type { PgComparison } from "./pg-compare.js";

const int = (n: number) => Math.round(n).toLocaleString("en-US");
const ms = (n: number) => (Number.isNaN(n) ? "–" : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2));
const ratio = (n: number) => (Number.isNaN(n) ? "–" : `${n.toFixed(2)}×`);

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) =>
    r
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(rows[0]!), widths.map((w) => "-".repeat(w)).join("  "), ...rows.slice(1).map(line)].join("\n");
}

export function renderPgTable(c: PgComparison): string {
  const s = c.settings;
  const rows: string[][] = [
    [
      "System",
      "jobs/s",
      "× Tessera",
      "CPU µs/job",
      "DB CPU µs/job",
      "ack→start p50",
      "p99",
      "call→start p50",
      "p99",
      "p50 ×",
      "p99 ×",
      "lost/dup",
    ],
    ...c.results.map((r, i) => {
      const q = c.ratios[i]!;
      const d = r.latency.distribution;
      const f = r.latency.fromCall;
      return [
        `${r.system} ${r.version}`,
        int(r.jobsPerSec),
        ratio(q.jobsPerSec),
        int(r.cpuUsPerJob),
        int(r.serverCpuUsPerJob),
        ms(d.p50Ms),
        ms(d.p99Ms),
        ms(f.p50Ms),
        ms(f.p99Ms),
        ratio(q.p50),
        ratio(q.p99),
        `${r.lost + r.latency.lost}/${r.repeated + r.latency.repeated}`,
      ];
    }),
  ];
  return [
    `PostgreSQL comparison (${s.postgres}; BullMQ on ${s.redis}) — ${int(s.jobs)} pre-inserted no-op jobs, ` +
      `concurrency ${s.concurrency}, one process each; ${s.latencySamples} sequential probes`,
    "",
    table(rows),
    "",
    "jobs/s: drain of pre-inserted jobs, from starting the workers to the last completion recorded in the store.",
    "CPU µs/job: the worker process's CPU. DB CPU µs/job: the PostgreSQL (or Redis) server processes' CPU",
    "during the drain (read from /proc; both share the machine's cores with everything else).",
    "Latency (ms), submit-to-start on an idle worker, one probe at a time, in one process: ack→start from the",
    "submit call resolving (the job is durable) to the handler starting (0: it started before the call returned);",
    "call→start from the submit call itself, the durable insert included. × Tessera: the system's figure divided",
    "by Tessera-PG's (jobs/s: above 1× is faster than Tessera; latency, call→start: above 1× is slower).",
    "lost/dup: jobs never run / extra handler runs (drain + probes).",
    ...c.skipped.map((k) => `NOT MEASURED ${k.system}: ${k.reason.split("\n")[0]}`),
    "",
  ].join("\n");
}
