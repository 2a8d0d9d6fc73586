/**
 * RELIABILITY.md B6 "Hostile handler behaviour": handlers that return what cannot be stored,
 * throw what is not an Error, or never settle and ignore their AbortSignal. Each job must end
 * in a defined terminal state, its result must be a proper problem (or the stored bytes, with
 * their Content-Type and nosniff), the slot must be reclaimed, and the worker must go on.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defineJob, type JobDefinition } from "../../src/jobs/define.js";
import { bytesResult } from "../../src/jobs/result.js";
import {
  expectProblemShape,
  metricValue,
  STACK_FRAME,
  until,
  type Problem,
} from "../helpers/pass-criteria.js";
import { answer, type Answer } from "../helpers/raw-http.js";
import { bearer, startServer, type TestServer } from "../helpers/server.js";

const MAX_RESULT_BYTES = 4 * 1024 * 1024;
const TEN_MB = 10 * 1024 * 1024;

const hostile = (
  type: string,
  run: (input: unknown, ctx: { signal: AbortSignal }) => unknown,
  options: { maxAttempts?: number; timeoutSeconds?: number } = {},
): JobDefinition =>
  defineJob({
    type,
    input: {},
    timeoutSeconds: options.timeoutSeconds ?? 30,
    maxAttempts: options.maxAttempts ?? 1,
    retryDelayMs: 10,
    run,
  }) as JobDefinition;

const circular = () => {
  const o: Record<string, unknown> = { name: "loop" };
  o.self = o;
  return o;
};

class EvilMessageError extends Error {
  override get message(): string {
    throw new Error("reading message throws");
  }
}

const JOBS: JobDefinition[] = [
  // return values that cannot be stored as JSON
  hostile("hostile.bigint", () => ({ n: 1n })),
  hostile("hostile.bare-bigint", () => 10n ** 30n),
  hostile("hostile.circular", circular),
  hostile("hostile.to-json-throws", () => ({
    toJSON: () => {
      throw new Error("toJSON refuses");
    },
  })),
  hostile("hostile.function", () => () => 1),
  hostile("hostile.symbol", () => Symbol("s")),
  // return values that can
  hostile("hostile.undefined", () => undefined),
  hostile("hostile.null", () => null),
  hostile("hostile.string", (input) => "x".repeat((input as { bytes: number }).bytes)),
  hostile("hostile.nul-string", () => "a\u0000b\ud800c"),
  hostile("hostile.html-bytes", () => bytesResult("<script>alert(1)</script>", "text/html")),
  // throws that are not Errors
  hostile(
    "hostile.throw-string",
    () => {
      throw "a plain string";
    },
    { maxAttempts: 2 },
  ),
  hostile("hostile.throw-null", () => {
    throw null;
  }),
  hostile("hostile.throw-undefined", () => {
    throw undefined;
  }),
  hostile("hostile.throw-object", () => {
    throw { code: 42, reason: "no message member" };
  }),
  hostile("hostile.throw-number-message", () => {
    throw { message: 12345 };
  }),
  hostile("hostile.throw-circular", () => {
    throw circular();
  }),
  hostile("hostile.throw-bigint", () => {
    throw 7n;
  }),
  hostile("hostile.throw-symbol", () => {
    throw Symbol("thrown");
  }),
  hostile("hostile.reject-async", async () => {
    await Promise.resolve();
    throw { nested: { deep: true } };
  }),
  hostile("hostile.throw-with-stack", () => {
    throw new Error("boom");
  }),
  hostile("hostile.throw-evil-message", () => {
    throw new EvilMessageError();
  }),
  // never settles, ignores the signal
  hostile("hostile.hang", () => new Promise(() => undefined)),
  // ignores the signal and answers after the deadline: discarded
  hostile(
    "hostile.late",
    () => new Promise((resolve) => setTimeout(() => resolve({ late: true }), 1500).unref()),
  ),
  hostile("hostile.ok", (input) => ({ ok: true, input })),
];

let server: TestServer;
let key: string;

beforeAll(async () => {
  server = await startServer({ jobs: JOBS, config: { maxResultBytes: MAX_RESULT_BYTES, concurrency: 20 } });
  key = await server.key("acme");
});
afterAll(() => server.close());

interface Representation {
  id: string;
  status: string;
  startedAt: string | null;
  attempt: number;
  maxAttempts: number;
  error: Problem | null;
}

async function submit(
  type: string,
  input: unknown = null,
  extra: Record<string, unknown> = {},
): Promise<string> {
  const res = await fetch(`${server.url}/v1/jobs`, {
    method: "POST",
    headers: { ...bearer(key), "content-type": "application/json" },
    body: JSON.stringify({ type, input, ...extra }),
  });
  expect(res.status, await res.clone().text()).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

async function representation(id: string, wait = 0): Promise<Representation> {
  const res = await fetch(`${server.url}/v1/jobs/${id}?onComplete=status`, {
    headers: { ...bearer(key), ...(wait > 0 ? { prefer: `wait=${wait}` } : {}) },
  });
  expect([200, 202]).toContain(res.status);
  return (await res.json()) as Representation;
}

/** Wait (event-driven, up to `seconds`) for the job to be terminal. */
async function settled(id: string, seconds = 15): Promise<Representation> {
  const job = await representation(id, seconds);
  expect(["succeeded", "failed", "canceled", "timed_out"], `${id} is ${job.status}`).toContain(job.status);
  return job;
}

