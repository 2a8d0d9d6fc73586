/**
 * `runAt` and `timeoutSeconds` together, over real sockets: the deadline counts from
 * submission (`deadlineAt = createdAt + timeoutSeconds`), so a job scheduled past its deadline
 * is accepted, waits queued, and times out at its deadline without ever running.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defineJob } from "../../src/jobs/define.js";
import { demoJobs } from "../../src/demo/jobs.js";
import { http, startServer, type TestServer } from "../helpers/server.js";
import {
  client,
  expectProblem,
  expectRepresentation,
  expectRetryAfter,
  settle,
  submit,
  type Client,
  type Job,
} from "./support.js";

/** Every start of a `test.counted` job, by job id: none may start past its deadline. */
const started: string[] = [];
const counted = defineJob({
  type: "test.counted",
  input: {},
  timeoutSeconds: 1, // the type's default: short, as a client holding jobs queued would set it
  maxAttempts: 1,
  run: (_input: unknown, ctx) => {
    started.push(ctx.jobId);
    return "ran";
  },
});

let server: TestServer;
let c: Client;
const inAMinute = () => new Date(Date.now() + 60_000).toISOString();

beforeAll(async () => {
  server = await startServer({ jobs: [...demoJobs, counted] });
  c = client(server.url, await server.key("acme"));
});
afterAll(() => server.close());

describe("runAt after the job's deadline", () => {
  it("timeoutSeconds 1 with a runAt a minute ahead: 202 queued, then timed_out at its deadline, never run", async () => {
    const { res, job, location } = await submit(c, {
      type: "test.counted",
      input: null,
      timeoutSeconds: 1,
      runAt: inAMinute(),
    });
    expect(res.status).toBe(202);
    expectRepresentation(job);
    expect(job.status).toBe("queued");
    expect(job.attempt).toBe(0);
    expect(Date.parse(job.deadlineAt) - Date.parse(job.createdAt)).toBe(1000);
    // Retry-After is bounded by the deadline, not by the far runAt.
    expect(expectRetryAfter(res)).toBe(1);
    expect(new URL(location).pathname).toBe(`/v1/jobs/${job.id}`);

    const done = await settle(c, job.id, 10);
    expect(done.status).toBe("timed_out");
    expect(done.attempt).toBe(0);
    expect(done.startedAt).toBeNull();
    expect(done.error?.type).toMatch(/\/job-timed-out$/);
    expect(Date.parse(done.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(job.deadlineAt));
    expect(started).not.toContain(job.id);
    await expectProblem(
      await http(`${c.base}/v1/jobs/${job.id}/result`, { headers: c.headers }),
      504,
      "job-timed-out",
    );
  });

  it("the job type's default timeout applies the same way (no timeoutSeconds in the body)", async () => {
    const { job } = await submit(c, { type: "test.counted", input: 1, runAt: inAMinute() });
    expect(job.status).toBe("queued");
    expect(Date.parse(job.deadlineAt) - Date.parse(job.createdAt)).toBe(1000);
  });

  it("the bounds of timeoutSeconds (1 and the cap) are accepted with any runAt", async () => {
    for (const timeoutSeconds of [1, 604_800]) {
      const { job } = await submit(c, {
        type: "demo.echo",
        input: null,
        timeoutSeconds,
        runAt: new Date(Date.now() + 8 * 86_400_000).toISOString(),
      });
      expect(job.status).toBe("queued");
    }
  });

  it("such a queued job can be canceled, and its pending monitor answers 202 for every onComplete", async () => {
    const { job } = await submit(c, {
      type: "demo.echo",
      input: null,
      timeoutSeconds: 30,
      runAt: inAMinute(),
    });
    for (const onComplete of ["redirect", "stream", "status"]) {
      const res = await http(`${c.base}/v1/jobs/${job.id}?onComplete=${onComplete}`, { headers: c.headers });
      expect(res.status, onComplete).toBe(202);
      expect(((await res.json()) as Job).status).toBe("queued");
    }
    const canceled = await http(`${c.base}/v1/jobs/${job.id}/cancel`, { method: "POST", headers: c.headers });
    expect(canceled.status).toBe(200);
    expect(((await canceled.json()) as Job).status).toBe("canceled");
  });
});
