/**
 * The job lifecycle's own events over real HTTP, on both drivers: a job's end (success, failure
 * after its retries, a cancel by either route, its deadline) keeps `tessera.job.<status>` with
 * it and starts the jobs whose triggers wait for it, promptly (well inside the sweep's 5 s
 * grace) and once; jobs nobody listens to keep none; clients cannot forge them.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TriggerSpec } from "../../src/events/triggers.js";
import { defineJob, type JobDefinition } from "../../src/jobs/define.js";
import { dropSchema, freshSchema, PG_URL } from "../helpers/postgres.js";
import { bearer, http, startServer, type TestServer } from "../helpers/server.js";

interface Seen {
  listener: string;
  event: {
    id: string;
    type: string;
    source: string;
    subject: string;
    datacontenttype: string;
    tenant: string;
    data: {
      id: string;
      type: string;
      status: string;
      attempt: number;
      error?: { detail: string };
      result?: string;
    };
  };
}
interface EventView {
  event: { id: string; type: string; subject?: string };
  triggered: { type: string; jobId?: string }[] | null;
}
interface Job {
  id: string;
  status: string;
  links: { self: string };
}

const seen: Seen[] = [];
const listener = (name: string, on: TriggerSpec) =>
  defineJob({
    type: `test.on-${name}`,
    input: { type: "object" },
    on,
    run: (event: Seen["event"]) => void seen.push({ listener: name, event }),
  });

const jobs = [
  defineJob({ type: "test.work", input: { type: "object" }, run: () => ({ ok: true }) }),
  defineJob({
    type: "test.flaky",
    input: { type: "object" },
    maxAttempts: 2,
    retryDelayMs: 10,
    run: () => {
      throw new Error("flaky");
    },
  }),
  // Emits, then throws: only its failure is kept.
  defineJob({
    type: "test.emitter",
    input: { type: "object" },
    maxAttempts: 1,
    run: (_input: unknown, ctx) => {
      ctx.emit("orders.placed", { n: 1 });
      throw new Error("after emitting");
    },
  }),
  defineJob({
    type: "test.slow",
    input: { type: "object" },
    run: (_input: unknown, ctx) =>
      new Promise<void>((resolve) => {
        if (ctx.signal.aborted) resolve();
        else ctx.signal.addEventListener("abort", () => resolve(), { once: true });
      }),
  }),
  // No trigger listens to its end: it keeps no lifecycle event.
  defineJob({ type: "other.plain", input: { type: "object" }, run: () => "plain" }),
  listener("succeeded", [{ type: "tessera.job.succeeded", filter: { source: "/jobs/test.work" } }]),
  listener("failed", [{ type: "tessera.job.failed", filter: { source: { prefix: "/jobs/test." } } }]),
  listener("canceled", [{ type: "tessera.job.canceled", filter: { source: "/jobs/test.slow" } }]),
  listener("timed_out", [{ type: "tessera.job.timed_out", filter: { source: "/jobs/test.slow" } }]),
] as JobDefinition[];

const seenFor = (jobId: string) => seen.filter((s) => s.event.subject === jobId);

/** The listener's start for `jobId`'s end, waited for; how long it took. */
async function heard(jobId: string, timeout = 4000): Promise<{ seen: Seen; ms: number }> {
  const started = Date.now();
  await expect.poll(() => seenFor(jobId).length, { timeout, interval: 20 }).toBeGreaterThan(0);
  return { seen: seenFor(jobId)[0]!, ms: Date.now() - started };
}