async function result(id: string): Promise<Answer> {
  return answer(await fetch(`${server.url}/v1/jobs/${id}/result`, { headers: bearer(key) }));
}

/** A failed job's problem, in its representation and at its result resource. */
async function expectJobFailed(id: string, slug = "job-failed", status = 500): Promise<Problem> {
  const job = await settled(id);
  expect(job.status).toBe("failed");
  expect(job.error).not.toBeNull();
  expect(job.error!.type.endsWith(`/${slug}`), job.error!.type).toBe(true);
  expect(job.error!.status).toBe(status);
  expect(typeof job.error!.detail).toBe("string");
  expect(job.error!.detail).not.toMatch(STACK_FRAME);
  const a = await result(id);
  expect(a.status).toBe(status);
  const problem = expectProblemShape(a, slug);
  expect(problem.error).toEqual({ code: slug, message: problem.detail });
  expect(a.headers["cache-control"]).toBe("no-store");
  return problem;
}

describe("B6 handlers that return what cannot be stored", () => {
  it.each([
    ["a BigInt member", "hostile.bigint", /BigInt/i],
    ["a bare BigInt", "hostile.bare-bigint", /BigInt/i],
    ["a circular object", "hostile.circular", /circular/i],
    ["an object whose toJSON throws", "hostile.to-json-throws", /toJSON refuses/],
    ["a function", "hostile.function", /serialis/i],
    ["a symbol", "hostile.symbol", /serialis/i],
  ])("%s: failed with job-failed, at once (no retry)", async (_label, type, detail) => {
    const id = await submit(type);
    const problem = await expectJobFailed(id);
    expect(problem.detail).toMatch(detail);
    expect((await representation(id)).attempt).toBe(1);
  });

  it("a 10 MB string over maxResultBytes: failed with job-failed naming the limit", async () => {
    const id = await submit("hostile.string", { bytes: TEN_MB });
    const problem = await expectJobFailed(id);
    expect(problem.detail).toMatch(new RegExp(`over the limit of ${MAX_RESULT_BYTES}`));
  });

  it("a large string within the limit is stored and served with its Content-Type and nosniff", async () => {
    const bytes = 3 * 1024 * 1024; // well above the inline size: served from a blob
    const id = await submit("hostile.string", { bytes });
    expect((await settled(id)).status).toBe("succeeded");
    const res = await fetch(`${server.url}/v1/jobs/${id}/result`, { headers: bearer(key) });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json\b/);
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("cache-control")).toBe("no-store");
    const text = await res.text();
    expect(text.length).toBe(bytes + 2);
    expect(res.headers.get("content-length")).toBe(String(bytes + 2));
    expect(JSON.parse(text)).toBe("x".repeat(bytes));
  });
});

describe("B6 handlers that return empty or unusual values", () => {
  it.each([
    ["undefined", "hostile.undefined"],
    ["null", "hostile.null"],
  ])("%s: succeeded, and the result is 204", async (_label, type) => {
    const id = await submit(type);
    expect((await settled(id)).status).toBe("succeeded");
    const a = await result(id);
    expect(a.status).toBe(204);
    expect(a.text).toBe("");
    expect(a.headers["x-content-type-options"]).toBe("nosniff");
  });

  it("a string with NUL and a lone surrogate: stored and served as JSON", async () => {
    const id = await submit("hostile.nul-string");
    const job = await settled(id);
    // SQLite keeps it; a driver that cannot must fail the job with a problem, never crash.
    if (job.status === "failed") {
      await expectJobFailed(id);
      return;
    }
    expect(job.status).toBe("succeeded");
    const a = await result(id);
    expect(a.status).toBe(200);
    expect(a.headers["content-type"]).toMatch(/^application\/json\b/);
    expect(JSON.parse(a.text)).toBe("a\u0000b\ud800c");
  });

  it("bytes with a handler-chosen Content-Type are served as stored, with nosniff", async () => {
    const id = await submit("hostile.html-bytes");
    expect((await settled(id)).status).toBe("succeeded");
    const a = await result(id);
    expect(a.status).toBe(200);
    expect(a.headers["content-type"]).toMatch(/^text\/html\b/);
    expect(a.headers["x-content-type-options"]).toBe("nosniff");
    expect(a.headers["cache-control"]).toBe("no-store");
    expect(a.text).toBe("<script>alert(1)</script>");
  });
});

