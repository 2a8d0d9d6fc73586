import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { demoJobs } from "../../src/demo/jobs.js";
import { defineJob, type JobDefinition } from "../../src/jobs/define.js";
import { bearer, http, startServer, type TestServer } from "../helpers/server.js";
import {
  client,
  expectProblem,
  expectRepresentation,
  expectSecurityHeaders,
  settle,
  sleep,
  submit,
  until,
  type Client,
  type Job,
} from "./support.js";

/** Records what the handler saw, so a test can tell that a canceled run really stopped. */
const seen = { aborted: 0, finished: 0 };
const watched = defineJob({
  type: "test.watched",
  input: {},
  maxAttempts: 3,
  async run(_input: unknown, ctx) {
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, 1500);
        ctx.signal.addEventListener("abort", () => {
          clearTimeout(t);
          reject(new Error("aborted"));
        });
      });
    } catch (error) {
      seen.aborted++;
      throw error;
    }
    seen.finished++;
    return { finished: true };
  },
});

describe("POST /v1/jobs/{id}/cancel and DELETE /v1/jobs/{id}", () => {
  let server: TestServer;
  let key: string;
  let c: Client;
  beforeAll(async () => {
    server = await startServer({ jobs: [...demoJobs, watched as JobDefinition] });
    key = await server.key("acme");
    c = client(server.url, key);
  });
  afterAll(() => server.close());

  const cancel = (id: string) =>
    http(`${server.url}/v1/jobs/${id}/cancel`, { method: "POST", headers: bearer(key) });
  const del = (id: string) => http(`${server.url}/v1/jobs/${id}`, { method: "DELETE", headers: bearer(key) });

  it("canceling a queued job is 200 with status canceled; again is 200", async () => {
    const { job } = await submit(c, {
      type: "demo.echo",
      input: 1,
      runAt: new Date(Date.now() + 60_000).toISOString(),
    });
    const res = await cancel(job.id);
    expect(res.status).toBe(200);
    expectSecurityHeaders(res);
    expect(res.headers.get("cache-control")).toMatch(/no-store/);
    const body = (await res.json()) as Job;
    expectRepresentation(body);
    expect(body.status).toBe("canceled");
    expect(body.finishedAt).not.toBeNull();
    expect(body.error?.type).toMatch(/\/job-canceled$/);
    expect(body.links.cancel).toBeUndefined();
    const again = await cancel(job.id);
    expect(again.status).toBe(200);
    expect(((await again.json()) as Job).status).toBe("canceled");
  });

  it("a canceled job's status monitor redirects to a 409 result", async () => {
    const { job, location } = await submit(c, { type: "demo.sleep", input: { ms: 30_000 } });
    await cancel(job.id);
    const status = await http(location, { headers: bearer(key) });
    expect(status.status).toBe(303);
    await expectProblem(await http(status.headers.get("location")!), 409, "job-canceled");
  });

  it("canceling a running job stops its handler; the job stays canceled", async () => {
    const before = { ...seen };
    const { job } = await submit(c, { type: "test.watched", input: null });
    await until(c, job.id, (j) => j.status === "running");
    const res = await cancel(job.id);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Job;
    expect(body.status).toBe("canceled");
    // The handler's signal fired...
    const deadline = Date.now() + 5000;
    while (seen.aborted === before.aborted && Date.now() < deadline) await sleep(20);
    expect(seen.aborted).toBe(before.aborted + 1);
    // ...and well after it would have finished, nothing it did changed the outcome.
    await sleep(2000);
    expect(seen.finished).toBe(before.finished);
    const later = await http(`${server.url}/v1/jobs/${job.id}?onComplete=status`, { headers: bearer(key) });
    expect(later.status).toBe(200);
    const after = (await later.json()) as Job;
    expect(after.status).toBe("canceled");
    expect(after.attempt).toBe(1); // not retried
    await expectProblem(
      await http(`${server.url}/v1/jobs/${job.id}/result`, { headers: bearer(key) }),
      409,
      "job-canceled",
    );
  });

  it("canceling a running demo.sleep: status stays canceled, result 409", async () => {
    const { job } = await submit(c, {
      type: "demo.sleep",
      input: { ms: 1500, result: "should be discarded" },
    });
    await until(c, job.id, (j) => j.status === "running");
    expect((await cancel(job.id)).status).toBe(200);
    await sleep(2000);
    const after = await settle(c, job.id);
    expect(after.status).toBe("canceled");
    await expectProblem(
      await http(`${server.url}/v1/jobs/${job.id}/result`, { headers: bearer(key) }),
      409,
      "job-canceled",
    );
  });

  it("canceling a succeeded job is 409 job-already-finished with the representation in `job`", async () => {
    const { job } = await submit(c, { type: "demo.echo", input: { x: 1 } });
    await settle(c, job.id);
    const res = await cancel(job.id);
    const problem = await expectProblem(res, 409, "job-already-finished");
    expectRepresentation(problem.job!);
    expect(problem.job!.id).toBe(job.id);
    expect(problem.job!.status).toBe("succeeded");
    // Still succeeded, result intact.
    const result = await http(`${server.url}/v1/jobs/${job.id}/result`, { headers: bearer(key) });
    expect(result.status).toBe(200);
    expect(await result.json()).toEqual({ x: 1 });
  });

  it("canceling a failed or timed-out job is 409 job-already-finished", async () => {
    const failed = await submit(c, { type: "demo.fail", input: { message: "x", status: 400 } });
    await settle(c, failed.job.id);
    const p1 = await expectProblem(await cancel(failed.job.id), 409, "job-already-finished");
    expect(p1.job!.status).toBe("failed");
    const timedOut = await submit(c, { type: "demo.sleep", input: { ms: 30_000 }, timeoutSeconds: 1 });
    await settle(c, timedOut.job.id, 15);
    const p2 = await expectProblem(await cancel(timedOut.job.id), 409, "job-already-finished");
    expect(p2.job!.status).toBe("timed_out");
  });

  it("canceling an unknown job is 404; GET on the cancel URL is 405 with Allow", async () => {
    await expectProblem(await cancel("00000000-0000-4000-8000-000000000000"), 404);
    const { job } = await submit(c, { type: "demo.echo", input: 1 });
    const res = await http(`${server.url}/v1/jobs/${job.id}/cancel`, { headers: bearer(key) });
    await expectProblem(res, 405);
    expect(res.headers.get("allow")).toMatch(/POST/);
  });

  it("cancel accepts an empty JSON body (as clients send with content-type set)", async () => {
    const { job } = await submit(c, { type: "demo.sleep", input: { ms: 30_000 } });
    const res = await http(`${server.url}/v1/jobs/${job.id}/cancel`, {
      method: "POST",
      headers: { ...bearer(key), "content-type": "application/json" },
      body: "{}",
    });
    expect(res.status).toBe(200);
  });

  it("DELETE is 204, then every read of the job is 404", async () => {
    const { job, location } = await submit(c, { type: "demo.echo", input: { secret: "data" } });
    const done = await settle(c, job.id);
    const signed = done.links.result!;
    const res = await del(job.id);
    expect(res.status).toBe(204);
    expectSecurityHeaders(res);
    expect(await res.text()).toBe("");
    await expectProblem(await http(location, { headers: bearer(key) }), 404);
    await expectProblem(await http(`${location}?onComplete=stream`, { headers: bearer(key) }), 404);
    await expectProblem(await http(`${location}/result`, { headers: bearer(key) }), 404);
    await expectProblem(await http(signed), 404);
    await expectProblem(await cancel(job.id), 404);
    await expectProblem(await del(job.id), 404);
    const list = await http(`${server.url}/v1/jobs?limit=500`, { headers: bearer(key) });
    const items = ((await list.json()) as { items: Job[] }).items;
    expect(items.map((j) => j.id)).not.toContain(job.id);
  });

  it("DELETE of a running job cancels it first, then deletes it", async () => {
    const before = { ...seen };
    const { job } = await submit(c, { type: "test.watched", input: null });
    await until(c, job.id, (j) => j.status === "running");
    expect((await del(job.id)).status).toBe(204);
    const deadline = Date.now() + 5000;
    while (seen.aborted === before.aborted && Date.now() < deadline) await sleep(20);
    expect(seen.aborted).toBe(before.aborted + 1);
    await sleep(2000);
    expect(seen.finished).toBe(before.finished);
    await expectProblem(await http(`${server.url}/v1/jobs/${job.id}`, { headers: bearer(key) }), 404);
    await expectProblem(await http(`${server.url}/v1/jobs/${job.id}/result`, { headers: bearer(key) }), 404);
  });

  it("DELETE of a queued job is 204 and it never runs", async () => {
    const { job } = await submit(c, {
      type: "demo.sleep",
      input: { ms: 10 },
      runAt: new Date(Date.now() + 1000).toISOString(),
    });
    expect((await del(job.id)).status).toBe(204);
    await sleep(1500);
    await expectProblem(await http(`${server.url}/v1/jobs/${job.id}`, { headers: bearer(key) }), 404);
  });

  it("a DELETE-d job's waiting status monitor is answered, not left hanging", async () => {
    const { job, location } = await submit(c, { type: "demo.sleep", input: { ms: 30_000 } });
    const start = Date.now();
    const waiting = http(location, { headers: { ...bearer(key), prefer: "wait=10" } });
    await sleep(200);
    expect((await del(job.id)).status).toBe(204);
    const res = await waiting;
    // The job no longer exists: 404 (not a stale 202 pointing at a deleted job), and at once.
    await expectProblem(res, 404);
    expect(Date.now() - start).toBeLessThan(5000);
  });
});
