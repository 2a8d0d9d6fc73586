/**
 * The outbox survives a crash (RELIABILITY F11, P5): a job completes while its receiver is down,
 * so the event stays pending with a retry scheduled; the server is SIGKILLed; a new server on
 * the same database delivers it once the receiver is up, with the original `webhook-id` and
 * the very bytes of the first attempt's body, freshly signed. Real processes, on SQLite and on
 * PostgreSQL.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Webhook } from "standardwebhooks";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { PostgresStore } from "../../src/store/postgres/store.js";
import { SqliteStore } from "../../src/store/sqlite/store.js";
import type { Store } from "../../src/store/store.js";
import { DEV_TENANT } from "../../src/tessera.js";
import { FAST, killAll, logLines, pgQuery, spawnTessera, waitFor } from "../helpers/cluster.js";
import { freshSchema, PG_URL } from "../helpers/postgres.js";
import { http } from "../helpers/server.js";

interface Received {
  id: string;
  timestamp: string;
  raw: string;
  headers: Record<string, string>;
}

/** A free port on 127.0.0.1 with nothing listening: connections to it are refused. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

async function receiverOn(port: number): Promise<{ received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers[k] = v;
      received.push({
        id: headers["webhook-id"] ?? "",
        timestamp: headers["webhook-timestamp"] ?? "",
        raw: Buffer.concat(chunks).toString("utf8"),
        headers,
      });
      res.writeHead(204).end();
    });
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    received,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

interface Attempt {
  eventId: string;
  event: string;
  attempt: number;
  at: number;
  statusCode: number | null;
  error: string | null;
  nextAttemptAt: number | null;
}

async function attemptsOf(url: string, jobId: string): Promise<Attempt[]> {
  const res = await http(`${url}/v1/jobs/${jobId}/deliveries`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { items: Attempt[] }).items;
}

interface Backend {
  args: string[];
  /** The stored event rows (id, status, body), read around Tessera. */
  events(): Promise<{ id: string; status: string; body: string | null }[]>;
  /** A store on the same database, to read the dev tenant's secret. */
  openStore(): Promise<Store>;
  cleanup(): Promise<void>;
}

