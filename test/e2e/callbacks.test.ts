/**
 * Callbacks end to end (CONTRACT "Callbacks (webhooks)"; RELIABILITY L7, S9, S10, P5 at CI
 * scale): a real Tessera on SQLite and real receivers on 127.0.0.1 (allow-listed), each request
 * verified with the `standardwebhooks` package.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { Webhook } from "standardwebhooks";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { AddressPolicy } from "../../src/callbacks/address-policy.js";
import { CallbackDeliverer } from "../../src/callbacks/deliverer.js";
import { generateWebhookSecret } from "../../src/callbacks/signature.js";
import { Metrics } from "../../src/http/metrics.js";
import { UrlSigner, signingKey } from "../../src/http/signed-url.js";
import { SqliteStore } from "../../src/store/sqlite/store.js";
import type { Config } from "../../src/config.js";
import { bearer, http, startServer, TEST_SECRET, type TestServer } from "../helpers/server.js";
import type { Job } from "./support.js";

// --- receivers ---------------------------------------------------------------------------------

interface Delivery {
  id: string;
  timestamp: number;
  signature: string;
  raw: string;
  headers: Record<string, string>;
  body: { type: string; timestamp: string; data: Job };
  /** When the request arrived (ms). */
  at: number;
  /** The error of `new Webhook(secret).verify` with every secret tried, or null when one verified. */
  verifyError: string | null;
}

type Respond = (delivery: Delivery, res: ServerResponse, n: number) => void | Promise<void>;

interface Receiver {
  url: string;
  port: number;
  deliveries: Delivery[];
  /** Connections accepted (including ones that never sent a full request). */
  connections: number;
  /** Requests currently open (received, not yet answered or closed). */
  open: number;
  maxOpen: number;
  /** Secrets the receiver verifies with (any one must verify). */
  secrets: string[];
  respond: Respond;
  waitFor(count: number, timeoutMs?: number, what?: (d: Delivery) => boolean): Promise<Delivery[]>;
  close(): Promise<void>;
}

const receivers = new Set<Receiver>();

function headerMap(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (typeof v === "string") out[k] = v;
  return out;
}

