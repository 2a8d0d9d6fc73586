/**
 * `npm run bench:events`: events end to end in-process, beside plain jobs in the same run, on
 * SQLite (FULL) and on PostgreSQL when it is reachable. Over real HTTP on a listening server:
 * - jobs: `POST /v1/jobs` of a no-op job, timed from the request to its handler's start;
 * - events: `POST /v1/events` of a CloudEvent that a no-op job's trigger matches, timed from
 *   the request to the triggered job's start (the event's commit, its dispatch, the job's
 *   commit and start);
 * - emitted: a job that `ctx.emit`s an event with its success, timed from the emit to the
 *   triggered job's start (the completion's commit with the event, then the dispatch).
 * Each with CONCURRENCY senders in a loop; figures: per second, p50 and p99 latency. The
 * broker bridges (NATS, RabbitMQ) are not built yet. Runs the built package (dist/).
 */
import { pino } from "pino";
import { defineJob } from "../dist/jobs/define.js";
import type { Store } from "../dist/store/store.js";
import { onEachDriver } from "./drivers.js";
import { createTessera } from "../dist/tessera.js";

const N = Number(process.env.BENCH_EVENTS ?? 2000);
const CONCURRENCY = 16;

type Mode = "jobs" | "events" | "emitted";

/** Start latencies (ms) of the current run, and a promise for its last. */
let latencies: number[] = [];
let onStarted: (() => void) | null = null;
const started = (sent: number) => {
  latencies.push(performance.now() - sent);
  if (latencies.length === N) onStarted?.();
};

const jobs = [
  defineJob({
    type: "bench.plain",
    input: {},
    run: (input: { sent: number }) => void started(input.sent),
  }),
  defineJob({
    type: "bench.on-tick",
    input: {},
    on: ["bench.tick", "bench.emitted"],
    run: (event: { data: { sent: number } }) => void started(event.data.sent),
  }),
  defineJob({
    type: "bench.emitter",
    input: {},
    run: (_input: unknown, ctx) => ctx.emit("bench.emitted", { sent: performance.now() }),
  }),
];

async function run(
  makeStore: () => Promise<Store>,
  mode: Mode,
): Promise<{ perSecond: number; p50: number; p99: number }> {
  const store = await makeStore();
  const tessera = await createTessera({
    jobs,
    config: { dev: true, concurrency: 32, rateSubmit: 0, ratePoll: 0 },
    store,
    logger: pino({ level: "error" }),
  });
  const url = await tessera.listen({ port: 0, host: "127.0.0.1" });
  latencies = [];
  const all = new Promise<void>((resolve) => (onStarted = resolve));
  try {
    let next = 0;
    const start = performance.now();
    const sender = async () => {
      while (next < N) {
        const i = next++;
        const sent = performance.now();
        const body =
          mode === "events"
            ? { specversion: "1.0", id: `e${i}`, source: "/bench", type: "bench.tick", data: { sent } }
            : { type: mode === "jobs" ? "bench.plain" : "bench.emitter", input: { sent } };
        const res = await fetch(`${url}/v1/${mode === "events" ? "events" : "jobs"}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
        });
        if (res.status !== 202) throw new Error(`${mode}: HTTP ${res.status} ${await res.text()}`);
        await res.arrayBuffer();
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, sender));
    await all;
    const ms = performance.now() - start;
    const sorted = [...latencies].sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
    return { perSecond: (N / ms) * 1000, p50: at(0.5), p99: at(0.99) };
  } finally {
    await tessera.close();
  }
}

async function measure(label: string, makeStore: () => Promise<Store>): Promise<void> {
  await run(makeStore, "jobs"); // warm-up
  await run(makeStore, "events");
  const rows: Record<Mode, { perSecond: number; p50: number; p99: number }> = {
    jobs: await run(makeStore, "jobs"),
    events: await run(makeStore, "events"),
    emitted: await run(makeStore, "emitted"),
  };
  console.log(`${label}: ${N} each over HTTP, ${CONCURRENCY} senders`);
  for (const [mode, r] of Object.entries(rows)) {
    console.log(
      `  ${mode.padEnd(8)} ${r.perSecond.toFixed(0).padStart(6)} /s   p50 ${r.p50.toFixed(2)} ms   p99 ${r.p99.toFixed(2)} ms` +
        (mode === "jobs" ? "" : `   ${(r.perSecond / rows.jobs.perSecond).toFixed(2)}× the jobs' rate`),
    );
  }
}

await onEachDriver("events", measure);
