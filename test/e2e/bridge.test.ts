/**
 * The bridge to a real broker (`--events`), over NATS JetStream and RabbitMQ: two services,
 * each with its own store, talking only through the broker. Events leave a store only after
 * they commit (a handler that throws after `ctx.emit` publishes nothing), a service starts one
 * job per event id however often the broker delivers it, a broker restart mid-stream loses and
 * doubles nothing, a tenant's events keep their order, and what names another tenant than its
 * subject, or a tenant the service does not have, is refused and dead-lettered.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";
import { defineJob, type JobDefinition } from "../../src/jobs/define.js";
import { BROKERS, deadLetters, publishRaw, restartBroker, unique } from "../helpers/brokers.js";
import { waitFor } from "../helpers/cluster.js";
import { bearer, http, startServer, type TestServer } from "../helpers/server.js";

interface Service {
  server: TestServer;
  key: string;
  /** Every event its trigger job ran for, in the order the jobs ran. */
  seen: { id: string; tenant: string; data: unknown }[];
}

const open: TestServer[] = [];
afterAll(async () => {
  await Promise.all(open.map((s) => s.close()));
});

/** A service on its own SQLite store, on the broker as `group`, with a trigger job on `listens`. */
async function service(
  url: string,
  group: string,
  options: { listens?: string; jobs?: readonly JobDefinition[]; tenants?: readonly string[] } = {},
): Promise<Service> {
  const seen: Service["seen"] = [];
  const jobs: JobDefinition[] = [...(options.jobs ?? [])];
  if (options.listens)
    jobs.push(
      defineJob({
        type: `${group}.react`,
        input: { type: "object" },
        on: options.listens,
        run: (event: { id: string; tenant: string; data: unknown }) => void seen.push(event),
      }) as JobDefinition,
    );
  const server = await startServer({ jobs, config: { events: url, eventsGroup: group, concurrency: 16 } });
  open.push(server);
  const key = await server.key("shop");
  for (const tenant of options.tenants ?? [])
    await server.tessera.store.ensureTenant({ name: tenant, now: Date.now() });
  return { server, key, seen };
}

// The broker drops a resend of a (tenant, source, id) for two minutes: each run is its own source.
const SOURCE = `/tests/${unique("run")}`;
const event = (id: string, type: string, data: unknown = { id }) => ({
  specversion: "1.0",
  id,
  source: SOURCE,
  type,
  data,
});

async function post(to: Service, body: unknown, key = to.key): Promise<Response> {
  return http(`${to.server.url}/v1/events`, { headers: bearer(key), json: body });
}

describe("the event bridge with its broker down", () => {
  it.each(["nats://127.0.0.1:1", "amqp://guest:guest@127.0.0.1:1"])(
    "starts and keeps events for later (%s)",
    async (url) => {
      const orders = await service(url, unique("orders"));
      expect((await post(orders, event(unique("later"), "orders.created"))).status).toBe(202);
      expect(await orders.server.tessera.store.unpublishedEvents({ limit: 10 })).toHaveLength(1);
      // The relay's lag shows the wait.
      await sleep(1100);
      const metrics = await orders.server.tessera.metrics.registry.getSingleMetricAsString(
        "tessera_events_relay_lag_seconds",
      );
      const lag = Number(/^tessera_events_relay_lag_seconds (\S+)$/m.exec(metrics)?.[1]);
      expect(lag).toBeGreaterThanOrEqual(1);
    },
  );
});

