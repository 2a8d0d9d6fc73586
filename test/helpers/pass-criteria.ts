import { expect } from "vitest";
import type { Answer } from "./raw-http.js";
import { bearer } from "./server.js";

/** A stack frame in a body: "at fn (/path/file.js:12:34)". */
export const STACK_FRAME = /\bat .+:\d+:\d+/;

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  errors?: { path: string; message: string }[];
  [member: string]: unknown;
}

/**
 * The shape every problem answer has, 4xx or 5xx: problem+json with a slug `type`, `status`
 * equal to the HTTP status, the members the contract requires, `errors[].path` on validation
 * problems, the security headers, and no stack trace.
 */
export function expectProblemShape(a: Answer, slug?: string | readonly string[]): Problem {
  const context = `${a.status} ${a.text.slice(0, 300)}`;
  expect(a.headers["content-type"] ?? "", context).toMatch(/^application\/problem\+json\b/);
  expect(a.headers["x-content-type-options"], context).toBe("nosniff");
  expect(a.headers["referrer-policy"], context).toBe("no-referrer");
  expect(a.headers["x-powered-by"]).toBeUndefined();
  expect(a.text, "stack trace in body").not.toMatch(STACK_FRAME);
  const body = JSON.parse(a.text) as Problem;
  expect(body.type, context).toMatch(/(^|\/)[a-z0-9]+(-[a-z0-9]+)*$/);
  expect(body.status, context).toBe(a.status);
  for (const member of ["title", "detail", "instance"] as const)
    expect(typeof body[member], `${member}: ${context}`).toBe("string");
  if (slug !== undefined) {
    const slugs = typeof slug === "string" ? [slug] : slug;
    expect(slugs, context).toContain(slugOf(body));
  }
  if (slugOf(body) === "validation-failed")
    expect(Array.isArray(body.errors) && body.errors.length > 0, context).toBe(true);
  if (body.errors !== undefined) {
    for (const e of body.errors) {
      expect(typeof e.path, context).toBe("string");
      expect(typeof e.message, context).toBe("string");
    }
  }
  return body;
}

/** The common pass criterion for a refused request (RELIABILITY.md, "Bad input"): a 4xx problem. */
export function expectProblem(
  a: Answer,
  status: number | readonly number[],
  slug?: string | readonly string[],
): Problem {
  const statuses = typeof status === "number" ? [status] : status;
  const context = `${a.status} ${a.text.slice(0, 300)}`;
  expect(statuses, context).toContain(a.status);
  expect(a.status, context).toBeGreaterThanOrEqual(400);
  expect(a.status, context).toBeLessThan(500);
  return expectProblemShape(a, slug);
}

export function slugOf(problem: Problem): string {
  return problem.type.slice(problem.type.lastIndexOf("/") + 1);
}

/** The `errors[].path` values of a validation problem. */
export function errorPaths(problem: Problem): string[] {
  return (problem.errors ?? []).map((e) => e.path);
}

/** Every job of the caller, counted through the listing (all pages). */
export async function countJobs(baseUrl: string, key: string): Promise<number> {
  let count = 0;
  let cursor: string | null = null;
  for (let page = 0; page < 1000; page++) {
    const url: string = `${baseUrl}/v1/jobs?limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const res = await fetch(url, { headers: bearer(key) });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { items: unknown[]; nextCursor: string | null };
    count += body.items.length;
    cursor = body.nextCursor;
    if (cursor === null) return count;
  }
  throw new Error("listing did not end");
}

/** A fingerprint of Object.prototype: its own property names and what kind each is. */
export function prototypeFingerprint(): string {
  return Object.getOwnPropertyNames(Object.prototype)
    .sort()
    .map((name) => {
      const d = Object.getOwnPropertyDescriptor(Object.prototype, name)!;
      return `${name}:${typeof d.value}:${typeof d.get}:${typeof d.set}`;
    })
    .join(",");
}

/**
 * Checks made after each batch of hostile requests: the job count moved only by accepted
 * submits, Object.prototype is untouched, and /healthz answers within 1 s.
 */
export class BatchGuard {
  private readonly expected = new Map<string, number>();
  private readonly fingerprint = prototypeFingerprint();

  constructor(
    private readonly baseUrl: string,
    private readonly keys: Record<string, string>,
  ) {}

  /** Record the current job counts as the baseline. */
  async baseline(): Promise<void> {
    for (const [tenant, key] of Object.entries(this.keys))
      this.expected.set(tenant, await countJobs(this.baseUrl, key));
  }

  /** A submit by `tenant` was accepted (a new job). */
  accepted(tenant: string, n = 1): void {
    this.expected.set(tenant, (this.expected.get(tenant) ?? 0) + n);
  }

  async check(): Promise<void> {
    for (const [tenant, key] of Object.entries(this.keys)) {
      expect(await countJobs(this.baseUrl, key), `job count of ${tenant}`).toBe(
        this.expected.get(tenant) ?? 0,
      );
    }
    expect(prototypeFingerprint()).toBe(this.fingerprint);
    const probe = {} as Record<string, unknown>;
    for (const name of ["isAdmin", "x", "polluted"])
      expect(probe[name], `Object.prototype.${name}`).toBeUndefined();
    const started = performance.now();
    const health = await fetch(`${this.baseUrl}/healthz`, { signal: AbortSignal.timeout(5000) });
    expect(health.status).toBe(200);
    await health.text();
    expect(performance.now() - started, "/healthz latency (ms)").toBeLessThan(1000);
  }
}

/** Poll `read` until `done(value)` or `timeoutMs` passes; returns the last value read. */
export async function until<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs: number,
  stepMs = 25,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let value = await read();
  while (!done(value) && Date.now() < end) {
    await new Promise((resolve) => setTimeout(resolve, stepMs));
    value = await read();
  }
  return value;
}

/** One gauge or counter value from /metrics (unlabelled series). */
export async function metricValue(baseUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`metric ${name} not found`);
  return Number(line.slice(name.length + 1));
}
