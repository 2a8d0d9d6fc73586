/**
 * A receiver for Tessera's callbacks: it believes a delivery only once its Standard Webhooks
 * signature checks out, acknowledges fast, and processes each event once however often it
 * arrives.
 *
 *   WEBHOOK_SECRET=$(node dist/main.js webhooks secret --tenant dev) PORT=8080 \
 *     npx tsx examples/webhook-receiver/receiver.ts
 *
 * - `401` for anything unsigned, signed with another secret, altered on the way, or whose
 *   `webhook-timestamp` is more than 5 minutes off (a replay of an old capture).
 * - Deduplicated on `webhook-id`: Tessera keeps the same id on every retry of an event, so a
 *   redelivery (or a replay within the 5 minutes) is acknowledged but not processed again.
 * - Answers `200` as soon as the event is accepted; the work happens after the answer, one event
 *   at a time, so a slow step never makes Tessera time out and retry.
 *
 * Each processed event is printed as one JSON line on stdout; everything else goes to stderr.
 * Environment: WEBHOOK_SECRET (required, `whsec_…`), PORT (default 8080), HOST (127.0.0.1).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";

const secret = process.env.WEBHOOK_SECRET;
if (!secret) throw new Error("WEBHOOK_SECRET is required (tessera webhooks secret --tenant NAME)");
const webhook = new Webhook(secret);

/** Tessera's events: the four terminal ones, `job.progress` if asked for, `webhook.ping`. */
interface TesseraEvent {
  type: string;
  timestamp: string;
  data: {
    id?: string;
    status?: string;
    error?: unknown;
    links?: { result?: string };
  };
}

/** Larger bodies are refused; Tessera's events are a job representation, a few KiB. */
const MAX_BODY_BYTES = 256 * 1024;
/** How long an id is remembered: Tessera retries an event for 24 h (--callback-retry-hours). */
const REMEMBER_MS = 25 * 3_600_000;

// webhook-id -> when it was accepted. In memory here; a real receiver records the id in its own
// database (a unique column), in the same transaction as the event, before it answers.
const seen = new Map<string, number>();

function remember(id: string, now: number): boolean {
  for (const [old, at] of seen) {
    if (now - at < REMEMBER_MS) break; // insertion order: the rest are newer
    seen.delete(old);
  }
  if (seen.has(id)) return false;
  seen.set(id, now);
  return true;
}

// The work, after the answer, in arrival order.
let queue: Promise<void> = Promise.resolve();

async function processEvent(webhookId: string, event: TesseraEvent): Promise<void> {
  const line: Record<string, unknown> = {
    webhookId,
    type: event.type,
    job: event.data.id ?? null,
    status: event.data.status ?? null,
  };
  if (event.type === "job.succeeded" && event.data.links?.result) {
    // The signed result URL needs no credentials; it expires (--signed-url-ttl).
    const res = await fetch(event.data.links.result);
    const type = res.headers.get("content-type") ?? "";
    line.result = type.includes("json")
      ? await res.json()
      : `${(await res.arrayBuffer()).byteLength} bytes of ${type}`;
  } else if (event.data.error) {
    line.error = event.data.error;
  }
  console.log(JSON.stringify(line));
}

function answer(res: ServerResponse, status: number, body: Record<string, unknown>): void {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

function readBody(req: IncomingMessage): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        resolve(null);
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

const server = createServer((req, res) => {
  if (req.method !== "POST" || req.url !== "/hooks/tessera") return answer(res, 404, { error: "not found" });
  readBody(req).then(
    (body) => {
      if (body === null) return answer(res, 413, { error: "body too large" });
      // Verify the exact bytes received, before parsing anything: signature, then timestamp.
      let event: TesseraEvent;
      try {
        event = webhook.verify(body.toString("utf8"), {
          "webhook-id": String(req.headers["webhook-id"] ?? ""),
          "webhook-timestamp": String(req.headers["webhook-timestamp"] ?? ""),
          "webhook-signature": String(req.headers["webhook-signature"] ?? ""),
        }) as TesseraEvent;
      } catch (error) {
        console.error(`refused a delivery: ${(error as Error).message}`);
        return answer(res, 401, { error: "invalid signature" });
      }
      const webhookId = String(req.headers["webhook-id"]);
      if (!remember(webhookId, Date.now())) {
        console.error(`duplicate ${webhookId} (${event.type}): acknowledged, not processed again`);
        return answer(res, 200, { received: true, duplicate: true });
      }
      answer(res, 200, { received: true, duplicate: false });
      queue = queue
        .then(() => processEvent(webhookId, event))
        .catch((error: unknown) => console.error(`processing ${webhookId} failed: ${String(error)}`));
    },
    () => answer(res, 400, { error: "could not read the body" }),
  );
});

server.listen(Number(process.env.PORT ?? 8080), process.env.HOST ?? "127.0.0.1", () => {
  const { address, port } = server.address() as AddressInfo;
  console.error(`webhook receiver listening on http://${address}:${port}/hooks/tessera`);
});
for (const signal of ["SIGTERM", "SIGINT"] as const)
  process.on(signal, () => server.close(() => process.exit(0)));
