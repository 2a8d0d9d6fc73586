import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { demoJobs } from "../../src/demo/jobs.js";
import { defineJob, type JobDefinition } from "../../src/jobs/define.js";
import { bytesResult, createdResult } from "../../src/jobs/result.js";
import { bearer, http, startServer, type TestServer } from "../helpers/server.js";
import {
  client,
  expectProblem,
  expectRetryAfter,
  expectSecurityHeaders,
  settle,
  submit,
  type Client,
  type Job,
} from "./support.js";

const LARGE = randomBytes(256 * 1024 + 17);

const testJobs: JobDefinition[] = [
  defineJob({ type: "test.nothing", input: {}, maxAttempts: 1, run: () => undefined }),
  defineJob({ type: "test.null", input: {}, maxAttempts: 1, run: () => null }),
  defineJob({
    type: "test.created",
    input: {},
    maxAttempts: 1,
    run: () => createdResult("https://files.example.com/reports/42", { id: 42 }),
  }),
  defineJob({
    type: "test.csv",
    input: {},
    maxAttempts: 1,
    run: () => bytesResult("a,b\n1,2\n", "text/csv; charset=utf-8"),
  }),
  defineJob({
    type: "test.large",
    input: {},
    maxAttempts: 1,
    run: () => bytesResult(LARGE, "application/octet-stream"),
  }),
  defineJob({
    type: "test.large-json",
    input: {},
    maxAttempts: 1,
    run: () => ({ rows: Array.from({ length: 5000 }, (_, i) => ({ i, text: `row ${i}` })) }),
  }),
] as JobDefinition[];

