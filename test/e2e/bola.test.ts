/**
 * RELIABILITY.md S1 "Object-level authorization matrix (BOLA)": tenant B calls every route with
 * tenant A's job ids, in every state. Every answer must be the 404 problem B gets for a random
 * id that does not exist, identical but for the id itself (in `instance`): no status, header,
 * title, detail or timing-free difference tells B that A's job exists. A's jobs are unchanged
 * afterwards, B's listings never show them, and job ids are unique and random.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newJobId } from "../../src/jobs/ids.js";
import { BASE32 } from "../helpers/ids.js";
import { BatchGuard, expectProblem } from "../helpers/pass-criteria.js";
import { answer, type Answer } from "../helpers/raw-http.js";
import { bearer, startServer, type TestServer } from "../helpers/server.js";

const JOB_ID = /^job_[0-9a-hjkmnp-tv-z]{44}$/;

let server: TestServer;
let keyA: string;
let keyB: string;
/** A's jobs by the state each is in. */
const jobsA: Record<string, string> = {};
let jobB: string;

interface Representation {
  id: string;
  status: string;
  [member: string]: unknown;
}

async function submit(key: string, body: unknown): Promise<string> {
  const res = await fetch(`${server.url}/v1/jobs`, {
    method: "POST",
    headers: { ...bearer(key), "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

async function view(key: string, id: string, wait = 0): Promise<Representation> {
  const res = await fetch(`${server.url}/v1/jobs/${id}?onComplete=status`, {
    headers: { ...bearer(key), ...(wait > 0 ? { prefer: `wait=${wait}` } : {}) },
  });
  expect([200, 202]).toContain(res.status);
  return (await res.json()) as Representation;
}

async function reachState(id: string, status: string): Promise<void> {
  const end = Date.now() + 10_000;
  let current = await view(keyA, id);
  while (current.status !== status && Date.now() < end) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    current = await view(keyA, id, status === "running" ? 0 : 1);
  }
  expect(current.status, id).toBe(status);
}

/** What must not change: everything but links (signed afresh) and progress (a running job's). */
async function snapshotA(): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const [state, id] of Object.entries(jobsA)) {
    const { links: _links, progress: _progress, ...rest } = await view(keyA, id);
    out[state] = rest;
  }
  return out;
}

beforeAll(async () => {
  server = await startServer({ config: { concurrency: 20 } });
  keyA = await server.key("tenant-a");
  keyB = await server.key("tenant-b");
  const later = new Date(Date.now() + 30 * 60_000).toISOString();
  jobsA.queued = await submit(keyA, { type: "demo.echo", input: 1, runAt: later, timeoutSeconds: 3600 });
  jobsA.running = await submit(keyA, { type: "demo.sleep", input: { ms: 120_000 } });
  jobsA.succeeded = await submit(keyA, { type: "demo.echo", input: { secret: "a's data" } });
  jobsA.failed = await submit(keyA, {
    type: "demo.fail",
    input: { message: "a's failure", status: 500 },
    maxAttempts: 1,
  });
  jobsA.rejected = await submit(keyA, {
    type: "demo.fail",
    input: { message: "a's rejection", status: 422 },
  });
  jobsA.canceled = await submit(keyA, { type: "demo.sleep", input: { ms: 120_000 } });
  jobsA.timed_out = await submit(keyA, { type: "demo.sleep", input: { ms: 120_000 }, timeoutSeconds: 1 });
  const cancel = await fetch(`${server.url}/v1/jobs/${jobsA.canceled}/cancel`, {
    method: "POST",
    headers: bearer(keyA),
  });
  expect(cancel.status).toBe(200);
  jobB = await submit(keyB, { type: "demo.echo", input: "b's own" });

  await reachState(jobsA.running, "running");
  await reachState(jobsA.succeeded, "succeeded");
  await reachState(jobsA.failed, "failed");
  await reachState(jobsA.rejected, "failed");
  await reachState(jobsA.timed_out, "timed_out");
  await reachState(jobsA.queued, "queued");
  await reachState(jobsA.canceled, "canceled");
});
afterAll(() => server.close());

interface Call {
  label: string;
  method: string;
  path: (id: string) => string;
  headers?: Record<string, string>;
}

const STATUS_QUERIES = [
  "",
  ...["redirect", "stream", "status"].flatMap((c) => [
    `onComplete=${c}`,
    ...["synchronous", "respond-async"].map((p) => `onComplete=${c}&onPending=${p}`),
  ]),
  "onPending=synchronous",
  "onPending=respond-async",
];

const CALLS: Call[] = [
  ...STATUS_QUERIES.map((q) => ({
    label: `GET status ${q || "(no query)"}`,
    method: "GET",
    path: (id: string) => `/v1/jobs/${id}${q ? `?${q}` : ""}`,
  })),
  {
    label: "GET status with Prefer: wait",
    method: "GET",
    path: (id) => `/v1/jobs/${id}`,
    headers: { prefer: "wait=2" },
  },
  {
    label: "GET status stream with Prefer: wait",
    method: "GET",
    path: (id) => `/v1/jobs/${id}?onComplete=stream`,
    headers: { prefer: "wait=2" },
  },
  { label: "HEAD status", method: "HEAD", path: (id) => `/v1/jobs/${id}` },
  { label: "GET result", method: "GET", path: (id) => `/v1/jobs/${id}/result` },
  { label: "HEAD result", method: "HEAD", path: (id) => `/v1/jobs/${id}/result` },
  { label: "POST cancel", method: "POST", path: (id) => `/v1/jobs/${id}/cancel` },
  { label: "DELETE", method: "DELETE", path: (id) => `/v1/jobs/${id}` },
  { label: "GET deliveries", method: "GET", path: (id) => `/v1/jobs/${id}/deliveries` },
];

async function call(c: Call, id: string, key: string | null): Promise<Answer> {
  const res = await fetch(`${server.url}${c.path(id)}`, {
    method: c.method,
    headers: { ...(key ? bearer(key) : {}), ...c.headers },
    redirect: "manual",
  });
  return answer(res);
}

/**
 * The answer with the id replaced, and the headers that differ per response (date, and
 * RateLimit: the remaining count falls with every request, whatever the id) removed.
 */
function normalise(a: Answer, id: string): Answer {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(a.headers)) {
    if (name === "date" || name === "keep-alive" || name === "connection" || name === "ratelimit") continue;
    headers[name] = value.split(id).join("{id}");
  }
  return { status: a.status, headers, text: a.text.split(id).join("{id}") };
}

