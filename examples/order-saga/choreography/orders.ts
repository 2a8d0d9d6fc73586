/**
 * The order service, choreographed: no saga and no calls. `orders.create` writes the order
 * PENDING and emits `orders.created`; the customer service answers with an event of its own,
 * and the jobs those events trigger here approve or reject the order. The two services share
 * only the broker (`--events`) and the event types. Orders are JSON files in ORDER_DATA_DIR, as
 * in the orchestration variant; `orders.get` reads one over HTTP.
 *
 *   ORDER_DATA_DIR=/tmp/orders tessera serve --dev --port 3001 \
 *     --events nats://127.0.0.1:4222 --events-group orders \
 *     --jobs examples/order-saga/choreography/orders.ts
 */
import { defineJob, JobError, type JobLogger, type JsonSchema } from "tessera";
import { load, ORDER_INPUT, save, type Order } from "../orders.js";

const find = (id: string): Order | null => {
  try {
    return load(id);
  } catch {
    return null;
  }
};

export const createOrder = defineJob({
  type: "orders.create",
  description: "Writes the order PENDING and emits orders.created (its subject the order id)",
  input: ORDER_INPUT,
  run(input: { customerId: string; sku: string; amount: number }, ctx) {
    // The job's id is the order's: an attempt run again finds its order and keeps it as it is.
    const order = find(ctx.jobId) ?? save({ id: ctx.jobId, ...input, status: "PENDING" });
    // Published once this attempt's success commits, never from an attempt that failed.
    ctx.emit(
      "orders.created",
      { orderId: order.id, customerId: order.customerId, amount: order.amount, sku: order.sku },
      { subject: order.id },
    );
    return order;
  },
});

interface CustomerEvent {
  data: { orderId: string; reason?: string };
}

/** PENDING to `status`, once: a redelivered or late answer leaves a decided order as it is. */
function decide(event: CustomerEvent, status: "APPROVED" | "REJECTED", log: JobLogger): Order {
  const order = find(event.data.orderId);
  if (!order) throw new JobError(404, `no order ${event.data.orderId}`);
  if (order.status !== "PENDING") {
    if (order.status !== status) log.warn(`order ${order.id} is ${order.status} already; ${status} ignored`);
    return order;
  }
  return save({ ...order, status, ...(event.data.reason ? { reason: event.data.reason } : {}) });
}

const customerEvent: JsonSchema = {
  type: "object",
  properties: {
    data: {
      type: "object",
      properties: { orderId: { type: "string", minLength: 1 }, reason: { type: "string" } },
      required: ["orderId"],
    },
  },
  required: ["data"],
};

export const approveOrder = defineJob({
  type: "orders.approve",
  description: "Approves the order whose credit the customer service reserved",
  input: customerEvent,
  on: "customers.credit-reserved",
  run: (event: CustomerEvent, ctx) => decide(event, "APPROVED", ctx.log),
});

export const rejectOrder = defineJob({
  type: "orders.reject",
  description: "Rejects the order the customer's credit does not cover",
  input: customerEvent,
  on: "customers.credit-limit-exceeded",
  run: (event: CustomerEvent, ctx) => decide(event, "REJECTED", ctx.log),
});

export const getOrder = defineJob({
  type: "orders.get",
  description: "The order as it is now (PENDING until the customer service has answered)",
  input: {
    type: "object",
    properties: { orderId: { type: "string", minLength: 1 } },
    required: ["orderId"],
    additionalProperties: false,
  },
  run(input: { orderId: string }) {
    const order = find(input.orderId);
    if (!order) throw new JobError(404, `no order ${input.orderId}`);
    return order;
  },
});
