import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, http, startServer, type TestServer } from "../helpers/server.js";
import { client, expectRepresentation, expectRetryAfter, submit, type Client, type Job } from "./support.js";

/** Run `fn` and measure its wall time in ms. */
async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - start };
}

describe("waits: Prefer: wait and onPending=synchronous", () => {
  let server: TestServer;
  let key: string;
  let c: Client;
  beforeAll(async () => {
    server = await startServer();
    key = await server.key("acme");
    c = client(server.url, key);
  });
  afterAll(() => server.close());

  it("Prefer: wait holds the status monitor until the job finishes, and answers soon after", async () => {
    const { location } = await submit(c, { type: "demo.sleep", input: { ms: 400 } });
    const { value: res, ms } = await timed(() =>
      http(location, { headers: { ...bearer(key), prefer: "wait=20" } }),
    );
    expect(res.status).toBe(303);
    expect(res.headers.get("preference-applied")).toBe("wait=20");
    expect(((await res.json()) as Job).status).toBe("succeeded");
    // Answered when the job finished (~0.4 s), not at the end of the 20 s wait.
    expect(ms).toBeLessThan(5000);
  });

  it("onPending=synchronous holds until terminal, and answers soon after", async () => {
    const { location } = await submit(c, { type: "demo.sleep", input: { ms: 400 } });
    const { value: res, ms } = await timed(() =>
      http(`${location}?onPending=synchronous&onComplete=status`, { headers: bearer(key) }),
    );
    expect(res.status).toBe(200);
    expect(((await res.json()) as Job).status).toBe("succeeded");
    expect(ms).toBeLessThan(5000);
  });

  it("onPending=respond-async does not wait", async () => {
    const { job, location } = await submit(c, { type: "demo.sleep", input: { ms: 10_000 } });
    const { value: res, ms } = await timed(() =>
      http(`${location}?onPending=respond-async`, { headers: bearer(key) }),
    );
    expect(res.status).toBe(202);
    expect(ms).toBeLessThan(3000);
    await http(job.links.cancel!, { method: "POST", headers: bearer(key) });
  });

  it("a wait that ends before the job answers 202 with Retry-After and Location", async () => {
    const { job, location } = await submit(c, { type: "demo.sleep", input: { ms: 5000 } });
    const { value: res, ms } = await timed(() =>
      http(location, { headers: { ...bearer(key), prefer: "wait=1" } }),
    );
    expect(res.status).toBe(202);
    expect(res.headers.get("preference-applied")).toBe("wait=1");
    expect(res.headers.get("location")).toBe(location);
    expectRetryAfter(res);
    expectRepresentation((await res.json()) as Job);
    expect(ms).toBeGreaterThanOrEqual(900);
    expect(ms).toBeLessThan(4000);
    await http(job.links.cancel!, { method: "POST", headers: bearer(key) });
  });

  it("with onPending=synchronous and Prefer: wait, the shorter bound wins", async () => {
    const { job, location } = await submit(c, { type: "demo.sleep", input: { ms: 5000 } });
    const { value: res, ms } = await timed(() =>
      http(`${location}?onPending=synchronous`, { headers: { ...bearer(key), prefer: "wait=1" } }),
    );
    expect(res.status).toBe(202);
    expect(ms).toBeLessThan(4000);
    await http(job.links.cancel!, { method: "POST", headers: bearer(key) });
  });

  it("a wait is woken by a cancel too", async () => {
    const { job, location } = await submit(c, { type: "demo.sleep", input: { ms: 10_000 } });
    const pending = timed(() =>
      http(`${location}?onComplete=status`, { headers: { ...bearer(key), prefer: "wait=20" } }),
    );
    await new Promise((r) => setTimeout(r, 300));
    await http(job.links.cancel!, { method: "POST", headers: bearer(key) });
    const { value: res, ms } = await pending;
    expect(res.status).toBe(200);
    expect(((await res.json()) as Job).status).toBe("canceled");
    expect(ms).toBeLessThan(5000);
  });

  it("Prefer: wait on submit answers as the result resource when the job finishes in time", async () => {
    const { value: res, ms } = await timed(() =>
      http(`${server.url}/v1/jobs`, {
        headers: { ...bearer(key), prefer: "wait=20" },
        json: { type: "demo.sleep", input: { ms: 300, result: { answer: 42 } } },
      }),
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("preference-applied")).toBe("wait=20");
    const contentLocation = res.headers.get("content-location")!;
    expect(contentLocation).toMatch(/^http:\/\/[^/]+\/v1\/jobs\/[^/?]+$/);
    expect(await res.json()).toEqual({ answer: 42 });
    expect(ms).toBeLessThan(5000);
    // Content-Location names the job: its status monitor knows it as succeeded.
    const status = await http(`${contentLocation}?onComplete=status`, { headers: bearer(key) });
    expect(status.status).toBe(200);
    expect(((await status.json()) as Job).status).toBe("succeeded");
  });

  it("Prefer: wait on submit for a job that fails in time answers with its problem", async () => {
    const res = await http(`${server.url}/v1/jobs`, {
      headers: { ...bearer(key), prefer: "wait=20" },
      json: { type: "demo.fail", input: { message: "rejected", status: 422 } },
    });
    expect(res.status).toBe(422);
    expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect(res.headers.get("content-location")).toMatch(/\/v1\/jobs\/[^/?]+$/);
  });

  it("Prefer: wait on submit answers 202 when the job is not done in time", async () => {
    const { value: res, ms } = await timed(() =>
      http(`${server.url}/v1/jobs`, {
        headers: { ...bearer(key), prefer: "wait=1" },
        json: { type: "demo.sleep", input: { ms: 5000 } },
      }),
    );
    expect(res.status).toBe(202);
    expect(res.headers.get("preference-applied")).toBe("wait=1");
    expect(res.headers.get("location")).toMatch(/\/v1\/jobs\/[^/?]+$/);
    expectRetryAfter(res);
    const job = (await res.json()) as Job;
    expectRepresentation(job);
    expect(ms).toBeGreaterThanOrEqual(900);
    expect(ms).toBeLessThan(4000);
    await http(job.links.cancel!, { method: "POST", headers: bearer(key) });
  });

  it("Prefer: respond-async (or a malformed wait) on submit does not hold", async () => {
    for (const prefer of ["respond-async", "wait=soon"]) {
      const { value: res, ms } = await timed(() =>
        http(`${server.url}/v1/jobs`, {
          headers: { ...bearer(key), prefer },
          json: { type: "demo.sleep", input: { ms: 10_000 } },
        }),
      );
      expect(res.status).toBe(202);
      expect(ms).toBeLessThan(3000);
      const job = (await res.json()) as Job;
      await http(job.links.cancel!, { method: "POST", headers: bearer(key) });
    }
  });
});

