/**
 * examples/order-saga end to end, as its README runs it: two built `tessera serve` processes,
 * each with its own database, the order service's `orders.place` saga calling the customer
 * service's `customers.reserve-credit` job. Three orders: one approved, one whose credit is
 * refused (the order is rejected), one whose shipping fails (the credit is released and the
 * order rejected).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { killAll, ROOT, spawnTessera } from "../helpers/cluster.js";
import { http } from "../helpers/server.js";

const dir = mkdtempSync(join(tmpdir(), "tessera-orders-"));
afterEach(killAll);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Job {
  id: string;
  status: string;
  error: { type: string; detail: string } | null;
  steps: { name: string; status: string }[];
  links: { result?: string };
}

describe("examples/order-saga", { timeout: 60_000 }, () => {
  it("approves an order, rejects one without credit, and undoes one that cannot ship", async () => {
    expect(existsSync(join(ROOT, "dist/main.js")), "npm run build first").toBe(true);
    const customerData = join(dir, "customers");
    const orderData = join(dir, "orders");
    const customers = await spawnTessera(
      ["--dev", "--db", join(dir, "customers.db"), "--jobs", "examples/order-saga/customers.ts"],
      { built: true, env: { CUSTOMER_DATA_DIR: customerData } },
    );
    const orders = await spawnTessera(
      ["--dev", "--db", join(dir, "orders.db"), "--jobs", "examples/order-saga/orders.ts"],
      { built: true, env: { ORDER_DATA_DIR: orderData, CUSTOMERS_URL: customers.url } },
    );

    const place = async (input: unknown): Promise<Job> => {
      const res = await http(`${orders.url}/v1/jobs`, { json: { type: "orders.place", input } });
      expect(res.status).toBe(202);
      const location = res.headers.get("location")!;
      for (;;) {
        const polled = await http(`${location}?onComplete=status`, { headers: { prefer: "wait=10" } });
        if (polled.status === 200) return (await polled.json()) as Job;
      }
    };
    const [approved, refused, unshippable] = await Promise.all([
      place({ customerId: "alice", sku: "book", amount: 30 }),
      place({ customerId: "bob", sku: "lamp", amount: 30 }),
      place({ customerId: "alice", sku: "piano", amount: 20 }),
    ]);
    const order = (id: string) =>
      JSON.parse(readFileSync(join(orderData, `${id}.json`), "utf8")) as { status: string };
    const ledger = () =>
      JSON.parse(readFileSync(join(customerData, "ledger.json"), "utf8")) as {
        reservations: Record<string, { customerId: string; amount: number }>;
      };

    expect(approved.status).toBe("succeeded");
    expect(await (await http(approved.links.result!)).json()).toEqual({
      orderId: approved.id,
      status: "APPROVED",
      reservationId: approved.id,
    });
    expect(order(approved.id).status).toBe("APPROVED");

    expect(refused.status).toBe("failed");
    expect(refused.error!.type).toBe("/problems/saga-step-failed");
    expect(refused.error!.detail).toMatch(
      /step "reserve-credit" failed: .*credit limit exceeded.*; compensated: create-order$/,
    );
    expect(refused.steps.map((s) => [s.name, s.status])).toEqual([
      ["create-order", "compensated"],
      ["reserve-credit", "failed"],
    ]);
    expect(order(refused.id).status).toBe("REJECTED");

    expect(unshippable.status).toBe("failed");
    expect(unshippable.error!.detail).toBe(
      'step "schedule-shipping" failed: schedule-shipping: no carrier ships a piano; compensated: reserve-credit, create-order',
    );
    expect(order(unshippable.id).status).toBe("REJECTED");

    // Only the approved order's credit is still held.
    expect(ledger().reservations).toEqual({ [approved.id]: { customerId: "alice", amount: 30 } });
  });
});
