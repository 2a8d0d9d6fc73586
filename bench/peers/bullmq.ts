/**
 * BullMQ on the machine's Redis: one Worker with the same concurrency, jobs added with
 * addBulk, completed jobs kept (to count them) and every queue obliterated afterwards. Tuning
 * per https://docs.bullmq.io/guide/workers/concurrency and /guide/queues/adding-bulks.
 */
import { createRequire } from "node:module";
import { setTimeout as sleep } from "node:timers/promises";
import { Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import { cpuMicros, REDIS_PROCESSES, serverCpuMicros } from "../stats.js";
import { keys, RunCounter, sequentialLatency, until, type Peer, type PeerOptions } from "./types.js";

const INSERT_BATCH = 1000;
const JOB = "noop";
const version = (createRequire(import.meta.url)("bullmq/package.json") as { version: string }).version;

type Data = { key: string };

/** BullMQ 6 under ESM takes a constructed ioredis client (ioredis is an optional peer). */
function connection(options: PeerOptions): Redis {
  return new Redis(options.redisUrl, { maxRetriesPerRequest: null });
}

const queueNames = (options: PeerOptions) =>
  ["noop", "warmup", "probe"].map((q) => `${options.namespace}-${q}`);

async function withQueue<T>(
  options: PeerOptions,
  name: string,
  counter: RunCounter,
  body: (queue: Queue<Data>, start: () => void) => Promise<T>,
): Promise<T> {
  const queueConnection = connection(options);
  const workerConnection = connection(options);
  const queue = new Queue<Data>(name, { connection: queueConnection });
  const worker = new Worker<Data>(
    name,
    (job) => {
      counter.record(job.data.key);
      return Promise.resolve();
    },
    { connection: workerConnection, concurrency: options.concurrency, autorun: false },
  );
  worker.on("error", (error) => process.stderr.write(`bullmq: ${String(error)}\n`));
  try {
    return await body(queue, () => void worker.run());
  } finally {
    await worker.close();
    await queue.close();
    queueConnection.disconnect();
    workerConnection.disconnect();
  }
}

export const bullmq: Peer = {
  name: "bullmq",
  version,
  tuning: [
    "one Worker, concurrency as the others (32), maxRetriesPerRequest null; jobs added with addBulk() in batches of 1000",
    "attempts 1; completed jobs kept until the queue is obliterated (to count them)",
  ],

  async setUp(options) {
    await this.tearDown(options);
  },

  async drain(options, jobs) {
    const name = `${options.namespace}-${jobs === options.jobs ? "noop" : "warmup"}`;
    const counter = new RunCounter();
    const expected = keys(`${name}-`, jobs);
    return withQueue(options, name, counter, async (queue, start) => {
      const insertStart = performance.now();
      for (let done = 0; done < jobs; done += INSERT_BATCH) {
        await queue.addBulk(
          expected
            .slice(done, done + INSERT_BATCH)
            .map((key) => ({ name: JOB, data: { key }, opts: { attempts: 1 } })),
        );
      }
      const insertMs = performance.now() - insertStart;
      const started = performance.now();
      const cpuStart = cpuMicros();
      const serverStart = serverCpuMicros(REDIS_PROCESSES);
      start();
      await until("bullmq drain", () => counter.distinct >= jobs, options.timeoutMs, 5);
      await until(
        "bullmq completions",
        async () => ((await queue.getJobCounts("completed"))["completed"] ?? 0) >= jobs,
        options.timeoutMs,
        20,
      );
      const drainMs = performance.now() - started;
      const cpuUs = cpuMicros() - cpuStart;
      const serverCpuUs = serverCpuMicros(REDIS_PROCESSES) - serverStart;
      const counts = await queue.getJobCounts("completed", "failed", "waiting", "active", "delayed");
      return {
        insertMs,
        drainMs,
        cpuUs,
        serverCpuUs,
        ...counter.check(expected),
        finalStates: Object.fromEntries(Object.entries(counts).filter(([, n]) => n > 0)),
      };
    });
  },

  async latency(options) {
    const counter = new RunCounter();
    return withQueue(options, `${options.namespace}-probe`, counter, async (queue, start) => {
      start();
      await sleep(100); // let the worker's blocking connection come up before the first probe
      return sequentialLatency(options, counter, async (i) => {
        const key = `probe-${i}`;
        await queue.add(JOB, { key }, { attempts: 1 });
        return key;
      });
    });
  },

  async tearDown(options) {
    for (const name of queueNames(options)) {
      const client = connection(options);
      const queue = new Queue(name, { connection: client });
      try {
        await queue.obliterate({ force: true });
      } finally {
        await queue.close();
        client.disconnect();
      }
    }
  },
};