describe("waits are capped by maxWaitSeconds", () => {
  let server: TestServer;
  let key: string;
  let c: Client;
  beforeAll(async () => {
    server = await startServer({ config: { maxWaitSeconds: 1 } });
    key = await server.key("acme");
    c = client(server.url, key);
  });
  afterAll(() => server.close());

  it("Prefer: wait=30 is held at most the cap and acknowledged as the applied wait", async () => {
    const { job, location } = await submit(c, { type: "demo.sleep", input: { ms: 10_000 } });
    const { value: res, ms } = await timed(() =>
      http(location, { headers: { ...bearer(key), prefer: "wait=30" } }),
    );
    expect(res.status).toBe(202);
    expect(res.headers.get("preference-applied")).toBe("wait=1");
    expect(ms).toBeLessThan(4000);
    await http(job.links.cancel!, { method: "POST", headers: bearer(key) });
  });

  it("onPending=synchronous is held at most the cap", async () => {
    const { job, location } = await submit(c, { type: "demo.sleep", input: { ms: 10_000 } });
    const { value: res, ms } = await timed(() =>
      http(`${location}?onPending=synchronous`, { headers: bearer(key) }),
    );
    expect(res.status).toBe(202);
    expect(ms).toBeLessThan(4000);
    await http(job.links.cancel!, { method: "POST", headers: bearer(key) });
  });

  it("Prefer: wait=30 on submit is held at most the cap", async () => {
    const { value: res, ms } = await timed(() =>
      http(`${server.url}/v1/jobs`, {
        headers: { ...bearer(key), prefer: "wait=30" },
        json: { type: "demo.sleep", input: { ms: 10_000 } },
      }),
    );
    expect(res.status).toBe(202);
    expect(res.headers.get("preference-applied")).toBe("wait=1");
    expect(ms).toBeLessThan(4000);
    const job = (await res.json()) as Job;
    await http(job.links.cancel!, { method: "POST", headers: bearer(key) });
  });
});
