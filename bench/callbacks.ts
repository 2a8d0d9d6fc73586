/**
 * Callback delivery: throughput of the outbox deliverer (jobs with a callback drained, events
 * received) and the latency from a job's completion to its callback arriving, beside a
 * reference measured in the same run: bare HTTP POSTs of the same body to the same receiver,
 * with as many in flight as the deliverer allows one tenant (4).
 */
import { createServer, request, type Server } from "node:http";
import { join } from "node:path";
import { pino } from "pino";
import { createTessera } from "../dist/tessera.js";
import type { NewJob } from "../dist/store/store.js";
import { newNoopJob, noopJob } from "./bench-jobs.js";
import { distribution, type Distribution } from "./stats.js";

const PER_TENANT_IN_FLIGHT = 4;

export interface CallbackResult {
  events: number;
  deliveredPerSec: number;
  reference: { postsPerSec: number };
  ratio: number;
  /** Completion (the job's finishedAt) to the receiver having the whole request, idle system. */
  latency: Distribution;
  duplicates: number;
  missing: number;
}

interface Receiver {
  server: Server;
  url: string;
  /** webhook-id -> times received */
  ids: Map<string, number>;
  onEvent: ((finishedAt: number, receivedAt: number) => void) | null;
}

async function startReceiver(): Promise<Receiver> {
  const receiver: Receiver = { server: createServer(), url: "", ids: new Map(), onEvent: null };
  receiver.server.on("request", (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const receivedAt = Date.now();
      const id = String(req.headers["webhook-id"] ?? "");
      if (id) {
        receiver.ids.set(id, (receiver.ids.get(id) ?? 0) + 1);
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { data?: { finishedAt?: string } };
        const finishedAt = Date.parse(body.data?.finishedAt ?? "");
        receiver.onEvent?.(finishedAt, receivedAt);
      }
      res.statusCode = 204;
      res.end();
    });
  });
  await new Promise<void>((resolve) => receiver.server.listen(0, "127.0.0.1", resolve));
  const address = receiver.server.address() as { port: number };
  receiver.url = `http://127.0.0.1:${address.port}/hook`;
  return receiver;
}

/** N bare POSTs (a fresh connection each, as the deliverer makes), `inFlight` at a time. */
async function barePosts(url: string, count: number, inFlight: number, body: string): Promise<number> {
  let next = 0;
  const started = performance.now();
  const post = () =>
    new Promise<void>((resolve, reject) => {
      const req = request(url, {
        method: "POST",
        agent: false,
        headers: {
          "content-type": "application/json",
          "webhook-id": "ref",
          "content-length": Buffer.byteLength(body),
        },
      });
      req.on("response", (res) => res.resume().on("end", resolve));
      req.on("error", reject);
      req.end(body);
    });
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next++ < count) await post();
    }),
  );
  return count / ((performance.now() - started) / 1000);
}

async function until(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("callback benchmark timed out");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export async function measureCallbacks(options: {
  dir: string;
  events: number;
  latencySamples: number;
}): Promise<CallbackResult> {
  const receiver = await startReceiver();
  const tessera = await createTessera({
    jobs: [noopJob()],
    logger: pino({ level: "silent" }),
    config: {
      db: join(options.dir, "callbacks.db"),
      dev: true,
      concurrency: 32,
      callbackAllow: ["127.0.0.1"],
      callbackConcurrency: 32,
    },
  });
  try {
    const tenantId = await tessera.store.ensureTenant({ name: "dev", now: Date.now() });
    const withCallback = (): NewJob => ({
      ...newNoopJob(tenantId, Date.now()),
      callback: { url: receiver.url, origin: "http://127.0.0.1" },
    });
    // Throughput: a backlog of jobs with callbacks, drained and delivered.
    await Promise.all(
      Array.from({ length: options.events }, () =>
        tessera.store.submit({ job: withCallback(), idempotency: null, now: Date.now() }),
      ),
    );
    const started = performance.now();
    await tessera.start();
    await until(() => receiver.ids.size >= options.events, 120_000);
    const deliveredPerSec = options.events / ((performance.now() - started) / 1000);
    const duplicates = [...receiver.ids.values()].reduce((n, times) => n + times - 1, 0);
    const missing = options.events - receiver.ids.size;

    // Latency: one job at a time on an idle system, completion to receipt.
    const samples: number[] = [];
    for (let i = 0; i < options.latencySamples; i++) {
      const done = new Promise<void>((resolve) => {
        receiver.onEvent = (finishedAt, receivedAt) => {
          samples.push(receivedAt - finishedAt);
          resolve();
        };
      });
      await tessera.store.submit({ job: withCallback(), idempotency: null, now: Date.now() });
      await done;
    }
    receiver.onEvent = null;

    const body = JSON.stringify({
      type: "job.succeeded",
      timestamp: new Date().toISOString(),
      data: { id: "x".repeat(400) },
    });
    const postsPerSec = await barePosts(receiver.url, options.events, PER_TENANT_IN_FLIGHT, body);
    return {
      events: options.events,
      deliveredPerSec,
      reference: { postsPerSec },
      ratio: deliveredPerSec / postsPerSec,
      latency: distribution(samples),
      duplicates,
      missing,
    };
  } finally {
    await tessera.close();
    await new Promise((resolve) => receiver.server.close(resolve));
  }
}

export function renderCallbackTable(result: CallbackResult): string {
  const f = (n: number) => n.toFixed(n < 10 ? 2 : 0);
  return [
    `Callbacks (SQLite, one tenant: at most ${PER_TENANT_IN_FLIGHT} deliveries in flight; ${result.events} events)`,
    `  delivered/s ${f(result.deliveredPerSec)} vs bare POSTs/s ${f(result.reference.postsPerSec)} = ${result.ratio.toFixed(2)}×`,
    `  completion → callback received: p50 ${f(result.latency.p50Ms)} ms, p99 ${f(result.latency.p99Ms)} ms (${result.latency.count} sequential jobs)`,
    `  duplicates ${result.duplicates}, missing ${result.missing}`,
    "",
  ].join("\n");
}
