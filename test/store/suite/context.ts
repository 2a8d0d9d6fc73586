import type { Readable } from "node:stream";
import { expect } from "vitest";
import { jobIdTime, newJobId } from "../../../src/jobs/ids.js";
import type { JobProblem } from "../../../src/jobs/errors.js";
import { BASE32 } from "../../helpers/ids.js";
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
/** A handler's failure, as the outcome recorder passes it to the store. */
export const BOOM: JobProblem = {
  type: "/problems/job-failed",
  title: "The job failed",
  status: 500,
  detail: "boom",
};

/**
 * A new job, created at `now`. A label as its id ("job-a") becomes `labelledId(label, now,
 * tenant)`: stores take only ids made for the job's tenant.
 */
export function newJob(overrides: Partial<NewJob> = {}, now = T0): NewJob {
  const tenantId = overrides.tenantId ?? TENANT;
  const id = overrides.id === undefined ? newJobId(now, tenantId) : labelledId(overrides.id, now, tenantId);
  return {
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
    id,
  };
}

/**
 * A well-formed id of `tenantId`'s job created at `now` whose random part is `label` (up to 13
 * characters), encoded so that ids of one creation time sort as their labels do: tests name
 * their jobs and still show the order of ids. An id of the current form is kept as it is.
 */
export function labelledId(label: string, now = T0, tenantId = TENANT): string {
  if (jobIdTime(label) !== null) return label;
  if (label.length > 13 || !/^[\x21-\x7e]*$/.test(label)) throw new Error(`cannot label an id "${label}"`);
  const digits = [...label]
    .map((c) => BASE32[c.charCodeAt(0) >> 5]! + BASE32[c.charCodeAt(0) & 31]!)
    .join("");
  return newJobId(now, tenantId).slice(0, -26) + digits.padEnd(26, "0");
}

/** The label of a `labelledId`. */
export function labelOf(id: string): string {
  let label = "";
  for (let i = id.length - 26; i < id.length && id.slice(i, i + 2) !== "00"; i += 2)
    label += String.fromCharCode(BASE32.indexOf(id[i]!) * 32 + BASE32.indexOf(id[i + 1]!));
  return label;
}

/** Submit without an idempotency key and return the created job. */
export async function submitJob(store: Store, overrides: Partial<NewJob> = {}, now = T0): Promise<JobRecord> {
  const outcome = await store.submit({ job: newJob(overrides, now), idempotency: null, now });
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