async function startReceiver(
  secrets: string[],
  respond: Respond = (_d, res) => void res.writeHead(204).end(),
): Promise<Receiver> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    receiver.open++;
    receiver.maxOpen = Math.max(receiver.maxOpen, receiver.open);
    res.once("close", () => receiver.open--);
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      const headers = headerMap(req.headers);
      let verifyError: string | null = "no secret";
      for (const secret of receiver.secrets) {
        try {
          new Webhook(secret).verify(raw, headers);
          verifyError = null;
          break;
        } catch (error) {
          verifyError = (error as Error).message;
        }
      }
      let body: Delivery["body"];
      try {
        body = JSON.parse(raw) as Delivery["body"];
      } catch {
        body = { type: "unparsable", timestamp: "", data: {} as Job };
      }
      const delivery: Delivery = {
        id: headers["webhook-id"] ?? "",
        timestamp: Number(headers["webhook-timestamp"]),
        signature: headers["webhook-signature"] ?? "",
        raw,
        headers,
        body,
        at: Date.now(),
        verifyError,
      };
      receiver.deliveries.push(delivery);
      void Promise.resolve(receiver.respond(delivery, res, receiver.deliveries.length)).catch(() =>
        res.destroy(),
      );
    });
  });
  server.on("connection", (socket: Socket) => {
    receiver.connections++;
    sockets.add(socket);
    socket.on("error", () => undefined);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const receiver: Receiver = {
    url: `http://127.0.0.1:${port}/hook`,
    port,
    deliveries: [],
    connections: 0,
    open: 0,
    maxOpen: 0,
    secrets,
    respond,
    async waitFor(count, timeoutMs = 15_000, what = () => true) {
      const until = performance.now() + timeoutMs;
      for (;;) {
        const matching = receiver.deliveries.filter(what);
        if (matching.length >= count) return matching;
        if (performance.now() > until) {
          throw new Error(`receiver: ${matching.length} of ${count} deliveries after ${timeoutMs} ms`);
        }
        await sleep(20);
      }
    },
    async close() {
      receivers.delete(receiver);
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  receivers.add(receiver);
  return receiver;
}

async function closeReceivers(): Promise<void> {
  await Promise.all([...receivers].map((r) => r.close()));
}

// --- Tessera -----------------------------------------------------------------------------------

const BASE_CONFIG: Partial<Config> = {
  callbackAllow: ["127.0.0.1"],
  callbackRetryBaseMs: 100,
  callbackTimeoutMs: 2000,
};

interface Tenant {
  name: string;
  id: string;
  key: string;
  secret: string;
}

async function tenant(server: TestServer, name = `t-${randomUUID().slice(0, 8)}`): Promise<Tenant> {
  const key = await server.key(name);
  const id = await server.tessera.store.ensureTenant({ name, now: Date.now() });
  const [secret] = await server.tessera.store.webhookSecrets({ tenantId: id, now: Date.now() });
  return { name, id, key, secret: secret! };
}

async function submit(server: TestServer, t: Tenant, body: Record<string, unknown>): Promise<Job> {
  const res = await http(`${server.url}/v1/jobs`, { headers: bearer(t.key), json: body });
  if (res.status !== 202) throw new Error(`submit answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as Job;
}

interface AttemptView {
  eventId: string;
  event: string;
  attempt: number;
  at: number;
  statusCode: number | null;
  latencyMs: number;
  error: string | null;
  nextAttemptAt: number | null;
}

async function deliveries(server: TestServer, t: Tenant, jobId: string): Promise<AttemptView[]> {
  const res = await http(`${server.url}/v1/jobs/${jobId}/deliveries`, { headers: bearer(t.key) });
  expect(res.status).toBe(200);
  return ((await res.json()) as { items: AttemptView[] }).items;
}

async function waitForAttempts(
  server: TestServer,
  t: Tenant,
  jobId: string,
  count: number,
  timeoutMs = 15_000,
): Promise<AttemptView[]> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const items = await deliveries(server, t, jobId);
    if (items.length >= count) return items;
    if (Date.now() > until)
      throw new Error(`${items.length} of ${count} attempts recorded after ${timeoutMs} ms`);
    await sleep(50);
  }
}

function expectAllVerified(receiver: Receiver): void {
  expect(receiver.deliveries.map((d) => d.verifyError)).toEqual(receiver.deliveries.map(() => null));
}

// --- the tests ---------------------------------------------------------------------------------

describe("callbacks", () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer({ config: BASE_CONFIG });
  });
  afterAll(async () => {
    await closeReceivers();
    await server?.close();
  });
  afterEach(closeReceivers);

  it("delivers {type, timestamp, data} with a signed result URL; the receiver already sees the terminal state", async () => {
    const t = await tenant(server);
    const seen: { status: string; event: string }[] = [];
    const receiver = await startReceiver([t.secret], async (delivery, res) => {
      // On receipt, read the job back: the event was sent after its change committed.
      const current = await http(delivery.body.data.links.self, { headers: bearer(t.key) });
      seen.push({ status: ((await current.json()) as Job).status, event: delivery.body.type });
      res.writeHead(200).end("ok");
    });
    const jobs: Job[] = [];
    for (let i = 0; i < 10; i++)
      jobs.push(
        await submit(server, t, { type: "demo.echo", input: { i }, callback: { url: receiver.url } }),
      );
    const failed = await submit(server, t, {
      type: "demo.fail",
      input: { message: "nope", status: 422 },
      callback: { url: receiver.url },
    });

    const got = await receiver.waitFor(11);
    for (let i = 0; seen.length < 11 && i < 100; i++) await sleep(20); // the receiver's reads
    expectAllVerified(receiver);
    expect(new Set(got.map((d) => d.id)).size).toBe(11);
    expect(got.every((d) => /^msg_[0-9a-f]{32}$/.test(d.id))).toBe(true);
    expect(seen.every((s) => s.status === (s.event === "job.succeeded" ? "succeeded" : "failed"))).toBe(true);
    expect(seen).toHaveLength(11);

    const ok = got.find((d) => d.body.data.id === jobs[3]!.id)!;
    expect(Object.keys(ok.body).sort()).toEqual(["data", "timestamp", "type"]);
    expect(ok.body.type).toBe("job.succeeded");
    expect(Number.isNaN(Date.parse(ok.body.timestamp))).toBe(false);
    expect(ok.body.data).toMatchObject({ id: jobs[3]!.id, type: "demo.echo", status: "succeeded" });
    expect(ok.headers["content-type"]).toMatch(/^application\/json/);
    expect(Math.abs(ok.timestamp - Date.now() / 1000)).toBeLessThan(60);
    expect(ok.body.data.links.self).toBe(`${server.url}/v1/jobs/${jobs[3]!.id}`);
    // The signed result URL works without credentials.
    const result = await http(ok.body.data.links.result!);
    expect(result.status).toBe(200);
    expect(await result.json()).toEqual({ i: 3 });

    const bad = got.find((d) => d.body.data.id === failed.id)!;
    expect(bad.body.type).toBe("job.failed");
    expect(bad.body.data.status).toBe("failed");
    expect(bad.body.data.error).toMatchObject({ status: 422 });

    // Each event's single attempt is listed; another tenant sees nothing.
    const attempts = await waitForAttempts(server, t, jobs[3]!.id, 1);
    expect(attempts).toEqual([
      expect.objectContaining({
        eventId: ok.id,
        event: "job.succeeded",
        attempt: 1,
        statusCode: 200,
        error: null,
        nextAttemptAt: null,
      }),
    ]);
    const other = await tenant(server);
    const foreign = await http(`${server.url}/v1/jobs/${jobs[3]!.id}/deliveries`, {
      headers: bearer(other.key),
    });
    expect(foreign.status).toBe(404);
    expect((await http(`${server.url}/v1/jobs/${jobs[3]!.id}/deliveries`)).status).toBe(401);

    const metrics = await (await http(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/tessera_callback_attempts_total\{outcome="delivered"\} \d+/);
  });

  it("retries 500, 500, then 200: one webhook-id, fresh timestamps, identical bytes, three attempts listed", async () => {
    const t = await tenant(server);
    const receiver = await startReceiver(
      [t.secret],
      (_d, res, n) => void res.writeHead(n <= 2 ? 500 : 200).end(n <= 2 ? "busy" : "ok"),
    );
    const job = await submit(server, t, {
      type: "demo.echo",
      input: { retry: true },
      callback: { url: receiver.url },
    });
    const got = await receiver.waitFor(3, 20_000);
    expectAllVerified(receiver);
    expect(new Set(got.map((d) => d.id)).size).toBe(1);
    expect(got.every((d) => d.raw === got[0]!.raw)).toBe(true);
    // webhook-timestamp is the attempt's time: retries at least a second apart sign afresh.
    expect(got[1]!.timestamp).toBeGreaterThan(got[0]!.timestamp);
    expect(got[2]!.timestamp).toBeGreaterThan(got[1]!.timestamp);
    expect(got[0]!.signature).not.toBe(got[1]!.signature);

    const attempts = await waitForAttempts(server, t, job.id, 3);
    expect(attempts.map((a) => [a.attempt, a.statusCode])).toEqual([
      [1, 500],
      [2, 500],
      [3, 200],
    ]);
    expect(attempts.every((a) => a.eventId === got[0]!.id && a.event === "job.succeeded")).toBe(true);
    expect(attempts[0]!.error).toMatch(/500/);
    expect(attempts[2]!.error).toBeNull();
    expect(attempts[2]!.nextAttemptAt).toBeNull();
    for (const i of [0, 1]) {
      expect(attempts[i]!.nextAttemptAt).toBeGreaterThan(attempts[i]!.at);
      expect(attempts[i + 1]!.at).toBeGreaterThanOrEqual(attempts[i]!.nextAttemptAt!);
      expect(attempts[i]!.latencyMs).toBeGreaterThanOrEqual(0);
    }
    await sleep(1500);
    expect(receiver.deliveries).toHaveLength(3);
  });

  it("410 stops delivery and is recorded", async () => {
    const t = await tenant(server);
    const receiver = await startReceiver([t.secret], (_d, res) => void res.writeHead(410).end("gone"));
    const job = await submit(server, t, { type: "demo.echo", input: 1, callback: { url: receiver.url } });
    await receiver.waitFor(1);
    const attempts = await waitForAttempts(server, t, job.id, 1);
    expect(attempts).toEqual([expect.objectContaining({ attempt: 1, statusCode: 410, nextAttemptAt: null })]);
    await sleep(2500);
    expect(receiver.deliveries).toHaveLength(1);
    expect(await deliveries(server, t, job.id)).toHaveLength(1);
  });

  it("429 with Retry-After: the next attempt is not before it", async () => {
    const t = await tenant(server);
    const receiver = await startReceiver([t.secret], (_d, res, n) => {
      if (n === 1) res.writeHead(429, { "retry-after": "3" }).end("slow down");
      else res.writeHead(204).end();
    });
    const job = await submit(server, t, { type: "demo.echo", input: 1, callback: { url: receiver.url } });
    const got = await receiver.waitFor(2, 20_000);
    expectAllVerified(receiver);
    expect(got[1]!.at - got[0]!.at).toBeGreaterThanOrEqual(3000);
    expect(got[1]!.id).toBe(got[0]!.id);
    const attempts = await waitForAttempts(server, t, job.id, 2);
    expect(attempts[0]).toMatchObject({ statusCode: 429 });
    expect(attempts[0]!.nextAttemptAt! - attempts[0]!.at).toBeGreaterThanOrEqual(3000);
    expect(attempts[1]).toMatchObject({ statusCode: 204, nextAttemptAt: null });
  });

  it("failures are always reported: events [job.failed] still gets job.canceled and job.timed_out, not job.succeeded", async () => {
    const t = await tenant(server);
    const receiver = await startReceiver([t.secret]);
    const callback = { url: receiver.url, events: ["job.failed"] };
    const succeeded = await submit(server, t, { type: "demo.echo", input: 1, callback });
    const failed = await submit(server, t, {
      type: "demo.fail",
      input: { message: "x", status: 400 },
      callback,
    });
    const canceled = await submit(server, t, { type: "demo.sleep", input: { ms: 60_000 }, callback });
    const cancel = await http(`${server.url}/v1/jobs/${canceled.id}/cancel`, {
      method: "POST",
      headers: bearer(t.key),
    });
    expect(cancel.status).toBe(200);
    const timedOut = await submit(server, t, {
      type: "demo.sleep",
      input: { ms: 60_000 },
      timeoutSeconds: 1,
      callback,
    });

    const got = await receiver.waitFor(3, 20_000);
    await sleep(500);
    expectAllVerified(receiver);
    const byJob = new Map(receiver.deliveries.map((d) => [d.body.data.id, d.body.type]));
    expect(byJob.get(failed.id)).toBe("job.failed");
    expect(byJob.get(canceled.id)).toBe("job.canceled");
    expect(byJob.get(timedOut.id)).toBe("job.timed_out");
    expect(byJob.has(succeeded.id)).toBe(false);
    expect(got.find((d) => d.body.type === "job.timed_out")!.body.data.status).toBe("timed_out");
    expect(receiver.deliveries).toHaveLength(3);
  });

  it("job.progress is coalesced: at most about one event a second", async () => {
    const t = await tenant(server);
    const receiver = await startReceiver([t.secret]);
    // demo.sleep reports progress ten times, every 300 ms.
    const job = await submit(server, t, {
      type: "demo.sleep",
      input: { ms: 3000 },
      callback: { url: receiver.url, events: ["job.progress", "job.succeeded"] },
    });
    await receiver.waitFor(1, 20_000, (d) => d.body.type === "job.succeeded");
    await sleep(300);
    expectAllVerified(receiver);
    const progress = receiver.deliveries.filter((d) => d.body.type === "job.progress");
    expect(progress.length).toBeGreaterThanOrEqual(1);
    expect(progress.length).toBeLessThanOrEqual(5);
    expect(new Set(progress.map((d) => d.id)).size).toBe(progress.length);
    // Due a second apart; arrivals may be a little closer (the first one's send latency).
    for (let i = 1; i < progress.length; i++)
      expect(progress[i]!.at - progress[i - 1]!.at).toBeGreaterThanOrEqual(700);
    for (const d of progress) {
      expect(d.body.data).toMatchObject({ id: job.id, status: "running" });
      expect(d.body.data.progress?.percent).toBeGreaterThan(0);
      expect(d.body.data.links.result).toBeUndefined();
    }
    const percents = progress.map((d) => d.body.data.progress!.percent!);
    expect([...percents].sort((a, b) => a - b)).toEqual(percents);
    expect(receiver.deliveries.filter((d) => d.body.type === "job.succeeded")).toHaveLength(1);
  });

  it("verify: a signed webhook.ping first; 2xx accepts the job, 500 refuses it with no job created", async () => {
    const t = await tenant(server);
    const good = await startReceiver([t.secret]);
    const res = await http(`${server.url}/v1/jobs`, {
      headers: bearer(t.key),
      json: { type: "demo.echo", input: 1, callback: { url: good.url, verify: true } },
    });
    expect(res.status).toBe(202);
    const job = (await res.json()) as Job;
    const [ping] = await good.waitFor(1, 5000, (d) => d.body.type === "webhook.ping");
    expect(ping!.verifyError).toBeNull();
    expect(ping!.body.data).toMatchObject({ jobType: "demo.echo" });
    await good.waitFor(1, 10_000, (d) => d.body.type === "job.succeeded" && d.body.data.id === job.id);
    expect(good.deliveries[0]!.body.type).toBe("webhook.ping"); // before the work

    const bad = await startReceiver([t.secret], (_d, r) => void r.writeHead(500).end());
    const refused = await http(`${server.url}/v1/jobs`, {
      headers: bearer(t.key),
      json: { type: "demo.echo", input: 2, callback: { url: bad.url, verify: true } },
    });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { type: string }).type).toMatch(/callback-unreachable$/);
    expect(bad.deliveries.map((d) => d.body.type)).toEqual(["webhook.ping"]);
    expect(bad.deliveries[0]!.verifyError).toBeNull();
    const listed = (await (await http(`${server.url}/v1/jobs`, { headers: bearer(t.key) })).json()) as {
      items: Job[];
    };
    expect(listed.items.map((j) => j.id)).toEqual([job.id]);
    await sleep(500);
    expect(bad.deliveries).toHaveLength(1);
  });

  it("during a rotation the header carries two v1 signatures, each verifying under its own secret", async () => {
    const t = await tenant(server);
    const receiver = await startReceiver([t.secret]);
    await submit(server, t, { type: "demo.echo", input: "before", callback: { url: receiver.url } });
    const [before] = await receiver.waitFor(1);
    expect(before!.signature.split(" ")).toHaveLength(1);

    const next = generateWebhookSecret();
    const now = Date.now();
    const secrets = await server.tessera.store.rotateWebhookSecret({
      tenantName: t.name,
      secret: next,
      previousUntil: now + 3_600_000,
      now,
    });
    expect(secrets).toEqual([next, t.secret]);
    await submit(server, t, { type: "demo.echo", input: "during", callback: { url: receiver.url } });
    const [, during] = await receiver.waitFor(2);
    const signatures = during!.signature.split(" ");
    expect(signatures).toHaveLength(2);
    expect(signatures.every((s) => s.startsWith("v1,"))).toBe(true);
    const only = (signature: string) => ({ ...during!.headers, "webhook-signature": signature });
    expect(() => new Webhook(next).verify(during!.raw, only(signatures[0]!))).not.toThrow();
    expect(() => new Webhook(t.secret).verify(during!.raw, only(signatures[1]!))).not.toThrow();
    expect(() => new Webhook(t.secret).verify(during!.raw, only(signatures[0]!))).toThrow();
    expect(() => new Webhook(next).verify(during!.raw, only(signatures[1]!))).toThrow();

    // Once the overlap ends, only the new secret signs.
    await server.tessera.store.rotateWebhookSecret({
      tenantName: t.name,
      secret: generateWebhookSecret(),
      previousUntil: Date.now() - 1,
      now: Date.now(),
    });
    const [current] = await server.tessera.store.webhookSecrets({ tenantId: t.id, now: Date.now() });
    receiver.secrets = [current!];
    await submit(server, t, { type: "demo.echo", input: "after", callback: { url: receiver.url } });
    const [, , after] = await receiver.waitFor(3);
    expect(after!.signature.split(" ")).toHaveLength(1);
    expect(after!.verifyError).toBeNull();
    expect(() => new Webhook(next).verify(after!.raw, after!.headers)).toThrow();
  });

  it("each tenant has its own secret: A's secret never verifies B's events", async () => {
    const a = await tenant(server);
    const b = await tenant(server);
    expect(a.secret).not.toBe(b.secret);
    expect(Buffer.from(a.secret.slice(6), "base64").length).toBeGreaterThanOrEqual(24);
    const ra = await startReceiver([a.secret]);
    const rb = await startReceiver([b.secret]);
    await submit(server, a, { type: "demo.echo", input: "a", callback: { url: ra.url } });
    await submit(server, b, { type: "demo.echo", input: "b", callback: { url: rb.url } });
    const [fromA] = await ra.waitFor(1);
    const [fromB] = await rb.waitFor(1);
    expectAllVerified(ra);
    expectAllVerified(rb);
    expect(() => new Webhook(a.secret).verify(fromB!.raw, fromB!.headers)).toThrow();
    expect(() => new Webhook(b.secret).verify(fromA!.raw, fromA!.headers)).toThrow();
  });
});

describe("hostile receivers (S10)", () => {
  let server: TestServer;

  beforeAll(async () => {
    // No retries (a zero retry window): every failed attempt is final, which keeps this fast.
    server = await startServer({ config: { ...BASE_CONFIG, callbackRetryHours: 0, callbackTimeoutMs: 700 } });
  });
  afterAll(async () => {
    await closeReceivers();
    await server?.close();
  });
  afterEach(closeReceivers);

  it("an endless body: at most a capped excerpt is read and stored", async () => {
    const t = await tenant(server);
    let written = 0;
    const receiver = await startReceiver([t.secret], (_d, res) => {
      res.writeHead(500, { "content-type": "text/plain" });
      const chunk = Buffer.alloc(64 * 1024, "x");
      const pump = () => {
        while (!res.destroyed && written < 1024 * 1024 * 1024) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once("drain", pump);
        }
        res.end();
      };
      res.on("error", () => undefined);
      pump();
    });
    const job = await submit(server, t, { type: "demo.echo", input: 1, callback: { url: receiver.url } });
    const [attempt] = await waitForAttempts(server, t, job.id, 1);
    expect(attempt).toMatchObject({ statusCode: 500, nextAttemptAt: null });
    expect(attempt!.error!.length).toBeLessThanOrEqual(1024);
    expect(attempt!.latencyMs).toBeLessThan(700); // answered from the capped read, not a timeout
    await sleep(200);
    expect(written).toBeLessThan(64 * 1024 * 1024); // the rest was never read
  });

  it("never answers: the timeout is recorded", async () => {
    const t = await tenant(server);
    const receiver = await startReceiver([t.secret], () => undefined);
    const job = await submit(server, t, { type: "demo.echo", input: 1, callback: { url: receiver.url } });
    const [attempt] = await waitForAttempts(server, t, job.id, 1);
    expect(attempt).toMatchObject({ statusCode: null, nextAttemptAt: null });
    expect(attempt!.error).toMatch(/700 ms/);
    expect(attempt!.latencyMs).toBeGreaterThanOrEqual(650);
    expect(attempt!.latencyMs).toBeLessThan(5000);
    expect(receiver.deliveries).toHaveLength(1);
  });

  it("301 is not followed and is recorded as a failed attempt", async () => {
    const t = await tenant(server);
    const canary = await startReceiver([t.secret]);
    const receiver = await startReceiver(
      [t.secret],
      (_d, res) => void res.writeHead(301, { location: `http://127.0.0.1:${canary.port}/` }).end(),
    );
    const job = await submit(server, t, { type: "demo.echo", input: 1, callback: { url: receiver.url } });
    const [attempt] = await waitForAttempts(server, t, job.id, 1);
    expect(attempt).toMatchObject({ statusCode: 301, nextAttemptAt: null });
    expect(attempt!.error).toMatch(/301/);
    await sleep(300);
    expect(canary.connections).toBe(0);
  });
});

