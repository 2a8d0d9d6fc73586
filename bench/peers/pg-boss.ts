/**
 * pg-boss 10 in its own schema. Tuned for throughput as its docs suggest: several `work()`
 * workers per process, large `batchSize`, the shortest polling interval, and an ANALYZE of the
 * job table after filling it (https://github.com/timgit/pg-boss/blob/10.1.6/docs/readme.md).
 * A worker that fetched a batch waits out the rest of its polling interval before fetching
 * again, so one process drains at most workers × batchSize per interval.
 */
import { createRequire } from "node:module";
import pg from "pg";
import PgBoss from "pg-boss";
import { cpuMicros, POSTGRES_PROCESSES, serverCpuMicros } from "../stats.js";
import { keys, RunCounter, sequentialLatency, until, type Peer, type PeerOptions } from "./types.js";

const WORKERS = 4;
const BATCH_SIZE = 500;
const POLLING_SECONDS = 0.5; // pg-boss's minimum
const POOL_SIZE = 10;
const INSERT_BATCH = 1000;
const version = (createRequire(import.meta.url)("pg-boss/package.json") as { version: string }).version;

async function withBoss<T>(options: PeerOptions, body: (boss: PgBoss) => Promise<T>): Promise<T> {
  const boss = new PgBoss({
    connectionString: options.connectionString,
    schema: options.namespace,
    max: POOL_SIZE,
    supervise: false,
    schedule: false,
  });
  boss.on("error", (error) => process.stderr.write(`pg-boss: ${String(error)}\n`));
  await boss.start();
  try {
    return await body(boss);
  } finally {
    await boss.stop({ graceful: true, close: true, wait: true, timeout: 10_000 });
  }
}

async function query<R extends pg.QueryResultRow>(options: PeerOptions, sql: string): Promise<R[]> {
  const client = new pg.Client({ connectionString: options.connectionString });
  await client.connect();
  try {
    return (await client.query<R>(sql)).rows;
  } finally {
    await client.end();
  }
}

/** One connection for the completion polls of a drain. */
async function poller(options: PeerOptions): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: options.connectionString });
  await client.connect();
  return client;
}

type Data = { key: string };

export const pgBoss: Peer = {
  name: "pg-boss",
  version,
  tuning: [
    `${WORKERS} work() workers, batchSize ${BATCH_SIZE}, pollingIntervalSeconds ${POLLING_SECONDS} (the minimum)`,
    `pool max ${POOL_SIZE}; supervise/schedule off; jobs inserted with insert() in batches of ${INSERT_BATCH}; ANALYZE after filling`,
  ],

  async setUp(options) {
    await query(options, `DROP SCHEMA IF EXISTS ${options.namespace} CASCADE`);
  },

  async drain(options, jobs) {
    const queue = jobs === options.jobs ? "noop" : "warmup";
    const counter = new RunCounter();
    const expected = keys(`${queue}-`, jobs);
    return withBoss(options, async (boss) => {
      await boss.createQueue(queue);
      const insertStart = performance.now();
      for (let done = 0; done < jobs; done += INSERT_BATCH) {
        await boss.insert(
          expected
            .slice(done, done + INSERT_BATCH)
            .map((key) => ({ name: queue, data: { key }, retryLimit: 0 })),
        );
      }
      await query(options, `ANALYZE ${options.namespace}.job`);
      const insertMs = performance.now() - insertStart;
      const poll = await poller(options);
      const completed = async () =>
        Number(
          (
            await poll.query<{ n: string }>(
              `SELECT count(*) AS n FROM ${options.namespace}.job WHERE name = '${queue}' AND state = 'completed'`,
            )
          ).rows[0]!.n,
        );
      const started = performance.now();
      const cpuStart = cpuMicros();
      const serverStart = serverCpuMicros(POSTGRES_PROCESSES);
      for (let w = 0; w < WORKERS; w++) {
        await boss.work<Data>(
          queue,
          { batchSize: BATCH_SIZE, pollingIntervalSeconds: POLLING_SECONDS },
          (batch) => {
            for (const job of batch) counter.record(job.data.key);
            return Promise.resolve();
          },
        );
      }
      await until("pg-boss drain", () => counter.distinct >= jobs, options.timeoutMs, 5);
      let serverCpuUs: number;
      try {
        await until("pg-boss completions", async () => (await completed()) >= jobs, options.timeoutMs, 20);
        serverCpuUs = serverCpuMicros(POSTGRES_PROCESSES) - serverStart; // before a backend exits
      } finally {
        await poll.end();
      }
      const drainMs = performance.now() - started;
      const cpuUs = cpuMicros() - cpuStart;
      await boss.offWork(queue);
      const states = await query<{ state: string; n: string }>(
        options,
        `SELECT state, count(*) AS n FROM ${options.namespace}.job WHERE name = '${queue}' GROUP BY state`,
      );
      return {
        insertMs,
        drainMs,
        cpuUs,
        serverCpuUs,
        ...counter.check(expected),
        finalStates: Object.fromEntries(states.map((r) => [r.state, Number(r.n)])),
      };
    });
  },

  async latency(options) {
    const queue = "probe";
    const counter = new RunCounter();
    return withBoss(options, async (boss) => {
      await boss.createQueue(queue);
      await boss.work<Data>(queue, { batchSize: 1, pollingIntervalSeconds: POLLING_SECONDS }, (batch) => {
        for (const job of batch) counter.record(job.data.key);
        return Promise.resolve();
      });
      const result = await sequentialLatency(options, counter, async (i) => {
        const key = `probe-${i}`;
        await boss.send(queue, { key }, { retryLimit: 0 });
        return key;
      });
      await boss.offWork(queue);
      return result;
    });
  },

  async tearDown(options) {
    await query(options, `DROP SCHEMA IF EXISTS ${options.namespace} CASCADE`);
  },
};
