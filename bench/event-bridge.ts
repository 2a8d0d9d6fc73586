/**
 * `npm run bench:bridge`: events end to end through a real broker (`--events`), beside a bare
 * publish/consume loop of the same broker in the same run, for NATS JetStream and RabbitMQ.
 * - bare: CONCURRENCY publishers in a loop, each publish awaited until the broker confirms it
 *   (JetStream ack; RabbitMQ publisher confirm), persistent, to a durable stream / queue that
 *   one consumer reads with manual acks; timed from the publish to the consumer's receipt.
 * - bridge: two services, each on its own SQLite store (synchronous FULL): CONCURRENCY senders
 *   `POST /v1/events` to the order service; its relay publishes, the customer service's consumer
 *   keeps the event and starts the job its trigger names; timed from the request to that job's
 *   start (two commits, the relay, the broker, the consumer's commit, the job's commit and start).
 * Figures: per second, p50 and p99 latency, and the bridge's rate as a ratio of the bare loop's.
 * Runs the built package (dist/).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as amqpConnect } from "amqplib";
import { AckPolicy, connect as natsConnect, nanos, StorageType } from "nats";
import { pino } from "pino";
import { defineJob } from "../dist/jobs/define.js";
import { createTessera, type Tessera } from "../dist/tessera.js";

const N = Number(process.env.BENCH_EVENTS ?? 5000);
const CONCURRENCY = 16;
const NATS = process.env.TESSERA_BENCH_NATS ?? "nats://127.0.0.1:4222";
const AMQP = process.env.TESSERA_BENCH_AMQP ?? "amqp://guest:guest@127.0.0.1:5672";

interface Figures {
  perSecond: number;
  p50: number;
  p99: number;
}

/** Latencies of the run in progress; resolves `done` at the N-th. */
class Recorder {
  readonly latencies: number[] = [];
  private resolve!: () => void;
  readonly done = new Promise<void>((r) => (this.resolve = r));
  record(sent: number): void {
    this.latencies.push(performance.now() - sent);
    if (this.latencies.length === N) this.resolve();
  }
  figures(ms: number): Figures {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
    return { perSecond: (N / ms) * 1000, p50: at(0.5), p99: at(0.99) };
  }
}

/** CONCURRENCY senders in a loop; 1 (one event at a time) for the latency of an unloaded path. */
let concurrency = CONCURRENCY;

async function senders(send: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < N) await send(next++);
    }),
  );
}

async function bareNats(): Promise<Figures> {
  const nc = await natsConnect({ servers: NATS.replace("nats://", "") });
  const jsm = await nc.jetstreamManager();
  const name = `BENCH_${randomBytes(4).toString("hex")}`;
  await jsm.streams.add({ name, subjects: [`${name}.>`], storage: StorageType.File });
  await jsm.consumers.add(name, {
    durable_name: "bench",
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(30_000),
  });
  const js = nc.jetstream();
  const recorder = new Recorder();
  const messages = await (await js.consumers.get(name, "bench")).consume({ max_messages: 256 });
  void (async () => {
    for await (const m of messages) {
      recorder.record((JSON.parse(Buffer.from(m.data).toString()) as { sent: number }).sent);
      m.ack();
    }
  })();
  const start = performance.now();
  await senders(async (i) => {
    const body = Buffer.from(JSON.stringify({ id: `e${i}`, sent: performance.now() }));
    await js.publish(`${name}.tick`, body, { msgID: `e${i}` });
  });
  await recorder.done;
  const figures = recorder.figures(performance.now() - start);
  messages.stop();
  await jsm.streams.delete(name);
  await nc.drain();
  return figures;
}

