import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateApiKey } from "../../src/auth/api-keys.js";
import { bearer, http, startServer, type TestServer } from "../helpers/server.js";
import { client, expectProblem, settle, submit, type Client, type Job, type Problem } from "./support.js";

const NONEXISTENT = "00000000-0000-4000-8000-000000000000";

describe("tenant isolation (BOLA): another tenant's job is an unknown job", () => {
  let server: TestServer;
  let keyA: string;
  let keyB: string;
  let a: Client;
  const jobs: Record<string, Job> = {};
  beforeAll(async () => {
    server = await startServer();
    keyA = await server.key("tenant-a");
    keyB = await server.key("tenant-b");
    a = client(server.url, keyA);
    jobs.succeeded = (await submit(a, { type: "demo.echo", input: { secret: "A's data" } })).job;
    jobs.failed = (
      await submit(a, { type: "demo.fail", input: { message: "A's failure", status: 422 } })
    ).job;
    jobs.running = (await submit(a, { type: "demo.sleep", input: { ms: 60_000 } })).job;
    jobs.queued = (
      await submit(a, { type: "demo.echo", input: 1, runAt: new Date(Date.now() + 30_000).toISOString() })
    ).job;
    jobs.canceled = (await submit(a, { type: "demo.sleep", input: { ms: 60_000 } })).job;
    await http(jobs.canceled.links.cancel!, { method: "POST", headers: bearer(keyA) });
    jobs.succeeded = await settle(a, jobs.succeeded.id);
    jobs.failed = await settle(a, jobs.failed.id);
  });
  afterAll(() => server.close());

  /** Every request B can make about job `id`. */
  const probes = (
    id: string,
  ): { label: string; method: string; path: string; headers?: Record<string, string> }[] => [
    { label: "status", method: "GET", path: `/v1/jobs/${id}` },
    { label: "status onComplete=redirect", method: "GET", path: `/v1/jobs/${id}?onComplete=redirect` },
    { label: "status onComplete=stream", method: "GET", path: `/v1/jobs/${id}?onComplete=stream` },
    { label: "status onComplete=status", method: "GET", path: `/v1/jobs/${id}?onComplete=status` },
    { label: "status onPending=synchronous", method: "GET", path: `/v1/jobs/${id}?onPending=synchronous` },
    {
      label: "status onPending=respond-async",
      method: "GET",
      path: `/v1/jobs/${id}?onPending=respond-async`,
    },
    { label: "status Prefer: wait", method: "GET", path: `/v1/jobs/${id}`, headers: { prefer: "wait=5" } },
    { label: "result", method: "GET", path: `/v1/jobs/${id}/result` },
    { label: "cancel", method: "POST", path: `/v1/jobs/${id}/cancel` },
    { label: "delete", method: "DELETE", path: `/v1/jobs/${id}` },
  ];

  async function answer(method: string, path: string, headers: Record<string, string> = {}) {
    const start = Date.now();
    const res = await http(`${server.url}${path}`, { method, headers: { ...bearer(keyB), ...headers } });
    const body = (await expectProblem(res, 404)) as Problem;
    return { body, ms: Date.now() - start, contentType: res.headers.get("content-type") };
  }

  it("every route answers B with the same 404 as for a nonexistent id (apart from instance)", async () => {
    for (const state of Object.keys(jobs)) {
      const id = jobs[state]!.id;
      const theirs = probes(id);
      const none = probes(NONEXISTENT);
      for (let i = 0; i < theirs.length; i++) {
        const p = theirs[i]!;
        const got = await answer(p.method, p.path, p.headers);
        const ref = await answer(none[i]!.method, none[i]!.path, none[i]!.headers);
        const { instance: i1, ...rest1 } = got.body;
        const { instance: i2, ...rest2 } = ref.body;
        expect(rest1, `${state} ${p.label}`).toEqual(rest2);
        expect(i1).toBe(new URL(`${server.url}${p.path}`).pathname);
        expect(i2).toBe(new URL(`${server.url}${none[i]!.path}`).pathname);
        expect(got.contentType).toBe(ref.contentType);
        // Never held: a wait on someone else's job is refused at once.
        expect(got.ms).toBeLessThan(3000);
        expect(JSON.stringify(got.body)).not.toContain("A's");
      }
    }
  });

  it("A's jobs are unchanged after B's attempts", async () => {
    const running = await http(`${jobs.running!.links.self}?onComplete=status`, { headers: bearer(keyA) });
    expect(running.status).toBe(202);
    expect(((await running.json()) as Job).status).toMatch(/queued|running/);
    const queued = await http(`${jobs.queued!.links.self}?onComplete=status`, { headers: bearer(keyA) });
    expect(((await queued.json()) as Job).status).toBe("queued");
    const result = await http(`${jobs.succeeded!.links.self}/result`, { headers: bearer(keyA) });
    expect(result.status).toBe(200);
    expect(await result.json()).toEqual({ secret: "A's data" });
  });

  it("B's listing never shows A's jobs, and A's cursor shows B nothing of A's", async () => {
    await submit(client(server.url, keyB), { type: "demo.echo", input: "b" });
    const listB = await http(`${server.url}/v1/jobs?limit=500`, { headers: bearer(keyB) });
    expect(listB.status).toBe(200);
    const itemsB = ((await listB.json()) as { items: Job[] }).items;
    const idsA = Object.values(jobs).map((j) => j.id);
    expect(itemsB.length).toBeGreaterThan(0);
    for (const item of itemsB) expect(idsA).not.toContain(item.id);

    const pageA = await http(`${server.url}/v1/jobs?limit=1`, { headers: bearer(keyA) });
    const cursorA = ((await pageA.json()) as { nextCursor: string }).nextCursor;
    expect(cursorA).toBeTruthy();
    const withCursor = await http(`${server.url}/v1/jobs?limit=500&cursor=${encodeURIComponent(cursorA)}`, {
      headers: bearer(keyB),
    });
    if (withCursor.status === 200) {
      const items = ((await withCursor.json()) as { items: Job[] }).items;
      for (const item of items) expect(idsA).not.toContain(item.id);
    } else {
      await expectProblem(withCursor, 400);
    }
  });

  it("a signed result URL of A's job does not work with the id of another job", async () => {
    const signed = new URL(jobs.succeeded!.links.result!);
    signed.pathname = `/v1/jobs/${jobs.failed!.id}/result`;
    await expectProblem(await http(signed.href), 403);
  });
});

