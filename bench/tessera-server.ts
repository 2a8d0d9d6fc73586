/**
 * Child process: a Tessera server (dev mode, SQLite at `db`) with the benchmark's job types.
 * Reports its URL, and for `bench.probe` jobs when the submit committed, the handler started
 * and the job finished (shared clock), so the parent can time submit-to-start.
 */
import { pino } from "pino";
import { SqliteStore } from "../dist/store/sqlite/store.js";
import { createTessera } from "../dist/tessera.js";
import { noopJob, observeStore, PROBE_TYPE, probeJob } from "./bench-jobs.js";
import { childOptions, runChild, toParent } from "./protocol.js";
import { sharedNow } from "./stats.js";

export interface TesseraServerOptions {
  db: string;
  concurrency: number;
}

runChild(async () => {
  const { db, concurrency } = childOptions<TesseraServerOptions>();
  const store = observeStore(new SqliteStore({ path: db }), {
    submitted: (job) => {
      if (job.type === PROBE_TYPE) toParent({ kind: "committed", jobId: job.id, at: sharedNow() });
    },
  });
  const probe = probeJob((jobId) => toParent({ kind: "started", jobId, at: sharedNow() }));
  const tessera = await createTessera({
    jobs: [noopJob(), probe],
    // The limiter runs on every request (its cost is measured) but never says no: the load
    // generators ask for far more than the defaults (2,000 submits/s, 5,000 polls/s) allow.
    config: { dev: true, db, concurrency, rateSubmit: 1_000_000, ratePoll: 1_000_000, maxQueuedPerTenant: 0 },
    store,
    logger: pino({ level: "error" }),
  });
  store.subscribe((event) => {
    if (event.kind === "terminal" && event.type === PROBE_TYPE) {
      toParent({ kind: "finished", jobId: event.jobId, at: sharedNow(), status: event.status });
    }
  });
  const url = await tessera.listen({ port: 0, host: "127.0.0.1" });
  let closing = false;
  process.on("SIGTERM", () => {
    if (closing) return;
    closing = true;
    void tessera.close().finally(() => process.exit(0));
  });
  toParent({ kind: "ready", url });
});
