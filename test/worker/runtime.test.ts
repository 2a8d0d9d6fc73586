/**
 * The worker runtime, in process, through a real server and HTTP: retries and backoff, client
 * errors, cancel and deadline aborts, concurrency limits, priority, progress, lease fencing
 * (F4 in process) and graceful stop with lease release (F7 in process).
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import type { Config } from "../../src/config.js";
import { demoJobs } from "../../src/demo/jobs.js";
import { defineJob, type JobContext, type JobDefinition } from "../../src/jobs/define.js";
import { JobAbortedError } from "../../src/jobs/errors.js";
import { JobRegistry } from "../../src/jobs/registry.js";
import { SqliteStore } from "../../src/store/sqlite/store.js";
import type { Store } from "../../src/store/store.js";
import { DEV_TENANT } from "../../src/tessera.js";
import { WorkerRuntime, type WorkerOptions } from "../../src/worker/runtime.js";
import { captureLogger } from "../helpers/log-capture.js";
import { http, startServer, type TestServer } from "../helpers/server.js";

// --- a job type the test drives by hand -------------------------------------------------------

interface GateRun {
  key: string;
  attempt: number;
  signal: AbortSignal;
  ctx: JobContext;
  /** Settle the handler: it returns `value` (whatever its signal says). */
  finish(value: unknown): void;
  fail(error: unknown): void;
}

/** Every run of `test.gate`, in start order. */
const runs: GateRun[] = [];

/** `test.gate { key, progress? }`: blocks until the test settles it; ignores its signal on purpose. */
const gate = defineJob({
  type: "test.gate",
  input: {
    type: "object",
    properties: { key: { type: "string" }, progress: { type: "number" }, message: { type: "string" } },
    required: ["key"],
    additionalProperties: false,
  },
  maxAttempts: 3,
  retryDelayMs: 50,
  timeoutSeconds: 120,
  run(input: { key: string; progress?: number; message?: string }, ctx) {
    if (input.progress !== undefined) ctx.progress(input.progress, input.message);
    return new Promise((resolve, reject) => {
      runs.push({
        key: input.key,
        attempt: ctx.attempt,
        signal: ctx.signal,
        ctx,
        finish: resolve,
        fail: reject,
      });
    });
  },
});

/** `test.failing`: always throws a retryable error naming its attempt. */
const failing = defineJob({
  type: "test.failing",
  input: {},
  maxAttempts: 3,
  retryDelayMs: 50,
  run(_input: unknown, ctx) {
    throw new Error(`failure on attempt ${ctx.attempt}`);
  },
});

/** Counts how many runs overlap, per type and in total. */
const overlap = { limited: { current: 0, max: 0 }, all: { current: 0, max: 0 } };
async function counted(groups: { current: number; max: number }[], ms: number): Promise<null> {
  for (const g of groups) g.max = Math.max(g.max, ++g.current);
  try {
    await sleep(ms);
  } finally {
    for (const g of groups) g.current--;
  }
  return null;
}

const limited = defineJob({
  type: "test.limited",
  input: {},
  concurrency: 2,
  run: () => counted([overlap.limited, overlap.all], 150),
});

const unlimited = defineJob({
  type: "test.unlimited",
  input: {},
  run: () => counted([overlap.all], 150),
});

const order: number[] = [];
const ordered = defineJob({
  type: "test.ordered",
  input: { type: "object", properties: { n: { type: "integer" } }, required: ["n"] },
  run: (input: { n: number }) => {
    order.push(input.n);
    return null;
  },
});

/** `test.bad-thenable`: returns a thenable whose `then` throws (a hostile or broken handler). */
const badThenable = defineJob({
  type: "test.bad-thenable",
  input: {},
  maxAttempts: 1,
  run: () =>
    ({
      then() {
        throw new Error("then exploded");
      },
    }) as unknown as Promise<null>,
});

/** `test.this`: a handler written as a method, reading its definition through `this`. */
const usesThis = defineJob({
  type: "test.this",
  input: {},
  maxAttempts: 1,
  run(this: { type: string }) {
    return { type: this.type };
  },
});

const JOBS = [
  ...demoJobs,
  gate,
  failing,
  limited,
  unlimited,
  ordered,
  badThenable,
  usesThis,
] as JobDefinition[];

// --- helpers ----------------------------------------------------------------------------------

interface Representation {
  id: string;
  status: string;
  attempt: number;
  maxAttempts: number;
  progress: { percent: number | null; message: string | null } | null;
  error: { type: string; status: number; detail: string } | null;
}

const TERMINAL = new Set(["succeeded", "failed", "canceled", "timed_out"]);

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 6000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