describe("one tenant's hanging receiver (S10)", () => {
  let server: TestServer;
  afterAll(async () => {
    await closeReceivers();
    await server?.close();
  });

  it("does not delay another tenant's deliveries; at most 4 of its events are in flight", async () => {
    server = await startServer({ config: { ...BASE_CONFIG, callbackTimeoutMs: 4000 } });
    const a = await tenant(server);
    const b = await tenant(server);
    const hanging = await startReceiver([a.secret], () => undefined);
    const fast = await startReceiver([b.secret]);
    for (let i = 0; i < 30; i++)
      await submit(server, a, { type: "demo.echo", input: i, callback: { url: hanging.url } });
    await hanging.waitFor(4, 10_000);
    await sleep(300); // let the deliverer claim what it will

    const started = Date.now();
    for (let i = 0; i < 5; i++)
      await submit(server, b, { type: "demo.echo", input: i, callback: { url: fast.url } });
    const got = await fast.waitFor(5, 15_000);
    const latest = Math.max(...got.map((d) => d.at)) - started;
    expectAllVerified(fast);
    expect(latest).toBeLessThan(2000); // well under the 4 s the hanging receiver holds each attempt
    expect(hanging.maxOpen).toBeLessThanOrEqual(4);
  });
});

describe("signatures over time (S9, unit level with a fake clock)", () => {
  let dir: string;
  let store: SqliteStore;
  let deliverer: CallbackDeliverer | undefined;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "tessera-s9-"));
    store = new SqliteStore({ path: join(dir, "tessera.db") });
  });
  afterAll(async () => {
    vi.useRealTimers();
    await deliverer?.stop();
    await closeReceivers();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("a retry sent more than 5 minutes after the event still verifies: webhook-timestamp is the attempt time", async () => {
    // Date is fake (the receiver's standardwebhooks reads it too); timers and sockets are real.
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now(), shouldAdvanceTime: true });
    const now = () => Date.now();
    const tenantId = await store.ensureTenant({ name: "s9", now: now() });
    const [secret] = await store.webhookSecrets({ tenantId, now: now() });
    const receiver = await startReceiver(
      [secret!],
      (_d, res, n) => void res.writeHead(n <= 2 ? 503 : 200).end(),
    );
    deliverer = new CallbackDeliverer({
      store,
      policy: new AddressPolicy(["127.0.0.1"]),
      signer: new UrlSigner([signingKey(TEST_SECRET)], 86_400),
      fallbackOrigin: "http://tessera.test",
      logger: pino({ level: "silent" }),
      metrics: new Metrics(),
      now,
      random: () => 1, // no jitter: the first retry 6 min after the first attempt, the next 12 min after that
      options: {
        concurrency: 4,
        perTenant: 4,
        retryWindowMs: 24 * 3_600_000,
        baseDelayMs: 6 * 60_000,
        maxDelayMs: 6 * 3_600_000,
        pollIntervalMs: 50,
        limits: { timeoutMs: 2000, maxResponseBytes: 65_536 },
      },
    });
    deliverer.start();

    const eventAt = now();
    const outcome = await store.submit({
      job: {
        id: randomUUID(),
        tenantId,
        type: "demo.echo",
        input: 1,
        priority: 0,
        runAt: eventAt,
        deadlineAt: eventAt + 3_600_000,
        maxAttempts: 1,
        metadata: {},
        callback: { url: receiver.url },
      },
      idempotency: null,
      now: eventAt,
    });
    expect(outcome.kind).toBe("created");
    const [claimed] = await store.claim({ types: ["demo.echo"], limit: 1, leaseMs: 30_000, now: eventAt });
    await store.complete({
      lease: { id: claimed!.id, leaseToken: claimed!.leaseToken },
      result: { kind: "json", json: "1" },
      now: eventAt,
    });

    await receiver.waitFor(1, 5000);
    let attempts = await waitFor(() => store.listDeliveries({ tenantId, jobId: claimed!.id }), 1);
    expect(attempts[0]!.nextAttemptAt).toBe(attempts[0]!.at + 6 * 60_000);

    vi.setSystemTime(attempts[0]!.nextAttemptAt!);
    await receiver.waitFor(2, 5000);
    attempts = await waitFor(() => store.listDeliveries({ tenantId, jobId: claimed!.id }), 2);
    expect(attempts[1]!.nextAttemptAt).toBe(attempts[1]!.at + 12 * 60_000);

    vi.setSystemTime(attempts[1]!.nextAttemptAt!);
    const got = await receiver.waitFor(3, 5000);
    attempts = await waitFor(() => store.listDeliveries({ tenantId, jobId: claimed!.id }), 3);
    expect(attempts.map((a) => a.statusCode)).toEqual([503, 503, 200]);

    expectAllVerified(receiver); // including the one 18 minutes after the event
    expect(got[2]!.timestamp * 1000 - eventAt).toBeGreaterThan(5 * 60_000);
    expect(new Set(got.map((d) => d.id)).size).toBe(1);
    expect(got.every((d) => d.raw === got[0]!.raw)).toBe(true);
    expect(Date.parse(got[2]!.body.timestamp)).toBe(eventAt); // the body keeps the event's time
    vi.useRealTimers();
  });
});

