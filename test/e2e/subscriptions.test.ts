/**
 * Subscriptions over real HTTP, on both drivers: a webhook subscribed to event types receives
 * each matching event once, signed per Standard Webhooks (verified with the `standardwebhooks`
 * package) with the tenant's secret, through the callback deliverer (retried the same way, with
 * the same webhook-id and body); other types, filters and tenants get nothing; a dispatch done
 * again delivers nothing twice; DELETE stops deliveries; the URL is checked as a job's callback
 * URL is (loopback receivers here are allow-listed, as in callbacks.test.ts).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { Webhook } from "standardwebhooks";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { EventDispatcher } from "../../src/events/dispatcher.js";
import { dropSchema, freshSchema, PG_URL } from "../helpers/postgres.js";
import { bearer, http, startServer, type TestServer } from "../helpers/server.js";
import { expectProblem, sleep } from "./support.js";

interface Delivery {
  headers: Record<string, string>;
  raw: string;
  body: {
    type: string;
    timestamp: string;
    data: { id: string; type: string; tenant: string } & Record<string, unknown>;
  };
}

interface Receiver {
  url: string;
  deliveries: Delivery[];
  /** The status to answer the n-th request (from 1) with. */
  status: (n: number) => number;
  waitFor(count: number): Promise<Delivery[]>;
  close(): Promise<void>;
}

const receivers = new Set<Receiver>();

