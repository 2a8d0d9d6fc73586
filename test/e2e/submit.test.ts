import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, http, startServer, type TestServer } from "../helpers/server.js";
import {
  expectProblem,
  expectRepresentation,
  expectRetryAfter,
  expectSecurityHeaders,
  type Job,
} from "./support.js";

describe("POST /v1/jobs (submit)", () => {
  let server: TestServer;
  let key: string;
  beforeAll(async () => {
    // A small body limit so 413 is cheap; a small timeout cap so "above the cap" is cheap.
    server = await startServer({ config: { bodyLimit: 2048, maxTimeoutSeconds: 3600 } });
    key = await server.key("acme");
  });
  afterAll(() => server.close());

  const post = (body: unknown, headers: Record<string, string> = {}) =>
    http(`${server.url}/v1/jobs`, { headers: { ...bearer(key), ...headers }, json: body });

  it("answers 202 with an absolute Location, an integer Retry-After and the full representation", async () => {
    const before = Date.now();
    const res = await post({ type: "demo.sleep", input: { ms: 300 } });
    expect(res.status).toBe(202);
    expectSecurityHeaders(res);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const location = res.headers.get("location")!;
    expect(location).toMatch(/^http:\/\/[^/]+\/v1\/jobs\/[^/?]+$/);
    expectRetryAfter(res);
    const job = (await res.json()) as Job;
    expectRepresentation(job);
    expect(location).toBe(job.links.self);
    expect(new URL(location).pathname).toBe(`/v1/jobs/${job.id}`);
    expect(job.type).toBe("demo.sleep");
    expect(["queued", "running"]).toContain(job.status);
    expect(job.attempt).toBeGreaterThanOrEqual(0);
    expect(job.maxAttempts).toBe(3); // demo.sleep's default
    expect(job.finishedAt).toBeNull();
    expect(job.error).toBeNull();
    expect(job.links.cancel).toBe(`${location}/cancel`);
    expect(job.links.result).toBeUndefined();
    const created = Date.parse(job.createdAt);
    expect(created).toBeGreaterThanOrEqual(before - 1000);
    expect(created).toBeLessThanOrEqual(Date.now() + 1000);
    // Default timeout of demo.sleep is 3600 s, counted from submission.
    expect(Date.parse(job.deadlineAt) - created).toBe(3600 * 1000);
    // The job is durably there: the status monitor knows it.
    const status = await http(location, { headers: bearer(key) });
    expect([202, 303]).toContain(status.status);
  });

  it("ids are unguessable and distinct", async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const res = await post({ type: "demo.echo", input: i });
      expect(res.status).toBe(202);
      ids.add(((await res.json()) as Job).id);
    }
    expect(ids.size).toBe(5);
    for (const id of ids) expect(id.replace(/[^0-9a-zA-Z]/g, "").length).toBeGreaterThanOrEqual(22);
  });

  it("deadlineAt = createdAt + timeoutSeconds, and maxAttempts/priority/metadata are taken", async () => {
    const res = await post({
      type: "demo.sleep",
      input: { ms: 1 },
      timeoutSeconds: 120,
      maxAttempts: 7,
      priority: -5,
      metadata: { customer: "c-42", note: "ünïcode" },
    });
    expect(res.status).toBe(202);
    const job = (await res.json()) as Job;
    expect(Date.parse(job.deadlineAt) - Date.parse(job.createdAt)).toBe(120_000);
    expect(job.maxAttempts).toBe(7);
    expect(job.metadata).toEqual({ customer: "c-42", note: "ünïcode" });
  });

  it("a runAt in the past means now", async () => {
    const res = await post({ type: "demo.echo", input: { x: 1 }, runAt: "2001-01-01T00:00:00Z" });
    expect(res.status).toBe(202);
    const job = (await res.json()) as Job;
    const done = await http(`${job.links.self}?onComplete=status`, {
      headers: { ...bearer(key), prefer: "wait=10" },
    });
    expect(done.status).toBe(200);
    expect(((await done.json()) as Job).status).toBe("succeeded");
  });

  it("accepts input: null for a type whose schema allows it", async () => {
    const res = await post({ type: "demo.echo", input: null });
    expect(res.status).toBe(202);
    const location = res.headers.get("location")!;
    const done = await http(`${location}?onComplete=stream`, {
      headers: { ...bearer(key), prefer: "wait=10" },
    });
    // demo.echo returns null, which is an empty result.
    expect(done.status).toBe(204);
  });

  it("input: null for a type whose schema needs an object is 400 at /input", async () => {
    const res = await post({ type: "demo.sleep", input: null });
    const problem = await expectProblem(res, 400);
    expect(problem.errors!.map((e) => e.path)).toContain("/input");
  });

  it("validation errors are 400 with JSON Pointer paths into the body", async () => {
    const res = await post({ type: "demo.sleep", input: { ms: "soon" } });
    const problem = await expectProblem(res, 400);
    expect(problem.errors).toBeInstanceOf(Array);
    expect(problem.errors!.map((e) => e.path)).toContain("/input/ms");
    for (const e of problem.errors!) {
      expect(e.path).toMatch(/^\//);
      expect(typeof e.message).toBe("string");
    }
  });

  it("a missing required input member points at the member itself (/input/ms)", async () => {
    const res = await post({ type: "demo.sleep", input: {} });
    const problem = await expectProblem(res, 400);
    expect(problem.errors!.map((e) => e.path)).toContain("/input/ms");
  });

  it("an unknown type is 400 unknown-job-type", async () => {
    const res = await post({ type: "no.such.type", input: {} });
    const problem = await expectProblem(res, 400, "unknown-job-type");
    expect(problem.instance).toBe("/v1/jobs");
  });

  it("an unknown envelope field is 400", async () => {
    const res = await post({ type: "demo.echo", input: {}, status: "succeeded" });
    const problem = await expectProblem(res, 400);
    expect(problem.errors?.length).toBeGreaterThan(0);
  });

  it("a missing input is 400", async () => {
    const res = await post({ type: "demo.echo" });
    const problem = await expectProblem(res, 400);
    expect(problem.errors!.map((e) => e.path)).toContain("/input");
  });

  it.each([
    [{ timeoutSeconds: 3601 }, "/timeoutSeconds"],
    [{ timeoutSeconds: 0 }, "/timeoutSeconds"],
    [{ timeoutSeconds: 1.5 }, "/timeoutSeconds"],
    [{ maxAttempts: 0 }, "/maxAttempts"],
    [{ maxAttempts: 101 }, "/maxAttempts"],
    [{ priority: 101 }, "/priority"],
    [{ priority: -101 }, "/priority"],
    [{ runAt: "tomorrow" }, "/runAt"],
    [{ metadata: { n: 1 } }, "/metadata/n"],
  ])("envelope %j is 400 at %s", async (extra, path) => {
    const res = await post({ type: "demo.echo", input: {}, ...extra });
    const problem = await expectProblem(res, 400);
    expect(problem.errors!.map((e) => e.path)).toContain(path);
  });

  it("a body that is not JSON is 400, never 500", async () => {
    const res = await http(`${server.url}/v1/jobs`, {
      headers: { ...bearer(key), "content-type": "application/json" },
      body: '{"type": "demo.echo", ',
    });
    await expectProblem(res, 400);
  });

  it("a JSON body that is not an object is 400", async () => {
    for (const body of ["[]", '"x"', "42", "null"]) {
      const res = await http(`${server.url}/v1/jobs`, {
        headers: { ...bearer(key), "content-type": "application/json" },
        body,
      });
      await expectProblem(res, 400);
    }
  });

  it("a wrong media type is 415", async () => {
    const res = await http(`${server.url}/v1/jobs`, {
      headers: { ...bearer(key), "content-type": "text/plain" },
      body: JSON.stringify({ type: "demo.echo", input: {} }),
    });
    await expectProblem(res, 415);
    const form = await http(`${server.url}/v1/jobs`, {
      headers: { ...bearer(key), "content-type": "application/x-www-form-urlencoded" },
      body: "type=demo.echo",
    });
    await expectProblem(form, 415);
  });

  it("application/json with a charset parameter is accepted", async () => {
    const res = await http(`${server.url}/v1/jobs`, {
      headers: { ...bearer(key), "content-type": "application/json; charset=utf-8" },
      body: JSON.stringify({ type: "demo.echo", input: {} }),
    });
    expect(res.status).toBe(202);
  });

  it("a body over the limit is 413", async () => {
    const res = await post({ type: "demo.echo", input: { blob: "x".repeat(4096) } });
    await expectProblem(res, 413);
    // The server is still fine afterwards.
    expect((await post({ type: "demo.echo", input: {} })).status).toBe(202);
  });

  it("submitting needs a key", async () => {
    const res = await http(`${server.url}/v1/jobs`, { json: { type: "demo.echo", input: {} } });
    await expectProblem(res, 401);
    expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
  });

  it("the Location works with the caller's key and the job runs to completion", async () => {
    const { location, job } = await (async () => {
      const res = await post({ type: "demo.echo", input: { hello: "world" } });
      return { location: res.headers.get("location")!, job: (await res.json()) as Job };
    })();
    const done = await http(location, { headers: { ...bearer(key), prefer: "wait=10" } });
    expect(done.status).toBe(303);
    const result = await http(done.headers.get("location")!);
    expect(result.status).toBe(200);
    expect(await result.json()).toEqual({ hello: "world" });
    expect(job.id).toBe(new URL(location).pathname.split("/").pop());
  });
});