describe("GET /v1/jobs/{id}/result", () => {
  let server: TestServer;
  let key: string;
  let c: Client;
  beforeAll(async () => {
    server = await startServer({ jobs: [...demoJobs, ...testJobs], config: { inlineResultBytes: 1024 } });
    key = await server.key("acme");
    c = client(server.url, key);
  });
  afterAll(() => server.close());

  const resultOf = (id: string) => http(`${server.url}/v1/jobs/${id}/result`, { headers: bearer(key) });

  it("a JSON result is 200 application/json, no-store", async () => {
    const { job } = await submit(c, { type: "demo.echo", input: { a: [1, 2, 3], s: "ü" } });
    await settle(c, job.id);
    const res = await resultOf(job.id);
    expect(res.status).toBe(200);
    expectSecurityHeaders(res);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.headers.get("cache-control")).toMatch(/no-store/);
    expect(await res.json()).toEqual({ a: [1, 2, 3], s: "ü" });
  });

  it.each(["test.nothing", "test.null"])(
    "%s (a handler returning nothing) is 204 with no body",
    async (type) => {
      const { job } = await submit(c, { type, input: null });
      const done = await settle(c, job.id);
      expect(done.status).toBe("succeeded");
      const res = await resultOf(job.id);
      expect(res.status).toBe(204);
      expect(await res.text()).toBe("");
      expect(res.headers.get("cache-control")).toMatch(/no-store/);
    },
  );

  it("a created resource is 201 with Location", async () => {
    const { job } = await submit(c, { type: "test.created", input: null });
    await settle(c, job.id);
    const res = await resultOf(job.id);
    expect(res.status).toBe(201);
    expect(res.headers.get("location")).toBe("https://files.example.com/reports/42");
    expect(await res.json()).toEqual({ id: 42 });
  });

  it("bytes come back with the stored Content-Type", async () => {
    const { job } = await submit(c, { type: "test.csv", input: null });
    await settle(c, job.id);
    const res = await resultOf(job.id);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    expect(await res.text()).toBe("a,b\n1,2\n");
  });

  it("a large result (over inlineResultBytes) is streamed back byte-identical", async () => {
    const { job } = await submit(c, { type: "test.large", input: null });
    await settle(c, job.id);
    const res = await resultOf(job.id);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/octet-stream");
    const body = Buffer.from(await res.arrayBuffer());
    expect(body.length).toBe(LARGE.length);
    expect(body.equals(LARGE)).toBe(true);
    // Also through a signed URL, twice (the stream is opened afresh each time).
    const signed = (await settle(c, job.id)).links.result!;
    for (let i = 0; i < 2; i++) {
      const again = await http(signed);
      expect(again.status).toBe(200);
      expect(Buffer.from(await again.arrayBuffer()).equals(LARGE)).toBe(true);
    }
  });

  it("a large JSON result is streamed back intact", async () => {
    const { job } = await submit(c, { type: "test.large-json", input: null });
    await settle(c, job.id);
    const res = await resultOf(job.id);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const body = (await res.json()) as { rows: { i: number }[] };
    expect(body.rows).toHaveLength(5000);
    expect(body.rows[4999]).toEqual({ i: 4999, text: "row 4999" });
  });

  it("a handler's own 4xx is answered with that status, as a problem with error {code, message}", async () => {
    const { job } = await submit(c, {
      type: "demo.fail",
      input: { message: "the report has no pages", status: 422 },
    });
    const done = await settle(c, job.id);
    expect(done.status).toBe("failed");
    const res = await resultOf(job.id);
    const problem = await expectProblem(res, 422);
    expect(problem.detail).toBe("the report has no pages");
    expect(problem.instance).toBe(`/v1/jobs/${job.id}/result`);
    expect(problem.error).toEqual({
      code: problem.type.slice(problem.type.lastIndexOf("/") + 1),
      message: "the report has no pages",
    });
    expect(res.headers.get("cache-control")).toMatch(/no-store/);
  });

  it("another 4xx status (409) from the handler is kept", async () => {
    const { job } = await submit(c, { type: "demo.fail", input: { message: "conflict", status: 409 } });
    await settle(c, job.id);
    const problem = await expectProblem(await resultOf(job.id), 409);
    expect(problem.detail).toBe("conflict");
  });

  it("a failure after all retries is 500 job-failed with the last attempt's detail", async () => {
    const { job } = await submit(c, {
      type: "demo.fail",
      input: { message: "disk on fire" },
      maxAttempts: 2,
    });
    const done = await settle(c, job.id);
    expect(done.status).toBe("failed");
    expect(done.attempt).toBe(2);
    expect(done.error).toMatchObject({ status: 500, detail: "disk on fire" });
    const res = await resultOf(job.id);
    const problem = await expectProblem(res, 500, "job-failed");
    expect(problem.detail).toBe("disk on fire");
    expect(problem.error).toEqual({ code: "job-failed", message: "disk on fire" });
    expect(JSON.stringify(problem)).not.toMatch(/at .*\.(ts|js):\d+/);
  });

  it("a 5xx thrown with status 503 by demo.fail is still job-failed (500 family)", async () => {
    const { job } = await submit(c, {
      type: "demo.fail",
      input: { message: "upstream down", status: 503 },
      maxAttempts: 1,
    });
    await settle(c, job.id);
    const res = await resultOf(job.id);
    expect(res.status).toBeGreaterThanOrEqual(500);
    const problem = (await res.json()) as { type: string; error: { code: string } };
    expect(problem.type).toMatch(/\/job-failed$/);
    expect(problem.error.code).toBe("job-failed");
  });

  it("a job past its deadline is 504 job-timed-out", async () => {
    const { job } = await submit(c, { type: "demo.sleep", input: { ms: 30_000 }, timeoutSeconds: 1 });
    const done = await settle(c, job.id, 15);
    expect(done.status).toBe("timed_out");
    expect(done.error?.type).toMatch(/\/job-timed-out$/);
    const res = await resultOf(job.id);
    const problem = await expectProblem(res, 504, "job-timed-out");
    expect(problem.error).toEqual({ code: "job-timed-out", message: problem.detail });
  });

  it("a canceled job is 409 job-canceled", async () => {
    const { job } = await submit(c, { type: "demo.sleep", input: { ms: 30_000 } });
    expect((await http(job.links.cancel!, { method: "POST", headers: bearer(key) })).status).toBe(200);
    const res = await resultOf(job.id);
    const problem = await expectProblem(res, 409, "job-canceled");
    expect(problem.error).toEqual({ code: "job-canceled", message: problem.detail });
  });

  it("a pending job is 202 with the status monitor as Location and Retry-After", async () => {
    const { job, location } = await submit(c, { type: "demo.sleep", input: { ms: 30_000 } });
    const res = await resultOf(job.id);
    expect(res.status).toBe(202);
    expect(res.headers.get("location")).toBe(location);
    expectRetryAfter(res);
    expect(res.headers.get("cache-control")).toMatch(/no-store/);
    await http(job.links.cancel!, { method: "POST", headers: bearer(key) });
  });

  it("an unknown job is 404", async () => {
    await expectProblem(await resultOf("00000000-0000-4000-8000-000000000000"), 404);
  });

  it("the result resource refuses other methods with 405 and Allow", async () => {
    const { job } = await submit(c, { type: "demo.echo", input: 1 });
    const res = await http(`${server.url}/v1/jobs/${job.id}/result`, {
      method: "DELETE",
      headers: bearer(key),
    });
    await expectProblem(res, 405);
    expect(res.headers.get("allow")).toMatch(/GET/);
  });
});