for (const driver of ["sqlite", "postgres"] as const) {
  describe(`lifecycle events over HTTP (${driver})`, () => {
    let server: TestServer;
    let key: string;
    const schema = freshSchema("lifecycle");

    beforeAll(async () => {
      server = await startServer({
        jobs,
        config: driver === "postgres" ? { db: PG_URL, dbSchema: schema } : {},
      });
      key = await server.key("acme");
    });
    afterAll(async () => {
      await server.close();
      if (driver === "postgres") {
        await dropSchema(schema);
      }
    });

    const submit = async (type: string, extra: Record<string, unknown> = {}): Promise<Job> => {
      const res = await http(`${server.url}/v1/jobs`, {
        json: { type, input: {}, ...extra },
        headers: bearer(key),
      });
      expect(res.status).toBe(202);
      return (await res.json()) as Job;
    };
    async function finished(job: Job): Promise<Job> {
      for (;;) {
        const res = await http(`${job.links.self}?onComplete=status`, {
          headers: { ...bearer(key), prefer: "wait=5" },
        });
        if (res.status === 200) return (await res.json()) as Job;
      }
    }
    async function running(job: Job): Promise<void> {
      await expect
        .poll(
          async () => ((await (await http(job.links.self, { headers: bearer(key) })).json()) as Job).status,
        )
        .toBe("running");
    }
    const eventsOf = async (jobId: string): Promise<EventView[]> => {
      const res = await http(`${server.url}/v1/events?limit=500`, { headers: bearer(key) });
      expect(res.status).toBe(200);
      return ((await res.json()) as { items: EventView[] }).items.filter((e) => e.event.subject === jobId);
    };

    it("a success starts the job waiting for it once, with the event as its input", async () => {
      const job = await finished(await submit("test.work"));
      expect(job.status).toBe("succeeded");
      const { seen: start } = await heard(job.id);
      expect(start.listener).toBe("succeeded");
      expect(start.event).toMatchObject({
        id: `tessera:${job.id}-succeeded`,
        type: "tessera.job.succeeded",
        source: "/jobs/test.work",
        subject: job.id,
        datacontenttype: "application/json",
        data: {
          id: job.id,
          type: "test.work",
          status: "succeeded",
          attempt: 1,
          result: `/v1/jobs/${job.id}/result`,
        },
      });
      expect(typeof start.event.tenant).toBe("string");
      // Visible at GET /v1/events, with what it started; the started job's own end starts nothing.
      await expect
        .poll(async () => (await eventsOf(job.id)).map((e) => e.triggered?.map((t) => t.type) ?? null))
        .toEqual([["test.on-succeeded"]]);
      const [view] = await eventsOf(job.id);
      const started = await finished({
        id: view!.triggered![0]!.jobId!,
        status: "",
        links: { self: `${server.url}/v1/jobs/${view!.triggered![0]!.jobId!}` },
      });
      expect(started.status).toBe("succeeded");
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(seenFor(job.id)).toHaveLength(1);
      expect(seen.filter((s) => s.event.source === "/jobs/test.on-succeeded")).toEqual([]);
    });

    it("a failure after the retries are spent: tessera.job.failed, with the last attempt's problem", async () => {
      const job = await finished(await submit("test.flaky"));
      expect(job.status).toBe("failed");
      const { seen: start } = await heard(job.id);
      expect(start.listener).toBe("failed");
      expect(start.event.type).toBe("tessera.job.failed");
      expect(start.event.data).toMatchObject({ status: "failed", attempt: 2, error: { detail: "flaky" } });
      expect(seenFor(job.id)).toHaveLength(1);
    });

    it("a handler that throws after ctx.emit publishes nothing but its failure", async () => {
      const job = await finished(await submit("test.emitter"));
      expect(job.status).toBe("failed");
      await heard(job.id);
      expect((await eventsOf(job.id)).map((e) => e.event.type)).toEqual(["tessera.job.failed"]);
    });

    it("a cancel of a running job (POST /cancel) starts its listener promptly, not after the sweep", async () => {
      const job = await submit("test.slow");
      await running(job);
      const res = await http(`${job.links.self}/cancel`, { method: "POST", headers: bearer(key) });
      expect(res.status).toBe(200);
      const { seen: start, ms } = await heard(job.id);
      expect(ms).toBeLessThan(2500);
      expect(start.event).toMatchObject({
        type: "tessera.job.canceled",
        data: { status: "canceled", attempt: 1, error: { detail: "the job was canceled" } },
      });
    });

    it("a DELETE of a queued job starts its listener too", async () => {
      const job = await submit("test.slow", { runAt: new Date(Date.now() + 60_000).toISOString() });
      const res = await http(job.links.self, { method: "DELETE", headers: bearer(key) });
      expect(res.status).toBe(204);
      const { seen: start, ms } = await heard(job.id);
      expect(ms).toBeLessThan(2500);
      expect(start.event).toMatchObject({
        type: "tessera.job.canceled",
        data: { status: "canceled", attempt: 0 },
      });
    });

    it("a deadline: tessera.job.timed_out, promptly once swept", async () => {
      const job = await submit("test.slow", { timeoutSeconds: 1 });
      const { seen: start, ms } = await heard(job.id, 5000);
      expect(ms).toBeLessThan(3500);
      expect(start.event).toMatchObject({ type: "tessera.job.timed_out", data: { status: "timed_out" } });
      expect((await finished(job)).status).toBe("timed_out");
    });

    it("a job whose end nobody listens to keeps no lifecycle event", async () => {
      const job = await finished(await submit("other.plain"));
      expect(job.status).toBe("succeeded");
      expect(await eventsOf(job.id)).toEqual([]);
    });

    it("clients cannot forge a lifecycle event", async () => {
      const res = await http(`${server.url}/v1/events`, {
        json: {
          specversion: "1.0",
          id: "forged-1",
          source: "/jobs/test.work",
          type: "tessera.job.succeeded",
        },
        headers: bearer(key),
      });
      expect(res.status).toBe(400);
      const problem = (await res.json()) as { errors: { path: string }[] };
      expect(problem.errors.map((e) => e.path)).toEqual(["/type"]);
    });
  });
}

describe("lifecycle events for every job (lifecycleEvents: true)", () => {
  let server: TestServer;
  let key: string;
  beforeAll(async () => {
    server = await startServer({ jobs, config: { lifecycleEvents: true } });
    key = await server.key("acme");
  });
  afterAll(() => server.close());

  it("a job no trigger listens to keeps its lifecycle event", async () => {
    const res = await http(`${server.url}/v1/jobs`, {
      json: { type: "other.plain", input: {} },
      headers: bearer(key),
    });
    const submitted = (await res.json()) as Job;
    let job = submitted;
    while (job.status !== "succeeded") {
      const poll = await http(`${submitted.links.self}?onComplete=status`, {
        headers: { ...bearer(key), prefer: "wait=5" },
      });
      job = (await poll.json()) as Job;
    }
    const list = await http(`${server.url}/v1/events?type=tessera.job.succeeded`, { headers: bearer(key) });
    const items = ((await list.json()) as { items: EventView[] }).items;
    expect(items.filter((e) => e.event.subject === job.id).map((e) => e.event.id)).toEqual([
      `tessera:${job.id}-succeeded`,
    ]);
  });
});