describe("authentication", () => {
  let server: TestServer;
  let key: string;
  beforeAll(async () => {
    server = await startServer();
    key = await server.key("acme");
  });
  afterAll(() => server.close());

  const routes = [
    ["GET", "/v1/jobs"],
    ["POST", "/v1/jobs"],
    ["GET", `/v1/jobs/${NONEXISTENT}`],
    ["GET", `/v1/jobs/${NONEXISTENT}/result`],
    ["POST", `/v1/jobs/${NONEXISTENT}/cancel`],
    ["DELETE", `/v1/jobs/${NONEXISTENT}`],
    ["GET", "/v1/job-types"],
  ] as const;

  async function unauthorized(res: Response): Promise<Problem> {
    const problem = await expectProblem(res, 401, "unauthorized");
    expect(res.headers.get("www-authenticate")).toMatch(/^Bearer\b/);
    return problem;
  }

  it("a missing key is 401 with WWW-Authenticate: Bearer on every API route", async () => {
    for (const [method, path] of routes) {
      const res = await http(`${server.url}${path}`, {
        method,
        ...(method === "POST" && path === "/v1/jobs" ? { json: { type: "demo.echo", input: 1 } } : {}),
      });
      await unauthorized(res);
    }
  });

  it("every kind of bad key gets the same 401 (no oracle)", async () => {
    const unknown = generateApiKey().key; // well-formed, never stored
    const revoked = await server.key("acme");
    expect(
      await server.tessera.store.revokeApiKey({ idOrPrefix: revoked.slice(0, 12), now: Date.now() }),
    ).toBe(true);
    const cases: Record<string, Record<string, string>> = {
      missing: {},
      empty: { authorization: "" },
      "bearer only": { authorization: "Bearer" },
      malformed: { authorization: "Bearer not-a-key" },
      "wrong scheme": { authorization: `Basic ${Buffer.from(`x:${key}`).toString("base64")}` },
      "unknown key": bearer(unknown),
      "revoked key": bearer(revoked),
      "bad checksum": bearer(key.slice(0, -1) + (key.endsWith("A") ? "B" : "A")),
    };
    const bodies: string[] = [];
    for (const [label, headers] of Object.entries(cases)) {
      const res = await http(`${server.url}/v1/jobs`, { headers });
      const problem = await unauthorized(res);
      expect(problem.instance, label).toBe("/v1/jobs");
      bodies.push(JSON.stringify(problem));
    }
    expect(new Set(bodies).size).toBe(1);
  });

  it("revocation takes effect within --auth-cache-ms (1 s by default)", async () => {
    const k = await server.key("acme");
    expect((await http(`${server.url}/v1/jobs`, { headers: bearer(k) })).status).toBe(200);
    const revokedAt = Date.now();
    await server.tessera.store.revokeApiKey({ idOrPrefix: k.slice(0, 12), now: revokedAt });
    for (;;) {
      const res = await http(`${server.url}/v1/jobs`, { headers: bearer(k) });
      if (res.status === 401) {
        await unauthorized(res);
        break;
      }
      expect(res.status).toBe(200); // still trusted from the cache, never anything else
      await res.arrayBuffer();
      expect(Date.now() - revokedAt).toBeLessThan(server.tessera.config.authCacheMs + 1000);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });

  it("with --auth-cache-ms 0 revocation takes effect on the next request", async () => {
    const fresh = await startServer({ config: { authCacheMs: 0 } });
    try {
      const k = await fresh.key("acme");
      expect((await http(`${fresh.url}/v1/jobs`, { headers: bearer(k) })).status).toBe(200);
      await fresh.tessera.store.revokeApiKey({ idOrPrefix: k.slice(0, 12), now: Date.now() });
      await unauthorized(await http(`${fresh.url}/v1/jobs`, { headers: bearer(k) }));
    } finally {
      await fresh.close();
    }
  });

  it("a key in the URL is not accepted", async () => {
    await unauthorized(await http(`${server.url}/v1/jobs?api_key=${encodeURIComponent(key)}`));
  });

  it("the scheme is case-insensitive", async () => {
    expect(
      (await http(`${server.url}/v1/jobs`, { headers: { authorization: `bearer ${key}` } })).status,
    ).toBe(200);
  });

  it("/healthz, /readyz, /openapi.json and /metrics need no key", async () => {
    for (const path of ["/healthz", "/readyz", "/openapi.json", "/metrics"]) {
      const res = await http(`${server.url}${path}`);
      expect(res.status, path).toBe(200);
      await res.arrayBuffer();
    }
  });
});

describe("--dev mode", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ dev: true });
  });
  afterAll(() => server.close());

  it("needs no key, and everything works as one tenant", async () => {
    const c = client(server.url, null);
    const { job, location } = await submit(c, { type: "demo.echo", input: { dev: true } });
    const done = await http(location, { headers: { prefer: "wait=10" } });
    expect(done.status).toBe(303);
    const result = await http(done.headers.get("location")!);
    expect(result.status).toBe(200);
    expect(await result.json()).toEqual({ dev: true });
    const list = await http(`${server.url}/v1/jobs`);
    expect(list.status).toBe(200);
    expect(((await list.json()) as { items: Job[] }).items.map((j) => j.id)).toContain(job.id);
    expect((await http(`${server.url}/v1/job-types`)).status).toBe(200);
  });

  it("/healthz says authentication is off", async () => {
    const res = await http(`${server.url}/healthz`);
    expect(res.status).toBe(200);
    expect(JSON.stringify(await res.json())).toMatch(/authentication is OFF/i);
  });
});
