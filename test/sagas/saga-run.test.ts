/**
 * Replay against the journal, on a real SQLite store: an attempt after a crash returns the
 * recorded steps' results without running them, a replay that reaches another step than the
 * journal recorded stops, a stale attempt can record nothing, and a compensation interrupted
 * by a crash goes on where it stopped.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { JobAbortedError, JobError, JobSuspended } from "../../src/jobs/errors.js";
import type { JobContext } from "../../src/jobs/define.js";
import { SagaRun, type SagaContext } from "../../src/sagas/saga-run.js";
import { SqliteStore } from "../../src/store/sqlite/store.js";
import type { ClaimedJob, JobRecord } from "../../src/store/store.js";
import { LEASE_MS, T0, TENANT, claimOne, submitJob } from "../store/suite/context.js";

let dir: string;
let store: SqliteStore;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "tessera-saga-"));
  store = new SqliteStore({ path: join(dir, "tessera.db") });
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

function ctxFor(job: ClaimedJob): JobContext {
  return {
    jobId: job.id,
    type: job.type,
    attempt: job.attempt,
    maxAttempts: job.maxAttempts,
    signal: new AbortController().signal,
    deadlineAt: new Date(job.deadlineAt),
    metadata: job.metadata,
    progress: () => undefined,
    emit: () => undefined,
    log: { info: () => undefined, warn: () => undefined, error: () => undefined },
  };
}

/** A saga run for the job's current attempt, over what its journal holds. */
async function runFor(job: ClaimedJob, now: () => number = Date.now): Promise<SagaRun> {
  const journal = await store.listSteps({ tenantId: TENANT, jobId: job.id });
  return new SagaRun(store, ctxFor(job), job, journal, undefined, now);
}

/** A compensation job's replay of `saga` (claimed now), over what the saga's journal holds. */
async function compensationReplay(saga: JobRecord): Promise<{ replay: SagaRun; compensation: ClaimedJob }> {
  const submitted = await submitJob(store, { type: "compensate" });
  const compensation = await claimOne(store, { types: [submitted.type] });
  const journal = await store.listSteps({ tenantId: TENANT, jobId: saga.id });
  const replay = new SagaRun(store, ctxFor(compensation), compensation, journal, undefined, Date.now, {
    saga,
    replayOnly: true,
  });
  return { replay, compensation };
}

/** Lose the attempt's lease (a crash) and claim the job again: the next attempt. */
async function crashAndReclaim(job: ClaimedJob, at: number): Promise<ClaimedJob> {
  await store.sweepExpiredLeases({ now: at + LEASE_MS + 1, retryDelayMs: 0, limit: 10 });
  const next = await claimOne(store, { now: at + LEASE_MS + 2, types: [job.type], leaseMs: LEASE_MS });
  expect(next.id).toBe(job.id);
  expect(next.attempt).toBe(job.attempt + 1);
  return next;
}

