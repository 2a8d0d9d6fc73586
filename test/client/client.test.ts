/** The client against a real server: results, failures, cancellation, AbortSignal, listing. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createClient,
  HttpError,
  JobAlreadyFinishedError,
  JobCanceledError,
  JobFailedError,
  JobTimedOutError,
  WaitTimeoutError,
  type JobRepresentation,
  type TesseraClient,
} from "../../src/client/index.js";
import { echo, fail, sleepJob } from "../../src/demo/jobs.js";
import { startServer, type TestServer } from "../helpers/server.js";

let server: TestServer;
let client: TesseraClient;

beforeAll(async () => {
  server = await startServer({ dev: true });
  client = createClient({ baseUrl: server.url, poll: { minDelayMs: 200 } });
});
afterAll(() => server.close());

describe("client: results", () => {
  it("runs a job and returns its typed result", async () => {
    const result = await client.run(sleepJob, { ms: 300, result: { report: "ready" } });
    expect(result).toEqual({ report: "ready" });
  });

  it("returns a handle with id, status URL and representation at once", async () => {
    const job = await client.submit(echo, { hello: "world" });
    expect(job.id).toMatch(/^job_[0-9a-z]{44}$/);
    expect(job.statusUrl).toBe(`${server.url}/v1/jobs/${job.id}`);
    expect(job.job.type).toBe("demo.echo");
    expect(["queued", "running", "succeeded"]).toContain(job.job.status);
    expect(await job.result()).toEqual({ hello: "world" });
    expect((await job.status()).status).toBe("succeeded");
    expect((await client.get(job.id)).status).toBe("succeeded");
  });

  it("gets null for a job that returned nothing", async () => {
    expect(await client.run("demo.echo", null)).toBeNull();
  });

  it("reports progress while it waits", async () => {
    const seen: JobRepresentation[] = [];
    const job = await client.submit(sleepJob, { ms: 2500 });
    await job.result({ onProgress: (j) => seen.push(structuredClone(j)), longPoll: false, maxDelayMs: 500 });
    const percents = seen.map((j) => j.progress?.percent).filter((p): p is number => typeof p === "number");
    expect(percents.length).toBeGreaterThan(1);
    expect(percents.at(-1)!).toBeGreaterThan(percents[0]!);
  });

  it("takes the result from a submit the server held until the job ended (Prefer: wait)", async () => {
    const calls: string[] = [];
    const counting = createClient({
      baseUrl: server.url,
      fetch: (url, init) => (calls.push(`${init.method} ${url}`), fetch(url, init)),
    });
    const job = await counting.submit(sleepJob, { ms: 200, result: 42 }, { wait: 10 });
    expect(job.job.status).toBe("succeeded");
    const before = calls.length;
    expect(await job.result()).toBe(42);
    expect(calls.length).toBe(before); // no poll: the answer was already there
  });

  it("sends one Idempotency-Key per submit: the same key gives the same job", async () => {
    const a = await client.submit(sleepJob, { ms: 100 }, { idempotencyKey: "client-test-key-1" });
    const b = await client.submit(sleepJob, { ms: 100 }, { idempotencyKey: "client-test-key-1" });
    expect(b.id).toBe(a.id);
    expect(b.replayed).toBe(true);
    const c = await client.submit(sleepJob, { ms: 100 });
    expect(c.id).not.toBe(a.id);
  });

  it("passes the envelope options", async () => {
    const job = await client.submit(
      sleepJob,
      { ms: 100 },
      { maxAttempts: 7, priority: 5, timeoutSeconds: 90, metadata: { team: "a" } },
    );
    expect(job.job.maxAttempts).toBe(7);
    expect(Date.parse(job.job.deadlineAt) - Date.parse(job.job.createdAt)).toBe(90_000);
    expect(job.job.metadata).toEqual({ team: "a" });
  });
});

describe("client: failures", () => {
  it("throws JobFailedError with the problem for a failed job", async () => {
    const error = await client.run(fail, { message: "boom" }, { maxAttempts: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JobFailedError);
    const failed = error as JobFailedError;
    expect(failed.jobStatus).toBe("failed");
    expect(failed.slug).toBe("job-failed");
    expect(failed.problem).toMatchObject({
      status: 500,
      detail: "boom",
      error: { code: "job-failed", message: "boom" },
    });
    expect(failed.message).toContain("boom");
  });

  it("does not mistake a job rejected with 429 for a fault to retry", async () => {
    const error = await client.run(fail, { message: "slow down", status: 429 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JobFailedError);
    expect((error as JobFailedError).problem).toMatchObject({ status: 429, error: { code: "job-rejected" } });
  });

  it("throws JobTimedOutError for a job past its deadline", async () => {
    const error = await client.run(sleepJob, { ms: 30_000 }, { timeoutSeconds: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JobTimedOutError);
    expect((error as JobTimedOutError).problem.status).toBe(504);
  });

  it("throws HttpError with the validation problem for bad input, without retrying", async () => {
    const calls: string[] = [];
    const counting = createClient({
      baseUrl: server.url,
      fetch: (url, init) => (calls.push(url), fetch(url, init)),
    });
    const error = await counting.submit("demo.sleep", { ms: "long" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpError);
    expect((error as HttpError).status).toBe(400);
    expect((error as HttpError).problem?.errors?.[0]?.path).toBe("/input/ms");
    expect(calls).toHaveLength(1);
  });

  it("throws HttpError 404 for an unknown job", async () => {
    const error = await client.get("00000000-0000-4000-8000-000000000000").catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "HttpError", status: 404, slug: "not-found" });
  });

  it("gives up waiting after timeoutMs, leaving the job running", async () => {
    const job = await client.submit(sleepJob, { ms: 10_000 });
    const error = await job.result({ timeoutMs: 700 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WaitTimeoutError);
    expect(["queued", "running"]).toContain((await job.status()).status);
    await job.cancel();
  });
});

describe("client: cancellation and AbortSignal", () => {
  it("cancels a job; its waiter gets JobCanceledError", async () => {
    const job = await client.submit(sleepJob, { ms: 20_000 });
    const waiting = job.result().catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 300));
    const canceled = await job.cancel();
    expect(canceled.status).toBe("canceled");
    const error = await waiting;
    expect(error).toBeInstanceOf(JobCanceledError);
    expect((error as JobCanceledError).problem.status).toBe(409);
    // Cancelling again is fine; cancelling a finished job is a typed error.
    expect((await job.cancel()).status).toBe("canceled");
    const done = await client.submit(echo, 1, { wait: 10 });
    await expect(done.cancel()).rejects.toBeInstanceOf(JobAlreadyFinishedError);
  });

  it("stops waiting when the signal aborts, and the job goes on", async () => {
    const job = await client.submit(sleepJob, { ms: 20_000 });
    const controller = new AbortController();
    const waiting = job.result({ signal: controller.signal }).catch((e: unknown) => e);
    setTimeout(() => controller.abort(), 300);
    const error = await waiting;
    expect((error as Error).name).toBe("AbortError");
    expect(["queued", "running"]).toContain((await job.status()).status);
    await job.cancel();
  });

  it("rejects with the signal's own reason, also when it aborts during a held poll", async () => {
    const job = await client.submit(sleepJob, { ms: 20_000 });
    const reason = new Error("user left");
    const started = Date.now();
    const error = await job.result({ signal: AbortSignal.timeout(1500) }).catch((e: unknown) => e);
    expect((error as Error).name).toBe("TimeoutError");
    expect(Date.now() - started).toBeLessThan(5000);
    const controller = new AbortController();
    controller.abort(reason);
    await expect(job.result({ signal: controller.signal })).rejects.toBe(reason);
    await job.cancel();
  });

  it("with cancelOnAbort, also cancels the job on the server", async () => {
    const job = await client.submit(sleepJob, { ms: 20_000 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    await expect(job.result({ signal: controller.signal, cancelOnAbort: true })).rejects.toMatchObject({
      name: "AbortError",
    });
    expect((await job.status()).status).toBe("canceled");
  });
});

describe("client: listing and deleting", () => {
  it("iterates over pages with filters, then deletes", async () => {
    const mine = await Promise.all(
      [1, 2, 3].map((n) => client.submit(echo, { n }, { metadata: { batch: "list-test" } })),
    );
    await Promise.all(mine.map((j) => j.result()));
    const ids: string[] = [];
    let pages = 0;
    for await (const page of client.list({ type: "demo.echo", status: "succeeded", limit: 2 })) {
      pages++;
      for (const job of page.items) {
        expect(job.type).toBe("demo.echo");
        ids.push(job.id);
      }
    }
    expect(pages).toBeGreaterThanOrEqual(2);
    for (const j of mine) expect(ids).toContain(j.id);
    await client.delete(mine[0]!.id);
    await expect(client.get(mine[0]!.id)).rejects.toMatchObject({ status: 404 });
  });

  it("lists the job types", async () => {
    const types = await client.jobTypes();
    expect(types.map((t) => t.type)).toContain("demo.sleep");
  });
});

describe("client: authentication", () => {
  it("sends the API key; without one the server answers 401", async () => {
    const authed = await startServer();
    try {
      const key = await authed.key("acme");
      const good = createClient({ baseUrl: authed.url, apiKey: key });
      expect(await good.run(echo, { ok: true })).toEqual({ ok: true });
      const bad = createClient({ baseUrl: authed.url });
      await expect(bad.submit(echo, 1)).rejects.toMatchObject({ name: "HttpError", status: 401 });
    } finally {
      await authed.close();
    }
  });
});