describe("result retention", () => {
  let server: TestServer;
  let key: string;
  let c: Client;
  beforeAll(async () => {
    server = await startServer({ config: { resultRetention: 1 } });
    key = await server.key("acme");
    c = client(server.url, key);
  });
  afterAll(() => server.close());

  it("a result purged by retention is 410 while the job record stays", async () => {
    const { job } = await submit(c, { type: "demo.echo", input: { keep: "briefly" } });
    await settle(c, job.id);
    // Purge as the retention task would, a little later than now (no sleeping on its timer).
    await server.tessera.store.purgeExpired({
      resultsBefore: Date.now() + 60_000,
      jobsBefore: 0,
      idempotencyBefore: 0,
      limit: 1000,
    });
    const res = await http(`${server.url}/v1/jobs/${job.id}/result`, { headers: bearer(key) });
    const problem = await expectProblem(res, 410);
    expect(problem.instance).toBe(`/v1/jobs/${job.id}/result`);
    // The job itself is still there, as succeeded.
    const status = await http(`${server.url}/v1/jobs/${job.id}?onComplete=status`, { headers: bearer(key) });
    expect(status.status).toBe(200);
    expect(((await status.json()) as Job).status).toBe("succeeded");
    // And its signed URL is 410 too, not a 200 with no data.
    const signed = await http((await settle(c, job.id)).links.result!);
    await expectProblem(signed, 410);
  });

  it("the server's own retention task purges results after resultRetention seconds", async () => {
    const { job } = await submit(c, { type: "demo.echo", input: { keep: "briefly" } });
    await settle(c, job.id);
    const deadline = Date.now() + 10_000;
    let status = 200;
    while (Date.now() < deadline) {
      const res = await http(`${server.url}/v1/jobs/${job.id}/result`, { headers: bearer(key) });
      status = res.status;
      await res.arrayBuffer();
      if (status === 410) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(status).toBe(410);
  });

  it("a job record past job retention is 404 everywhere", async () => {
    const { job } = await submit(c, { type: "demo.echo", input: 1 });
    const done = await settle(c, job.id);
    await server.tessera.store.purgeExpired({
      resultsBefore: Date.now() + 60_000,
      jobsBefore: Date.now() + 60_000,
      idempotencyBefore: 0,
      limit: 1000,
    });
    await expectProblem(await http(`${server.url}/v1/jobs/${job.id}`, { headers: bearer(key) }), 404);
    await expectProblem(await http(`${server.url}/v1/jobs/${job.id}/result`, { headers: bearer(key) }), 404);
    await expectProblem(await http(done.links.result!), 404);
  });
});
