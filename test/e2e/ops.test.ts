import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newJobId } from "../../src/jobs/ids.js";
import { bearer, http, startServer, type TestServer } from "../helpers/server.js";
import { client, expectProblem, expectSecurityHeaders, settle, submit } from "./support.js";

describe("operations endpoints and cross-cutting HTTP behaviour", () => {
  let server: TestServer;
  let key: string;
  beforeAll(async () => {
    server = await startServer();
    key = await server.key("acme");
  });
  afterAll(() => server.close());

  it("/healthz is 200 without a key", async () => {
    const res = await http(`${server.url}/healthz`);
    expect(res.status).toBe(200);
    expectSecurityHeaders(res);
    expect(await res.json()).toMatchObject({ status: "ok" });
  });

  it("/readyz is 200 without a key when the store is reachable", async () => {
    const res = await http(`${server.url}/readyz`);
    expect(res.status).toBe(200);
    expectSecurityHeaders(res);
  });

  it("/metrics is Prometheus text with tessera_ metrics", async () => {
    const c = client(server.url, key);
    const { job } = await submit(c, { type: "demo.echo", input: 1 });
    await settle(c, job.id);
    const res = await http(`${server.url}/metrics`);
    expect(res.status).toBe(200);
    expectSecurityHeaders(res);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/^# HELP tessera_/m);
    expect(text).toMatch(/^# TYPE tessera_\w+ (counter|gauge|histogram|summary)$/m);
    expect(text).toMatch(/^tessera_http_requests_total\{/m);
    expect(text).toMatch(/^tessera_jobs_submitted_total\{type="demo.echo"\} [1-9]/m);
    // The worker's metrics: attempts by type (one per finished attempt), the running gauge.
    expect(text).toMatch(/^tessera_job_attempts_total\{type="demo.echo"\} [1-9]/m);
    expect(text).toMatch(/^tessera_job_attempt_duration_seconds_count\{type="demo.echo"\} [1-9]/m);
    expect(text).toMatch(/^tessera_job_queue_wait_seconds_count\{type="demo.echo"\} [1-9]/m);
    expect(text).toMatch(/^tessera_jobs_running 0$/m);
    // Every sample line is "name{labels} value" or "name value".
    for (const line of text.split("\n")) {
      if (line === "" || line.startsWith("#")) continue;
      expect(line, line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? [-+0-9.eEInfa]+$/);
    }
  });

  it("/openapi.json is OpenAPI 3.1 with the /v1/jobs paths, without a key", async () => {
    const res = await http(`${server.url}/openapi.json`);
    expect(res.status).toBe(200);
    expectSecurityHeaders(res);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, unknown>> };
    expect(doc.openapi).toMatch(/^3\.1\./);
    for (const path of [
      "/v1/jobs",
      "/v1/jobs/{id}",
      "/v1/jobs/{id}/result",
      "/v1/jobs/{id}/cancel",
      "/v1/job-types",
    ]) {
      expect(doc.paths, path).toHaveProperty([path]);
    }
    expect(doc.paths["/v1/jobs"]).toHaveProperty("post");
    expect(doc.paths["/v1/jobs"]).toHaveProperty("get");
    expect(doc.paths["/v1/jobs/{id}"]).toHaveProperty("get");
    expect(doc.paths["/v1/jobs/{id}"]).toHaveProperty("delete");
    for (const path of ["/healthz", "/readyz", "/metrics"]) expect(doc.paths, path).toHaveProperty([path]);
    // The id parameter admits the ids this server makes (and the UUIDs of earlier jobs).
    const { parameters } = doc.paths["/v1/jobs/{id}"]!["get"] as {
      parameters: { name: string; schema: { maxLength: number } }[];
    };
    const idSchema = parameters.find((p) => p.name === "id")!.schema;
    for (const id of [newJobId(Date.now(), randomUUID()), randomUUID()])
      expect(id.length).toBeLessThanOrEqual(idSchema.maxLength);
  });

  it.each([
    ["PUT", "/v1/jobs", ["GET", "POST"]],
    ["PATCH", "/v1/jobs", ["GET", "POST"]],
    ["DELETE", "/v1/jobs", ["GET", "POST"]],
    ["PUT", "/v1/jobs/00000000-0000-4000-8000-000000000000", ["GET", "DELETE"]],
    ["POST", "/v1/jobs/00000000-0000-4000-8000-000000000000", ["GET", "DELETE"]],
    ["GET", "/v1/jobs/00000000-0000-4000-8000-000000000000/cancel", ["POST"]],
    ["POST", "/healthz", ["GET"]],
    ["DELETE", "/openapi.json", ["GET"]],
  ])("%s %s is 405 with Allow", async (method, path, allowed) => {
    const res = await http(`${server.url}${path}`, { method, headers: bearer(key) });
    await expectProblem(res, 405, "method-not-allowed");
    const allow = (res.headers.get("allow") ?? "").split(/,\s*/);
    for (const m of allowed) expect(allow).toContain(m);
    expect(allow).not.toContain(method);
  });

  it("an unknown route is a 404 problem+json", async () => {
    for (const path of ["/nope", "/v1/nope", "/v2/jobs", "/v1/jobs/x/y/z"]) {
      const res = await http(`${server.url}${path}`, { headers: bearer(key) });
      const problem = await expectProblem(res, 404, "not-found");
      expect(problem.instance).toBe(path);
    }
  });

  it("an unknown route without a key is an error problem+json too (401 or 404), never HTML", async () => {
    const res = await http(`${server.url}/definitely/not/here`);
    expect([401, 404]).toContain(res.status);
    expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expectSecurityHeaders(res);
  });

  it("security headers are on successes and every kind of error", async () => {
    const c = client(server.url, key);
    const responses = [
      await http(`${server.url}/healthz`),
      await http(`${server.url}/v1/jobs`, { headers: bearer(key) }),
      await http(`${server.url}/v1/jobs`), // 401
      await http(`${server.url}/v1/jobs`, { headers: bearer(key), json: { type: "x" } }), // 400
      await http(`${server.url}/v1/jobs`, { method: "PUT", headers: bearer(key) }), // 405
      await http(`${server.url}/v1/jobs/00000000-0000-4000-8000-000000000000`, { headers: bearer(key) }), // 404
      await http(`${server.url}/v1/jobs`, {
        headers: { ...bearer(key), "content-type": "text/plain" },
        body: "x",
      }), // 415
      await http(`${server.url}/v1/jobs/00000000-0000-4000-8000-000000000000/result?sig=x`), // 403
      (await submit(c, { type: "demo.echo", input: 1 })).res, // 202
    ];
    for (const res of responses) {
      expectSecurityHeaders(res);
      if (!res.bodyUsed) await res.arrayBuffer();
    }
  });

  it("HEAD on a GET route answers without a body", async () => {
    const res = await http(`${server.url}/healthz`, { method: "HEAD" });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("");
  });

  it("problem types dereference to their docs", async () => {
    const res = await http(`${server.url}/v1/jobs`);
    const problem = (await res.json()) as { type: string };
    const doc = await http(new URL(problem.type, server.url).href);
    expect(doc.status).toBe(200);
  });

  it("/metrics can require a key when configured", async () => {
    const locked = await startServer({ config: { metricsAuth: true } });
    try {
      const k = await locked.key("ops");
      await expectProblem(await http(`${locked.url}/metrics`), 401);
      expect((await http(`${locked.url}/metrics`, { headers: bearer(k) })).status).toBe(200);
    } finally {
      await locked.close();
    }
  });
});
