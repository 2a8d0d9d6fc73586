/**
 * Shared assertions for the contract tests in test/e2e (real sockets, real SQLite).
 * Everything here speaks HTTP only, except where a test says otherwise.
 */
import { expect } from "vitest";
import { bearer, http } from "../helpers/server.js";

export const REPRESENTATION_FIELDS = [
  "id",
  "type",
  "status",
  "progress",
  "attempt",
  "maxAttempts",
  "createdAt",
  "startedAt",
  "finishedAt",
  "deadlineAt",
  "error",
  "links",
] as const;

export const TERMINAL = ["succeeded", "failed", "canceled", "timed_out"];

export interface Job {
  id: string;
  type: string;
  status: string;
  progress: { percent: number | null; message: string | null } | null;
  attempt: number;
  maxAttempts: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  deadlineAt: string;
  error: { type: string; title: string; status: number; detail: string } | null;
  metadata?: Record<string, string>;
  links: { self: string; cancel?: string; result?: string };
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  errors?: { path: string; message: string }[];
  error?: { code: string; message: string };
  job?: Job;
  [k: string]: unknown;
}

/** Every representation field present (null allowed), links absolute and fitting the status. */
export function expectRepresentation(job: Job): void {
  for (const field of REPRESENTATION_FIELDS) expect(job, `field ${field}`).toHaveProperty(field);
  expect(typeof job.id).toBe("string");
  expect(Number.isInteger(job.attempt)).toBe(true);
  expect(Number.isNaN(Date.parse(job.createdAt))).toBe(false);
  expect(Number.isNaN(Date.parse(job.deadlineAt))).toBe(false);
  expect(new URL(job.links.self).pathname).toBe(`/v1/jobs/${job.id}`);
  if (TERMINAL.includes(job.status)) {
    expect(job.links.cancel).toBeUndefined();
    expect(new URL(job.links.result!).pathname).toBe(`/v1/jobs/${job.id}/result`);
    expect(new URL(job.links.result!).searchParams.get("sig")).toBeTruthy();
  } else {
    expect(job.links.result).toBeUndefined();
    expect(new URL(job.links.cancel!).pathname).toBe(`/v1/jobs/${job.id}/cancel`);
  }
}

/** An RFC 9457 problem with the given status and slug (last path segment of `type`). */
export async function expectProblem(res: Response, status: number, slug?: string): Promise<Problem> {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
  expectSecurityHeaders(res);
  const body = (await res.json()) as Problem;
  expect(typeof body.type).toBe("string");
  expect(typeof body.title).toBe("string");
  expect(body.status).toBe(status);
  expect(typeof body.detail).toBe("string");
  expect(typeof body.instance).toBe("string");
  if (slug !== undefined) expect(body.type.slice(body.type.lastIndexOf("/") + 1)).toBe(slug);
  expect(JSON.stringify(body)).not.toMatch(/\n\s+at /); // no stack traces
  return body;
}

/** The headers every answer carries (a Response's, or any `get`-able set such as a raw head's). */
export function expectSecurityHeaders(res: { headers: { get(name: string): string | null } }): void {
  expect(res.headers.get("x-content-type-options")).toBe("nosniff");
  expect(res.headers.get("referrer-policy")).toBe("no-referrer");
  expect(res.headers.get("content-security-policy")).toBe("default-src 'none'; frame-ancestors 'none'");
}

export function expectRetryAfter(res: Response): number {
  const text = res.headers.get("retry-after");
  expect(text).toMatch(/^\d+$/);
  const n = Number(text);
  expect(n).toBeGreaterThanOrEqual(1);
  return n;
}

export interface Client {
  base: string;
  headers: Record<string, string>;
}

export function client(base: string, key: string | null): Client {
  return { base, headers: key === null ? {} : bearer(key) };
}

/** Submit and expect 202; returns the body and the Location. */
export async function submit(
  c: Client,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<{ res: Response; job: Job; location: string }> {
  const res = await http(`${c.base}/v1/jobs`, { headers: { ...c.headers, ...headers }, json: body });
  if (res.status !== 202) throw new Error(`submit answered ${res.status}: ${await res.text()}`);
  const job = (await res.json()) as Job;
  return { res, job, location: res.headers.get("location")! };
}

/** Wait (server-side, event-driven) until the job is terminal; returns its representation. */
export async function settle(c: Client, id: string, seconds = 20): Promise<Job> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const res = await http(`${c.base}/v1/jobs/${id}?onComplete=status`, {
      headers: { ...c.headers, prefer: "wait=5" },
    });
    const job = (await res.json()) as Job;
    if (res.status === 200) return job;
    expect(res.status).toBe(202);
    if (Date.now() > deadline) throw new Error(`job ${id} still ${job.status} after ${seconds}s`);
  }
}

/** Poll until `predicate` holds for the job (for non-terminal states such as running). */
export async function until(
  c: Client,
  id: string,
  predicate: (job: Job) => boolean,
  seconds = 10,
): Promise<Job> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const res = await http(`${c.base}/v1/jobs/${id}?onComplete=status`, { headers: c.headers });
    const job = (await res.json()) as Job;
    if (predicate(job)) return job;
    if (Date.now() > deadline)
      throw new Error(`job ${id} did not reach the condition (last: ${JSON.stringify(job)})`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
