/**
 * graphile-worker 0.17 in a fresh schema (its `schema` option), tuned with the settings of its
 * performance page (https://worker.graphile.org/docs/performance): a local queue of 500 jobs
 * fetched in one batch, batched completion (`completeJobBatchDelay: 0`), a pool one larger than
 * the concurrency. Completed jobs are deleted, so the drain ends when the job table is empty.
 */
import { createRequire } from "node:module";
import { Logger, makeWorkerUtils, run, type Runner, type Task } from "graphile-worker";
import pg from "pg";
import { cpuMicros, POSTGRES_PROCESSES, serverCpuMicros } from "../stats.js";
import { keys, RunCounter, sequentialLatency, until, type Peer, type PeerOptions } from "./types.js";

const LOCAL_QUEUE = 500;
const INSERT_BATCH = 1000;
const TASK = "noop";
const version = (createRequire(import.meta.url)("graphile-worker/package.json") as { version: string })
  .version;

type Data = { key: string };

function isData(payload: unknown): payload is Data {
  return typeof payload === "object" && payload !== null && typeof (payload as Data).key === "string";
}

async function start(options: PeerOptions, counter: RunCounter): Promise<Runner> {
  const noop: Task = (payload) => {
    if (isData(payload)) counter.record(payload.key);
  };
  return run({
    connectionString: options.connectionString,
    schema: options.namespace,
    concurrency: options.concurrency,
    maxPoolSize: options.concurrency + 1,
    noHandleSignals: true,
    taskList: { [TASK]: noop },
    logger: quiet,
    preset: {
      worker: { localQueue: { size: LOCAL_QUEUE }, completeJobBatchDelay: 0, failJobBatchDelay: 0 },
    },
  });
}

const quiet = new Logger(() => () => undefined);

async function query<R extends pg.QueryResultRow>(client: pg.Client, sql: string): Promise<R[]> {
  return (await client.query<R>(sql)).rows;
}

async function connect(options: PeerOptions): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: options.connectionString });
  await client.connect();
  return client;
}

export const graphileWorker: Peer = {
  name: "graphile-worker",
  version,
  tuning: [
    `concurrency as the others (32), maxPoolSize concurrency + 1, localQueue.size ${LOCAL_QUEUE}, completeJobBatchDelay 0, failJobBatchDelay 0`,
    `jobs inserted with workerUtils.addJobs() in batches of ${INSERT_BATCH}, maxAttempts 1`,
  ],

  async setUp(options) {
    const client = await connect(options);
    try {
      await query(client, `DROP SCHEMA IF EXISTS ${options.namespace} CASCADE`);
    } finally {
      await client.end();
    }
    const utils = await makeWorkerUtils({
      connectionString: options.connectionString,
      schema: options.namespace,
    });
    try {
      await utils.migrate();
    } finally {
      await utils.release();
    }
  },

  async drain(options, jobs) {
    const counter = new RunCounter();
    const expected = keys(`${jobs}-`, jobs);
    const utils = await makeWorkerUtils({
      connectionString: options.connectionString,
      schema: options.namespace,
    });
    const client = await connect(options);
    try {
      const insertStart = performance.now();
      for (let done = 0; done < jobs; done += INSERT_BATCH) {
        await utils.addJobs(
          expected
            .slice(done, done + INSERT_BATCH)
            .map((key) => ({ identifier: TASK, payload: { key }, maxAttempts: 1 })),
        );
      }
      const insertMs = performance.now() - insertStart;
      const remaining = async () =>
        Number(
          (
            await query<{ n: string }>(client, `SELECT count(*) AS n FROM ${options.namespace}._private_jobs`)
          )[0]!.n,
        );
      const started = performance.now();
      const cpuStart = cpuMicros();
      const serverStart = serverCpuMicros(POSTGRES_PROCESSES);
      const runner = await start(options, counter);
      let serverCpuUs: number;
      try {
        await until("graphile-worker drain", () => counter.distinct >= jobs, options.timeoutMs, 5);
        await until(
          "graphile-worker completions",
          async () => (await remaining()) === 0,
          options.timeoutMs,
          20,
        );
        // Before stop: its pool's backends exit with it, and their CPU with them.
        serverCpuUs = serverCpuMicros(POSTGRES_PROCESSES) - serverStart;
      } finally {
        await runner.stop();
      }
      const drainMs = performance.now() - started;
      const cpuUs = cpuMicros() - cpuStart;
      const left = await remaining();
      return {
        insertMs,
        drainMs,
        cpuUs,
        serverCpuUs,
        ...counter.check(expected),
        finalStates: { "completed (row deleted)": jobs - left, "still in table": left },
      };
    } finally {
      await client.end();
      await utils.release();
    }
  },

  async latency(options) {
    const counter = new RunCounter();
    const utils = await makeWorkerUtils({
      connectionString: options.connectionString,
      schema: options.namespace,
    });
    const runner = await start(options, counter);
    try {
      return await sequentialLatency(options, counter, async (i) => {
        const key = `probe-${i}`;
        await utils.addJob(TASK, { key }, { maxAttempts: 1 });
        return key;
      });
    } finally {
      await runner.stop();
      await utils.release();
    }
  },

  async tearDown(options) {
    const client = await connect(options);
    try {
      await query(client, `DROP SCHEMA IF EXISTS ${options.namespace} CASCADE`);
    } finally {
      await client.end();
    }
  },
};