function sqliteBackend(): Backend {
  const dir = mkdtempSync(join(tmpdir(), "tessera-cb-restart-"));
  const db = join(dir, "tessera.db");
  return {
    args: ["--db", db],
    async events() {
      const raw = new Database(db, { readonly: true });
      try {
        return raw.prepare("SELECT id, status, body FROM webhook_events").all() as {
          id: string;
          status: string;
          body: string | null;
        }[];
      } finally {
        raw.close();
      }
    },
    async openStore() {
      return new SqliteStore({ path: db });
    },
    async cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function postgresBackend(): Backend {
  const schema = freshSchema("cbrestart");
  return {
    args: ["--db", PG_URL, "--db-schema", schema, "--db-pool-size", "4"],
    events: () =>
      pgQuery<{ id: string; status: string; body: string | null }>(
        PG_URL,
        `SELECT id, status, body FROM ${schema}.webhook_events`,
      ),
    openStore: () => new PostgresStore({ connectionString: PG_URL, schema, poolSize: 2 }).open(),
    async cleanup() {
      await pgQuery(PG_URL, `DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    },
  };
}

const backends: Backend[] = [];

afterEach(async () => {
  await killAll();
});
afterAll(async () => {
  for (const backend of backends) await backend.cleanup().catch(() => undefined);
});

describe.each([
  ["sqlite", sqliteBackend],
  ["postgres", postgresBackend],
])("callbacks survive kill -9 (%s)", (_name, makeBackend) => {
  it(
    "a pending event is delivered after a restart with its original webhook-id and body",
    { timeout: 60_000 },
    async () => {
      const backend = makeBackend();
      backends.push(backend);
      const port = await freePort(); // the receiver is down: connections are refused
      const args = [
        "--dev",
        "--demo",
        ...backend.args,
        ...FAST,
        "--log-level",
        "info",
        "--callback-allow",
        "127.0.0.1",
        "--callback-retry-base-ms",
        "1500",
        "--callback-timeout-ms",
        "2000",
      ];
      const first = await spawnTessera(args, { name: "first", timeoutMs: 30_000 });
      const submitted = await http(`${first.url}/v1/jobs`, {
        json: {
          type: "demo.echo",
          input: { crash: true },
          callback: { url: `http://127.0.0.1:${port}/hook` },
        },
      });
      expect(submitted.status).toBe(202);
      const job = (await submitted.json()) as { id: string };

      // The first attempt failed (refused) and a retry is scheduled: the event is pending.
      const [failed] = await waitFor(
        "a failed first attempt",
        async () => {
          const items = await attemptsOf(first.url, job.id);
          return items.length > 0 ? items : undefined;
        },
        15_000,
      );
      expect(failed).toMatchObject({ event: "job.succeeded", attempt: 1, statusCode: null });
      expect(failed!.error).toMatch(/ECONNREFUSED|refused/i);
      expect(failed!.nextAttemptAt).toBeGreaterThan(failed!.at);
      const [stored] = await backend.events();
      expect(stored).toMatchObject({ id: failed!.eventId, status: "pending" });
      expect(stored!.body).not.toBeNull();
      const firstBody = stored!.body!;
      // The log line follows the attempt's commit, through a pipe: wait for it to arrive.
      const attemptLines = await waitFor(
        "the attempt's log line",
        () => {
          const lines = logLines(first.output()).filter((l) => l.msg === "callback attempt");
          return lines.length > 0 ? lines : undefined;
        },
        5_000,
      );
      expect(attemptLines[0]).toMatchObject({
        eventId: failed!.eventId,
        jobId: job.id,
        attempt: 1,
        outcome: "retry",
      });

      await first.kill();
      expect((await first.exited).signal).toBe("SIGKILL");

      const second = await spawnTessera(args, { name: "second", timeoutMs: 30_000 });
      const receiver = await receiverOn(port);
      try {
        await waitFor(
          "the delivery after the restart",
          () => (receiver.received.length > 0 ? true : undefined),
          30_000,
        );
        const [delivered] = receiver.received;
        expect(delivered!.id).toBe(failed!.eventId);
        expect(delivered!.raw).toBe(firstBody); // byte for byte the first signed body
        const body = JSON.parse(delivered!.raw) as { type: string; data: { id: string; status: string } };
        expect(body).toMatchObject({ type: "job.succeeded", data: { id: job.id, status: "succeeded" } });

        const store = await backend.openStore();
        try {
          const tenantId = await store.ensureTenant({ name: DEV_TENANT, now: Date.now() });
          const secrets = await store.webhookSecrets({ tenantId, now: Date.now() });
          expect(() => new Webhook(secrets[0]!).verify(delivered!.raw, delivered!.headers)).not.toThrow();
        } finally {
          await store.close();
        }
        expect(Number(delivered!.timestamp)).toBeGreaterThanOrEqual(Math.floor(failed!.at / 1000));

        const items = await waitFor(
          "the delivered attempt listed",
          async () => {
            const list = await attemptsOf(second.url, job.id);
            return list.some((a) => a.statusCode === 204) ? list : undefined;
          },
          10_000,
        );
        expect(items.every((a) => a.eventId === failed!.eventId)).toBe(true);
        expect(items.at(-1)).toMatchObject({ statusCode: 204, nextAttemptAt: null });
        expect(items.map((a) => a.attempt)).toEqual(items.map((_a, i) => i + 1));
        const [row] = await backend.events();
        expect(row).toMatchObject({ id: failed!.eventId, status: "delivered", body: firstBody });
        expect(receiver.received).toHaveLength(1);
      } finally {
        await receiver.close();
      }
    },
  );
});