describe.each(BROKERS)("the event bridge over $kind", ({ kind, url }) => {
  it("starts another service's trigger job, once, for an event posted to this one", async () => {
    const type = unique("orders.created");
    const orders = await service(url, unique("orders"));
    const customers = await service(url, unique("customers"), { listens: type });
    const res = await post(orders, event("o-1", type, { total: 5 }));
    expect(res.status).toBe(202);
    await waitFor("the triggered job", () => customers.seen.length === 1, 10_000);
    // The tenant of the same name in the customer service's own store.
    const shop = await customers.server.tessera.store.ensureTenant({ name: "shop", now: Date.now() });
    expect(customers.seen[0]).toMatchObject({ id: "o-1", tenant: shop, data: { total: 5 } });
    // The customer service keeps the event it took, with the job it started.
    const kept = (await (
      await http(`${customers.server.url}/v1/events/o-1`, { headers: bearer(customers.key) })
    ).json()) as { triggered: { jobId: string }[] };
    expect(kept.triggered).toHaveLength(1);
    await sleep(300);
    expect(customers.seen).toHaveLength(1);
  });

  it("publishes what a job emits only once its completion commits", async () => {
    const type = unique("orders.placed");
    const place = defineJob({
      type: "test.place",
      input: { type: "object", properties: { n: { type: "integer" }, fail: { type: "boolean" } } },
      maxAttempts: 1,
      run: (input: { n: number; fail: boolean }, ctx) => {
        ctx.emit(type, { n: input.n });
        if (input.fail) throw new Error("the warehouse is closed");
        return "placed";
      },
    });
    const orders = await service(url, unique("orders"), { jobs: [place as JobDefinition] });
    const shipping = await service(url, unique("shipping"), { listens: type });
    for (const [n, fail] of [
      [1, true],
      [2, false],
    ] as const) {
      const res = await http(`${orders.server.url}/v1/jobs`, {
        headers: { ...bearer(orders.key), prefer: "wait=10" },
        json: { type: "test.place", input: { n, fail } },
      });
      // Waited for: the failure's problem, or the result.
      const body = (await res.json()) as unknown;
      if (fail) expect(body).toMatchObject({ error: { code: "job-failed" } });
      else expect([res.status, body]).toEqual([200, "placed"]);
    }
    await waitFor("the succeeded job's event", () => shipping.seen.length === 1, 10_000);
    await sleep(500);
    expect(shipping.seen.map((e) => e.data)).toEqual([{ n: 2 }]);
  });

  it("starts one job per event id however often the broker delivers it", async () => {
    const type = unique("orders.created");
    const orders = await service(url, unique("orders"));
    const group = unique("customers");
    const customers = await service(url, group, { listens: type });
    expect((await post(orders, event("dup-1", type))).status).toBe(202);
    expect((await post(orders, event("dup-1", type))).status).toBe(200);
    // The same event again from outside the relay, past the broker's own dedupe (other keys).
    const again = { ...event("dup-1", type), tenant: "shop" };
    for (const n of [1, 2, 3]) await publishRaw(kind, `tessera.shop.${type}`, again, `again-${n}-${group}`);
    await waitFor("the triggered job", () => customers.seen.length >= 1, 10_000);
    await sleep(1000);
    expect(customers.seen).toHaveLength(1);
  });

  it("refuses an event whose subject names another tenant, or a tenant it does not have: dead-lettered", async () => {
    const type = unique("orders.created");
    const group = unique("customers");
    const customers = await service(url, group, { listens: type, tenants: ["other"] });
    // Sent on shop's subject but saying it is other's: a forged tenant.
    await publishRaw(
      kind,
      `tessera.shop.${type}`,
      { ...event("forged", type), tenant: "other" },
      unique("m"),
    );
    await publishRaw(
      kind,
      `tessera.ghost.${type}`,
      { ...event("ghost", type), tenant: "ghost" },
      unique("m"),
    );
    await publishRaw(kind, `tessera.shop.${type}`, "{not json", unique("m"));
    await publishRaw(kind, `tessera.shop.${type}`, { ...event("fine", type), tenant: "shop" }, unique("m"));
    await waitFor("the one good event", () => customers.seen.length === 1, 10_000);
    expect(customers.seen[0]!.id).toBe("fine");
    const dead = await waitFor(
      "three dead letters",
      async () => {
        const letters = await deadLetters(kind, group);
        return letters.length >= 3 ? letters : undefined;
      },
      10_000,
      200,
    );
    expect(
      dead.map((d) => (d.startsWith("{n") ? "bad json" : (JSON.parse(d) as { id: string }).id)).sort(),
    ).toEqual(["bad json", "forged", "ghost"]);
  });

  it("keeps each tenant's events in the order they were posted", async () => {
    const type = unique("orders.created");
    const orders = await service(url, unique("orders"));
    const customers = await service(url, unique("customers"), { listens: type, tenants: ["shop", "mall"] });
    const mallKey = await orders.server.key("mall");
    for (let n = 0; n < 100; n++) {
      expect((await post(orders, event(`s-${n}`, type))).status).toBe(202);
      expect((await post(orders, event(`m-${n}`, type), mallKey)).status).toBe(202);
    }
    await waitFor("200 triggered jobs", () => customers.seen.length === 200, 20_000);
    for (const [tenant, prefix] of [
      ["shop", "s"],
      ["mall", "m"],
    ] as const) {
      const tenantId = await customers.server.tessera.store.ensureTenant({ name: tenant, now: Date.now() });
      const kept = await customers.server.tessera.store.listEvents({ tenantId, limit: 500 });
      // Newest first: the order they came in is the reverse.
      expect(kept.map((e) => e.id).reverse()).toEqual(
        Array.from({ length: 100 }, (_, n) => `${prefix}-${n}`),
      );
    }
  });

  it("loses and doubles nothing when the broker restarts mid-stream", async () => {
    const type = unique("orders.created");
    const orders = await service(url, unique("orders"));
    const customers = await service(url, unique("customers"), { listens: type });
    const total = 300;
    const posting = (async () => {
      for (let n = 0; n < total; n++) {
        expect((await post(orders, event(`r-${n}`, type))).status).toBe(202);
        await sleep(5);
      }
    })();
    await waitFor("the first events across", () => customers.seen.length >= 20, 10_000);
    await restartBroker(kind, 1000);
    await posting;
    await waitFor(`all ${total} events across`, () => customers.seen.length >= total, 60_000, 200);
    await sleep(1000);
    const ids = customers.seen.map((e) => e.id);
    expect(ids).toHaveLength(total);
    expect(new Set(ids).size).toBe(total);
  }, 120_000);

  it("carries 10,000 events end to end, each to one job", async () => {
    const type = unique("orders.created");
    const orders = await service(url, unique("orders"));
    const customers = await service(url, unique("customers"), { listens: type });
    const total = 10_000;
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < total) {
          const n = next++;
          const res = await post(orders, event(`bulk-${n}`, type));
          if (res.status !== 202) throw new Error(`event ${n}: ${res.status}`);
        }
      }),
    );
    await waitFor(`${total} triggered jobs`, () => customers.seen.length >= total, 120_000, 200);
    await sleep(500);
    expect(customers.seen).toHaveLength(total);
    expect(new Set(customers.seen.map((e) => e.id)).size).toBe(total);
  }, 180_000);
});
