/**
 * The outbox relay across nodes (`--events`), as real processes: two nodes of the order service
 * on one PostgreSQL database relay its events to the broker, one at a time (the one holding the
 * relay's lease). The holder is SIGKILLed mid-stream: the other takes the lease over when it
 * lapses and goes on from the first event not marked published, so the customer service (its
 * own store) gets every event, once, in the order the order service kept them.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { defineJob, type JobDefinition } from "../../src/jobs/define.js";
import { BROKERS, unique } from "../helpers/brokers.js";
import { createKey, killAll, pgNodeArgs, pgQuery, spawnTessera, waitFor } from "../helpers/cluster.js";
import { freshSchema, PG_URL } from "../helpers/postgres.js";
import { bearer, http, startServer, TEST_SECRET, type TestServer } from "../helpers/server.js";

const schemas: string[] = [];
const servers: TestServer[] = [];
afterEach(killAll);
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  for (const schema of schemas) await pgQuery(PG_URL, `DROP SCHEMA IF EXISTS ${schema} CASCADE`);
});

const RELAYING = "event relay: this node publishes events to the broker";

describe.each(BROKERS)("the event relay over $kind", ({ url }) => {
  it("goes on from another node when the relaying node is SIGKILLed: every event once, in order", async () => {
    const type = unique("orders.created");
    const source = `/tests/${unique("run")}`;
    const seen: string[] = [];
    const react = defineJob({
      type: "customers.react",
      input: { type: "object" },
      on: type,
      run: (event: { id: string }) => void seen.push(event.id),
    });
    const customers = await startServer({
      jobs: [react as JobDefinition],
      config: { events: url, eventsGroup: unique("customers"), concurrency: 16 },
    });
    servers.push(customers);
    await customers.tessera.store.ensureTenant({ name: "shop", now: Date.now() });

    const schema = freshSchema("relay");
    schemas.push(schema);
    const args = [
      ...pgNodeArgs({ db: PG_URL, schema, secret: TEST_SECRET }),
      "--events",
      url,
      "--events-group",
      unique("orders"),
      "--log-level",
      "info",
    ];
    const first = await spawnTessera(args, { name: "orders-1" });
    await waitFor(
      "the first node to hold the relay's lease",
      () => first.output().includes(RELAYING),
      10_000,
    );
    const second = await spawnTessera(args, { name: "orders-2" });
    const key = await createKey({ db: PG_URL, schema, tenant: "shop" });

    const total = 300;
    for (let n = 0; n < total; n++) {
      if (n === 100) await first.kill();
      const res = await http(`${second.url}/v1/events`, {
        headers: bearer(key),
        json: { specversion: "1.0", id: `e-${n}`, source, type, data: { n } },
      });
      expect(res.status).toBe(202);
    }
    await waitFor("the second node to take the relay over", () => second.output().includes(RELAYING), 20_000);
    await waitFor(`all ${total} events across`, () => seen.length >= total, 60_000, 200);
    // Published twice at most (what the first node sent but had not marked): kept once.
    const shop = await customers.tessera.store.ensureTenant({ name: "shop", now: Date.now() });
    const kept = await customers.tessera.store.listEvents({ tenantId: shop, limit: 1000 });
    expect(kept.map((e) => e.id).reverse()).toEqual(Array.from({ length: total }, (_, n) => `e-${n}`));
    expect(new Set(seen).size).toBe(total);
    expect(seen).toHaveLength(total);
    const [unpublished] = await pgQuery<{ n: string }>(
      PG_URL,
      `SELECT count(*) AS n FROM ${schema}.events WHERE published_at IS NULL`,
    );
    expect(Number(unpublished!.n)).toBe(0);
  }, 120_000);
});