async function bareAmqp(): Promise<Figures> {
  const model = await amqpConnect(AMQP, { noDelay: true });
  const publisher = await model.createConfirmChannel();
  const consumer = await model.createChannel();
  const queue = `bench.${randomBytes(4).toString("hex")}`;
  await publisher.assertExchange("bench.events", "topic", { durable: true });
  await consumer.assertQueue(queue, { durable: true });
  await consumer.bindQueue(queue, "bench.events", `${queue}.#`);
  await consumer.prefetch(256);
  const recorder = new Recorder();
  await consumer.consume(queue, (m) => {
    if (!m) return;
    recorder.record((JSON.parse(m.content.toString()) as { sent: number }).sent);
    consumer.ack(m);
  });
  const start = performance.now();
  await senders(
    (i) =>
      new Promise<void>((resolve, reject) => {
        const body = Buffer.from(JSON.stringify({ id: `e${i}`, sent: performance.now() }));
        publisher.publish(
          "bench.events",
          `${queue}.tick`,
          body,
          { persistent: true, messageId: `e${i}` },
          (err: unknown) => (err ? reject(err as Error) : resolve()),
        );
      }),
  );
  await recorder.done;
  const figures = recorder.figures(performance.now() - start);
  await consumer.deleteQueue(queue);
  await model.close();
  return figures;
}

/** Through the broker (`url`), or (null) in-process: the order service's own trigger. */
async function bridge(url: string | null): Promise<Figures> {
  const dir = mkdtempSync(join(tmpdir(), "tessera-bench-bridge-"));
  const suffix = randomBytes(4).toString("hex");
  const type = `bench.tick-${suffix}`;
  const recorder = new Recorder();
  const logger = pino({ level: "error" });
  const config = (name: string) => ({
    dev: true,
    db: join(dir, `${name}.db`),
    concurrency: 32,
    rateSubmit: 0,
    ratePoll: 0,
    events: url,
    eventsGroup: `${name}-${suffix}`,
  });
  const react = defineJob({
    type: "bench.react",
    input: {},
    on: type,
    run: (event: { data: { sent: number } }) => void recorder.record(event.data.sent),
  });
  const opened: Tessera[] = [];
  try {
    if (url) {
      const customers = await createTessera({ jobs: [react], config: config("customers"), logger });
      opened.push(customers);
      await customers.start();
    }
    const orders = await createTessera({ jobs: url ? [] : [react], config: config("orders"), logger });
    opened.push(orders);
    const base = await orders.listen({ port: 0, host: "127.0.0.1" });
    const start = performance.now();
    await senders(async (i) => {
      const sent = performance.now();
      const res = await fetch(`${base}/v1/events`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          specversion: "1.0",
          id: `e${i}`,
          source: `/bench/${suffix}`,
          type,
          data: { sent },
        }),
      });
      if (res.status !== 202) throw new Error(`HTTP ${res.status} ${await res.text()}`);
      await res.arrayBuffer();
    });
    await recorder.done;
    return recorder.figures(performance.now() - start);
  } finally {
    for (const t of opened.reverse()) await t.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const line = (label: string, f: Figures, reference?: Figures) =>
  `  ${label.padEnd(10)} ${f.perSecond.toFixed(0).padStart(6)} /s   p50 ${f.p50.toFixed(2)} ms   p99 ${f.p99.toFixed(2)} ms` +
  (reference ? `   ${(f.perSecond / reference.perSecond).toFixed(2)}× the bare loop's rate` : "");

async function measureAll(): Promise<void> {
  const inProcess = await bridge(null);
  console.log(`In-process (one service, no broker): ${N} events, ${concurrency} sender(s)`);
  console.log(line("in-process", inProcess));
  for (const [name, bare, url] of [
    ["NATS JetStream", bareNats, NATS],
    ["RabbitMQ", bareAmqp, AMQP],
  ] as const) {
    await bare(); // warm-up
    await bridge(url);
    const reference = await bare();
    const measured = await bridge(url);
    console.log(`${name}: ${N} events, ${concurrency} sender(s)`);
    console.log(line("bare", reference));
    console.log(
      line("bridge", measured, reference) +
        `; ${(measured.perSecond / inProcess.perSecond).toFixed(2)}× in-process`,
    );
  }
}

console.log("Loaded:");
await measureAll();
concurrency = 1;
console.log("One at a time (the latency of an unloaded path):");
await measureAll();
