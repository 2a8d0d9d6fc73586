/**
 * Child process: no-op job throughput of Tessera's workers. Pre-inserts N jobs through the
 * store, starts `createTessera`'s workers and times the drain until every job's completion is
 * committed; then checks the table: every job succeeded on its first attempt, none ran twice.
 * A smaller identical round on another database runs first as the warm-up.
 */
import { pino } from "pino";
import { SqliteStore } from "../dist/store/sqlite/store.js";
import { createTessera, DEV_TENANT } from "../dist/tessera.js";
import { finalRows, insertNoopJobs, noopJob, observeStore } from "./bench-jobs.js";
import { childOptions, runChild, sendLast, type DrainOptions, type DrainResult } from "./protocol.js";
import { cpuMicros, sharedNow } from "./stats.js";

async function drain(
  path: string,
  jobs: number,
  concurrency: number,
  timeoutMs: number,
): Promise<DrainResult> {
  const runs = new Map<string, number>();
  const claims = { count: 0, rows: 0, partial: 0, sizes: {} as Record<string, number> };
  const store = observeStore(new SqliteStore({ path }), {
    claimed: (limit, got) => {
      claims.count++;
      claims.rows += got;
      if (limit < concurrency) claims.partial++;
      claims.sizes[got] = (claims.sizes[got] ?? 0) + 1;
    },
  });
  const tessera = await createTessera({
    jobs: [noopJob((id) => runs.set(id, (runs.get(id) ?? 0) + 1))],
    config: { dev: true, db: path, concurrency },
    store,
    logger: pino({ level: "error" }),
  });
  let insertMs: number;
  let drainMs: number;
  let cpuUs: number;
  try {
    const tenantId = await store.ensureTenant({ name: DEV_TENANT, now: Date.now() });
    const insertStart = sharedNow();
    await insertNoopJobs(store, tenantId, jobs);
    insertMs = sharedNow() - insertStart;

    let terminal = 0;
    const allDone = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`drain timed out after ${timeoutMs} ms (${terminal}/${jobs} done)`)),
        timeoutMs,
      );
      store.subscribe((event) => {
        if (event.kind === "terminal" && ++terminal === jobs) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    await tessera.app.ready();
    const start = sharedNow();
    const cpuStart = cpuMicros();
    await tessera.start();
    await allDone;
    drainMs = sharedNow() - start;
    cpuUs = cpuMicros() - cpuStart;
  } finally {
    await tessera.close();
  }
  return {
    label: "tessera",
    jobs,
    concurrency,
    insertMs,
    drainMs,
    jobsPerSec: (jobs / drainMs) * 1000,
    cpuUsPerJob: cpuUs / jobs,
    handled: runs.size,
    repeated: [...runs.values()].reduce((sum, n) => sum + (n - 1), 0),
    lost: jobs - runs.size,
    finalRows: finalRows(path),
    claims: claims.count,
    meanClaimSize: claims.count === 0 ? 0 : claims.rows / claims.count,
    partialClaims: claims.partial,
    claimSizes: claims.sizes,
  };
}

runChild(async () => {
  const options = childOptions<DrainOptions>();
  await drain(options.warmupDb, options.warmupJobs, options.concurrency, options.timeoutMs);
  const result = await drain(options.db, options.jobs, options.concurrency, options.timeoutMs);
  await sendLast({ kind: "drained", result });
});
