import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, http, startServer, type TestServer } from "../helpers/server.js";
import {
  client,
  expectProblem,
  expectRepresentation,
  expectRetryAfter,
  expectSecurityHeaders,
  settle,
  submit,
  until,
  type Client,
  type Job,
} from "./support.js";

describe("GET /v1/jobs/{id} (status monitor)", () => {
  let server: TestServer;
  let key: string;
  let c: Client;
  beforeAll(async () => {
    server = await startServer();
    key = await server.key("acme");
    c = client(server.url, key);
  });
  afterAll(() => server.close());

  it("a queued or running job is 202 with Retry-After and its own URL as Location", async () => {
    const { job, location } = await submit(c, { type: "demo.sleep", input: { ms: 1500 } });
    const res = await http(location, { headers: bearer(key) });
    expect(res.status).toBe(202);
    expectSecurityHeaders(res);
    expect(res.headers.get("location")).toBe(location);
    expect(res.headers.get("cache-control")).toMatch(/no-store/);
    expectRetryAfter(res);
    const body = (await res.json()) as Job;
    expectRepresentation(body);
    expect(body.id).toBe(job.id);
    expect(["queued", "running"]).toContain(body.status);
    await http(job.links.cancel!, { method: "POST", headers: bearer(key) });
  });

  it("a running demo.sleep shows progress, startedAt and attempt 1", async () => {
    const { job, location } = await submit(c, { type: "demo.sleep", input: { ms: 2000 } });
    const running = await until(c, job.id, (j) => j.status === "running" && j.progress !== null);
    expectRepresentation(running);
    expect(running.attempt).toBe(1);
    expect(running.startedAt).not.toBeNull();
    expect(running.progress!.percent).toBeGreaterThan(0);
    expect(running.progress!.percent).toBeLessThanOrEqual(100);
    expect(typeof running.progress!.message).toBe("string");
    const res = await http(location, { headers: bearer(key) });
    expect(res.status).toBe(202);
    expect(res.headers.get("location")).toBe(location);
    expectRetryAfter(res);
    await http(job.links.cancel!, { method: "POST", headers: bearer(key) });
  });

  it("a queued job scheduled in the future: attempt 0, startedAt null, progress null", async () => {
    const runAt = new Date(Date.now() + 60_000).toISOString();
    const { job, location } = await submit(c, { type: "demo.echo", input: 1, runAt });
    expect(job.status).toBe("queued");
    expect(job.attempt).toBe(0);
    expect(job.startedAt).toBeNull();
    expect(job.progress).toBeNull();
    const res = await http(location, { headers: bearer(key) });
    expect(res.status).toBe(202);
    expect(expectRetryAfter(res)).toBeGreaterThanOrEqual(1);
    await http(job.links.cancel!, { method: "POST", headers: bearer(key) });
  });

  it("a terminal job is 303 to a signed result URL, with the representation as body", async () => {
    const { job, location } = await submit(c, { type: "demo.echo", input: { v: 1 } });
    await settle(c, job.id);
    const res = await http(location, { headers: bearer(key) });
    expect(res.status).toBe(303);
    expectSecurityHeaders(res);
    expect(res.headers.get("cache-control")).toMatch(/no-store/);
    const target = new URL(res.headers.get("location")!);
    expect(target.origin).toBe(new URL(server.url).origin);
    expect(target.pathname).toBe(`/v1/jobs/${job.id}/result`);
    expect(target.searchParams.get("sig")).toBeTruthy();
    expect(target.searchParams.get("expires")).toMatch(/^\d+$/);
    const body = (await res.json()) as Job;
    expectRepresentation(body);
    expect(body.status).toBe("succeeded");
    expect(body.finishedAt).not.toBeNull();
    expect(body.error).toBeNull();
    expect(body.progress === null || typeof body.progress === "object").toBe(true);
    // The signed URL works with no credentials at all.
    const result = await http(target.href);
    expect(result.status).toBe(200);
    expect(await result.json()).toEqual({ v: 1 });
  });

  it("?onComplete=redirect is the default", async () => {
    const { job, location } = await submit(c, { type: "demo.echo", input: 2 });
    await settle(c, job.id);
    const res = await http(`${location}?onComplete=redirect`, { headers: bearer(key) });
    expect(res.status).toBe(303);
  });

  it("?onComplete=status answers 200 with the representation when terminal", async () => {
    const { job, location } = await submit(c, { type: "demo.echo", input: 3 });
    await settle(c, job.id);
    const res = await http(`${location}?onComplete=status`, { headers: bearer(key) });
    expect(res.status).toBe(200);
    expect(res.headers.get("location")).toBeNull();
    const body = (await res.json()) as Job;
    expectRepresentation(body);
    expect(body.status).toBe("succeeded");
  });

  it("?onComplete=status while pending is still 202", async () => {
    const { job, location } = await submit(c, { type: "demo.sleep", input: { ms: 1500 } });
    const res = await http(`${location}?onComplete=status`, { headers: bearer(key) });
    expect(res.status).toBe(202);
    await http(job.links.cancel!, { method: "POST", headers: bearer(key) });
  });

  it("?onComplete=stream answers with the result itself and Content-Location", async () => {
    const { job, location } = await submit(c, { type: "demo.echo", input: { streamed: true } });
    await settle(c, job.id);
    const res = await http(`${location}?onComplete=stream`, { headers: bearer(key) });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-location")).toBe(location);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({ streamed: true });
  });

  it("?onComplete=stream for a failed job answers with its problem", async () => {
    const { job, location } = await submit(c, {
      type: "demo.fail",
      input: { message: "bad input", status: 422 },
    });
    await settle(c, job.id);
    const res = await http(`${location}?onComplete=stream`, { headers: bearer(key) });
    const problem = await expectProblem(res, 422);
    expect(problem.detail).toBe("bad input");
    expect(res.headers.get("content-location")).toBe(location);
  });

  it.each([
    ["onComplete=banana"],
    ["onComplete="],
    ["onPending=banana"],
    ["onPending=SYNCHRONOUS"],
    ["onComplete=stream&onComplete=status"],
  ])("?%s is 400", async (query) => {
    const { location } = await submit(c, { type: "demo.echo", input: 4 });
    const res = await http(`${location}?${query}`, { headers: bearer(key) });
    await expectProblem(res, 400);
  });

  it("an unknown id is 404 problem", async () => {
    const res = await http(`${server.url}/v1/jobs/00000000-0000-4000-8000-000000000000`, {
      headers: bearer(key),
    });
    await expectProblem(res, 404);
    const garbage = await http(`${server.url}/v1/jobs/not-a-job-id`, { headers: bearer(key) });
    await expectProblem(garbage, 404);
  });

  it("a retried job keeps the failed attempt's error while queued, and null after success", async () => {
    const { job } = await submit(c, { type: "demo.flaky", input: { failTimes: 1 } });
    const retrying = await until(c, job.id, (j) => j.error !== null || j.status === "succeeded");
    if (retrying.status !== "succeeded") {
      expectRepresentation(retrying);
      expect(["queued", "running"]).toContain(retrying.status);
      expect(retrying.attempt).toBe(1);
      expect(retrying.error).toMatchObject({ status: 500, detail: "planned failure 1 of 1" });
      expect(retrying.links.cancel).toBeDefined();
    }
    const done = await settle(c, job.id);
    expect(done.status).toBe("succeeded");
    expect(done.attempt).toBe(2);
    expect(done.error).toBeNull();
    const result = await http(`${done.links.self}/result`, { headers: bearer(key) });
    expect(await result.json()).toEqual({ attempts: 2 });
  });

  it("the status of a failed job carries its error and no cancel link", async () => {
    const { job } = await submit(c, { type: "demo.fail", input: { message: "nope", status: 400 } });
    const done = await settle(c, job.id);
    expectRepresentation(done);
    expect(done.status).toBe("failed");
    expect(done.error).toMatchObject({ status: 400, detail: "nope" });
    expect(done.attempt).toBe(1);
  });
});