describe("deliverer scheduling (unit level)", () => {
  let dir: string;
  let store: SqliteStore;
  let deliverer: CallbackDeliverer | undefined;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "tessera-deliverer-"));
    store = new SqliteStore({ path: join(dir, "tessera.db") });
  });
  afterAll(async () => {
    await deliverer?.stop();
    await closeReceivers();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("does not spin on the database while a delivery is in flight", async () => {
    let claims = 0;
    const counting = new Proxy(store, {
      get(target, name, receiver) {
        if (name === "claimDeliveries") claims++;
        const value: unknown = Reflect.get(target, name, receiver);
        return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const tenantId = await store.ensureTenant({ name: "spin", now: Date.now() });
    const [secret] = await store.webhookSecrets({ tenantId, now: Date.now() });
    const slow = await startReceiver(
      [secret!],
      (_d, res) => void setTimeout(() => res.writeHead(200).end(), 1500),
    );
    deliverer = new CallbackDeliverer({
      store: counting,
      policy: new AddressPolicy(["127.0.0.1"]),
      signer: new UrlSigner([signingKey(TEST_SECRET)], 3600),
      fallbackOrigin: "http://tessera.test",
      logger: pino({ level: "silent" }),
      metrics: new Metrics(),
      now: () => Date.now(),
      options: {
        concurrency: 16,
        perTenant: 4,
        retryWindowMs: 3_600_000,
        baseDelayMs: 1000,
        maxDelayMs: 3_600_000,
        pollIntervalMs: 500,
        limits: { timeoutMs: 5000, maxResponseBytes: 65_536 },
      },
    });
    deliverer.start();
    const now = Date.now();
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const id = randomUUID();
      ids.push(id);
      await store.submit({
        job: {
          id,
          tenantId,
          type: "t",
          input: i,
          priority: 0,
          runAt: now,
          deadlineAt: now + 60_000,
          maxAttempts: 1,
          metadata: {},
          callback: { url: slow.url },
        },
        idempotency: null,
        now,
      });
    }
    const claimed = await store.claim({ types: ["t"], limit: 10, leaseMs: 30_000, now });
    const before = claims;
    for (const job of claimed)
      await store.complete({
        lease: { id: job.id, leaseToken: job.leaseToken },
        result: { kind: "none" },
        now,
      });
    await slow.waitFor(6, 10_000);
    const during = claims - before;
    // 4 in flight for 1.5 s, then 2: a handful of claims (wake-ups, polls), never hundreds.
    expect(during).toBeLessThan(40);
    expect(slow.maxOpen).toBeLessThanOrEqual(4);
    for (const id of ids) await waitFor(() => store.listDeliveries({ tenantId, jobId: id }), 1);
  });
});

async function waitFor<T>(read: () => Promise<T[]>, count: number, timeoutMs = 5000): Promise<T[]> {
  const until = performance.now() + timeoutMs;
  for (;;) {
    const items = await read();
    if (items.length >= count) return items;
    if (performance.now() > until) throw new Error(`${items.length} of ${count} after ${timeoutMs} ms`);
    await sleep(20);
  }
}
