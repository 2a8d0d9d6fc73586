/**
 * The customer service, choreographed: it calls no one and no one calls it. Each
 * `orders.created` event (from the broker, `--events`) starts `customers.reserve-credit-for-order`,
 * which reserves the order's amount against the customer's limit and answers with an event:
 * `customers.credit-reserved` or `customers.credit-limit-exceeded`. The ledger is the
 * orchestration variant's (one JSON file in CUSTOMER_DATA_DIR: alice may reserve 100, bob 10),
 * reservations keyed by the order id, so an order seen twice is reserved once.
 *
 *   CUSTOMER_DATA_DIR=/tmp/customers tessera serve --dev --port 3002 \
 *     --events nats://127.0.0.1:4222 --events-group customers \
 *     --jobs examples/order-saga/choreography/customers.ts
 */
import { setTimeout as sleep } from "node:timers/promises";
import { defineJob } from "tessera";
import { held, readLedger, writeLedger } from "../customers.js";

interface OrderCreated {
  data: { orderId: string; customerId: string; amount: number; sku: string };
}

export const reserveCreditForOrder = defineJob({
  type: "customers.reserve-credit-for-order",
  description: "Reserves an order's amount of its customer's credit; answers with an event either way",
  input: {
    type: "object",
    properties: {
      data: {
        type: "object",
        properties: {
          orderId: { type: "string", minLength: 1 },
          customerId: { type: "string", minLength: 1 },
          amount: { type: "integer", minimum: 1 },
        },
        required: ["orderId", "customerId", "amount"],
      },
    },
    required: ["data"],
  },
  // One job per event id; a redelivered event finds the job it started and starts none.
  on: "orders.created",
  async run(event: OrderCreated, ctx) {
    await sleep(500, undefined, { signal: ctx.signal }); // the credit check takes a while
    const { orderId, customerId, amount } = event.data;
    const ledger = readLedger();
    // Read to write with no await between: two of these in one process never interleave.
    let available = (ledger.limits[customerId] ?? 0) - held(ledger, customerId);
    // Held already (an attempt that crashed after writing it, or the order seen again): kept once.
    if (!ledger.reservations[orderId]) {
      if (amount > available) {
        const reason =
          ledger.limits[customerId] === undefined
            ? `no customer ${customerId}`
            : `credit limit exceeded: ${customerId} has ${available} available`;
        ctx.emit(
          "customers.credit-limit-exceeded",
          { orderId, customerId, amount, reason },
          { subject: orderId },
        );
        return { orderId, reserved: false, reason };
      }
      ledger.reservations[orderId] = { customerId, amount };
      writeLedger(ledger);
      available -= amount;
    }
    ctx.emit("customers.credit-reserved", { orderId, customerId, amount, available }, { subject: orderId });
    return { orderId, reserved: true, available };
  },
});
