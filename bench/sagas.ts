/**
 * `npm run bench:sagas`: what a saga's step costs beside a plain job, in the same run, on
 * SQLite (FULL) and on PostgreSQL when it is reachable. Each round drains N sagas of 3 no-op
 * steps, then the same work as plain jobs: 3 chained no-op jobs per saga (each job's handler
 * submits the next, as a workflow of jobs would). Figures: sagas/s and chains/s, and the
 * ratio of a saga's time to a chain's (the target: a step costs at most 1.5× a job).
 * Runs the built package (dist/), as users do.
 */
import { pino } from "pino";
import { defineJob } from "../dist/jobs/define.js";
import { newJobId } from "../dist/jobs/ids.js";
import { defineSaga } from "../dist/sagas/define-saga.js";
import type { Store } from "../dist/store/store.js";
import { onEachDriver } from "./drivers.js";
import { createTessera, DEV_TENANT } from "../dist/tessera.js";
import { attemptOf } from "../dist/worker/context.js";

const N = Number(process.env.BENCH_SAGAS ?? 2000);
const ROUNDS = 3;
const CONCURRENCY = 32;

const saga = defineSaga({
  type: "bench.saga",
  input: {},
  async run(_input: unknown, s) {
    await s.step("a", () => 1);
    await s.step("b", () => 2);
    return s.step("c", () => 3);
  },
});

/** Three jobs in a row: each one's handler submits the next through the store. */
function chainJobs(store: () => Store) {
  const link = (type: string, next: string | null) =>
    defineJob({
      type,
      input: {},
      maxAttempts: 1,
      async run(_input: unknown, ctx) {
        if (next === null) return null;
        const now = Date.now();
        const { tenantId } = attemptOf(ctx);
        await store().submit({ job: newJob(tenantId, next, now), idempotency: null, now });
        return null;
      },
    });
  return [
    link("bench.chain-1", "bench.chain-2"),
    link("bench.chain-2", "bench.chain-3"),
    link("bench.chain-3", null),
  ];
}

function newJob(tenantId: string, type: string, now: number) {
  return {
    id: newJobId(now, tenantId),
    tenantId,
    type,
    input: {},
    priority: 0,
    runAt: now,
    deadlineAt: now + 3_600_000,
    maxAttempts: 3,
    metadata: {},
    callback: null,
  };
}

/** Drain `count` jobs of `type` (and whatever they submit) until `ends` terminal events of `endType`. */
async function drain(makeStore: () => Promise<Store>, type: string, endType: string): Promise<number> {
  const store = await makeStore();
  let current: Store = store;
  const tessera = await createTessera({
    jobs: [saga, ...chainJobs(() => current)],
    config: { dev: true, concurrency: CONCURRENCY },
    store,
    logger: pino({ level: "error" }),
  });
  current = tessera.store;
  try {
    const tenantId = await store.ensureTenant({ name: DEV_TENANT, now: Date.now() });
    for (let done = 0; done < N; done += 1000) {
      const now = Date.now();
      await Promise.all(
        Array.from({ length: Math.min(1000, N - done) }, () =>
          store.submit({ job: newJob(tenantId, type, now), idempotency: null, now }),
        ),
      );
    }
    let ended = 0;
    const all = new Promise<void>((resolve) =>
      store.subscribe((event) => {
        if (
          event.kind === "terminal" &&
          event.type === endType &&
          event.status === "succeeded" &&
          ++ended === N
        )
          resolve();
      }),
    );
    await tessera.app.ready();
    const start = performance.now();
    await tessera.start();
    await all;
    return performance.now() - start;
  } finally {
    await tessera.close();
  }
}

async function measure(label: string, makeStore: () => Promise<Store>): Promise<void> {
  const rows: { saga: number; chain: number }[] = [];
  // A warm-up of each, then alternated rounds.
  await drain(makeStore, "bench.saga", "bench.saga");
  await drain(makeStore, "bench.chain-1", "bench.chain-3");
  for (let round = 1; round <= ROUNDS; round++) {
    const sagaMs = await drain(makeStore, "bench.saga", "bench.saga");
    const chainMs = await drain(makeStore, "bench.chain-1", "bench.chain-3");
    rows.push({ saga: sagaMs, chain: chainMs });
    process.stderr.write(
      `bench:sagas ${label} round ${round}: sagas ${((N / sagaMs) * 1000).toFixed(0)}/s, ` +
        `chains ${((N / chainMs) * 1000).toFixed(0)}/s (a step ${(sagaMs / chainMs).toFixed(2)}× a job)\n`,
    );
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const sagaMs = median(rows.map((r) => r.saga));
  const chainMs = median(rows.map((r) => r.chain));
  console.log(
    `${label}: ${N} sagas of 3 steps vs ${N} chains of 3 jobs, concurrency ${CONCURRENCY}, median of ${ROUNDS}`,
  );
  console.log(
    `  sagas              ${((N / sagaMs) * 1000).toFixed(0).padStart(6)} /s   ${((sagaMs * 1000) / (3 * N)).toFixed(0)} µs a step`,
  );
  console.log(
    `  chains of 3 jobs   ${((N / chainMs) * 1000).toFixed(0).padStart(6)} /s   ${((chainMs * 1000) / (3 * N)).toFixed(0)} µs a job`,
  );
  console.log(`  a step costs ${(sagaMs / chainMs).toFixed(2)}× a job`);
}

// BENCH_SAGAS_ONLY=postgres (or sqlite) measures one driver.
await onEachDriver("sagas", measure, process.env.BENCH_SAGAS_ONLY);