/** A fresh SQLite store in a temporary directory (both removed after the test) and its dev tenant. */
async function tempStore(): Promise<{ store: SqliteStore; tenantId: string; db: string }> {
  const dir = mkdtempSync(join(tmpdir(), "tessera-worker-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const db = join(dir, "tessera.db");
  const store = new SqliteStore({ path: db });
  const tenantId = await store.ensureTenant({ name: DEV_TENANT, now: Date.now() });
  return { store, tenantId, db };
}

/** A worker runtime on `store` alone (no server), stopped after the test. */
function startWorker(store: Store, jobs: JobDefinition[], options: Partial<WorkerOptions>): WorkerRuntime {
  const worker = new WorkerRuntime({
    store,
    registry: new JobRegistry(jobs),
    logger: captureLogger().logger,
    options: {
      concurrency: 1,
      leaseMs: 30_000,
      heartbeatMs: 10_000,
      pollIntervalMs: 60_000,
      maxResultBytes: 1 << 20,
      ...options,
    },
  });
  worker.start();
  cleanups.push(() => worker.stop(200));
  return worker;
}

/** The store with some of its methods replaced (the rest bound to it). */
function withOverrides(store: SqliteStore, overrides: Partial<Store>): Store {
  return new Proxy(store, {
    get(target, property, receiver) {
      const override = (overrides as Record<PropertyKey, unknown>)[property];
      if (override !== undefined) return override;
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** Jobs queued straight into a store (due now), before any worker looks at it. */
async function queueDirectly(store: SqliteStore, tenantId: string, type: string, inputs: unknown[]) {
  const now = Date.now();
  for (const input of inputs) {
    const job = {
      id: randomUUID(),
      tenantId,
      type,
      input,
      priority: 0,
      runAt: now,
      deadlineAt: now + 60_000,
    };
    await store.submit({
      job: { ...job, maxAttempts: 1, metadata: {}, callback: null },
      idempotency: null,
      now,
    });
  }
}

async function submit(server: TestServer, body: Record<string, unknown>): Promise<string> {
  const response = await http(`${server.url}/v1/jobs`, { json: body });
  expect(response.status, await response.clone().text()).toBe(202);
  return ((await response.json()) as Representation).id;
}

async function status(server: TestServer, id: string): Promise<Representation> {
  const response = await http(`${server.url}/v1/jobs/${id}?onComplete=status`);
  expect([200, 202]).toContain(response.status);
  return (await response.json()) as Representation;
}

async function terminal(server: TestServer, id: string, timeoutMs = 6000): Promise<Representation> {
  return waitFor(
    `job ${id} to finish`,
    async () => {
      const job = await status(server, id);
      return TERMINAL.has(job.status) ? job : undefined;
    },
    timeoutMs,
  );
}

async function result(server: TestServer, id: string): Promise<{ status: number; body: unknown }> {
  const response = await http(`${server.url}/v1/jobs/${id}/result`);
  const text = await response.text();
  return { status: response.status, body: text === "" ? null : (JSON.parse(text) as unknown) };
}

function gateRun(key: string, attempt = 1, timeoutMs = 6000): Promise<GateRun> {
  return waitFor(
    `test.gate ${key} attempt ${attempt} to start`,
    () => runs.find((r) => r.key === key && r.attempt === attempt),
    timeoutMs,
  );
}

function abortReason(signal: AbortSignal): string | undefined {
  return signal.aborted ? (signal.reason as JobAbortedError).reason : undefined;
}

let servers: TestServer[] = [];
const cleanups: (() => Promise<void> | void)[] = [];

async function server(config: Partial<Config> = {}) {
  const s = await startServer({ dev: true, jobs: JOBS, config });
  servers.push(s);
  return s;
}

afterEach(async () => {
  // Unblock anything still waiting so handlers do not outlive their test.
  for (const run of runs.splice(0)) run.finish(null);
  await Promise.all(servers.map((s) => s.close().catch(() => undefined)));
  servers = [];
  // Last in, first out: a worker stops before the store it uses closes.
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

// --- tests ------------------------------------------------------------------------------------

describe("worker runtime: retries and failures", () => {
  it("retries a flaky job with backoff until it succeeds on attempt 3", async () => {
    const s = await server();
    const id = await submit(s, { type: "demo.flaky", input: { failTimes: 2 } });
    // While the retry waits, the job is queued with the failed attempt and its error visible.
    const between = await waitFor("a queued retry", async () => {
      const job = await status(s, id);
      return job.status === "queued" && job.attempt >= 1 ? job : undefined;
    });
    expect(between.error?.detail).toMatch(/planned failure/);
    const done = await terminal(s, id, 10_000);
    expect(done.status).toBe("succeeded");
    expect(done.attempt).toBe(3);
    expect(done.error).toBeNull();
    expect(await result(s, id)).toEqual({ status: 200, body: { attempts: 3 } });
  });

  it("fails at once, without retry, on a JobError with a 4xx status", async () => {
    const s = await server();
    const id = await submit(s, { type: "demo.fail", input: { message: "no such page", status: 422 } });
    const done = await terminal(s, id);
    expect(done.status).toBe("failed");
    expect(done.attempt).toBe(1);
    const r = await result(s, id);
    expect(r.status).toBe(422);
    expect(r.body).toMatchObject({ status: 422, detail: "no such page" });
  });

  it("retries a retryable failure up to maxAttempts, then answers 500 with the last attempt's detail", async () => {
    const s = await server();
    const id = await submit(s, { type: "test.failing", input: null });
    const done = await terminal(s, id);
    expect(done.status).toBe("failed");
    expect(done.attempt).toBe(3);
    expect(done.error?.detail).toBe("failure on attempt 3");
    const r = await result(s, id);
    expect(r.status).toBe(500);
    expect(r.body).toMatchObject({ status: 500, detail: "failure on attempt 3" });
    expect((r.body as { type: string }).type).toMatch(/job-failed$/);
  });

  it("honours a submitted maxAttempts for demo.fail", async () => {
    const s = await server();
    const id = await submit(s, { type: "demo.fail", input: { message: "boom" }, maxAttempts: 2 });
    const done = await terminal(s, id, 10_000);
    expect(done).toMatchObject({ status: "failed", attempt: 2, maxAttempts: 2 });
    expect((await result(s, id)).status).toBe(500);
  });
});

describe("worker runtime: aborts", () => {
  it("cancel fires the running handler's signal and discards what it returns afterwards", async () => {
    const s = await server();
    const id = await submit(s, { type: "test.gate", input: { key: "cancel" } });
    const run = await gateRun("cancel");
    const cancel = await http(`${s.url}/v1/jobs/${id}/cancel`, { method: "POST" });
    expect(cancel.status).toBe(200);
    await waitFor("the handler's signal", () => run.signal.aborted, 2000);
    expect(abortReason(run.signal)).toBe("canceled");
    run.finish({ late: true });
    await sleep(300);
    expect((await status(s, id)).status).toBe("canceled");
    const r = await result(s, id);
    expect(r.status).toBe(409);
    expect((r.body as { type: string }).type).toMatch(/job-canceled$/);
  });

  it("a deadline times the job out within deadline + 2 s and fires the handler's signal", async () => {
    const s = await server();
    const submittedAt = Date.now();
    const id = await submit(s, { type: "test.gate", input: { key: "deadline" }, timeoutSeconds: 1 });
    const run = await gateRun("deadline");
    const done = await terminal(s, id, 1000 + 2000 * 3);
    expect(done.status).toBe("timed_out");
    expect(Date.now() - submittedAt).toBeLessThan(1000 + 2000 * 3);
    expect(run.signal.aborted).toBe(true);
    expect(abortReason(run.signal)).toBe("timed_out");
    run.finish({ late: true });
    await sleep(200);
    expect((await status(s, id)).status).toBe("timed_out");
    expect((await result(s, id)).status).toBe(504);
  });
});

describe("worker runtime: the handler's ctx", () => {
  it("names the attempt, carries the deadline and frozen metadata; progress and log survive destructuring", async () => {
    const s = await server();
    const submittedAt = Date.now();
    const id = await submit(s, {
      type: "test.gate",
      input: { key: "ctx" },
      timeoutSeconds: 90,
      metadata: { order: "o-1" },
    });
    const { ctx, finish } = await gateRun("ctx");
    expect(ctx).toMatchObject({ jobId: id, type: "test.gate", attempt: 1, maxAttempts: 3 });
    expect(ctx.deadlineAt).toBeInstanceOf(Date);
    expect(ctx.deadlineAt.getTime()).toBeGreaterThanOrEqual(submittedAt + 89_000);
    expect(ctx.deadlineAt.getTime()).toBeLessThanOrEqual(Date.now() + 90_000);
    expect(ctx.metadata).toEqual({ order: "o-1" });
    expect(Object.isFrozen(ctx.metadata)).toBe(true);
    expect(ctx.signal.aborted).toBe(false);
    // A wrapper may spread ctx: every member is an own property, and nothing else is.
    const copy = { ...ctx };
    expect(copy.signal).toBe(ctx.signal);
    expect(copy.deadlineAt.getTime()).toBe(ctx.deadlineAt.getTime());
    expect(copy.metadata).toEqual({ order: "o-1" });
    expect(Object.keys(ctx).sort()).toEqual(
      [
        "attempt",
        "deadlineAt",
        "emit",
        "jobId",
        "log",
        "maxAttempts",
        "metadata",
        "progress",
        "signal",
        "type",
      ].sort(),
    );
    // Its members are made once and are read-only; a handler may add members of its own.
    expect(ctx.signal).toBe(ctx.signal);
    expect(ctx.metadata).toBe(ctx.metadata);
    expect("signal" in ctx && "log" in ctx && "jobId" in ctx).toBe(true);
    expect(() => Object.assign(ctx, { signal: null })).toThrow(TypeError);
    expect(ctx.signal.aborted).toBe(false);
    const extended = Object.assign(ctx, { cache: 1 }) as typeof ctx & { cache: number };
    expect(extended.cache).toBe(1);
    // A plain object to whoever checks; it cannot be frozen (its lazy members could not report).
    expect(Object.getPrototypeOf(ctx)).toBe(Object.prototype);
    expect(ctx.constructor).toBe(Object);
    expect(() => Object.freeze(ctx)).toThrow(TypeError);
    expect({ ...ctx }.signal).toBe(ctx.signal);
    const { progress, log } = ctx;
    progress(40, "destructured");
    log.info("from a destructured logger");
    await waitFor("the progress report", async () => (await status(s, id)).progress?.percent === 40);
    expect((await status(s, id)).progress).toEqual({ percent: 40, message: "destructured" });
    finish("done");
    expect((await terminal(s, id)).status).toBe("succeeded");
  });
});

describe("worker runtime: deadlines enforced by the worker", () => {
  it("one timer aborts each running attempt at its own deadline, the earliest first", async () => {
    // The sweeper is held off: only the worker's own deadline timer can fire these signals.
    const s = await server({ concurrency: 3, sweepIntervalMs: 60_000 });
    await submit(s, { type: "test.gate", input: { key: "late" }, timeoutSeconds: 3 });
    const late = await gateRun("late");
    await submit(s, { type: "test.gate", input: { key: "early" }, timeoutSeconds: 1 });
    const early = await gateRun("early");
    await submit(s, { type: "test.gate", input: { key: "later" }, timeoutSeconds: 60 });
    const later = await gateRun("later");
    await waitFor("the earliest deadline", () => early.signal.aborted, 3000);
    expect(abortReason(early.signal)).toBe("timed_out");
    expect(late.signal.aborted).toBe(false);
    await waitFor("the next deadline", () => late.signal.aborted, 4000);
    expect(abortReason(late.signal)).toBe("timed_out");
    expect(later.signal.aborted).toBe(false);
  });
});

describe("worker runtime: deadline with no live worker (F8 in process)", () => {
  it("an API-only server times the job out; a worker started later does not run it", async () => {
    const api = await server({ concurrency: 0 });
    const submittedAt = Date.now();
    const id = await submit(api, { type: "test.gate", input: { key: "f8" }, timeoutSeconds: 1 });
    const done = await terminal(api, id, (1000 + 200 + 1000) * 3);
    expect(done.status).toBe("timed_out");
    expect(Date.now() - submittedAt).toBeLessThan((1000 + 200 + 1000) * 3);
    const worker = await server({ db: api.dbPath, concurrency: 4 });
    await sleep(700);
    expect(runs.some((r) => r.key === "f8")).toBe(false);
    expect((await status(worker, id)).status).toBe("timed_out");
    expect((await result(worker, id)).status).toBe(504);
  });
});

describe("worker runtime: cancel races completion (F9 in process)", () => {
  it("every trial ends one way: canceled with 409, or succeeded with the cancel refused", async () => {
    const s = await server({ concurrency: 20 });
    const TRIALS = 30;
    const outcomes = await Promise.all(
      Array.from({ length: TRIALS }, async (_, i) => {
        const id = await submit(s, { type: "demo.sleep", input: { ms: 60, result: { trial: i } } });
        await sleep(Math.random() * 250);
        const cancel = await http(`${s.url}/v1/jobs/${id}/cancel`, { method: "POST" });
        const done = await terminal(s, id);
        const r = await result(s, id);
        return { cancel: cancel.status, final: done.status, result: r.status, body: r.body, i };
      }),
    );
    for (const o of outcomes) {
      if (o.cancel === 200) expect(o, JSON.stringify(o)).toMatchObject({ final: "canceled", result: 409 });
      else
        expect(o, JSON.stringify(o)).toMatchObject({
          cancel: 409,
          final: "succeeded",
          result: 200,
          body: { trial: o.i },
        });
    }
  });
});

describe("worker runtime: scheduling", () => {
  it("never exceeds the per-type or the process concurrency limit", async () => {
    const s = await server({ concurrency: 3 });
    overlap.limited.max = 0;
    overlap.all.max = 0;
    const ids = await Promise.all([
      ...Array.from({ length: 8 }, () => submit(s, { type: "test.limited", input: null })),
      ...Array.from({ length: 10 }, () => submit(s, { type: "test.unlimited", input: null })),
    ]);
    for (const id of ids) expect((await terminal(s, id, 15_000)).status).toBe("succeeded");
    expect(overlap.limited.max).toBeGreaterThanOrEqual(1);
    expect(overlap.limited.max).toBeLessThanOrEqual(2);
    expect(overlap.all.max).toBeLessThanOrEqual(3);
    expect(s.tessera.worker.runningCount).toBe(0);
  });

  it("a type's limit holds even when the process has room (only that type queued)", async () => {
    const s = await server({ concurrency: 10 });
    overlap.limited.max = 0;
    const ids = await Promise.all(
      Array.from({ length: 8 }, () => submit(s, { type: "test.limited", input: null })),
    );
    for (const id of ids) expect((await terminal(s, id, 15_000)).status).toBe("succeeded");
    expect(overlap.limited.max).toBe(2);
  });

  it("starts a new job only as a slot frees (process concurrency 2)", async () => {
    const s = await server({ concurrency: 2 });
    const ids = await Promise.all(
      Array.from({ length: 6 }, (_, i) => submit(s, { type: "test.gate", input: { key: `c${i}` } })),
    );
    await waitFor("two gates running", () => runs.length >= 2);
    await sleep(300);
    expect(runs.length).toBe(2);
    const finished = new Set<GateRun>();
    for (let i = 0; i < 6; i++) {
      const open = runs.filter((r) => !finished.has(r));
      expect(open.length).toBeLessThanOrEqual(2);
      expect(s.tessera.worker.runningCount).toBeLessThanOrEqual(2);
      finished.add(open[0]!);
      open[0]!.finish(i);
      if (i + 2 < 6) await waitFor("the next gate", () => runs.length >= i + 3);
    }
    for (const id of ids) expect((await terminal(s, id)).status).toBe("succeeded");
    expect(runs.length).toBe(6);
  });

  it("runs higher priority first (concurrency 1)", async () => {
    const s = await server({ concurrency: 1 });
    order.length = 0;
    const blocker = await submit(s, { type: "test.gate", input: { key: "blocker" } });
    const run = await gateRun("blocker");
    const ids: string[] = [];
    for (const priority of [-5, 0, 10, 3, 100, -100]) {
      ids.push(await submit(s, { type: "test.ordered", input: { n: priority }, priority }));
    }
    run.finish(null);
    for (const id of [blocker, ...ids]) expect((await terminal(s, id)).status).toBe("succeeded");
    expect(order).toEqual([100, 10, 3, 0, -5, -100]);
  });

  it("shows the handler's progress on the status monitor", async () => {
    const s = await server();
    const id = await submit(s, {
      type: "test.gate",
      input: { key: "progress", progress: 40, message: "rendering page 4/10" },
    });
    const run = await gateRun("progress");
    const seen = await waitFor("progress", async () => {
      const job = await status(s, id);
      return job.progress?.percent === 40 ? job : undefined;
    });
    expect(seen).toMatchObject({
      status: "running",
      progress: { percent: 40, message: "rendering page 4/10" },
    });
    run.ctx.progress(75, "rendering page 8/10");
    await waitFor("later progress", async () => (await status(s, id)).progress?.percent === 75);
    run.finish({ pages: 10 });
    const done = await terminal(s, id);
    expect(done.status).toBe("succeeded");
    expect(done.progress?.percent).toBe(100);
  });
});

describe("worker runtime: fencing (F4 in process)", () => {
  it("a handler whose lease was lost is aborted, its writes are fenced, and attempt 2's result is final", async () => {
    const s = await server({ concurrency: 4 });
    const id = await submit(s, { type: "test.gate", input: { key: "fence" } });
    const stale = await gateRun("fence", 1);

    // Backdate: to the sweeper, the lease expired a minute ago. Requeue for now (delay cancels out).
    const moved = await s.tessera.store.sweepExpiredLeases({
      now: Date.now() + 60_000,
      retryDelayMs: -60_000,
      limit: 10,
    });
    expect(moved).toBe(1);

    // The stale handler learns within about one heartbeat (0.5 s); 3x slack.
    await waitFor("the stale handler's abort", () => stale.signal.aborted, 1500 * 2);
    expect(abortReason(stale.signal)).toBe("lease-lost");

    const fresh = await gateRun("fence", 2);
    expect(fresh.signal.aborted).toBe(false);

    // The stale attempt keeps going regardless: its progress and its result must not land.
    stale.ctx.progress(99, "stale progress");
    stale.finish({ from: 1 });
    await sleep(300);
    let job = await status(s, id);
    expect(job.status).toBe("running");
    expect(job.attempt).toBe(2);
    expect(job.progress?.message ?? null).not.toBe("stale progress");

    // Attempt 2 keeps its lease well past the lease length (heartbeats still cover it).
    await sleep(2000 * 1.5);
    expect(fresh.signal.aborted).toBe(false);
    job = await status(s, id);
    expect(job).toMatchObject({ status: "running", attempt: 2 });

    fresh.finish({ from: 2 });
    const done = await terminal(s, id);
    expect(done).toMatchObject({ status: "succeeded", attempt: 2 });
    expect(await result(s, id)).toEqual({ status: 200, body: { from: 2 } });
    expect(runs.filter((r) => r.key === "fence").map((r) => r.attempt)).toEqual([1, 2]);
  });

  it("a lease swept by another node's store: the stale attempt is fenced and attempt 2 wins", async () => {
    const s = await server({ concurrency: 4 });
    const other = new SqliteStore({ path: s.dbPath });
    cleanups.push(() => other.close());
    const id = await submit(s, { type: "test.gate", input: { key: "fence2" } });
    const stale = await gateRun("fence2", 1);

    expect(
      await other.sweepExpiredLeases({ now: Date.now() + 60_000, retryDelayMs: -60_000, limit: 10 }),
    ).toBe(1);
    await waitFor("the stale handler's abort", () => stale.signal.aborted, 3000);
    expect(abortReason(stale.signal)).toBe("lease-lost");
    const fresh = await gateRun("fence2", 2, 3000);

    stale.finish({ from: 1 });
    await sleep(200);
    fresh.finish({ from: 2 });
    const done = await terminal(s, id);
    expect(done).toMatchObject({ status: "succeeded", attempt: 2 });
    expect(await result(s, id)).toEqual({ status: 200, body: { from: 2 } });
  });
});

describe("worker runtime: graceful stop (F7 in process)", () => {
  it("lets a short job finish, aborts and releases the long ones, and another server picks them up at once", async () => {
    const first = await startServer({
      dev: true,
      jobs: JOBS,
      config: { shutdownGraceMs: 700, concurrency: 4 },
    });
    cleanups.push(() => rmSync(first.dir, { recursive: true, force: true }));
    let firstClosed = false;
    cleanups.push(async () => {
      if (!firstClosed) await first.tessera.close();
    });

    const short = await submit(first, { type: "demo.sleep", input: { ms: 300 } });
    const longA = await submit(first, { type: "test.gate", input: { key: "longA" } });
    const longB = await submit(first, { type: "test.gate", input: { key: "longB" } });
    const [a, b] = await Promise.all([gateRun("longA"), gateRun("longB")]);
    await waitFor("the short job running", async () => (await status(first, short)).status === "running");

    const closeStarted = Date.now();
    await first.tessera.close();
    firstClosed = true;
    expect(Date.now() - closeStarted).toBeLessThan(700 + 2000);

    expect(abortReason(a.signal)).toBe("shutdown");
    expect(abortReason(b.signal)).toBe("shutdown");

    // Read the file directly: the short job finished; the long ones are queued, lease released.
    const store = new SqliteStore({ path: first.dbPath });
    const tenantId = await store.ensureTenant({ name: DEV_TENANT, now: Date.now() });
    expect((await store.get({ tenantId, id: short }))?.status).toBe("succeeded");
    for (const id of [longA, longB]) {
      const job = await store.get({ tenantId, id });
      expect(job).toMatchObject({ status: "queued", attempt: 0 });
      expect(job!.runAt).toBeLessThanOrEqual(Date.now());
    }
    await store.close();

    // A second server on the same file starts them at once (no lease to wait out).
    for (const r of [a, b]) runs.splice(runs.indexOf(r), 1);
    const secondStarted = Date.now();
    const second = await server({ db: first.dbPath, concurrency: 4 });
    const [a2, b2] = await Promise.all([gateRun("longA", 1, 3000), gateRun("longB", 1, 3000)]);
    expect(Date.now() - secondStarted).toBeLessThan(1500);
    a2.finish("a");
    b2.finish("b");
    for (const id of [longA, longB])
      expect(await terminal(second, id)).toMatchObject({ status: "succeeded", attempt: 1 });
  });
});

describe("worker runtime: prefetch", () => {
  it("holds up to `prefetch` claimed jobs beyond its slots and starts them as slots free", async () => {
    const s = await server({ concurrency: 1, prefetch: 2 });
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push(await submit(s, { type: "test.gate", input: { key: `p${i}` } }));
    const first = await gateRun("p0");
    // One runs, two wait here leased (shown running), the fourth stays queued for other workers.
    const states = async () => Promise.all(ids.map(async (id) => (await status(s, id)).status));
    await waitFor("two jobs claimed ahead", async () => {
      const now = await states();
      return now.filter((x) => x === "running").length === 3 ? now : undefined;
    });
    expect(await states()).toEqual(["running", "running", "running", "queued"]);
    expect(runs.length).toBe(1);
    first.finish("done");
    (await gateRun("p1")).finish("done");
    (await gateRun("p2")).finish("done");
    (await gateRun("p3")).finish("done");
    for (const id of ids) expect((await terminal(s, id)).status).toBe("succeeded");
  });

  it("a job canceled while it waits here never starts", async () => {
    const s = await server({ concurrency: 1, prefetch: 1 });
    await submit(s, { type: "test.gate", input: { key: "busy" } });
    const busy = await gateRun("busy");
    const waiting = await submit(s, { type: "test.gate", input: { key: "never" } });
    await waitFor(
      "the second job claimed ahead",
      async () => (await status(s, waiting)).status === "running",
    );
    const cancel = await http(`${s.url}/v1/jobs/${waiting}/cancel`, { method: "POST" });
    expect(cancel.status).toBe(200);
    busy.finish("done");
    await sleep(300);
    expect(runs.some((r) => r.key === "never")).toBe(false);
    expect((await status(s, waiting)).status).toBe("canceled");
  });

  it("graceful stop hands jobs claimed ahead back, attempt unchanged, for the next worker", async () => {
    const first = await startServer({
      dev: true,
      jobs: JOBS,
      config: { concurrency: 1, prefetch: 2, shutdownGraceMs: 200 },
    });
    cleanups.push(() => rmSync(first.dir, { recursive: true, force: true }));
    await submit(first, { type: "test.gate", input: { key: "held0" } });
    const held = [
      await submit(first, { type: "test.gate", input: { key: "held1" } }),
      await submit(first, { type: "test.gate", input: { key: "held2" } }),
    ];
    await gateRun("held0");
    await waitFor("two jobs claimed ahead", async () => {
      const now = await Promise.all(held.map(async (id) => (await status(first, id)).status));
      return now.every((x) => x === "running");
    });
    await first.tessera.close();
    const store = new SqliteStore({ path: first.dbPath });
    const tenantId = await store.ensureTenant({ name: DEV_TENANT, now: Date.now() });
    for (const id of held)
      expect(await store.get({ tenantId, id })).toMatchObject({ status: "queued", attempt: 0 });
    await store.close();
    expect(runs.some((r) => r.key === "held1" || r.key === "held2")).toBe(false);
  });
});

describe("worker runtime: short jobs", () => {
  it("a queue of instant jobs drains without waiting for the fallback poll", async () => {
    // Handlers that end at once free their slots while the claim loop is returning: each such
    // wake-up must start another claim, not wait a minute for the fallback poll.
    const { store, tenantId, db } = await tempStore();
    await queueDirectly(
      store,
      tenantId,
      "test.ordered",
      Array.from({ length: 300 }, (_, n) => ({ n })),
    );
    await store.close();
    order.length = 0;
    await server({ db, concurrency: 2, prefetch: 4, pollIntervalMs: 60_000 });
    await waitFor("all 300 jobs to run", () => order.length === 300, 10_000);
    expect(new Set(order).size).toBe(300);
  });
});

describe("worker runtime: hostile handlers", () => {
  it("a thenable whose `then` throws fails its job; the slot is freed and the next job runs", async () => {
    const s = await server({ concurrency: 1, prefetch: 1 });
    const bad = await submit(s, { type: "test.bad-thenable", input: {} });
    const next = await submit(s, { type: "test.ordered", input: { n: 1 } });
    const after = await submit(s, { type: "test.ordered", input: { n: 2 } });
    const failed = await terminal(s, bad);
    expect(failed.status).toBe("failed");
    expect(failed.error?.detail).toMatch(/then exploded/);
    expect((await terminal(s, next)).status).toBe("succeeded");
    expect((await terminal(s, after)).status).toBe("succeeded");
  });
});

describe("worker runtime: a handler written as a method", () => {
  it("is called on its definition, so `this` works as in runJobOnce", async () => {
    const s = await server();
    const id = await submit(s, { type: "test.this", input: {} });
    expect((await terminal(s, id)).status).toBe("succeeded");
    expect(await result(s, id)).toEqual({ status: 200, body: { type: "test.this" } });
  });
});

describe("worker runtime: a type at its own limit", () => {
  it("due jobs waiting for their type's slot do not make the worker look for work in a loop", async () => {
    const { store, tenantId } = await tempStore();
    cleanups.push(() => store.close());
    let lookups = 0; // claims and next-due queries
    const counted = withOverrides(store, {
      claim: (params) => {
        lookups++;
        return store.claim(params);
      },
      nextRunAt: (params) => {
        lookups++;
        return store.nextRunAt(params);
      },
    });
    const done: number[] = [];
    const one = defineJob({
      type: "test.one-at-a-time",
      input: {},
      concurrency: 1,
      run: async () => {
        await sleep(200);
        done.push(Date.now());
        return null;
      },
    }) as JobDefinition;
    await queueDirectly(store, tenantId, one.type, [{}, {}, {}]);
    startWorker(counted, [one], { concurrency: 4 });
    await waitFor("the three jobs, one at a time", () => done.length === 3, 5000);
    // A claim per job and a few more; a look at every turn while the type is full is hundreds.
    expect(lookups).toBeLessThan(20);
  });
});

describe("worker runtime: leases of jobs claimed ahead", () => {
  it("a job that started while the heartbeat carrying its lease was out is aborted when that heartbeat reports it lost", async () => {
    const { store, tenantId } = await tempStore();
    cleanups.push(() => store.close());
    const signals = new Map<string, AbortSignal>();
    const releases = new Map<string, () => void>();
    const held = defineJob({
      type: "test.held",
      input: {},
      run: (_input: unknown, ctx) => {
        signals.set(ctx.jobId, ctx.signal);
        return new Promise<null>((resolve) => releases.set(ctx.jobId, () => resolve(null)));
      },
    }) as JobDefinition;
    await queueDirectly(store, tenantId, held.type, [{}, {}]);
    let armed = false;
    const faked = withOverrides(store, {
      // Once armed: the answer comes back only after the job that waited in the buffer when the
      // heartbeat was sent has started, and says that job's lease is lost.
      heartbeat: async (params) => {
        if (!armed) return store.heartbeat(params);
        armed = false;
        const waiting = params.leases.find((l) => !signals.has(l.id))!.id;
        for (const release of releases.values()) release();
        await waitFor("the waiting job to start", () => signals.has(waiting), 2000);
        return [waiting];
      },
    });
    startWorker(faked, [held], { prefetch: 1, heartbeatMs: 100 });
    await waitFor("one running, one waiting in the buffer", () => signals.size === 1, 2000);
    armed = true;
    await waitFor("both started", () => signals.size === 2, 3000);
    const [, second] = [...signals.values()];
    await waitFor("the second job's signal", () => second!.aborted, 2000);
    expect(abortReason(second!)).toBe("lease-lost");
  });
});

describe("worker runtime: handoff to an idle worker", () => {
  /** The 202's representation: what the submit committed. */
  async function accepted(
    s: TestServer,
    body: Record<string, unknown>,
    headers: Record<string, string> = {},
  ) {
    const response = await http(`${s.url}/v1/jobs`, { json: body, headers });
    expect(response.status, await response.clone().text()).toBe(202);
    return (await response.json()) as Representation;
  }
  /** Once started, the worker's first claim finds the queue empty: it is idle. */
  const settled = () => sleep(100);

  it("a job submitted to an idle worker is committed running (attempt 1) and starts without a claim", async () => {
    const s = await server({ concurrency: 2 });
    await settled();
    const job = await accepted(s, { type: "test.gate", input: { key: "h1" } });
    expect(job).toMatchObject({ status: "running", attempt: 1 });
    (await gateRun("h1")).finish({ ok: true });
    expect(await terminal(s, job.id)).toMatchObject({ status: "succeeded", attempt: 1 });
    expect((await result(s, job.id)).body).toEqual({ ok: true });
  });

  it("queues what a free slot must not take at once: full slots, a future runAt", async () => {
    const s = await server({ concurrency: 1 });
    await settled();
    expect(await accepted(s, { type: "test.gate", input: { key: "busy" } })).toMatchObject({
      status: "running",
    });
    // No free slot.
    const queued = await accepted(s, { type: "test.gate", input: { key: "next" } });
    expect(queued).toMatchObject({ status: "queued", attempt: 0 });
    (await gateRun("busy")).finish(null);
    (await gateRun("next")).finish(null);
    await terminal(s, queued.id);
    await settled();
    // Idle again, but due later: through the queue.
    const later = await accepted(s, {
      type: "test.gate",
      input: { key: "later" },
      runAt: new Date(Date.now() + 60_000).toISOString(),
    });
    expect(later.status).toBe("queued");
  });

  it("a type with its own limit is handed off while the limit has room; at its limit, it is queued", async () => {
    const s = await server({ concurrency: 4 });
    await settled();
    const first = await accepted(s, { type: "test.limited", input: {} });
    const second = await accepted(s, { type: "test.limited", input: {} });
    expect([first.status, second.status]).toEqual(["running", "running"]);
    // Two run (its limit), two slots are free: the third waits in the queue.
    const third = await accepted(s, { type: "test.limited", input: {} });
    expect(third).toMatchObject({ status: "queued", attempt: 0 });
    for (const job of [first, second, third]) expect((await terminal(s, job.id)).status).toBe("succeeded");
  });

  it("a job handed off while the worker stops goes back to the queue, attempt unchanged", async () => {
    const s = await server({ concurrency: 2 });
    await settled();
    const { store, worker } = s.tessera;
    const now = Date.now();
    const tenantId = await store.ensureTenant({ name: DEV_TENANT, now });
    const job = {
      id: randomUUID(),
      tenantId,
      type: "test.gate",
      input: { key: "stopping" },
      priority: 0,
      runAt: now,
      deadlineAt: now + 60_000,
      maxAttempts: 3,
      metadata: {},
      callback: null,
    };
    // The insert commits after the stop began: the lease it was stored under is handed back.
    const submitted = worker.submit({ job, idempotency: null, now });
    const stopped = worker.stop(100);
    expect(await submitted).toMatchObject({ kind: "created", job: { status: "running", attempt: 1 } });
    await stopped;
    expect(await store.get({ tenantId, id: job.id })).toMatchObject({ status: "queued", attempt: 0 });
    expect(runs.some((r) => r.key === "stopping")).toBe(false);
  });

  it("a replayed Idempotency-Key gives its slot back; the handed-off lease is heartbeated", async () => {
    const s = await server({ concurrency: 2, leaseMs: 400, heartbeatMs: 100 });
    await settled();
    const key = { "idempotency-key": "handoff-1" };
    const first = await accepted(s, { type: "test.gate", input: { key: "k1" } }, key);
    expect(first.status).toBe("running");
    const replay = await http(`${s.url}/v1/jobs`, {
      json: { type: "test.gate", input: { key: "k1" } },
      headers: key,
    });
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    // Both slots are still there for new work: the second is handed off, the third queued.
    expect((await accepted(s, { type: "test.gate", input: { key: "k2" } })).status).toBe("running");
    expect((await accepted(s, { type: "test.gate", input: { key: "k3" } })).status).toBe("queued");
    // Held well past its 400 ms lease: the heartbeat keeps it, so it never runs twice.
    const run = await gateRun("k1");
    await sleep(1000);
    expect(runs.filter((r) => r.key === "k1")).toHaveLength(1);
    run.finish("once");
    expect(await terminal(s, first.id)).toMatchObject({ status: "succeeded", attempt: 1 });
  });
});

describe("worker runtime: completions", () => {
  const quick = defineJob({ type: "test.quick", input: {}, run: () => ({ ok: true }) }) as JobDefinition;

  it("the succeeded attempts of one turn are written with one store call", async () => {
    const { store, tenantId } = await tempStore();
    cleanups.push(() => store.close());
    const calls: number[] = [];
    const counted = withOverrides(store, {
      completeMany: (items) => {
        calls.push(items.length);
        return store.completeMany(items);
      },
      complete: () => Promise.reject(new Error("the runtime completes through completeMany")),
    });
    await queueDirectly(
      store,
      tenantId,
      quick.type,
      Array.from({ length: 20 }, () => ({})),
    );
    startWorker(counted, [quick], { concurrency: 20 });
    await waitFor("20 completions", () => calls.reduce((a, b) => a + b, 0) === 20, 5000);
    // All 20 were claimed together and ended in one turn: far fewer writes than jobs.
    expect(calls.length).toBeLessThan(5);
    const jobs = await store.list({ tenantId, limit: 50 });
    expect(jobs.map((j) => j.status)).toEqual(jobs.map(() => "succeeded"));
  });

  it("a batch whose write fails is written job by job: one job's trouble costs no other its outcome", async () => {
    const { store, tenantId } = await tempStore();
    cleanups.push(() => store.close());
    let batches = 0;
    const alone: string[] = [];
    const flaky = withOverrides(store, {
      completeMany: () => {
        batches++;
        return Promise.reject(new Error("one result could not be stored"));
      },
      complete: (params) => {
        alone.push(params.lease.id);
        return store.complete(params);
      },
    });
    await queueDirectly(store, tenantId, quick.type, [{}, {}, {}]);
    const worker = startWorker(flaky, [quick], { concurrency: 3 });
    await waitFor("three completions alone", () => alone.length === 3, 5000);
    await worker.stop(1000); // resolves once every outcome is recorded
    expect(batches).toBeGreaterThan(0);
    const jobs = await store.list({ tenantId, limit: 10 });
    expect(jobs.map((j) => j.status)).toEqual(["succeeded", "succeeded", "succeeded"]);
  });
});
