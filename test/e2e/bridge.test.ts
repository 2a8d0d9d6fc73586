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
import {
  BROKERS,
  deadLetters,
  publishRaw,
  restartBroker,
  unique,
  type BrokerKind,
} from "../helpers/brokers.js";
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

const event = (id: string, type: string, data: unknown = { id }) => ({
  specversion: "1.0",
  id,
  source: "/tests",
  type,
  data,
});

async function post(to: Service, body: unknown, key = to.key): Promise<Response> {
  return http(`${to.server.url}/v1/events`, { headers: bearer(key), json: body });
}

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
});
