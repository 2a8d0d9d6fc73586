/**
 * The order service: `orders.place` is a saga. It creates the order PENDING, has the customer
 * service reserve the credit (an async job there, through `saga.call`), schedules shipping and
 * approves the order. When a step fails for good, what was done is undone, newest first: the
 * credit released, the order REJECTED. Orders are JSON files in ORDER_DATA_DIR.
 *
 *   ORDER_DATA_DIR=/tmp/orders CUSTOMERS_URL=http://127.0.0.1:3002 \
 *     tessera serve --dev --port 3001 --jobs examples/order-saga/orders.ts
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { defineSaga, JobError } from "tessera";
import { createClient } from "tessera/client";

export interface Order {
  id: string;
  customerId: string;
  sku: string;
  amount: number;
  status: "PENDING" | "APPROVED" | "REJECTED";
  reason?: string;
}

const dir = process.env.ORDER_DATA_DIR ?? ".tessera/orders";
const customersUrl = () => process.env.CUSTOMERS_URL ?? "http://127.0.0.1:3002";

/** Orders as JSON files (shared with the choreography variant, choreography/orders.ts). */
export function save(order: Order): Order {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${order.id}.json`);
  writeFileSync(`${file}.tmp`, JSON.stringify(order, null, 2));
  renameSync(`${file}.tmp`, file);
  return order;
}

export const load = (id: string) => JSON.parse(readFileSync(join(dir, `${id}.json`), "utf8")) as Order;

/** Goods no carrier takes: shipping them fails, after the credit was reserved. */
const UNSHIPPABLE = new Set(["piano"]);

/** What an order is placed with, in both variants (orchestrated here, choreographed). */
export const ORDER_INPUT = {
  type: "object",
  properties: {
    customerId: { type: "string", minLength: 1 },
    sku: { type: "string", minLength: 1 },
    amount: { type: "integer", minimum: 1 },
  },
  required: ["customerId", "sku", "amount"],
  additionalProperties: false,
} as const;

export const placeOrder = defineSaga({
  type: "orders.place",
  description: "Creates an order, reserves the customer's credit, schedules shipping, approves",
  input: ORDER_INPUT,
  expectedSteps: 4,
  async run(input: { customerId: string; sku: string; amount: number }, saga) {
    const order = await saga.step(
      "create-order",
      () => save({ id: saga.jobId, ...input, status: "PENDING" }),
      { compensate: (o) => void save({ ...load(o.id), status: "REJECTED" }) },
    );
    const credit = await saga.call<{ reservationId: string }>(
      "reserve-credit",
      {
        url: customersUrl(),
        type: "customers.reserve-credit",
        input: { customerId: input.customerId, amount: input.amount, reservationId: order.id },
      },
      {
        // Undone by the customer service's own job, asked once per reservation.
        compensate: (c, step) =>
          createClient({ baseUrl: customersUrl() }).run(
            "customers.release-credit",
            { reservationId: c.reservationId },
            { idempotencyKey: `release-${step.idempotencyKey}` },
          ),
      },
    );
    await saga.step("schedule-shipping", () => {
      if (UNSHIPPABLE.has(input.sku)) throw new JobError(422, `no carrier ships a ${input.sku}`);
      return { carrier: "parcel-co" };
    });
    await saga.step("approve-order", () => save({ ...load(order.id), status: "APPROVED" }));
    return { orderId: order.id, status: "APPROVED", reservationId: credit.reservationId };
  },
});
