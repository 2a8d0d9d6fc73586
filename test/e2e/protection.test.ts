/**
 * Protection without TLS: security headers on every kind of answer, --trust-proxy, and the
 * resource limits (header size, per-type input size, held waits, slow clients, timeouts).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";
import { defineJob } from "../../src/jobs/define.js";
import { demoJobs } from "../../src/demo/jobs.js";
import { createTessera, type Tessera } from "../../src/tessera.js";
import { openSocket, rawExchange, rawHead, rawRequest } from "../helpers/raw-http.js";
import { bearer, http, startServer, type TestServer } from "../helpers/server.js";
import { expectProblem, expectSecurityHeaders, type Job } from "./support.js";

function expectHeaders(headers: { get(name: string): string | null }, options: { hsts?: boolean } = {}) {
  expectSecurityHeaders({ headers });
  expect(headers.get("cache-control")).toBe("no-store");
  expect(headers.get("strict-transport-security")).toBe(options.hsts ? "max-age=31536000" : null);
}

const asHeaders = (record: Record<string, string>) => ({ get: (name: string) => record[name] ?? null });

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - start };
}

describe("configuration", () => {
  it("refuses half a TLS pair and a headers timeout longer than the request timeout", () => {
    expect(() => loadConfig({ dev: true, "tls-key": "k.pem" }, {})).toThrow(
      /--tls-cert and --tls-key go together: --tls-key was given alone/,
    );
    expect(() => loadConfig({ dev: true }, { TESSERA_TLS_CERT: "c.pem" })).toThrow(ConfigError);
    expect(() => loadConfig({ dev: true, "headers-timeout": "40000" }, {})).toThrow(/--headers-timeout/);
    const config = loadConfig({ dev: true, "request-timeout": "0", "headers-timeout": "40000" }, {});
    expect(config).toMatchObject({ requestTimeout: 0, headersTimeout: 40000, maxWaitsPerTenant: 100 });
  });

  it("defineJob checks maxInputBytes", () => {
    const base = { type: "x.y", input: {}, run: () => null };
    expect(() => defineJob({ ...base, maxInputBytes: 0 })).toThrow(/maxInputBytes/);
    expect(defineJob({ ...base, maxInputBytes: 10 }).maxInputBytes).toBe(10);
    expect(defineJob(base).maxInputBytes).toBeUndefined();
  });
});

describe("security headers", () => {
  let server: TestServer;
  let key: string;
  beforeAll(async () => {
    server = await startServer();
    key = await server.key("acme");
  });
  afterAll(() => server.close());

  it("are on job representations, lists, results (signed URLs too) and no HSTS over plain HTTP", async () => {
    const submitted = await http(`${server.url}/v1/jobs`, {
      headers: { ...bearer(key), prefer: "wait=10" },
      json: { type: "demo.echo", input: { hello: "world" } },
    });
    expect(submitted.status).toBe(200);
    expectHeaders(submitted.headers);
    const location = submitted.headers.get("content-location")!;

    const status = await http(`${location}?onComplete=status`, { headers: bearer(key) });
    expectHeaders(status.headers);
    const job = (await status.json()) as Job;

    const redirect = await http(location, { headers: bearer(key) });
    expect(redirect.status).toBe(303);
    expectHeaders(redirect.headers);

    const signed = await http(job.links.result!);
    expect(signed.status).toBe(200);
    expectHeaders(signed.headers);
    expect(await signed.json()).toEqual({ hello: "world" });

    const result = await http(`${location}/result`, { headers: bearer(key) });
    expectHeaders(result.headers);

    const list = await http(`${server.url}/v1/jobs`, { headers: bearer(key) });
    expect(list.status).toBe(200);
    expectHeaders(list.headers);
  });

  it("are on problems: 401, 404, 405, 413, and the raw answers to unparseable requests", async () => {
    const unauthorized = await http(`${server.url}/v1/jobs`);
    await expectProblem(unauthorized, 401, "unauthorized");
    expectHeaders(unauthorized.headers);
    const notFound = await http(`${server.url}/nowhere`, { headers: bearer(key) });
    expectHeaders(notFound.headers);
    await expectProblem(notFound, 404, "not-found");
    const notAllowed = await http(`${server.url}/v1/jobs`, { method: "PUT", headers: bearer(key) });
    expectHeaders(notAllowed.headers);
    const tooLarge = await http(`${server.url}/v1/jobs`, {
      headers: { ...bearer(key), "content-type": "application/json" },
      body: `{"type":"demo.echo","input":"${"x".repeat(2 * 1024 * 1024)}"}`,
    });
    expect(tooLarge.status).toBe(413);
    expectHeaders(tooLarge.headers);

    const raw = await rawExchange(server.url, "GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n");
    expect(raw.status).toBe(400);
    expectHeaders(asHeaders(raw.headers));
  });
});

describe("--trust-proxy", () => {
  async function withIpRoute(trustProxy: boolean): Promise<{ tessera: Tessera; url: string }> {
    const tessera = await createTessera({
      jobs: demoJobs,
      logger: pino({ level: "silent" }),
      config: { db: ":memory:", dev: true, trustProxy },
    });
    tessera.app.get("/test/whoami", { config: { auth: "none" } }, async (request) => ({
      ip: request.ip,
      protocol: request.protocol,
    }));
    return { tessera, url: await tessera.listen({ port: 0, host: "127.0.0.1" }) };
  }
  const forwarded = {
    "x-forwarded-for": "203.0.113.7",
    "x-forwarded-proto": "https",
    "x-forwarded-host": "jobs.example.com",
  };

  it("when on, request.ip, the scheme of Location links and HSTS follow X-Forwarded-*", async () => {
    const { tessera, url } = await withIpRoute(true);
    try {
      const who = await http(`${url}/test/whoami`, { headers: forwarded });
      expect(await who.json()).toEqual({ ip: "203.0.113.7", protocol: "https" });
      expectHeaders(who.headers, { hsts: true });
      const res = await http(`${url}/v1/jobs`, {
        headers: forwarded,
        json: { type: "demo.sleep", input: { ms: 1 } },
      });
      expect(res.status).toBe(202);
      expect(res.headers.get("location")).toMatch(/^https:\/\/jobs\.example\.com\/v1\/jobs\//);
      expectHeaders(res.headers, { hsts: true });
      // Without the header, plain HTTP: no HSTS.
      expectHeaders((await http(`${url}/test/whoami`)).headers, { hsts: false });
    } finally {
      await tessera.close();
    }
  });

  it("when off, X-Forwarded-* are ignored", async () => {
    const { tessera, url } = await withIpRoute(false);
    try {
      const who = await http(`${url}/test/whoami`, { headers: forwarded });
      expect(await who.json()).toEqual({ ip: "127.0.0.1", protocol: "http" });
      expectHeaders(who.headers, { hsts: false });
      const res = await http(`${url}/v1/jobs`, {
        headers: forwarded,
        json: { type: "demo.sleep", input: { ms: 1 } },
      });
      expect(res.headers.get("location")).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1\/jobs\//);
    } finally {
      await tessera.close();
    }
  });
});

describe("limits", () => {
  const small = defineJob({
    type: "test.small",
    input: {},
    maxInputBytes: 100,
    run: (input: unknown) => input,
  });

  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({
      dev: true,
      jobs: [...demoJobs, small],
      config: {
        maxHeaderBytes: 2048,
        maxWaitsPerTenant: 1,
        headersTimeout: 1000,
        requestTimeout: 1500,
        keepAliveTimeout: 500,
      },
    });
  });
  afterAll(() => server.close());

  it("oversize headers get the 431 header-too-large problem", async () => {
    const res = await rawRequest(server.url, "GET", "/healthz", [["X-Big", "a".repeat(3000)]]);
    expect(res.status).toBe(431);
    expect(res.headers["content-type"]).toBe("application/problem+json");
    expect(JSON.parse(res.text)).toMatchObject({ type: "/problems/header-too-large", status: 431 });
    expectHeaders(asHeaders(res.headers));
  });

  it("a job type's maxInputBytes answers 413 naming the limit; within it the job is accepted", async () => {
    const big = await http(`${server.url}/v1/jobs`, { json: { type: "test.small", input: "x".repeat(200) } });
    const problem = await expectProblem(big, 413, "payload-too-large");
    expect(problem.detail).toMatch(/test\.small.*at most 100/);
    expect(problem.maxInputBytes).toBe(100);
    expect(problem.errors).toEqual([{ path: "/input", message: "must be at most 100 bytes of JSON" }]);
    const fits = await http(`${server.url}/v1/jobs`, { json: { type: "test.small", input: "x".repeat(50) } });
    expect(fits.status).toBe(202);
    const types = (await (await http(`${server.url}/v1/job-types`)).json()) as {
      items: { type: string; maxInputBytes?: number }[];
    };
    expect(types.items.find((t) => t.type === "test.small")?.maxInputBytes).toBe(100);
    expect(types.items.find((t) => t.type === "demo.echo")).not.toHaveProperty("maxInputBytes");
    // Other types are bound by --body-limit only.
    const other = await http(`${server.url}/v1/jobs`, {
      json: { type: "demo.echo", input: "x".repeat(500) },
    });
    expect(other.status).toBe(202);
  });

  it("over --max-waits-per-tenant, a wait is answered at once without Preference-Applied", async () => {
    const submitted = await http(`${server.url}/v1/jobs`, {
      json: { type: "demo.sleep", input: { ms: 20_000 } },
    });
    const location = submitted.headers.get("location")!;
    const job = (await submitted.json()) as Job;
    // The first wait holds the tenant's only slot.
    const first = http(location, { headers: { prefer: "wait=3" } });
    await sleep(300);
    const { value: extra, ms } = await timed(() => http(location, { headers: { prefer: "wait=3" } }));
    expect(extra.status).toBe(202);
    expect(extra.headers.get("preference-applied")).toBeNull();
    expect(extra.headers.get("retry-after")).toMatch(/^\d+$/);
    expect(ms).toBeLessThan(1500);
    const sync = await timed(() => http(`${location}?onPending=synchronous`));
    expect(sync.value.status).toBe(202);
    expect(sync.ms).toBeLessThan(1500);
    const post = await timed(() =>
      http(`${server.url}/v1/jobs`, {
        headers: { prefer: "wait=3" },
        json: { type: "demo.sleep", input: { ms: 20_000 } },
      }),
    );
    expect(post.value.status).toBe(202);
    expect(post.value.headers.get("preference-applied")).toBeNull();
    expect(post.ms).toBeLessThan(1500);
    const held = await first;
    expect(held.status).toBe(202);
    expect(held.headers.get("preference-applied")).toBe("wait=3");
    // The slot is free again.
    const again = await http(location, { headers: { prefer: "wait=1" } });
    expect(again.headers.get("preference-applied")).toBe("wait=1");
    await http(job.links.cancel!, { method: "POST" });
    await http(((await post.value.json()) as Job).links.cancel!, { method: "POST" });
  });

  it("a long poll outlives --request-timeout: only the request's arrival is timed", async () => {
    // A job that reports no progress, so only the wait's end answers the poll.
    const submitted = await http(`${server.url}/v1/jobs`, {
      json: { type: "demo.fail", input: { message: "never reached", ms: 20_000 } },
    });
    const job = (await submitted.json()) as Job;
    const { value: res, ms } = await timed(() =>
      http(submitted.headers.get("location")!, { headers: { prefer: "wait=3" } }),
    );
    expect(res.status).toBe(202);
    expect(res.headers.get("preference-applied")).toBe("wait=3");
    expect(ms).toBeGreaterThanOrEqual(2900);
    // A POST (with a body) held the same way.
    const posted = await timed(() =>
      http(`${server.url}/v1/jobs`, {
        headers: { prefer: "wait=3" },
        json: { type: "demo.fail", input: { message: "never reached", ms: 20_000 } },
      }),
    );
    expect(posted.value.status).toBe(202);
    expect(posted.value.headers.get("preference-applied")).toBe("wait=3");
    expect(posted.ms).toBeGreaterThanOrEqual(2900);
    await http(job.links.cancel!, { method: "POST" });
    await http(((await posted.value.json()) as Job).links.cancel!, { method: "POST" });
  });

  it("a slow-header client (slowloris) is cut off by --headers-timeout", async () => {
    const socket = await openSocket(server.url);
    let received = "";
    socket.on("data", (c: Buffer) => (received += c.toString("latin1")));
    const closed = new Promise<number>((resolve) => socket.once("close", () => resolve(performance.now())));
    socket.on("error", () => undefined);
    const start = performance.now();
    socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    // A header line fragment every 500 ms, never finishing the head, for up to 10 s.
    const drip = setInterval(() => {
      if (!socket.destroyed) socket.write("X-A: b\r\n");
    }, 500);
    const closedAt = await Promise.race([closed, sleep(10_000).then(() => null)]);
    clearInterval(drip);
    socket.destroy();
    expect(closedAt).not.toBeNull();
    expect(closedAt! - start).toBeLessThan(3000);
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
    expect(received).toContain("/problems/request-timeout");
  });

  it("an idle keep-alive connection is closed after --keep-alive-timeout", async () => {
    const socket = await openSocket(server.url);
    let received = "";
    socket.on("data", (c: Buffer) => (received += c.toString("latin1")));
    const closed = new Promise<number>((resolve) => socket.once("close", () => resolve(performance.now())));
    socket.write(rawHead("GET", "/healthz", [["Connection", "keep-alive"]]));
    const start = performance.now();
    const closedAt = await Promise.race([closed, sleep(5000).then(() => null)]);
    socket.destroy();
    expect(received).toMatch(/^HTTP\/1\.1 200 /);
    expect(received).toMatch(/Keep-Alive: timeout=/i);
    expect(closedAt).not.toBeNull();
    expect(closedAt! - start).toBeLessThan(3000);
  });
});

describe("--max-waits (process-wide)", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ dev: true, config: { maxWaits: 1, maxWaitsPerTenant: 100 } });
  });
  afterAll(() => server.close());

  it("caps held waits across the process, whatever the per-tenant cap", async () => {
    const submitted = await http(`${server.url}/v1/jobs`, {
      json: { type: "demo.sleep", input: { ms: 20_000 } },
    });
    const location = submitted.headers.get("location")!;
    const first = http(location, { headers: { prefer: "wait=2" } });
    await sleep(300);
    const extra = await timed(() => http(location, { headers: { prefer: "wait=2" } }));
    expect(extra.value.status).toBe(202);
    expect(extra.value.headers.get("preference-applied")).toBeNull();
    expect(extra.ms).toBeLessThan(1500);
    expect((await first).headers.get("preference-applied")).toBe("wait=2");
    await http(((await submitted.json()) as Job).links.cancel!, { method: "POST" });
  });
});
