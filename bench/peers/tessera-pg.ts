/**
 * Tessera on PostgreSQL: `createTessera` with a `PostgresStore` in a fresh schema, `concurrency`
 * workers in this process. Jobs are inserted through `store.submit` (group commit).
 */
import pg from "pg";
import { pino } from "pino";
import { PostgresStore } from "../../dist/store/postgres/store.js";
import { createTessera, DEV_TENANT, type Tessera } from "../../dist/tessera.js";
import { newNoopJob, noopJob, PROBE_TYPE, probeJob } from "../bench-jobs.js";
import { cpuMicros, POSTGRES_PROCESSES, serverCpuMicros } from "../stats.js";
import { RunCounter, sequentialLatency, type Peer, type PeerDrain, type PeerOptions } from "./types.js";

const POOL_SIZE = 10;
const INSERT_BATCH = 1000;
/**
 * Jobs claimed ahead of free slots (`--prefetch`), as docs/deployment.md advises for many short
 * jobs: with the concurrency (32), up to 500 jobs a claim, as graphile-worker's local queue
 * fetches. `TESSERA_BENCH_PREFETCH` overrides it (0 is the server's default).
 */
const PREFETCH = Number(process.env["TESSERA_BENCH_PREFETCH"] ?? 468);

async function withTessera<T>(
  options: PeerOptions,
  schema: string,
  counter: RunCounter,
  body: (tessera: Tessera, tenantId: string) => Promise<T>,
): Promise<T> {
  const store = await new PostgresStore({
    connectionString: options.connectionString,
    schema,
    poolSize: POOL_SIZE,
  }).open();
  const tessera = await createTessera({
    jobs: [noopJob((id) => counter.record(id)), probeJob((id) => counter.record(id))],
    config: {
      dev: true,
      db: options.connectionString,
      dbSchema: schema,
      concurrency: options.concurrency,
      prefetch: PREFETCH,
    },
    store,
    logger: pino({ level: "error" }),
  });
  try {
    const tenantId = await store.ensureTenant({ name: DEV_TENANT, now: Date.now() });
    await tessera.app.ready();
    return await body(tessera, tenantId);
  } finally {
    await tessera.close();
  }
}

async function finalStates(connectionString: string, schema: string): Promise<Record<string, number>> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    const { rows } = await client.query<{ state: string; count: string }>(
      `SELECT status || ' (attempt ' || attempt || ')' AS state, count(*) AS count
       FROM ${schema}.jobs GROUP BY 1 ORDER BY 1`,
    );
    return Object.fromEntries(rows.map((r) => [r.state, Number(r.count)]));
  } finally {
    await client.end();
  }
}

async function analyze(connectionString: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    await client.query(`ANALYZE ${schema}.jobs`);
  } finally {
    await client.end();
  }
}

async function dropSchemas(connectionString: string, schemas: string[]): Promise<void> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end();
  }
}

const schemaOf = (options: PeerOptions, jobs: number) =>
  jobs === options.jobs ? options.namespace : `${options.namespace}_w`;

export const tesseraPg: Peer = {
  name: "tessera-pg",
  version: "workspace",
  tuning: [
    `createTessera({ config: { db, dbSchema, concurrency, prefetch: ${PREFETCH} } }) with a PostgresStore (pool ${POOL_SIZE})`,
    "jobs inserted through store.submit, 1,000 in flight at a time; ANALYZE after filling (as for pg-boss)",
    "defaults otherwise: batched claims and completions, LISTEN/NOTIFY wake-ups",
    "probes submitted through worker.submit, as the HTTP API does (an idle worker takes a job at once)",
  ],

  async setUp(options) {
    await dropSchemas(options.connectionString, [options.namespace, `${options.namespace}_w`]);
  },

  async drain(options, jobs): Promise<PeerDrain> {
    const counter = new RunCounter();
    const schema = schemaOf(options, jobs);
    const ids: string[] = [];
    const timing = await withTessera(options, schema, counter, async ({ store, start }, tenantId) => {
      const insertStart = performance.now();
      for (let done = 0; done < jobs; done += INSERT_BATCH) {
        const now = Date.now();
        const batch = Array.from({ length: Math.min(INSERT_BATCH, jobs - done) }, () =>
          newNoopJob(tenantId, now),
        );
        for (const job of batch) ids.push(job.id);
        await Promise.all(batch.map((job) => store.submit({ job, idempotency: null, now })));
      }
      // The same treatment as pg-boss: fresh planner statistics for the filled table.
      await analyze(options.connectionString, schema);
      const insertMs = performance.now() - insertStart;
      let terminal = 0;
      const allDone = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`drain timed out (${terminal}/${jobs} done)`)),
          options.timeoutMs,
        );
        store.subscribe((event) => {
          if (event.kind === "terminal" && ++terminal === jobs) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      const started = performance.now();
      const cpuStart = cpuMicros();
      const serverStart = serverCpuMicros(POSTGRES_PROCESSES);
      await start();
      await allDone;
      return {
        insertMs,
        drainMs: performance.now() - started,
        cpuUs: cpuMicros() - cpuStart,
        serverCpuUs: serverCpuMicros(POSTGRES_PROCESSES) - serverStart,
      };
    });
    return {
      ...timing,
      ...counter.check(ids),
      finalStates: await finalStates(options.connectionString, schema),
    };
  },

  async latency(options) {
    const counter = new RunCounter();
    return withTessera(options, `${options.namespace}_w`, counter, async (tessera, tenantId) => {
      await tessera.start();
      return sequentialLatency(options, counter, async () => {
        const now = Date.now();
        const job = { ...newNoopJob(tenantId, now), type: PROBE_TYPE };
        // What the HTTP API calls once a request is validated (an idle worker takes the job at once).
        await tessera.worker.submit({ job, idempotency: null, now });
        return job.id;
      });
    });
  },

  async tearDown(options) {
    await dropSchemas(options.connectionString, [options.namespace, `${options.namespace}_w`]);
  },
};