async function startReceiver(status: (n: number) => number = () => 204): Promise<Receiver> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers[k] = v;
      receiver.deliveries.push({ headers, raw, body: JSON.parse(raw) as Delivery["body"] });
      res.writeHead(receiver.status(receiver.deliveries.length)).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const receiver: Receiver = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`,
    deliveries: [],
    status,
    async waitFor(count) {
      for (let i = 0; i < 300 && receiver.deliveries.length < count; i++) await sleep(25);
      expect(receiver.deliveries.length).toBeGreaterThanOrEqual(count);
      return receiver.deliveries;
    },
    async close() {
      receivers.delete(receiver);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  receivers.add(receiver);
  return receiver;
}

const order = (id: string, overrides: Record<string, unknown> = {}) => ({
  specversion: "1.0",
  id,
  source: "/shop/orders",
  type: "orders.created",
  subject: "eu-1",
  data: { total: 42 },
  ...overrides,
});

let seq = 0;
const uniqueId = (label: string) => `${label}-${Date.now()}-${seq++}`;

for (const driver of ["sqlite", "postgres"] as const) {
  describe(`subscriptions over HTTP (${driver})`, () => {
    let server: TestServer;
    let key: string;
    let otherKey: string;
    let secret: string;
    const schema = freshSchema("subs");

    beforeAll(async () => {
      server = await startServer({
        config: {
          callbackAllow: ["127.0.0.1"],
          callbackRetryBaseMs: 100,
          callbackTimeoutMs: 2000,
          ...(driver === "postgres" ? { db: PG_URL, dbSchema: schema } : {}),
        },
      });
      key = await server.key("acme");
      otherKey = await server.key("globex");
      const tenantId = await server.tessera.store.ensureTenant({ name: "acme", now: Date.now() });
      [secret] = (await server.tessera.store.webhookSecrets({ tenantId, now: Date.now() })) as [string];
    });
    afterEach(async () => {
      await Promise.all([...receivers].map((r) => r.close()));
    });
    afterAll(async () => {
      await server.close();
      if (driver === "postgres") {
        await dropSchema(schema);
      }
    });

    const subscribe = (body: unknown, k = key) =>
      http(`${server.url}/v1/subscriptions`, { json: body, headers: bearer(k) });
    const send = (event: unknown, k = key) =>
      http(`${server.url}/v1/events`, { json: event, headers: bearer(k) });

    async function created(body: unknown): Promise<{ id: string; links: { self: string } }> {
      const res = await subscribe(body);
      expect(res.status).toBe(201);
      return (await res.json()) as { id: string; links: { self: string } };
    }

    it("creates, shows, lists and deletes a subscription", async () => {
      const body = {
        url: "http://127.0.0.1:9/x",
        types: ["a.b", "c.d"],
        filter: { subject: { prefix: "eu-" } },
      };
      const res = await subscribe(body);
      expect(res.status).toBe(201);
      const subscription = (await res.json()) as Record<string, unknown> & {
        id: string;
        links: { self: string };
      };
      expect(subscription).toMatchObject(body);
      expect(subscription.id).toMatch(/^sub_[0-9a-f]{32}$/);
      expect(Number.isNaN(Date.parse(subscription.createdAt as string))).toBe(false);
      expect(res.headers.get("location")).toBe(subscription.links.self);
      expect(new URL(subscription.links.self).pathname).toBe(`/v1/subscriptions/${subscription.id}`);

      const shown = await http(subscription.links.self, { headers: bearer(key) });
      expect(shown.status).toBe(200);
      expect(await shown.json()).toEqual(subscription);
      const list = (await (
        await http(`${server.url}/v1/subscriptions?limit=500`, { headers: bearer(key) })
      ).json()) as {
        items: { id: string }[];
      };
      expect(list.items.map((s) => s.id)).toContain(subscription.id);

      const deleted = await http(subscription.links.self, { method: "DELETE", headers: bearer(key) });
      expect(deleted.status).toBe(204);
      await expectProblem(await http(subscription.links.self, { headers: bearer(key) }), 404, "not-found");
      await expectProblem(
        await http(subscription.links.self, { method: "DELETE", headers: bearer(key) }),
        404,
        "not-found",
      );
    });

    it("pages the listing with a cursor", async () => {
      for (let i = 0; i < 3; i++) await created({ url: "http://127.0.0.1:9/p", types: [`page.${i}`] });
      const seen: string[] = [];
      let url: string | null = `${server.url}/v1/subscriptions?limit=2`;
      while (url) {
        const page = (await (await http(url, { headers: bearer(key) })).json()) as {
          items: { id: string }[];
          nextCursor: string | null;
        };
        expect(page.items.length).toBeLessThanOrEqual(2);
        seen.push(...page.items.map((s) => s.id));
        url = page.nextCursor ? `${server.url}/v1/subscriptions?limit=2&cursor=${page.nextCursor}` : null;
      }
      expect(new Set(seen).size).toBe(seen.length);
      expect(seen.length).toBeGreaterThanOrEqual(3);
      await expectProblem(
        await http(`${server.url}/v1/subscriptions?cursor=nope`, { headers: bearer(key) }),
        400,
        "invalid-parameter",
      );
    });

    it("refuses bad input with 400 naming the member", async () => {
      const cases: [unknown, string][] = [
        [{ url: "http://127.0.0.1:9/x" }, "/types"],
        [{ url: "http://127.0.0.1:9/x", types: [] }, "/types"],
        [{ url: "http://127.0.0.1:9/x", types: Array.from({ length: 21 }, (_, i) => `t${i}`) }, "/types"],
        [{ url: "http://127.0.0.1:9/x", types: ["has space"] }, "/types/0"],
        [{ url: "http://127.0.0.1:9/x", types: ["a", "a"] }, "/types"],
        [{ url: "http://127.0.0.1:9/x", types: ["a"], extra: 1 }, "/extra"],
        [{ url: "http://127.0.0.1:9/x", types: ["a"], filter: { "Bad-Name": "x" } }, "/filter"],
        [
          { url: "http://127.0.0.1:9/x", types: ["a"], filter: { subject: { infix: "x" } } },
          "/filter/subject",
        ],
        [{ url: "ftp://127.0.0.1/x", types: ["a"] }, "/url"],
        [{ url: "http://user:pw@127.0.0.1:9/x", types: ["a"] }, "/url"],
      ];
      for (const [body, path] of cases) {
        const problem = await expectProblem(await subscribe(body), 400, "validation-failed");
        expect(
          problem.errors?.map((e) => e.path),
          JSON.stringify(body),
        ).toContain(path);
      }
    });

    it("delivers a matching event signed, with the CloudEvent as data; other types and filters get nothing", async () => {
      const receiver = await startReceiver();
      await created({ url: receiver.url, types: ["orders.created"], filter: { subject: { prefix: "eu-" } } });
      const skipped = [uniqueId("other-type"), uniqueId("other-subject")];
      expect((await send(order(skipped[0]!, { type: "orders.shipped" }))).status).toBe(202);
      expect((await send(order(skipped[1]!, { subject: "us-1" }))).status).toBe(202);
      const id = uniqueId("match");
      expect((await send(order(id))).status).toBe(202);
      const [delivery] = await receiver.waitFor(1);
      await sleep(300);
      expect(receiver.deliveries).toHaveLength(1);
      new Webhook(secret).verify(delivery!.raw, delivery!.headers); // throws if not signed with it
      expect(delivery!.headers["webhook-id"]).toMatch(/^msg_[0-9a-f]{32}$/);
      expect(delivery!.headers["content-type"]).toBe("application/json");
      expect(delivery!.body.type).toBe("orders.created");
      expect(Number.isNaN(Date.parse(delivery!.body.timestamp))).toBe(false);
      expect(delivery!.body.data).toMatchObject({
        specversion: "1.0",
        id,
        type: "orders.created",
        source: "/shop/orders",
        subject: "eu-1",
        data: { total: 42 },
      });
      const event = (await (
        await http(`${server.url}/v1/events/${id}`, { headers: bearer(key) })
      ).json()) as {
        event: unknown;
      };
      expect(delivery!.body.data).toEqual(event.event);
    });

    it("a dispatch done again (or a resend) delivers nothing twice", async () => {
      const receiver = await startReceiver();
      await created({ url: receiver.url, types: ["orders.redo"] });
      const id = uniqueId("redo");
      expect((await send(order(id, { type: "orders.redo" }))).status).toBe(202);
      expect((await send(order(id, { type: "orders.redo" }))).status).toBe(200); // the same event again
      await receiver.waitFor(1);
      const { store, registry, config } = server.tessera;
      const dispatcher = new EventDispatcher({
        store,
        registry,
        config,
        submit: (params) => store.submit(params),
        logger: pino({ level: "silent" }),
        now: Date.now,
      });
      const tenantId = await store.ensureTenant({ name: "acme", now: Date.now() });
      const kept = (await store.getEvent({ tenantId, id }))!;
      await dispatcher.dispatch(kept);
      await dispatcher.dispatch(kept);
      await sleep(500);
      expect(receiver.deliveries).toHaveLength(1);
    });

    it("an event the sweep dispatches late is delivered too", async () => {
      const receiver = await startReceiver();
      await created({ url: receiver.url, types: ["orders.late"] });
      const tenantId = await server.tessera.store.ensureTenant({ name: "acme", now: Date.now() });
      const id = uniqueId("late");
      await server.tessera.store.appendEvent({
        event: {
          tenantId,
          id,
          source: "/shop/orders",
          type: "orders.late",
          subject: null,
          time: Date.now(),
          datacontenttype: null,
          data: null,
          traceparent: null,
          extensions: {},
          hash: "h",
        },
        now: Date.now() - 10_000,
      });
      const [delivery] = await receiver.waitFor(1);
      expect(delivery!.body.data.id).toBe(id);
    });

    it("retries a receiver's 500, with the same webhook-id and body, until it answers 2xx", async () => {
      const receiver = await startReceiver((n) => (n === 1 ? 500 : 200));
      await created({ url: receiver.url, types: ["orders.retry"] });
      expect((await send(order(uniqueId("retry"), { type: "orders.retry" }))).status).toBe(202);
      const [first, second] = await receiver.waitFor(2);
      expect(second!.headers["webhook-id"]).toBe(first!.headers["webhook-id"]);
      expect(second!.raw).toBe(first!.raw);
      for (const d of [first!, second!]) new Webhook(secret).verify(d.raw, d.headers);
      await sleep(500);
      expect(receiver.deliveries).toHaveLength(2);
    });

    it("is the tenant's own: another tenant cannot see or delete it, nor reach it with its events", async () => {
      const receiver = await startReceiver();
      const subscription = await created({ url: receiver.url, types: ["orders.mine"] });
      await expectProblem(
        await http(subscription.links.self, { headers: bearer(otherKey) }),
        404,
        "not-found",
      );
      await expectProblem(
        await http(subscription.links.self, { method: "DELETE", headers: bearer(otherKey) }),
        404,
        "not-found",
      );
      const theirs = (await (
        await http(`${server.url}/v1/subscriptions`, { headers: bearer(otherKey) })
      ).json()) as {
        items: { id: string }[];
      };
      expect(theirs.items.map((s) => s.id)).not.toContain(subscription.id);
      expect((await send(order(uniqueId("theirs"), { type: "orders.mine" }), otherKey)).status).toBe(202);
      const mine = uniqueId("mine");
      expect((await send(order(mine, { type: "orders.mine" }))).status).toBe(202);
      await receiver.waitFor(1);
      await sleep(300);
      expect(receiver.deliveries.map((d) => d.body.data.id)).toEqual([mine]);
      expect((await http(subscription.links.self, { headers: bearer(key) })).status).toBe(200);
    });

    it("DELETE stops deliveries: new events and pending retries alike", async () => {
      const receiver = await startReceiver(() => 500);
      const subscription = await created({ url: receiver.url, types: ["orders.stop"] });
      expect((await send(order(uniqueId("stop"), { type: "orders.stop" }))).status).toBe(202);
      await receiver.waitFor(1);
      const res = await http(subscription.links.self, { method: "DELETE", headers: bearer(key) });
      expect(res.status).toBe(204);
      const after = receiver.deliveries.length;
      expect((await send(order(uniqueId("stop"), { type: "orders.stop" }))).status).toBe(202);
      // The first attempt's retry would be due a second after it (the deliverer's shortest delay).
      await sleep(1500);
      expect(receiver.deliveries.length).toBe(after);
    });
  });
}

describe("subscription URLs are checked as job callback URLs are", () => {
  let server: TestServer;
  let key: string;
  beforeAll(async () => {
    server = await startServer(); // no allowlist: loopback and private addresses are refused
    key = await server.key("acme");
  });
  afterAll(() => server.close());

  it("refuses loopback, private and metadata addresses with the job callback's problem", async () => {
    for (const url of [
      "http://127.0.0.1:9/x",
      "http://10.0.0.1/",
      "http://169.254.169.254/",
      "http://[::1]/",
    ]) {
      const sub = await expectProblem(
        await http(`${server.url}/v1/subscriptions`, { headers: bearer(key), json: { url, types: ["a"] } }),
        400,
        "callback-url-forbidden",
      );
      const job = await expectProblem(
        await http(`${server.url}/v1/jobs`, {
          headers: bearer(key),
          json: { type: "demo.echo", input: 1, callback: { url } },
        }),
        400,
        "callback-url-forbidden",
      );
      expect(sub.detail).toBe(job.detail);
      expect(sub.errors).toEqual([{ path: "/url", message: sub.detail }]);
    }
    const list = (await (await http(`${server.url}/v1/subscriptions`, { headers: bearer(key) })).json()) as {
      items: unknown[];
    };
    expect(list.items).toEqual([]);
  });

  it("with --callback-verify, the receiver must answer the signed ping", async () => {
    const verifying = await startServer({ config: { callbackAllow: ["127.0.0.1"], callbackVerify: true } });
    try {
      const k = await verifying.key("acme");
      const refusing = await startReceiver(() => 500);
      await expectProblem(
        await http(`${verifying.url}/v1/subscriptions`, {
          headers: bearer(k),
          json: { url: refusing.url, types: ["a"] },
        }),
        400,
        "callback-unreachable",
      );
      expect(refusing.deliveries[0]?.body).toMatchObject({ type: "webhook.ping", data: { types: ["a"] } });
      const accepting = await startReceiver();
      const res = await http(`${verifying.url}/v1/subscriptions`, {
        headers: bearer(k),
        json: { url: accepting.url, types: ["a"] },
      });
      expect(res.status).toBe(201);
      await Promise.all([refusing.close(), accepting.close()]);
    } finally {
      await verifying.close();
    }
  });
});
