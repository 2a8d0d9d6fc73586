import { randomUUID } from "node:crypto";
import type { Readable } from "node:stream";
import { expect } from "vitest";
import type { ClaimedJob, JobRecord, NewJob, Store, StoreEvent } from "../../../src/store/store.js";

/** What every part of the suite sees: the fresh store of the running test. */
export interface SuiteContext {
  readonly store: Store;
}

/** A fixed clock origin; tests pass `now` explicitly and backdate instead of sleeping. */
export const T0 = 1_700_000_000_000;
export const LEASE_MS = 30_000;
export const TENANT = "tenant-a";
export const OTHER_TENANT = "tenant-b";
export const TYPE = "test.echo";

export function newJob(overrides: Partial<NewJob> = {}): NewJob {
  return {
    id: randomUUID(),
    tenantId: TENANT,
    type: TYPE,
    input: { n: 1 },
    priority: 0,
    runAt: T0,
    deadlineAt: T0 + 3_600_000,
    maxAttempts: 3,
    metadata: {},
    callback: null,
    ...overrides,
  };
}

/** Submit without an idempotency key and return the created job. */
export async function submitJob(store: Store, overrides: Partial<NewJob> = {}, now = T0): Promise<JobRecord> {
  const outcome = await store.submit({ job: newJob(overrides), idempotency: null, now });
  if (outcome.kind !== "created") throw new Error(`expected a created job, got ${outcome.kind}`);
  return outcome.job;
}

/** Claim exactly one job (fails the test when there is none). */
export async function claimOne(
  store: Store,
  options: { now?: number; types?: string[]; leaseMs?: number } = {},
): Promise<ClaimedJob> {
  const claimed = await store.claim({
    types: options.types ?? [TYPE],
    limit: 1,
    leaseMs: options.leaseMs ?? LEASE_MS,
    now: options.now ?? T0,
  });
  expect(claimed).toHaveLength(1);
  return claimed[0]!;
}

/** A job the test owns, submitted and claimed: the usual start of a worker-side test. */
export async function submitAndClaim(
  store: Store,
  overrides: Partial<NewJob> = {},
  now = T0,
): Promise<ClaimedJob> {
  const job = await submitJob(store, overrides, now);
  const claimed = await claimOne(store, { now, types: [job.type] });
  expect(claimed.id).toBe(job.id);
  return claimed;
}

export function leaseOf(job: ClaimedJob): { id: string; leaseToken: string } {
  return { id: job.id, leaseToken: job.leaseToken };
}

export async function getJob(store: Store, id: string, tenantId = TENANT): Promise<JobRecord> {
  const job = await store.get({ tenantId, id });
  if (!job) throw new Error(`job ${id} not found`);
  return job;
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

/** Records the store's events until `stop()`. */
export function recordEvents(store: Store): { events: StoreEvent[]; stop: () => void } {
  const events: StoreEvent[] = [];
  const stop = store.subscribe((event) => events.push(event));
  return { events, stop };
}
