/**
 * examples/webhook-receiver as its README runs it: the built `tessera serve --dev --demo
 * --callback-allow 127.0.0.1`, the tenant's secret from `tessera webhooks secret`, and the
 * receiver (`npx tsx examples/webhook-receiver/receiver.ts`) on port 0.
 *
 * - A real callback from Tessera is verified, acknowledged (Tessera records the 200) and
 *   processed once: the receiver fetches the result from the signed URL in the event.
 * - A replay of the exact request Tessera sent (captured by a tap between the two), and a
 *   redelivery as Tessera makes one (same webhook-id, new timestamp, signed again), are
 *   acknowledged with 200 but not processed again.
 * - Unsigned, wrongly signed, altered and stale deliveries are 401 and never processed, and a
 *   refused delivery does not use up its webhook-id.
 *
 * "Not processed" is checked without waiting on a clock: the receiver processes in arrival
 * order, so once a later event's line is printed, an earlier one would have been printed too.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "../../src/client/index.js";
import { FAST, killAll, ROOT, spawnTessera, tesseraCli, waitFor, type Node } from "../helpers/cluster.js";
import { runExample, stopExamples, type ExampleProcess } from "../helpers/example-process.js";

interface Processed {
  webhookId: string;
  type: string;
  job: string | null;
  status: string | null;
  result?: unknown;
}

let dir: string;
let tessera: Node;
let secret: string;
let receiver: ExampleProcess;
let hookUrl: string;
/** Requests that passed through the tap on their way to the receiver. */
const tapped: { headers: IncomingHttpHeaders; body: Buffer; status: number }[] = [];
let tap: Server;
let tapUrl: string;

/** POST to the receiver as a sender would. */
async function deliver(headers: Record<string, string>, body: string | Buffer) {
  const res = await fetch(hookUrl, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
  return { status: res.status, body: (await res.json()) as { received?: boolean; duplicate?: boolean } };
}

/** Headers signed with `key` for `body`, as Tessera signs them. */
function signed(key: string, id: string, body: string, at = new Date()): Record<string, string> {
  return {
    "webhook-id": id,
    "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
    "webhook-signature": new Webhook(key).sign(id, at, body),
  };
}

const processed = () => receiver.jsonLines<Processed>();

/**
 * A valid event of its own, delivered and waited for: every delivery made before it has been
 * processed (or never will be) once its line is printed.
 */
async function barrier(): Promise<void> {
  const id = `msg_barrier_${randomBytes(6).toString("hex")}`;
  const body = JSON.stringify({
    type: "job.canceled",
    timestamp: new Date().toISOString(),
    data: { id: `job_${id}`, status: "canceled", error: null, links: {} },
  });
  expect((await deliver(signed(secret, id, body), body)).status).toBe(200);
  await waitFor("the barrier event", () => processed().some((p) => p.webhookId === id), 10_000);
}

beforeAll(async () => {
  expect(existsSync(join(ROOT, "dist/main.js")), "npm run build first").toBe(true);
  dir = mkdtempSync(join(tmpdir(), "tessera-webhooks-"));
  const db = join(dir, "hooks.db");
  tessera = await spawnTessera(["--dev", "--demo", "--db", db, "--callback-allow", "127.0.0.1", ...FAST], {
    built: true,
  });
  const cli = await tesseraCli(["webhooks", "secret", "--tenant", "dev", "--db", db]);
  expect(cli.code, cli.stderr).toBe(0);
  secret = cli.stdout.trim().split("\n")[0]!;
  expect(secret).toMatch(/^whsec_[A-Za-z0-9+/=]+$/);

  receiver = runExample("examples/webhook-receiver/receiver.ts", { WEBHOOK_SECRET: secret, PORT: "0" });
  hookUrl = (await receiver.waitForOutput(/webhook receiver listening on (http:\/\/[^\s]+)/))[1]!;

  // The tap: records each request Tessera sends, passes it on, and relays the answer.
  tap = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const headers: Record<string, string> = {};
      for (const name of ["content-type", "webhook-id", "webhook-timestamp", "webhook-signature"])
        headers[name] = String(req.headers[name]);
      fetch(hookUrl, { method: "POST", headers, body }).then(
        async (answer) => {
          tapped.push({ headers: req.headers, body, status: answer.status });
          res.writeHead(answer.status, { "content-type": "application/json" }).end(await answer.text());
        },
        () => res.writeHead(502).end(),
      );
    });
  });
  await new Promise<void>((resolve) => tap.listen(0, "127.0.0.1", resolve));
  tapUrl = `http://127.0.0.1:${(tap.address() as AddressInfo).port}/hooks/tessera`;
});

