/**
 * Events over real HTTP, on both drivers: a CloudEvent sent to `POST /v1/events` is kept once
 * per id and starts one job per matching trigger (with the event as its input), however often
 * it is sent; bad events are refused with the member named; events are the tenant's; one kept
 * but never dispatched (a crash in between) is dispatched by the sweep.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { defineJob, type JobDefinition } from "../../src/jobs/define.js";
import { dropSchema, freshSchema, PG_URL } from "../helpers/postgres.js";
import { bearer, http, startServer, type TestServer } from "../helpers/server.js";

interface Triggered {
  type: string;
  jobId?: string;
  error?: string;
  links?: { job: string };
}
interface EventView {
  event: Record<string, unknown> & { id: string; type: string; tenant: string };
  receivedAt: string;
  dispatchedAt: string | null;
  triggered: Triggered[] | null;
  links: { self: string };
}
interface Job {
  id: string;
  type: string;
  status: string;
  links: { self: string; result?: string };
}

const billed: unknown[] = [];
const bill = defineJob({
  type: "test.bill",
  input: { type: "object" },
  on: "orders.created",
  run: (event: { id: string; data: { total: number } }) => {
    billed.push(event);
    return { billed: event.data.total, event: event.id };
  },
});
const europe = defineJob({
  type: "test.eu-only",
  input: { type: "object" },
  on: { type: "orders.created", filter: { subject: { prefix: "eu-" }, region: "eu" } },
  run: () => "eu",
});
// Its input schema refuses every event: the trigger records why, and nothing else is lost.
const picky = defineJob({
  type: "test.picky",
  input: { type: "object", required: ["never"] },
  on: "orders.created",
  run: () => "never",
});

// Emits an event with its success; its first attempt emits, then fails: that one is never kept.
const place = defineJob({
  type: "test.place",
  input: { type: "object", properties: { n: { type: "integer" }, failFirst: { type: "boolean" } } },
  maxAttempts: 2,
  retryDelayMs: 10,
  run: (input: { n: number; failFirst?: boolean }, ctx) => {
    ctx.emit("orders.placed", { n: input.n, attempt: ctx.attempt });
    if (input.failFirst && ctx.attempt === 1) throw new Error("the warehouse is busy");
    ctx.emit("orders.audited", { n: input.n }, { subject: `audit-${input.n}` });
    return "placed";
  },
});
const shipped: unknown[] = [];
const ship = defineJob({
  type: "test.ship",
  input: { type: "object" },
  on: "orders.placed",
  run: (event: unknown) => void shipped.push(event),
});

const order = (id: string, overrides: Record<string, unknown> = {}) => ({
  specversion: "1.0",
  id,
  source: "/shop/orders",
  type: "orders.created",
  subject: "us-1",
  data: { total: 42 },
  ...overrides,
});

for (const driver of ["sqlite", "postgres"] as const) {
  describe(`events over HTTP (${driver})`, () => {
    let server: TestServer;
    let key: string;
    const schema = freshSchema("events");

    beforeAll(async () => {
      server = await startServer({
        jobs: [bill, europe, picky, place, ship] as JobDefinition[],
        config: driver === "postgres" ? { db: PG_URL, dbSchema: schema } : {},
      });
      key = await server.key("acme");
    });
    afterAll(async () => {
      await server.close();
      if (driver === "postgres") {
        await dropSchema(schema);
      }
    });

    const send = (body: unknown, headers: Record<string, string> = {}) =>
      http(`${server.url}/v1/events`, { json: body, headers: { ...bearer(key), ...headers } });

    async function finished(url: string): Promise<Job> {
      for (;;) {
        const res = await http(`${url}?onComplete=status`, { headers: { ...bearer(key), prefer: "wait=5" } });
        if (res.status === 200) return (await res.json()) as Job;
      }
    }

    it("an event starts one job per matching trigger, with the event as its input", async () => {
      const res = await send(order(`${driver}-o1`), { "content-type": "application/cloudevents+json" });
      expect(res.status).toBe(202);
      const view = (await res.json()) as EventView;
      expect(res.headers.get("location")).toBe(view.links.self);
      expect(view.event).toMatchObject({ specversion: "1.0", id: `${driver}-o1`, type: "orders.created" });
      expect(view.dispatchedAt).not.toBeNull();
      expect(view.triggered!.map((t) => t.type).sort()).toEqual(["test.bill", "test.picky"]);
      const picked = view.triggered!.find((t) => t.type === "test.picky")!;
      expect(picked.error).toMatch(/never/);
      const job = await finished(view.triggered!.find((t) => t.type === "test.bill")!.links!.job);
      expect(job.status).toBe("succeeded");
      expect(await (await http(job.links.result!)).json()).toEqual({ billed: 42, event: `${driver}-o1` });
      const input = billed.find((e) => (e as { id: string }).id === `${driver}-o1`) as Record<
        string,
        unknown
      >;
      expect(input).toMatchObject({ source: "/shop/orders", subject: "us-1", data: { total: 42 } });
      expect(typeof input.tenant).toBe("string");
      expect(Date.parse(input.time as string)).not.toBeNaN();
    });

    it("sent again, the same event starts nothing more; another with its id is refused", async () => {
      const first = (await (await send(order(`${driver}-o2`))).json()) as EventView;
      const again = await send(order(`${driver}-o2`));
      expect(again.status).toBe(200);
      expect(again.headers.get("idempotent-replayed")).toBe("true");
      expect(((await again.json()) as EventView).triggered).toEqual(first.triggered);
      const other = await send(order(`${driver}-o2`, { data: { total: 1 } }));
      expect(other.status).toBe(409);
      expect(((await other.json()) as { type: string }).type).toBe("/problems/event-id-conflict");
      const jobs = (await (
        await http(`${server.url}/v1/jobs?type=test.bill&limit=500`, { headers: bearer(key) })
      ).json()) as { items: Job[] };
      const mine = view(first).jobId;
      expect(jobs.items.filter((j) => j.id === mine)).toHaveLength(1);
    });

    it("a trigger's filter: only events whose attributes match start its job", async () => {
      const us = (await (
        await send(order(`${driver}-o3`, { subject: "us-9", region: "eu" }))
      ).json()) as EventView;
      expect(us.triggered!.map((t) => t.type)).not.toContain("test.eu-only");
      const eu = (await (
        await send(order(`${driver}-o4`, { subject: "eu-7", region: "eu" }))
      ).json()) as EventView;
      expect(eu.triggered!.map((t) => t.type)).toContain("test.eu-only");
      const other = (await (
        await send(order(`${driver}-o5`, { type: "orders.shipped" }))
      ).json()) as EventView;
      expect(other.triggered).toEqual([]);
    });

    it("refuses what is no CloudEvent, naming the member", async () => {
      const cases: [unknown, string][] = [
        [{ ...order("x1"), specversion: "0.3" }, "/specversion"],
        [{ id: "x2", source: "/s", type: "t" }, "/specversion"],
        [{ ...order("x3"), Region: "eu" }, "/Region"],
        [{ ...order("x4"), time: "yesterday" }, "/time"],
        [{ ...order("x5"), tenant: "someone-else" }, "/tenant"],
        [{ ...order("x6"), nested: { a: 1 } }, "/nested"],
        [{ ...order("x7"), time: "2016-12-31T23:59:60Z" }, "/time"],
        [{ ...order("x8"), subject: "a\u0000b" }, "/subject"],
        [{ ...order("x9"), weight: 1.5 }, "/weight"],
        [order("tessera:x10"), "/id"],
        // The job lifecycle's own events are the store's.
        [{ ...order("x11"), type: "tessera.job.succeeded" }, "/type"],
      ];
      for (const [body, path] of cases) {
        const res = await send(body);
        expect(res.status, JSON.stringify(body)).toBe(400);
        const problem = (await res.json()) as { errors: { path: string }[] };
        expect(problem.errors.map((e) => e.path)).toContain(path);
      }
      expect((await http(`${server.url}/v1/events/x1`, { headers: bearer(key) })).status).toBe(404);
    });

    it("hostile bodies: wrong media type, too large, NUL and lone surrogates: a clear 4xx or kept, never a 500", async () => {
      const text = await http(`${server.url}/v1/events`, {
        method: "POST",
        body: "not json",
        headers: { ...bearer(key), "content-type": "text/plain" },
      });
      expect(text.status).toBe(415);
      const large = await send(order(`${driver}-big`, { data: { blob: "x".repeat(2_000_000) } }));
      expect(large.status).toBe(413);
      expect((await http(`${server.url}/v1/events/${driver}-big`, { headers: bearer(key) })).status).toBe(
        404,
      );
      const odd = await send(order(`${driver}-odd`, { data: { nul: "a\u0000b", lone: "\ud800" } }));
      expect([202, 400]).toContain(odd.status);
      if (odd.status === 202) {
        const kept = (await (
          await http(`${server.url}/v1/events/${driver}-odd`, { headers: bearer(key) })
        ).json()) as EventView;
        expect(kept.event.data).toEqual({ nul: "a\u0000b", lone: "\ud800" });
      }
      const deep = await http(`${server.url}/v1/events`, {
        method: "POST",
        body: JSON.stringify(
          order(`${driver}-deep`, { data: JSON.parse("[".repeat(200) + "]".repeat(200)) }),
        ),
        headers: { ...bearer(key), "content-type": "application/json" },
      });
      expect(deep.status).toBe(400);
    });

    it("events are the tenant's: listed newest first by type, read by id, invisible to others", async () => {
      const other = await server.key("other");
      await send(order(`${driver}-l1`));
      await send(order(`${driver}-l2`, { type: "orders.shipped" }));
      await send(order(`${driver}-l3`));
      const page = (await (
        await http(`${server.url}/v1/events?type=orders.created&limit=2`, { headers: bearer(key) })
      ).json()) as { items: EventView[]; nextCursor: string | null };
      expect(page.items.map((e) => e.event.id)).toEqual([`${driver}-l3`, `${driver}-l1`]);
      const next = (await (
        await http(`${server.url}/v1/events?type=orders.created&limit=2&cursor=${page.nextCursor}`, {
          headers: bearer(key),
        })
      ).json()) as { items: EventView[] };
      expect(next.items[0]!.event.id).not.toBe(`${driver}-l1`);
      expect((await http(`${server.url}/v1/events?limit=501`, { headers: bearer(key) })).status).toBe(400);
      expect((await http(`${server.url}/v1/events?sort=id`, { headers: bearer(key) })).status).toBe(400);

      expect((await http(`${server.url}/v1/events/${driver}-l1`, { headers: bearer(key) })).status).toBe(200);
      expect((await http(`${server.url}/v1/events/${driver}-l1`, { headers: bearer(other) })).status).toBe(
        404,
      );
      const listed = (await (await http(`${server.url}/v1/events`, { headers: bearer(other) })).json()) as {
        items: EventView[];
      };
      expect(listed.items).toEqual([]);
      // Its own event of the same id is another event, with jobs of its own.
      const theirs = await http(`${server.url}/v1/events`, {
        json: order(`${driver}-l1`),
        headers: bearer(other),
      });
      expect(theirs.status).toBe(202);
      expect((await http(`${server.url}/v1/events`)).status).toBe(401);
    });

    it("a job's ctx.emit: kept with its success (not with a failed attempt), and its triggers run", async () => {
      const res = await http(`${server.url}/v1/jobs`, {
        json: { type: "test.place", input: { n: driver === "sqlite" ? 1 : 2, failFirst: true } },
        headers: bearer(key),
      });
      const job = await finished(((await res.json()) as Job).links.self);
      expect(job.status).toBe("succeeded");
      const listed = (await (
        await http(`${server.url}/v1/events?limit=500`, { headers: bearer(key) })
      ).json()) as { items: EventView[] };
      const mine = listed.items.filter((e) => e.event.id.startsWith(`tessera:${job.id}`));
      // The second attempt's two events only; the first attempt emitted one, then failed.
      expect(mine.map((e) => [e.event.id, e.event.type, e.event.subject]).sort()).toEqual([
        [`tessera:${job.id}-2-0`, "orders.placed", job.id],
        [`tessera:${job.id}-2-1`, "orders.audited", `audit-${driver === "sqlite" ? 1 : 2}`],
      ]);
      const placed = mine.find((e) => e.event.type === "orders.placed")!;
      expect(placed.event).toMatchObject({ source: "/jobs/test.place", data: { attempt: 2 } });
      // Its trigger ran once, right after the commit.
      const seen = await vi.waitFor(
        async () => {
          const view = (await (
            await http(`${server.url}/v1/events/${placed.event.id}`, { headers: bearer(key) })
          ).json()) as EventView;
          expect(view.triggered).toHaveLength(1);
          return view;
        },
        { timeout: 10_000 },
      );
      expect((await finished(seen.triggered![0]!.links!.job)).status).toBe("succeeded");
      expect(shipped.filter((e) => (e as { id: string }).id === placed.event.id)).toHaveLength(1);
    });

    it("an event kept but never dispatched (a crash in between) is dispatched by the sweep", async () => {
      const tenantId = await server.tessera.store.ensureTenant({ name: "acme", now: Date.now() });
      const id = `${driver}-lost`;
      await server.tessera.store.appendEvent({
        event: {
          tenantId,
          id,
          source: "/shop/orders",
          type: "orders.created",
          subject: null,
          time: Date.now(),
          datacontenttype: "application/json",
          data: { total: 7 },
          traceparent: null,
          extensions: {},
          hash: "h",
        },
        now: Date.now() - 10_000,
      });
      const dispatched = await vi.waitFor(
        async () => {
          const res = await http(`${server.url}/v1/events/${id}`, { headers: bearer(key) });
          const seen = (await res.json()) as EventView;
          expect(seen.dispatchedAt).not.toBeNull();
          return seen;
        },
        { timeout: 10_000 },
      );
      const job = await finished(dispatched.triggered!.find((t) => t.type === "test.bill")!.links!.job);
      expect(job.status).toBe("succeeded");
    });
  });
}

function view(event: EventView): Triggered {
  return event.triggered!.find((t) => t.type === "test.bill")!;
}
