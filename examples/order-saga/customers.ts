/**
 * The customer service: credit reservations as async jobs (each takes a couple of seconds, as
 * a real check would). Its state is one JSON file in CUSTOMER_DATA_DIR: each customer's limit
 * and the reservations held against it, keyed by the caller's reservation id, so a reservation
 * asked twice (a step run again) is held once.
 *
 *   CUSTOMER_DATA_DIR=/tmp/customers tessera serve --dev --port 3002 --jobs examples/order-saga/customers.ts
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { defineJob, JobError } from "tessera";

export interface Ledger {
  limits: Record<string, number>;
  reservations: Record<string, { customerId: string; amount: number }>;
}

const dir = process.env.CUSTOMER_DATA_DIR ?? ".tessera/customers";
const file = join(dir, "ledger.json");

/** The ledger (shared with the choreography variant, choreography/customers.ts). */
export function readLedger(): Ledger {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as Ledger;
  } catch {
    return { limits: { alice: 100, bob: 10 }, reservations: {} };
  }
}

export function writeLedger(ledger: Ledger): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${file}.tmp`, JSON.stringify(ledger, null, 2));
  renameSync(`${file}.tmp`, file);
}

export const held = (ledger: Ledger, customerId: string) =>
  Object.values(ledger.reservations)
    .filter((r) => r.customerId === customerId)
    .reduce((sum, r) => sum + r.amount, 0);

export const reserveCredit = defineJob({
  type: "customers.reserve-credit",
  description: "Reserves `amount` of the customer's credit under `reservationId`; 422 when over the limit",
  input: {
    type: "object",
    properties: {
      customerId: { type: "string", minLength: 1 },
      amount: { type: "integer", minimum: 1 },
      reservationId: { type: "string", minLength: 1 },
    },
    required: ["customerId", "amount", "reservationId"],
    additionalProperties: false,
  },
  async run(input: { customerId: string; amount: number; reservationId: string }, ctx) {
    await sleep(2000, undefined, { signal: ctx.signal }); // the credit check takes a while
    const ledger = readLedger();
    if (ledger.reservations[input.reservationId]) return { reservationId: input.reservationId };
    const limit = ledger.limits[input.customerId];
    if (limit === undefined) throw new JobError(404, `no customer ${input.customerId}`);
    const available = limit - held(ledger, input.customerId);
    if (input.amount > available)
      throw new JobError(422, `credit limit exceeded: ${input.customerId} has ${available} available`);
    ledger.reservations[input.reservationId] = { customerId: input.customerId, amount: input.amount };
    writeLedger(ledger);
    return { reservationId: input.reservationId, available: available - input.amount };
  },
});

export const releaseCredit = defineJob({
  type: "customers.release-credit",
  description: "Releases the reservation `reservationId` (nothing if it is not held)",
  input: {
    type: "object",
    properties: { reservationId: { type: "string", minLength: 1 } },
    required: ["reservationId"],
    additionalProperties: false,
  },
  run(input: { reservationId: string }) {
    const ledger = readLedger();
    const released = ledger.reservations[input.reservationId] !== undefined;
    delete ledger.reservations[input.reservationId];
    writeLedger(ledger);
    return { released };
  },
});