describe("S1 BOLA: B calls every route with A's ids", () => {
  it("every answer is the 404 problem of a random nonexistent id, identical but for the id", async () => {
    const before = await snapshotA();
    let compared = 0;
    for (const [state, idA] of Object.entries(jobsA)) {
      for (const c of CALLS) {
        const random = newJobId(Date.now(), randomUUID());
        const [forA, forRandom] = await Promise.all([call(c, idA, keyB), call(c, random, keyB)]);
        const context = `${c.label} on A's ${state} job`;
        expect(forA.status, context).toBe(404);
        if (c.method !== "HEAD") {
          const problem = expectProblem(forA, 404, "not-found");
          expect(problem.instance, context).toBe(c.path(idA).split("?")[0]);
          expect(forA.text, context).not.toContain("a's");
        }
        expect(normalise(forA, idA), context).toEqual(normalise(forRandom, random));
        compared++;
      }
    }
    expect(compared).toBe(Object.keys(jobsA).length * CALLS.length);
    // Nothing B did changed A's jobs: no cancel, no delete, no new attempt.
    expect(await snapshotA()).toEqual(before);
  });

  it("without credentials, A's ids and random ids get the same 401", async () => {
    for (const [state, idA] of Object.entries(jobsA)) {
      for (const c of CALLS.filter((x) => !x.label.includes("result") && x.method !== "HEAD")) {
        const random = newJobId(Date.now(), randomUUID());
        const [forA, forRandom] = await Promise.all([call(c, idA, null), call(c, random, null)]);
        const context = `${c.label} on A's ${state} job, no key`;
        if (c.label === "GET deliveries" && forA.status === 404) {
          // No such route (yet): the not-found handler answers before authentication.
          expect(normalise(forA, idA), context).toEqual(normalise(forRandom, random));
          continue;
        }
        expectProblem(forA, 401, "unauthorized");
        expect(normalise(forA, idA), context).toEqual(normalise(forRandom, random));
      }
    }
  });

  it("B's listings never contain A's jobs, whatever the filter or cursor", async () => {
    const idsA = new Set(Object.values(jobsA));
    const pageA = (await (
      await fetch(`${server.url}/v1/jobs?limit=1`, { headers: bearer(keyA) })
    ).json()) as { nextCursor: string | null };
    expect(pageA.nextCursor).toBeTruthy();
    const queries = [
      "",
      "limit=500",
      `cursor=${encodeURIComponent(pageA.nextCursor!)}`,
      `limit=500&cursor=${encodeURIComponent(pageA.nextCursor!)}`,
      ...["queued", "running", "succeeded", "failed", "canceled", "timed_out"].map((s) => `status=${s}`),
      "type=demo.sleep",
      "type=demo.fail",
    ];
    for (const q of queries) {
      const res = await fetch(`${server.url}/v1/jobs?${q}`, { headers: bearer(keyB) });
      expect(res.status, q).toBe(200);
      const body = (await res.json()) as { items: { id: string }[] };
      for (const item of body.items) expect(idsA.has(item.id), `${q}: ${item.id}`).toBe(false);
      if (q === "" || q === "limit=500") expect(body.items.map((i) => i.id)).toEqual([jobB]);
    }
  });

  it("A still sees all its jobs, in the states they had", async () => {
    const res = await fetch(`${server.url}/v1/jobs?limit=500`, { headers: bearer(keyA) });
    const body = (await res.json()) as { items: Representation[] };
    const byId = new Map(body.items.map((j) => [j.id, j.status]));
    for (const [state, id] of Object.entries(jobsA)) {
      expect(byId.get(id), state).toBe(state === "rejected" ? "failed" : state);
    }
  });
});

