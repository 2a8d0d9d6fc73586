/**
 * `saga.call` against a second real server over HTTP: the remote job's result is the step's,
 * its failure the step's (and what was done before it is compensated), a step run again after
 * a crash finds the remote job it submitted instead of making another, and canceling the saga
 * cancels the remote job too.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { JobContext, JobDefinition } from "../../src/jobs/define.js";
import { JobAbortedError } from "../../src/jobs/errors.js";
import { defineSaga } from "../../src/sagas/define-saga.js";
import { SagaRun } from "../../src/sagas/saga-run.js";
import { SqliteStore } from "../../src/store/sqlite/store.js";
import { http, startServer, type TestServer } from "../helpers/server.js";
import { LEASE_MS, T0, TENANT, claimOne, submitJob } from "../store/suite/context.js";

let remote: TestServer;
let orchestrator: TestServer;
const undone: string[] = [];

const checkout = defineSaga({
  type: "test.checkout",
  input: {
    type: "object",
    properties: { remote: { type: "string" }, type: { type: "string" }, input: {} },
    required: ["remote", "type"],
  },
  async run(input: { remote: string; type: string; input?: unknown }, saga) {
    await saga.step("reserve", () => "reserved", { compensate: () => void undone.push("reserve") });
    return saga.call(
      "remote",
      { url: input.remote, type: input.type, input: input.input ?? {} },
      { maxAttempts: 1 },
    );
  },
});

interface Job {
  id: string;
  type: string;
  status: string;
  error: { type: string; detail: string } | null;
  links: { self: string; cancel?: string; result?: string };
}

beforeAll(async () => {
  remote = await startServer({ dev: true, config: { retryAfterMin: 1, retryAfterMax: 1 } });
  orchestrator = await startServer({ dev: true, jobs: [checkout] as JobDefinition[] });
});
afterAll(async () => {
  await orchestrator?.close();
  await remote?.close();
});

async function runSaga(input: unknown): Promise<Job> {
  const submitted = await http(`${orchestrator.url}/v1/jobs`, { json: { type: "test.checkout", input } });
  expect(submitted.status).toBe(202);
  const location = submitted.headers.get("location")!;
  for (;;) {
    const res = await http(`${location}?onComplete=status`, { headers: { prefer: "wait=10" } });
    if (res.status === 200) return (await res.json()) as Job;
  }
}

const remoteJobs = async (type: string): Promise<Job[]> =>
  ((await (await http(`${remote.url}/v1/jobs?type=${type}`)).json()) as { items: Job[] }).items;

describe("saga.call", { timeout: 60_000 }, () => {
  it("runs a job at another server and returns its result", async () => {
    const job = await runSaga({
      remote: remote.url,
      type: "demo.sleep",
      input: { ms: 1200, result: { paid: 42 } },
    });
    expect(job.status).toBe("succeeded");
    expect(await (await http(job.links.result!)).json()).toEqual({ paid: 42 });
    const [made] = await remoteJobs("demo.sleep");
    expect(made!.status).toBe("succeeded");
  });

  it("the remote job's failure fails the step: the steps before it are compensated", async () => {
    undone.length = 0;
    const job = await runSaga({
      remote: remote.url,
      type: "demo.fail",
      input: { message: "card declined", status: 402 },
    });
    expect(job.status).toBe("failed");
    expect(job.error!.type).toBe("/problems/saga-step-failed");
    expect(job.error!.detail).toMatch(
      /^step "remote" failed: .*demo\.fail job at .*card declined.*; compensated: reserve$/,
    );
    expect(undone).toEqual(["reserve"]);
  });

  it("canceling the saga cancels the remote job", async () => {
    const submitted = await http(`${orchestrator.url}/v1/jobs`, {
      json: {
        type: "test.checkout",
        input: { remote: remote.url, type: "demo.sleep", input: { ms: 30_000 } },
      },
    });
    const saga = (await submitted.json()) as Job;
    const running = await vi.waitFor(
      async () => {
        const [made] = (await remoteJobs("demo.sleep")).filter((j) => j.status === "running");
        expect(made).toBeDefined();
        return made!;
      },
      { timeout: 10_000 },
    );
    expect((await http(saga.links.cancel!, { method: "POST" })).status).toBe(200);
    await vi.waitFor(
      async () => {
        const res = await http(`${remote.url}/v1/jobs/${running.id}?onComplete=status`);
        expect(((await res.json()) as Job).status).toBe("canceled");
      },
      { timeout: 10_000 },
    );
  });

  it("a step run again after a crash finds the remote job it submitted; no second one is made", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tessera-call-"));
    const store = new SqliteStore({ path: join(dir, "tessera.db") });
    try {
      const submitted = await submitJob(store, { maxAttempts: 5 });
      const ctxFor = (attempt: number, signal: AbortSignal): JobContext => ({
        jobId: submitted.id,
        type: submitted.type,
        attempt,
        maxAttempts: 5,
        signal,
        deadlineAt: new Date(submitted.deadlineAt),
        metadata: {},
        progress: () => undefined,
        emit: () => undefined,
        log: { info: () => undefined, warn: () => undefined, error: () => undefined },
      });
      const target = { url: remote.url, type: "demo.sleep", input: { ms: 1500, result: "once" } };
      const before = (await remoteJobs("demo.sleep")).length;

      // Attempt 1 submits and follows the remote job, then its worker dies (its signal fires).
      const first = await claimOne(store, { types: [submitted.type] });
      const dying = new AbortController();
      const cut = new SagaRun(store, ctxFor(1, dying.signal), first, []).call("pay", target);
      cut.catch(() => undefined);
      await vi.waitFor(async () => expect((await remoteJobs("demo.sleep")).length).toBe(before + 1));
      dying.abort(new JobAbortedError("lease-lost", submitted.id)); // not a cancel: the remote job goes on

      // Attempt 2 replays the step: the same idempotency key, so the same remote job.
      await store.sweepExpiredLeases({ now: T0 + LEASE_MS + 1, retryDelayMs: 0, limit: 10 });
      const second = await claimOne(store, { now: T0 + LEASE_MS + 2, types: [submitted.type] });
      const journal = await store.listSteps({ tenantId: TENANT, jobId: submitted.id });
      const run = new SagaRun(store, ctxFor(2, new AbortController().signal), second, journal);
      expect(await run.call("pay", target)).toBe("once");
      expect((await remoteJobs("demo.sleep")).length).toBe(before + 1);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
