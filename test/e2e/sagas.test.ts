/**
 * Sagas over real HTTP, on both drivers: steps recorded in order and shown on the status
 * monitor, a step retried within its attempt, and a step that fails for good undoing the steps
 * before it, newest first, before the saga fails with a problem that says what happened.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { JobError } from "../../src/jobs/errors.js";
import { defineJob, type JobDefinition } from "../../src/jobs/define.js";
import { defineSaga } from "../../src/sagas/define-saga.js";
import { dropSchema, freshSchema, PG_URL } from "../helpers/postgres.js";
import { bearer, http, startServer, type TestServer } from "../helpers/server.js";

interface Step {
  name: string;
  status: string;
  attempts: number;
  startedAt: string;
  finishedAt: string | null;
  error: { type: string; detail: string } | null;
  compensatedAt: string | null;
}
interface SagaJob {
  id: string;
  status: string;
  progress: { percent: number | null; message: string | null } | null;
  error: { type: string; title: string; detail: string } | null;
  steps?: Step[];
  links: { self: string; result?: string };
}

/** What the steps and compensations did, in the order they did it, per saga run (its input.run). */
const calls = new Map<string, string[]>();
const log = (run: string, what: string) => calls.set(run, [...(calls.get(run) ?? []), what]);

const order = defineSaga({
  type: "test.order",
  input: {
    type: "object",
    properties: { run: { type: "string" }, failAt: { type: "string" }, flaky: { type: "integer" } },
    required: ["run"],
  },
  expectedSteps: 3,
  async run(input: { run: string; failAt?: string; flaky?: number }, saga) {
    const step = (name: string) =>
      saga.step(
        name,
        (s) => {
          log(input.run, `${name}#${s.attempt}`);
          if (name === "charge" && input.flaky !== undefined && s.attempt <= input.flaky)
            throw new Error("the payment service is busy");
          if (input.failAt === name) throw new JobError(422, `${name} refused`);
          return { [name]: s.idempotencyKey };
        },
        { compensate: () => log(input.run, `undo ${name}`), retryDelayMs: 10 },
      );
    const reserved = await step("reserve");
    const charged = await step("charge");
    const shipped = await step("ship");
    return { ...reserved, ...charged, ...shipped };
  },
});

const napping = defineSaga({
  type: "test.napping",
  input: { type: "object", properties: { ms: { type: "integer" } }, required: ["ms"] },
  async run(input: { ms: number }, saga) {
    const before = await saga.step("before", () => Date.now());
    await saga.sleep(input.ms);
    const after = await saga.step("after", () => Date.now());
    return { slept: after - before };
  },
});

const approval = defineSaga({
  type: "test.approval",
  input: { type: "object", properties: { napMs: { type: "integer" }, timeoutSeconds: { type: "integer" } } },
  async run(input: { napMs?: number; timeoutSeconds?: number }, saga) {
    await saga.step("ask", () => "asked");
    if (input.napMs) await saga.sleep(input.napMs);
    const decision = await saga.waitForEvent<{ by: string }>("approved", {
      ...(input.timeoutSeconds ? { timeoutSeconds: input.timeoutSeconds } : {}),
    });
    return saga.step("finish", () => ({ approvedBy: decision.by }));
  },
});

/** Two steps done, then held in a step, a sleep or a wait for an event: to be canceled there. */
const cancelable = defineSaga({
  type: "test.cancelable",
  input: {
    type: "object",
    properties: { run: { type: "string" }, waitIn: { enum: ["step", "sleep", "event"] } },
    required: ["run", "waitIn"],
  },
  async run(input: { run: string; waitIn: "step" | "sleep" | "event" }, saga) {
    const step = (name: string) =>
      saga.step(name, () => (log(input.run, name), name), {
        compensate: (_result, s) => log(input.run, `undo ${name} ${s.idempotencyKey}`),
      });
    await step("reserve");
    await step("charge");
    if (input.waitIn === "sleep") await saga.sleep(600_000);
    else if (input.waitIn === "event") await saga.waitForEvent("go");
    else
      await saga.step(
        "ship",
        (s) =>
          new Promise((_, reject) => s.signal.addEventListener("abort", () => reject(new Error("stopped")))),
      );
    await step("after");
  },
});

