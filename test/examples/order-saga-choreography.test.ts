/**
 * examples/order-saga/choreography end to end, over NATS JetStream and over RabbitMQ: two built
 * `tessera serve` processes, each with its own SQLite database, that share only the broker. The
 * order service emits `orders.created`; the customer service answers `customers.credit-reserved`
 * or `customers.credit-limit-exceeded`; the order service approves or rejects.
 *
 * The broker is shared with other runs and the example's event types are fixed, so each run
 * has groups of its own (durable: dropped afterwards) and a tenant of its own (subjects are
 * `tessera.<tenant>.<type>`): another run's service refuses this run's events as those of a
 * tenant it does not have, and this one refuses theirs.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { BROKERS, dropGroup, unique, type BrokerKind } from "../helpers/brokers.js";
import { cleanEnv, killAll, ROOT, spawnTessera, waitFor } from "../helpers/cluster.js";
import { bearer, http, TEST_SECRET } from "../helpers/server.js";

const dir = mkdtempSync(join(tmpdir(), "tessera-choreography-"));
const groups: { kind: BrokerKind; group: string }[] = [];
afterEach(async () => {
  // Stopped first, so no node declares its group again.
  await killAll();
  for (const { kind, group } of groups.splice(0)) await dropGroup(kind, group);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Order {
  id: string;
  customerId: string;
  sku: string;
  amount: number;
  status: string;
  reason?: string;
}

/** `tessera keys create` with the built CLI (it also creates the tenant and the schema). */
async function createKey(db: string, tenant: string): Promise<string> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ["dist/main.js", "keys", "create", "--tenant", tenant, "--db", db, "--json"],
    { cwd: ROOT, env: cleanEnv() },
  );
  return (JSON.parse(stdout) as { key: string }).key;
}

describe.each(BROKERS)("examples/order-saga/choreography over $kind", ({ kind, url }) => {
  it(
    "approves the order alice can pay for, rejects the one over bob's limit, reserves once",
    {
      timeout: 60_000,
    },
    async () => {
      expect(existsSync(join(ROOT, "dist/main.js")), "npm run build first").toBe(true);
      const run = join(dir, kind);
      mkdirSync(run);
      const customerData = join(run, "customers");
      const orderData = join(run, "orders");
      const tenant = unique("shop");
      const customerGroup = unique("customers");
      const orderGroup = unique("orders");
      groups.push({ kind, group: customerGroup }, { kind, group: orderGroup });
      // The same tenant, by name, in both stores: that is how events find it across services.
      const customerKey = await createKey(join(run, "customers.db"), tenant);
      const orderKey = await createKey(join(run, "orders.db"), tenant);
      const serve = (service: string, group: string) => [
        "--db",
        join(run, `${service}.db`),
        "--secret",
        TEST_SECRET,
        "--jobs",
        `examples/order-saga/choreography/${service}.ts`,
        "--events",
        url,
        "--events-group",
        group,
      ];
      // The customer service first: its durable consumer must exist before orders.created is sent.
      const customers = await spawnTessera(serve("customers", customerGroup), {
        name: "customers",
        built: true,
        env: { CUSTOMER_DATA_DIR: customerData },
      });
      const orders = await spawnTessera(serve("orders", orderGroup), {
        name: "orders",
        built: true,
        env: { ORDER_DATA_DIR: orderData },
      });

      const runJob = async (type: string, input: unknown): Promise<Order> => {
        const res = await http(`${orders.url}/v1/jobs`, {
          headers: { ...bearer(orderKey), prefer: "wait=10" },
          json: { type, input },
        });
        const body = (await res.json()) as Order;
        expect([res.status, body]).toMatchObject([200, { id: expect.any(String) }]);
        return body;
      };
      const [approved, rejected] = await Promise.all([
        runJob("orders.create", { customerId: "alice", sku: "book", amount: 30 }),
        runJob("orders.create", { customerId: "bob", sku: "lamp", amount: 30 }),
      ]);
      expect([approved.status, rejected.status]).toEqual(["PENDING", "PENDING"]);

      const orderFile = (id: string) =>
        JSON.parse(readFileSync(join(orderData, `${id}.json`), "utf8")) as Order;
      await waitFor(
        "both orders decided",
        () => [approved, rejected].every((o) => orderFile(o.id).status !== "PENDING"),
        20_000,
        100,
      );
      expect(await runJob("orders.get", { orderId: approved.id })).toEqual({
        ...approved,
        status: "APPROVED",
      });
      expect(orderFile(rejected.id)).toEqual({
        ...rejected,
        status: "REJECTED",
        reason: "credit limit exceeded: bob has 10 available",
      });

      // Settled: let anything redelivered or doubled arrive before counting.
      await sleep(1000);
      const ledger = JSON.parse(readFileSync(join(customerData, "ledger.json"), "utf8")) as {
        reservations: Record<string, unknown>;
      };
      expect(ledger.reservations).toEqual({ [approved.id]: { customerId: "alice", amount: 30 } });
      const list = async <T>(node: { url: string }, key: string, path: string): Promise<T[]> => {
        const res = await http(`${node.url}${path}`, { headers: bearer(key) });
        expect(res.status).toBe(200);
        return ((await res.json()) as { items: T[] }).items;
      };
      // One orders.created event per order reached the customer service, each starting one check.
      const taken = await list<{ event: { subject: string }; triggered: { type: string }[] }>(
        customers,
        customerKey,
        "/v1/events?type=orders.created",
      );
      expect(taken.map((e) => [e.event.subject, e.triggered.length]).sort()).toEqual(
        [
          [approved.id, 1],
          [rejected.id, 1],
        ].sort(),
      );
      const checks = await list<{ status: string }>(
        customers,
        customerKey,
        "/v1/jobs?type=customers.reserve-credit-for-order",
      );
      expect(checks.map((j) => j.status)).toEqual(["succeeded", "succeeded"]);
      // Each answer emitted once, and received once.
      const subjects = async (node: { url: string }, key: string, type: string) =>
        (await list<{ event: { subject: string } }>(node, key, `/v1/events?type=${type}`)).map(
          (e) => e.event.subject,
        );
      for (const [node, key] of [
        [customers, customerKey],
        [orders, orderKey],
      ] as const) {
        expect(await subjects(node, key, "customers.credit-reserved")).toEqual([approved.id]);
        expect(await subjects(node, key, "customers.credit-limit-exceeded")).toEqual([rejected.id]);
      }
    },
  );
});