describe("B6 handlers that throw what is not an Error", () => {
  it.each([
    ["a string", "hostile.throw-string", /a plain string/],
    ["null", "hostile.throw-null", /null/],
    ["undefined", "hostile.throw-undefined", /undefined/],
    ["an object without message", "hostile.throw-object", /no message member/],
    ["an object whose message is a number", "hostile.throw-number-message", /12345/],
    ["a circular object", "hostile.throw-circular", /non-error thrown/],
    ["a BigInt", "hostile.throw-bigint", /non-error thrown/],
    ["a symbol", "hostile.throw-symbol", /non-error thrown|Symbol/],
    ["an object, from an async handler", "hostile.reject-async", /deep/],
    ["an Error (its stack is not shown)", "hostile.throw-with-stack", /boom/],
  ])("%s: failed with job-failed and a readable detail", async (_label, type, detail) => {
    const id = await submit(type);
    const problem = await expectJobFailed(id);
    expect(problem.detail).toMatch(detail);
    const job = await representation(id);
    expect(job.attempt).toBe(job.maxAttempts); // retried like any other error, then final
  });

  // Today the runtime cannot record this outcome (reading `message` throws inside the worker),
  // so the job ends failed only when its lease expires (2 s in tests, 30 s by default) and the
  // detail blames a lost lease. The assertion is the B6 minimum: a defined terminal state.
  it("an Error whose message getter throws: still ends failed", async () => {
    const id = await submit("hostile.throw-evil-message");
    await expectJobFailed(id);
  });
});

describe("B6 handlers that never settle and ignore AbortSignal", () => {
  const running = () => metricValue(server.url, "tessera_jobs_running");

  it("timeoutSeconds 1: the job ends timed_out and the running gauge returns to 0", async () => {
    await until(running, (n) => n === 0, 5000);
    const id = await submit("hostile.hang", null, { timeoutSeconds: 1 });
    const job = await settled(id, 10);
    expect(job.status).toBe("timed_out");
    // The handler did start (and so held a slot), rather than the job timing out in the queue.
    expect(job.attempt).toBe(1);
    expect(job.startedAt).not.toBeNull();
    expect(job.error?.type.endsWith("/job-timed-out")).toBe(true);
    expect(await until(running, (n) => n === 0, 3000)).toBe(0);
    const a = await result(id);
    expect(a.status).toBe(504);
    expectProblemShape(a, "job-timed-out");
  });

  it("many at once: every slot is reclaimed at the deadline, and new work still runs", async () => {
    const ids = await Promise.all(
      Array.from({ length: 5 }, () => submit("hostile.hang", null, { timeoutSeconds: 1 })),
    );
    for (const id of ids) {
      const job = await settled(id, 10);
      expect(job.status).toBe("timed_out");
      expect(job.startedAt).not.toBeNull();
    }
    expect(await until(running, (n) => n === 0, 3000)).toBe(0);
    const next = await submit("hostile.ok", "after the hangs");
    expect((await settled(next)).status).toBe("succeeded");
  });

  it("a handler that answers after its deadline: the answer is discarded, the job stays timed_out", async () => {
    const id = await submit("hostile.late", null, { timeoutSeconds: 1 });
    expect((await settled(id, 10)).status).toBe("timed_out");
    await new Promise((resolve) => setTimeout(resolve, 1000)); // past the handler's late answer
    expect((await representation(id)).status).toBe("timed_out");
    expect((await result(id)).status).toBe(504);
  });
});

describe("after all of it", () => {
  it("the worker is alive: a normal job succeeds, nothing is left running, /healthz answers", async () => {
    const id = await submit("hostile.ok", { n: 1 });
    expect((await settled(id)).status).toBe("succeeded");
    const a = await result(id);
    expect(JSON.parse(a.text)).toEqual({ ok: true, input: { n: 1 } });
    expect(
      await until(
        () => metricValue(server.url, "tessera_jobs_running"),
        (n) => n === 0,
        3000,
      ),
    ).toBe(0);
    const started = performance.now();
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});