/** Its one compensation fails while the bank is down. */
let bankDown = true;
const fragile = defineSaga({
  type: "test.fragile",
  input: { type: "object", properties: { run: { type: "string" } }, required: ["run"] },
  async run(input: { run: string }, saga) {
    await saga.step("hold", () => log(input.run, "hold"), {
      compensate: () => {
        if (bankDown) throw new Error("the bank is down");
        log(input.run, "undo hold");
      },
      maxAttempts: 1,
    });
    await saga.step("charge", () => {
      throw new JobError(402, "card declined");
    });
  },
});

const plain = defineJob({ type: "test.plain", input: {}, run: () => Date.now() });

const duplicate = defineSaga({
  type: "test.duplicate",
  input: {},
  async run(_input: unknown, saga) {
    await saga.step("a", () => 1);
    await saga.step("a", () => 2);
  },
});

for (const driver of ["sqlite", "postgres"] as const) {
  describe(`sagas over HTTP (${driver})`, () => {
    let server: TestServer;
    let key: string;
    const schema = freshSchema("saga");

    beforeAll(async () => {
      server = await startServer({
        jobs: [order, duplicate, napping, plain, approval, cancelable, fragile] as JobDefinition[],
        // One slot: a sleeping saga must not hold it.
        config: { concurrency: 1, ...(driver === "postgres" ? { db: PG_URL, dbSchema: schema } : {}) },
      });
      key = await server.key("acme");
    });
    afterAll(async () => {
      await server.close();
      if (driver === "postgres") {
        await dropSchema(schema);
      }
    });

    /** Submit and follow the saga to its end; its final representation (with its steps). */
    async function runSaga(type: string, input: unknown): Promise<SagaJob> {
      const submitted = await http(`${server.url}/v1/jobs`, { json: { type, input }, headers: bearer(key) });
      expect(submitted.status).toBe(202);
      const location = submitted.headers.get("location")!;
      for (;;) {
        const res = await http(`${location}?onComplete=status`, {
          headers: { ...bearer(key), prefer: "wait=10" },
        });
        const job = (await res.json()) as SagaJob;
        if (res.status === 200) return job;
        expect(res.status).toBe(202);
      }
    }

    it("runs its steps in order, records each, and shows them on the status monitor", async () => {
      const run = `${driver}-ok`;
      const job = await runSaga("test.order", { run });
      expect(job.status).toBe("succeeded");
      expect(calls.get(run)).toEqual(["reserve#1", "charge#1", "ship#1"]);
      expect(job.steps!.map((s) => [s.name, s.status, s.attempts])).toEqual([
        ["reserve", "succeeded", 1],
        ["charge", "succeeded", 1],
        ["ship", "succeeded", 1],
      ]);
      for (const s of job.steps!)
        expect(Date.parse(s.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(s.startedAt));
      expect(job.progress).toEqual({ percent: 100, message: 'step "ship" done' });
      // Each step's idempotency key is stable: the saga's id and the step's place.
      const result = await (await http(job.links.result!)).json();
      expect(result).toEqual({ reserve: `${job.id}.0`, charge: `${job.id}.1`, ship: `${job.id}.2` });
      // Another tenant sees neither the saga nor its steps.
      const other = await server.key("other");
      expect((await http(job.links.self, { headers: bearer(other) })).status).toBe(404);
    });

    it("retries a step within its attempt: the journal counts its runs", async () => {
      const run = `${driver}-flaky`;
      const job = await runSaga("test.order", { run, flaky: 2 });
      expect(job.status).toBe("succeeded");
      expect(calls.get(run)).toEqual(["reserve#1", "charge#1", "charge#2", "charge#3", "ship#1"]);
      expect(job.steps!.map((s) => s.attempts)).toEqual([1, 3, 1]);
    });

    it("a step that fails for good: the steps before it are compensated newest first, then the saga fails", async () => {
      const run = `${driver}-fail`;
      const job = await runSaga("test.order", { run, failAt: "ship" });
      expect(job.status).toBe("failed");
      expect(calls.get(run)).toEqual(["reserve#1", "charge#1", "ship#1", "undo charge", "undo reserve"]);
      expect(job.error).toMatchObject({
        type: "/problems/saga-step-failed",
        title: "A step of the saga failed; the steps before it were compensated",
      });
      expect(job.error!.detail).toBe('step "ship" failed: ship: ship refused; compensated: charge, reserve');
      expect(job.steps!.map((s) => [s.name, s.status])).toEqual([
        ["reserve", "compensated"],
        ["charge", "compensated"],
        ["ship", "failed"],
      ]);
      expect(job.steps![2]!.error).toMatchObject({ detail: "ship: ship refused", status: 422 });
      expect(job.steps![0]!.compensatedAt).not.toBeNull();
      // The result resource answers with the saga's problem.
      const result = await http(job.links.result!);
      expect(result.status).toBe(500);
      expect(((await result.json()) as { type: string }).type).toBe("/problems/saga-step-failed");
    });

    it("sleeps without holding a slot or an attempt, then goes on", async () => {
      const submitted = await http(`${server.url}/v1/jobs`, {
        json: { type: "test.napping", input: { ms: 1500 } },
        headers: bearer(key),
      });
      const location = submitted.headers.get("location")!;
      // While it sleeps: queued, its sleep a running step, and the one slot free for other work.
      const asleep = await vi.waitFor(async () => {
        const job = (await (await http(location, { headers: bearer(key) })).json()) as SagaJob;
        expect(job.steps?.map((s) => s.name)).toEqual(["before", "sleep-1"]);
        expect(job.status).toBe("queued");
        return job;
      });
      expect(asleep.steps![1]!.status).toBe("running");
      const other = await http(`${server.url}/v1/jobs`, {
        json: { type: "test.plain", input: {} },
        headers: { ...bearer(key), prefer: "wait=5" },
      });
      expect(other.status).toBe(200); // ran and finished while the saga slept
      const otherFinished = (await other.json()) as number;

      let done: SagaJob;
      for (;;) {
        const res = await http(`${location}?onComplete=status`, {
          headers: { ...bearer(key), prefer: "wait=10" },
        });
        done = (await res.json()) as SagaJob & { attempt: number };
        if (res.status === 200) break;
      }
      expect(done.status).toBe("succeeded");
      expect((done as SagaJob & { attempt: number }).attempt).toBe(1); // the sleep cost no attempt
      expect(done.steps!.map((s) => [s.name, s.status])).toEqual([
        ["before", "succeeded"],
        ["sleep-1", "succeeded"],
        ["after", "succeeded"],
      ]);
      const { slept } = (await (await http(done.links.result!)).json()) as { slept: number };
      expect(slept).toBeGreaterThanOrEqual(1500);
      expect(otherFinished).toBeLessThan(Date.parse(done.steps![2]!.startedAt));
    });

    /** Submit a saga of `type`; its status monitor URL. */
    const start = async (type: string, input: unknown) => {
      const res = await http(`${server.url}/v1/jobs`, { json: { type, input }, headers: bearer(key) });
      expect(res.status).toBe(202);
      return res.headers.get("location")!;
    };
    const follow = async (location: string): Promise<SagaJob> => {
      for (;;) {
        const res = await http(`${location}?onComplete=status`, {
          headers: { ...bearer(key), prefer: "wait=10" },
        });
        if (res.status === 200) return (await res.json()) as SagaJob;
      }
    };
    const send = (location: string, body: unknown, eventId?: string, as = key) =>
      http(`${location}/events/approved`, {
        json: body,
        headers: { ...bearer(as), ...(eventId ? { "idempotency-key": eventId } : {}) },
      });

    it("waits for an event without a slot; the event wakes it; a resend is harmless, another refused", async () => {
      const location = await start("test.approval", {});
      await vi.waitFor(async () => {
        const job = (await (await http(location, { headers: bearer(key) })).json()) as SagaJob;
        expect(job.status).toBe("queued"); // given back while it waits
        expect(job.steps?.map((s) => [s.name, s.status])).toEqual([
          ["ask", "succeeded"],
          ["event:approved", "running"],
        ]);
      });
      const sent = await send(location, { by: "carol" }, "decision-1");
      expect(sent.status).toBe(202);
      expect(await sent.json()).toEqual({ event: "approved", eventId: "decision-1", status: "delivered" });
      const again = await send(location, { by: "carol" }, "decision-1");
      expect(again.status).toBe(200);
      expect(again.headers.get("idempotent-replayed")).toBe("true");
      const other = await send(location, { by: "mallory" }, "decision-2");
      expect(other.status).toBe(409);
      expect(((await other.json()) as { type: string }).type).toBe("/problems/saga-event-exists");

      const done = await follow(location);
      expect(done.status).toBe("succeeded");
      expect(await (await http(done.links.result!)).json()).toEqual({ approvedBy: "carol" });
      expect((done as SagaJob & { attempt: number }).attempt).toBe(1);
      const late = await http(`${location}/events/late`, { json: {}, headers: bearer(key) });
      expect(late.status).toBe(409);
      expect(((await late.json()) as { type: string }).type).toBe("/problems/job-already-finished");
    });

    it("an event sent before the saga waits for it is kept and taken at once", async () => {
      const location = await start("test.approval", { napMs: 1000 });
      await vi.waitFor(async () => {
        const job = (await (await http(location, { headers: bearer(key) })).json()) as SagaJob;
        expect(job.steps?.map((s) => s.name)).toContain("sleep-1");
      });
      expect((await send(location, { by: "early" }, "e-1")).status).toBe(202);
      const done = await follow(location);
      expect(await (await http(done.links.result!)).json()).toEqual({ approvedBy: "early" });
    });

    it("no event within its timeout: the wait fails as a step does", async () => {
      const done = await follow(await start("test.approval", { timeoutSeconds: 1 }));
      expect(done.status).toBe("failed");
      expect(done.error!.type).toBe("/problems/saga-step-failed");
      expect(done.error!.detail).toMatch(
        /^step "event:approved" failed: no event "approved" came by .*; nothing to compensate$/,
      );
    });

    it("events are the tenant's, and only sagas take them", async () => {
      const location = await start("test.approval", { timeoutSeconds: 30 });
      const other = await server.key("intruder");
      expect((await send(location, { by: "x" }, "x", other)).status).toBe(404);
      const plainJob = await http(`${server.url}/v1/jobs`, {
        json: { type: "test.plain", input: {} },
        headers: bearer(key),
      });
      const plainLocation = plainJob.headers.get("location")!;
      expect((await send(plainLocation, {}, "p")).status).toBe(404);
      expect((await http(`${location}/events/bad name`, { json: {}, headers: bearer(key) })).status).toBe(
        400,
      );
      await http(`${location}/cancel`, { method: "POST", headers: bearer(key) });
    });

    for (const waitIn of ["step", "sleep", "event"] as const) {
      it(`canceled while in a ${waitIn}: the steps done are compensated newest first; it stays canceled`, async () => {
        const run = `${driver}-cancel-${waitIn}`;
        const submitted = await http(`${server.url}/v1/jobs`, {
          json: { type: "test.cancelable", input: { run, waitIn } },
          headers: bearer(key),
        });
        const saga = (await submitted.json()) as SagaJob & { links: { cancel: string } };
        const held = { step: "ship", sleep: "sleep-2", event: "event:go" }[waitIn];
        await vi.waitFor(
          async () => {
            const job = (await (await http(saga.links.self, { headers: bearer(key) })).json()) as SagaJob;
            expect(job.steps?.map((s) => [s.name, s.status]).at(-1)).toEqual([held, "running"]);
          },
          { timeout: 10_000 },
        );
        const canceled = await http(saga.links.cancel, { method: "POST", headers: bearer(key) });
        expect(canceled.status).toBe(200);
        expect(((await canceled.json()) as SagaJob).status).toBe("canceled");

        // The compensation job undoes charge, then reserve, with the saga's own undo keys.
        await vi.waitFor(() => expect(calls.get(run)).toHaveLength(4), { timeout: 15_000 });
        expect(calls.get(run)).toEqual([
          "reserve",
          "charge",
          `undo charge ${saga.id}.1.undo`,
          `undo reserve ${saga.id}.0.undo`,
        ]);
        const after = (await (
          await http(`${saga.links.self}?onComplete=status`, { headers: bearer(key) })
        ).json()) as SagaJob;
        expect(after.status).toBe("canceled");
        expect(after.error).toMatchObject({ type: "/problems/job-canceled" });
        expect(after.steps!.map((s) => [s.name, s.status])).toEqual([
          ["reserve", "compensated"],
          ["charge", "compensated"],
          [held, "running"],
        ]);

        // One compensation job, however often the saga is canceled; its result says what it did.
        expect((await http(saga.links.cancel, { method: "POST", headers: bearer(key) })).status).toBe(200);
        const listed = (await (
          await http(`${server.url}/v1/jobs?type=tessera.saga.compensate`, { headers: bearer(key) })
        ).json()) as { items: SagaJob[] };
        const results = await Promise.all(
          listed.items.map(async (j) => {
            const done = await vi.waitFor(
              async () => {
                const res = await http(`${j.links.self}?onComplete=status`, { headers: bearer(key) });
                expect(res.status).toBe(200);
                return (await res.json()) as SagaJob;
              },
              { timeout: 10_000 },
            );
            return (await (await http(done.links.result!)).json()) as { saga: string };
          }),
        );
        expect(results.filter((r) => r.saga === saga.id)).toEqual([
          { saga: saga.id, status: "canceled", compensated: ["charge", "reserve"] },
        ]);
      });
    }

    it("a compensation that failed is retried by submitting the compensation job; a succeeded saga is left alone", async () => {
      bankDown = true;
      const run = `${driver}-fragile`;
      const saga = await runSaga("test.fragile", { run });
      expect(saga.status).toBe("failed");
      expect(saga.error!.type).toBe("/problems/saga-compensation-failed");
      expect(saga.steps!.map((s) => [s.name, s.status])).toEqual([
        ["hold", "compensation_failed"],
        ["charge", "failed"],
      ]);

      bankDown = false; // the operator fixed the bank
      const retried = await runSaga("tessera.saga.compensate", { saga: saga.id });
      expect(retried.status).toBe("succeeded");
      expect(await (await http(retried.links.result!)).json()).toEqual({
        saga: saga.id,
        status: "failed",
        compensated: ["hold"],
      });
      expect(calls.get(run)).toEqual(["hold", "undo hold"]);
      const after = (await (
        await http(`${saga.links.self}?onComplete=status`, { headers: bearer(key) })
      ).json()) as SagaJob;
      expect(after.status).toBe("failed"); // its outcome was recorded once; its steps tell the rest
      expect(after.steps!.map((s) => [s.name, s.status])).toEqual([
        ["hold", "compensated"],
        ["charge", "failed"],
      ]);

      // A succeeded saga is not undone; another tenant's saga is not found.
      const ok = await runSaga("test.order", { run: `${driver}-left-alone` });
      const none = await runSaga("tessera.saga.compensate", { saga: ok.id });
      expect(await (await http(none.links.result!)).json()).toMatchObject({ compensated: [] });
      expect(calls.get(`${driver}-left-alone`)).toEqual(["reserve#1", "charge#1", "ship#1"]);
      const other = await server.key("other");
      const elsewhere = await http(`${server.url}/v1/jobs`, {
        json: { type: "tessera.saga.compensate", input: { saga: ok.id } },
        headers: bearer(other),
      });
      const foreign = (await elsewhere.json()) as SagaJob;
      const ended = await vi.waitFor(
        async () => {
          const res = await http(`${foreign.links.self}?onComplete=status`, { headers: bearer(other) });
          expect(res.status).toBe(200);
          return (await res.json()) as SagaJob;
        },
        { timeout: 10_000 },
      );
      expect(ended.status).toBe("failed");
      expect(ended.error).toMatchObject({ status: 404 });
    });

    it("a client may not take Tessera's own idempotency keys", async () => {
      const res = await http(`${server.url}/v1/jobs`, {
        json: { type: "test.plain", input: {} },
        headers: { ...bearer(key), "idempotency-key": "tessera:compensate:job_x" },
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { type: string }).type).toBe("/problems/invalid-idempotency-key");
    });

    it("a step name used twice in one run fails the saga as nondeterministic", async () => {
      const job = await runSaga("test.duplicate", {});
      expect(job.status).toBe("failed");
      expect(job.error).toMatchObject({ type: "/problems/saga-nondeterministic" });
      expect(job.error!.detail).toBe('step "a" is run twice in one saga');
    });
  });
}