describe("S1 job ids", () => {
  it("1,000 generated ids are unique, carry 130 random bits, and the random part shows no pattern", async () => {
    const keyC = await server.key("tenant-c");
    const guard = new BatchGuard(server.url, { c: keyC });
    await guard.baseline();
    const later = new Date(Date.now() + 30 * 60_000).toISOString();
    const ids: string[] = [];
    for (let batch = 0; batch < 4; batch++) {
      // Queued for later: they are never run, only created.
      ids.push(
        ...(await Promise.all(
          Array.from({ length: 250 }, (_, i) =>
            submit(keyC, { type: "demo.echo", input: i, runAt: later, timeoutSeconds: 3600 }),
          ),
        )),
      );
    }
    guard.accepted("c", ids.length);
    await guard.check();

    expect(new Set(ids).size).toBe(1000);
    for (const id of ids) expect(id).toMatch(JOB_ID);
    // The tenant's code and the creation time come first (all of C's ids share the code); the
    // last 26 digits are random. Consecutive ids share no long run of those (no counter) ...
    expect(new Set(ids.map((id) => id.slice(0, 12))).size).toBe(1);
    const randomParts = ids.map((id) => id.slice(-26));
    for (let i = 1; i < ids.length; i++)
      expect(randomParts[i]!.slice(0, 6)).not.toBe(randomParts[i - 1]!.slice(0, 6));
    // ... and its digits (5 random bits each) are spread evenly over the 32 (7 sigma bounds).
    const counts = new Array<number>(32).fill(0);
    for (const part of randomParts) for (const digit of part) counts[BASE32.indexOf(digit)]!++;
    const expected = (1000 * 26) / 32;
    for (const n of counts) {
      expect(n).toBeGreaterThan(expected - 7 * Math.sqrt(expected));
      expect(n).toBeLessThan(expected + 7 * Math.sqrt(expected));
    }
  });
});