describe("saga replay", () => {
  it("a replay returns recorded results without running their steps, and runs the rest", async () => {
    const submitted = await submitJob(store, { maxAttempts: 5 });
    const first = await claimOne(store, { types: [submitted.type] });
    const ran: string[] = [];
    const one = await runFor(first);
    expect(await one.step("a", () => (ran.push("a"), { n: 1 }))).toEqual({ n: 1 });
    await one.settle(); // a step's outcome is recorded with the next write, or here

    const second = await crashAndReclaim(first, T0);
    const replay = await runFor(second);
    expect(await replay.step("a", () => (ran.push("a again"), { n: 2 }))).toEqual({ n: 1 });
    expect(await replay.step("b", () => (ran.push("b"), "B"))).toBe("B");
    await replay.settle();
    expect(ran).toEqual(["a", "b"]);
    const steps = await store.listSteps({ tenantId: TENANT, jobId: first.id });
    expect(steps.map((s) => [s.name, s.status, s.attempts])).toEqual([
      ["a", "succeeded", 1],
      ["b", "succeeded", 1],
    ]);
  });

  it("a step interrupted by a crash runs again on the next attempt, its runs counted", async () => {
    const submitted = await submitJob(store, { maxAttempts: 5 });
    const first = await claimOne(store, { types: [submitted.type] });
    const hanging = (await runFor(first)).step("a", () => new Promise<never>(() => undefined));
    void hanging;
    await new Promise((resolve) => setTimeout(resolve, 20)); // its start is recorded
    const second = await crashAndReclaim(first, T0);
    const rerun = await runFor(second);
    expect(await rerun.step("a", () => "done")).toBe("done");
    await rerun.settle();
    const [step] = await store.listSteps({ tenantId: TENANT, jobId: first.id });
    expect(step).toMatchObject({ name: "a", status: "succeeded", attempts: 2, result: "done" });
  });

  it("a replay that reaches another step than the journal recorded stops as nondeterministic", async () => {
    const submitted = await submitJob(store, { maxAttempts: 5 });
    const first = await claimOne(store, { types: [submitted.type] });
    const one = await runFor(first);
    await one.step("reserve", () => 1);
    await one.settle();
    const second = await crashAndReclaim(first, T0);
    const replay = await runFor(second);
    let ran = false;
    const error = await replay.step("charge", () => (ran = true)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JobError);
    expect((error as JobError).slug).toBe("saga-nondeterministic");
    expect((error as JobError).message).toBe('step 0 is "charge" now, but the journal recorded "reserve"');
    expect(ran).toBe(false);
  });

  it("an attempt that lost its lease records nothing more and stops", async () => {
    const submitted = await submitJob(store, { maxAttempts: 5 });
    const first = await claimOne(store, { types: [submitted.type] });
    const stale = await runFor(first);
    await crashAndReclaim(first, T0);
    let ran = false;
    const error = await stale.step("a", () => (ran = true)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JobAbortedError);
    expect((error as JobAbortedError).reason).toBe("lease-lost");
    expect(ran).toBe(false); // its start could not be recorded: the step never ran
    expect(await store.listSteps({ tenantId: TENANT, jobId: first.id })).toEqual([]);
  });

  it("a compensation interrupted by a crash goes on where it stopped; none runs twice", async () => {
    const submitted = await submitJob(store, { maxAttempts: 5 });
    const first = await claimOne(store, { types: [submitted.type] });
    const undone: string[] = [];
    const saga = async (run: SagaRun, interrupt: boolean) => {
      try {
        await run.step("a", () => "A", {
          compensate: (_r, step) => void undone.push(`a ${step.idempotencyKey}`),
        });
        await run.step("b", () => "B", {
          compensate: async () => {
            undone.push("b");
            if (interrupt) await new Promise<never>(() => undefined); // the worker dies here
          },
        });
        await run.step("c", () => {
          throw new JobError(422, "refused");
        });
      } catch (thrown) {
        return run.fail(thrown);
      }
    };
    const stopped = saga(await runFor(first), true);
    void stopped;
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(undone).toEqual(["b"]);

    const second = await crashAndReclaim(first, T0);
    const error = await saga(await runFor(second), false).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JobError);
    expect((error as JobError).slug).toBe("saga-step-failed");
    expect((error as JobError).message).toBe('step "c" failed: c: refused; compensated: b, a');
    // b's compensation was cut off, so it runs again (at least once); a's runs once.
    expect(undone).toEqual(["b", "b", `a ${first.id}.0.undo`]);
    const steps = await store.listSteps({ tenantId: TENANT, jobId: first.id });
    expect(steps.map((s) => [s.name, s.status])).toEqual([
      ["a", "compensated"],
      ["b", "compensated"],
      ["c", "failed"],
    ]);
    // A further replay compensates nothing again.
    const third = await crashAndReclaim(second, T0 + LEASE_MS + 2);
    await saga(await runFor(third), false).catch(() => undefined);
    expect(undone).toHaveLength(3);
  });

  it("a compensation that fails for good ends the saga as compensation-failed, and stays so", async () => {
    const submitted = await submitJob(store, { maxAttempts: 5 });
    const job = await claimOne(store, { types: [submitted.type] });
    const run = await runFor(job);
    let tries = 0;
    const error = await (async () => {
      try {
        await run.step("a", () => "A", {
          compensate: () => {
            tries++;
            throw new Error("the bank is down");
          },
          maxAttempts: 2,
          retryDelayMs: 1,
        });
        await run.step("b", () => {
          throw new JobError(422, "no");
        });
      } catch (thrown) {
        return run.fail(thrown);
      }
    })().catch((e: unknown) => e);
    expect(tries).toBe(2);
    expect((error as JobError).slug).toBe("saga-compensation-failed");
    expect((error as JobError).message).toBe(
      'step "b" failed: b: no; then the compensation of "a" failed: compensation of "a": the bank is down',
    );
    const [a] = await store.listSteps({ tenantId: TENANT, jobId: job.id });
    expect(a).toMatchObject({
      status: "compensation_failed",
      compensationError: { detail: expect.stringContaining("bank") },
    });
  });

  it("a sleep suspends until its end, fixed when it began: a replay sleeps only what is left", async () => {
    const submitted = await submitJob(store, { maxAttempts: 5 });
    const first = await claimOne(store, { types: [submitted.type] });
    const began = Date.now();
    const suspended = await (await runFor(first)).sleep(60_000).catch((e: unknown) => e);
    expect(suspended).toBeInstanceOf(JobSuspended);
    const until = (suspended as JobSuspended).runAt;
    expect(until).toBeGreaterThanOrEqual(began + 60_000);

    // Woken early (a replay before its time): suspended again until the same moment.
    const second = await crashAndReclaim(first, T0);
    const again = await (await runFor(second)).sleep(60_000).catch((e: unknown) => e);
    expect((again as JobSuspended).runAt).toBe(until);
    const [nap] = await store.listSteps({ tenantId: TENANT, jobId: first.id });
    expect(nap).toMatchObject({ name: "sleep-0", status: "running", result: { until } });

    // A sleep already over goes on at once, and is recorded done.
    const third = await crashAndReclaim(second, T0 + LEASE_MS + 2);
    const run = await runFor(third, () => until + 1);
    await run.sleep(60_000);
    expect(await run.step("after", () => "went on")).toBe("went on");
    await run.settle();
    const steps = await store.listSteps({ tenantId: TENANT, jobId: first.id });
    expect(steps.map((s) => [s.name, s.status])).toEqual([
      ["sleep-0", "succeeded"],
      ["after", "succeeded"],
    ]);
  });

  it("a compensation job's replay runs nothing new and undoes what was done, newest first, in the saga's journal", async () => {
    const submitted = await submitJob(store, { maxAttempts: 5 });
    const saga = await claimOne(store, { types: [submitted.type] });
    const did: string[] = [];
    const code = async (run: SagaRun) => {
      const step = (name: string) =>
        run.step(name, (s) => (did.push(`${name} ${s.idempotencyKey}`), name), {
          compensate: (result, s) => void did.push(`undo ${String(result)} ${s.idempotencyKey}`),
        });
      await step("a");
      await step("b");
      await run.sleep(60_000);
      await step("c");
    };
    const first = await runFor(saga);
    await expect(code(first)).rejects.toBeInstanceOf(JobSuspended); // asleep after a and b
    // Canceled while asleep: its own attempt can record nothing more.
    await store.cancel({ tenantId: TENANT, id: saga.id, now: Date.now() });

    const { replay, compensation } = await compensationReplay(submitted);
    const undone = await code(replay).then(
      () => replay.undo(undefined, "canceled"),
      (thrown: unknown) => replay.undo(thrown, "canceled"),
    );
    expect(undone).toEqual(["b", "a"]);
    // Nothing ran again and c never ran; the undo keys are the saga's own.
    expect(did).toEqual([
      `a ${saga.id}.0`,
      `b ${saga.id}.1`,
      `undo b ${saga.id}.1.undo`,
      `undo a ${saga.id}.0.undo`,
    ]);
    const steps = await store.listSteps({ tenantId: TENANT, jobId: saga.id });
    expect(steps.map((s) => [s.name, s.status])).toEqual([
      ["a", "compensated"],
      ["b", "compensated"],
      ["sleep-2", "running"],
    ]);
    expect(await store.listSteps({ tenantId: TENANT, jobId: compensation.id })).toEqual([]);
  });

  it("a compensation job retries a compensation that failed for good before", async () => {
    const submitted = await submitJob(store, { maxAttempts: 5 });
    const job = await claimOne(store, { types: [submitted.type] });
    let bankUp = false;
    const code = async (run: SagaRun) => {
      await run.step("a", () => "A", {
        compensate: () => {
          if (!bankUp) throw new Error("the bank is down");
        },
        maxAttempts: 1,
      });
      await run.step("b", () => {
        throw new JobError(422, "no");
      });
    };
    const first = await runFor(job);
    const failed = await code(first).catch((thrown: unknown) => first.fail(thrown).catch((e: unknown) => e));
    expect((failed as JobError).slug).toBe("saga-compensation-failed");

    bankUp = true; // the operator fixed the bank, and retries the compensation
    const { replay } = await compensationReplay(submitted);
    const undone = await code(replay).catch((thrown: unknown) => replay.undo(thrown, "failed"));
    expect(undone).toEqual(["a"]);
    const [a] = await store.listSteps({ tenantId: TENANT, jobId: job.id });
    expect(a).toMatchObject({ status: "compensated", compensationError: null });
  });

  it("a run longer than the step's timeoutSeconds is stopped by its signal and run again; the last one fails 504", async () => {
    const submitted = await submitJob(store, { maxAttempts: 5 });
    const job = await claimOne(store, { types: [submitted.type] });
    const run = await runFor(job);
    const stopped: unknown[] = [];
    const slowThenFast = (s: { attempt: number; signal: AbortSignal }) =>
      s.attempt === 1
        ? new Promise((_, reject) =>
            s.signal.addEventListener(
              "abort",
              () => (stopped.push(s.signal.reason), reject(s.signal.reason)),
            ),
          )
        : "fast";
    expect(await run.step("a", slowThenFast, { timeoutSeconds: 0.05, retryDelayMs: 1 })).toBe("fast");
    expect(stopped).toHaveLength(1);
    expect((stopped[0] as Error).message).toBe("timed out after 0.05 s");

    // A function that ignores its signal is not waited for past its time either.
    const never = () => new Promise(() => undefined);
    await expect(run.step("b", never, { timeoutSeconds: 0.05, maxAttempts: 1 })).rejects.toThrow(
      "b: timed out after 0.05 s",
    );
    const steps = await store.listSteps({ tenantId: TENANT, jobId: job.id });
    expect(steps.map((s) => [s.name, s.status, s.attempts])).toEqual([
      ["a", "succeeded", 2],
      ["b", "failed", 1],
    ]);
    expect(steps[1]!.error).toMatchObject({ status: 504, detail: "b: timed out after 0.05 s" });
  });

  it("progress is the share of expected steps done, until the saga reports its own", async () => {
    const submitted = await submitJob(store, { maxAttempts: 5 });
    const job = await claimOne(store, { types: [submitted.type] });
    const reported: [number, string | undefined][] = [];
    const ctx = { ...ctxFor(job), progress: (p: number, m?: string) => void reported.push([p, m]) };
    const saga = new SagaRun(store, ctx, job, [], 4).context();
    await saga.step("a", () => 1);
    await saga.step("b", () => 2);
    saga.progress(70, "rendering page 7 of 10");
    await saga.step("c", () => 3);
    expect(reported).toEqual([
      [25, 'step "a" done'],
      [50, 'step "b" done'],
      [70, "rendering page 7 of 10"],
    ]);
  });

  it("a compensation job's replay sees the saga's metadata; a failed undo is not followed by a second round", async () => {
    const submitted = await submitJob(store, { maxAttempts: 5, metadata: { tier: "gold" } });
    const saga = await claimOne(store, { types: [submitted.type] });
    const did: string[] = [];
    const code = async (run: SagaContext) => {
      const step = (name: string, fails = false) =>
        run.step(name, () => name, {
          compensate: () => {
            did.push(`undo ${name}`);
            if (fails) throw new Error(`${name} cannot be undone`);
          },
          maxAttempts: 1,
        });
      await step("a");
      if (run.metadata.tier === "gold") await step("upgrade", true);
      await step("c");
    };
    const first = await runFor(saga);
    await code(first.context());
    await first.settle(); // all three done; canceled before the saga's own end was recorded
    await store.cancel({ tenantId: TENANT, id: saga.id, now: Date.now() });

    const { replay } = await compensationReplay(submitted);
    await code(replay.context()); // ran to its end: every step recorded
    const error = await replay.undo(undefined, "the saga was canceled").catch((e: unknown) => e);
    expect((error as JobError).slug).toBe("saga-compensation-failed");
    expect(did).toEqual(["undo c", "undo upgrade"]); // once each, and a not reached
  });

  it("a journal the store cannot write fails the attempt without compensating anything", async () => {
    const submitted = await submitJob(store, { maxAttempts: 5 });
    const job = await claimOne(store, { types: [submitted.type] });
    const undone: string[] = [];
    const failing = Object.create(store) as SqliteStore;
    let down = false;
    failing.recordStep = (params) =>
      down ? Promise.reject(new Error("disk I/O error")) : store.recordStep(params);
    const run = new SagaRun(failing, ctxFor(job), job, []);
    const error = await (async () => {
      try {
        await run.step("a", () => "A", { compensate: () => void undone.push("a") });
        down = true;
        await run.step("b", () => "B");
      } catch (thrown) {
        return run.fail(thrown);
      }
    })().catch((e: unknown) => e);
    expect((error as Error).message).toBe("the saga's journal could not be written: disk I/O error");
    expect(error).not.toBeInstanceOf(JobError); // an attempt's failure, retried as a job's
    expect(undone).toEqual([]);
  });

  it("a replay that reaches another kind of entry under a recorded name stops as nondeterministic", async () => {
    const submitted = await submitJob(store, { maxAttempts: 5 });
    const first = await claimOne(store, { types: [submitted.type] });
    const suspended = await (await runFor(first)).sleep(60_000, "wait").catch((e: unknown) => e);
    expect(suspended).toBeInstanceOf(JobSuspended);
    const second = await crashAndReclaim(first, T0);
    const ran: string[] = [];
    const error = await (
      await runFor(second)
    )
      .step("wait", () => void ran.push("wait"))
      .catch((e: unknown) => e);
    expect((error as JobError).slug).toBe("saga-nondeterministic");
    expect((error as JobError).message).toBe(
      'step 0 ("wait") is a saga.step now, but the journal recorded a saga.sleep',
    );
    expect(ran).toEqual([]);
  });
});