afterAll(async () => {
  await stopExamples();
  await killAll();
  await new Promise((resolve) => tap?.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

describe("examples/webhook-receiver", () => {
  it("verifies a real callback from Tessera, answers 200, and processes it once (result fetched)", async () => {
    const client = createClient({ baseUrl: tessera.url });
    const job = await client.submit("demo.echo", { order: 1234 }, { callback: hookUrl });
    const line = await waitFor(
      "the processed event",
      () => processed().find((p) => p.job === job.id),
      15_000,
    );
    expect(line).toMatchObject({ type: "job.succeeded", status: "succeeded", result: { order: 1234 } });
    expect(line.webhookId).toMatch(/^msg_/);

    // Tessera saw the receiver's 200: one attempt, delivered, nothing scheduled.
    const deliveries = await waitFor(
      "the recorded delivery",
      async () => {
        const res = await fetch(`${tessera.url}/v1/jobs/${job.id}/deliveries`);
        const { items } = (await res.json()) as {
          items: { eventId: string; statusCode: number | null; nextAttemptAt: number | null }[];
        };
        return items.length > 0 ? items : undefined;
      },
      10_000,
    );
    expect(deliveries).toEqual([
      expect.objectContaining({ eventId: line.webhookId, statusCode: 200, nextAttemptAt: null }),
    ]);
  });

  it("a replayed delivery and a redelivery with the same webhook-id are acknowledged, not processed twice", async () => {
    const client = createClient({ baseUrl: tessera.url });
    const job = await client.submit("demo.echo", { order: 5678 }, { callback: tapUrl });
    await waitFor("the processed event", () => processed().find((p) => p.job === job.id), 15_000);
    const original = tapped.find((t) => t.body.toString().includes(job.id))!;
    expect(original.status).toBe(200);
    const webhookId = String(original.headers["webhook-id"]);

    // The exact bytes and headers again (a replay within the 5-minute window).
    const replay = await deliver(
      {
        "webhook-id": webhookId,
        "webhook-timestamp": String(original.headers["webhook-timestamp"]),
        "webhook-signature": String(original.headers["webhook-signature"]),
      },
      original.body,
    );
    expect(replay).toEqual({ status: 200, body: { received: true, duplicate: true } });

    // A retry as Tessera sends one: same id and body, a new timestamp, signed again.
    const body = original.body.toString("utf8");
    const later = new Date(Date.now() + 30_000);
    const retry = await deliver(signed(secret, webhookId, body, later), body);
    expect(retry).toEqual({ status: 200, body: { received: true, duplicate: true } });

    await barrier();
    expect(processed().filter((p) => p.webhookId === webhookId)).toHaveLength(1);
    expect(receiver.stderr()).toContain(`duplicate ${webhookId} (job.succeeded)`);
  });

  it("unsigned, wrongly signed, altered and stale deliveries are 401 and never processed", async () => {
    const id = `msg_forged_${randomBytes(6).toString("hex")}`;
    const body = JSON.stringify({
      type: "job.succeeded",
      timestamp: new Date().toISOString(),
      data: { id: "job_forged", status: "succeeded", error: null, links: {} },
    });
    const otherSecret = `whsec_${randomBytes(32).toString("base64")}`;
    const attempts: [string, Record<string, string>, string][] = [
      ["no signature headers", {}, body],
      ["another secret", signed(otherSecret, id, body), body],
      ["a body altered after signing", signed(secret, id, body), body.replace("job_forged", "job_other")],
      ["a timestamp 10 minutes old", signed(secret, id, body, new Date(Date.now() - 600_000)), body],
      ["a timestamp 10 minutes ahead", signed(secret, id, body, new Date(Date.now() + 600_000)), body],
    ];
    for (const [what, headers, sent] of attempts) {
      const res = await deliver(headers, sent);
      expect(res.status, what).toBe(401);
    }
    await barrier();
    expect(
      processed().filter((p) => p.webhookId === id || p.job === "job_forged" || p.job === "job_other"),
    ).toEqual([]);
    expect(receiver.stderr()).toMatch(/refused a delivery: .*timestamp too old/i);

    // Refused deliveries do not use up the id: the genuine event with it is still processed.
    const genuine = await deliver(signed(secret, id, body), body);
    expect(genuine).toEqual({ status: 200, body: { received: true, duplicate: false } });
    await waitFor("the genuine event", () => processed().some((p) => p.webhookId === id), 10_000);
  });
});
