/**
 * `saga.call` against a second server that is not Tessera, only a server of the same
 * asynchronous request-reply protocol: `202` with `Location` and `Retry-After: 2`, a `503` and
 * a `429` on the way, a `cancel` link of its own. The saga's call must poll as often as the
 * server asks and no more, back off when told, fail its step with the remote failure, and
 * cancel the remote job through the link the server gave.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import type { JobDefinition } from "../../src/jobs/define.js";
import { createClient, HttpError } from "../../src/client/index.js";
import { defineSaga } from "../../src/sagas/define-saga.js";
import { http, startServer, type TestServer } from "../helpers/server.js";

interface Seen {
  method: string;
  path: string;
  at: number;
  status: number;
  idempotencyKey: string | undefined;
}

interface RemoteJob {
  id: string;
  input: { fail?: boolean; hold?: boolean };
  polls: number;
  canceled: boolean;
}

/** A payment service of the protocol, written from the contract's words, not Tessera's code. */
class PaymentService {
  readonly seen: Seen[] = [];
  readonly jobs = new Map<string, RemoteJob>();
  private readonly byKey = new Map<string, RemoteJob>();
  private readonly refusedKeys = new Set<string>();
  private server: Server | null = null;
  url = "";

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.answer(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.server?.closeAllConnections();
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  reset(): void {
    this.seen.length = 0;
  }

  private representation(job: RemoteJob, status: string): object {
    return {
      id: job.id,
      type: "payments.charge",
      status,
      links: {
        self: `${this.url}/v1/jobs/${job.id}`,
        // Not where Tessera puts it: the client must follow the link.
        ...(status === "queued" || status === "running"
          ? { cancel: `${this.url}/control/${job.id}/stop` }
          : {}),
      },
    };
  }

  private async answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body = "";
    for await (const chunk of req) body += String(chunk);
    const path = new URL(req.url!, this.url).pathname;
    const key = req.headers["idempotency-key"] as string | undefined;
    const send = (status: number, headers: Record<string, string>, payload?: object): void => {
      this.seen.push({ method: req.method!, path, at: Date.now(), status, idempotencyKey: key });
      res.writeHead(status, payload ? { "content-type": contentType(payload), ...headers } : headers);
      res.end(payload ? JSON.stringify(payload) : undefined);
    };
    const problem = (status: number, slug: string, detail: string, extra: object = {}): object => ({
      type: `${this.url}/problems/${slug}`,
      title: slug,
      status,
      detail,
      ...extra,
    });

    // Work done at once: the answer is the result.
    if (req.method === "POST" && path === "/instant")
      return send(200, {}, { done: JSON.parse(body) as object });
    // The contract's submit, or an endpoint of the service's own that takes the work as it is.
    if (req.method === "POST" && (path === "/v1/jobs" || path === "/charges")) {
      const parsed = JSON.parse(body) as { type: string; input: RemoteJob["input"] } & RemoteJob["input"];
      const envelope = path === "/charges" ? { type: "payments.charge", input: parsed } : parsed;
      if (!key) return send(400, {}, problem(400, "validation", "Idempotency-Key is required here"));
      const known = this.byKey.get(key);
      if (known) return send(202, this.pending(known), this.representation(known, "queued"));
      if (!this.refusedKeys.has(key)) {
        this.refusedKeys.add(key); // the first try of every submit meets a busy service
        return send(503, { "retry-after": "1" }, problem(503, "unavailable", "busy, come back in 1 s"));
      }
      const job: RemoteJob = {
        id: `pay-${this.jobs.size + 1}`,
        input: envelope.input,
        polls: 0,
        canceled: false,
      };
      this.jobs.set(job.id, job);
      this.byKey.set(key, job);
      return send(202, this.pending(job), this.representation(job, "queued"));
    }
    const [, , , id, tail] = path.split("/");
    const job = this.jobs.get(id ?? "");
    if (req.method === "POST" && path === `/control/${path.split("/")[2]}/stop`) {
      const stopped = this.jobs.get(path.split("/")[2]!);
      if (!stopped) return send(404, {}, problem(404, "not-found", "no such job"));
      stopped.canceled = true;
      return send(200, {}, this.representation(stopped, "canceled"));
    }
    if (!job) return send(404, {}, problem(404, "not-found", "no such job"));
    if (req.method === "GET" && tail === undefined) {
      job.polls++;
      const done = job.canceled || (!job.input.hold && job.polls >= 4);
      if (done) return send(303, { location: `/v1/jobs/${job.id}/result` });
      // The second poll meets the service's rate limit.
      if (job.polls === 2)
        return send(429, { "retry-after": "3" }, problem(429, "rate-limited", "slow down: 3 s"));
      return send(202, this.pending(job), this.representation(job, "running"));
    }
    if (req.method === "GET" && tail === "result") {
      if (job.canceled)
        return send(409, {}, problem(409, "job-canceled", "canceled", { error: { code: "canceled" } }));
      if (job.input.fail)
        return send(
          402,
          {},
          problem(402, "job-failed", "card declined", {
            error: { code: "card_declined", message: "card declined" },
          }),
        );
      return send(200, {}, { charged: true, polls: job.polls });
    }
    return send(405, {}, problem(405, "method-not-allowed", `${req.method} ${path}`));
  }

  private pending(job: RemoteJob): Record<string, string> {
    return { location: `${this.url}/v1/jobs/${job.id}`, "retry-after": "2" };
  }
}

function contentType(payload: object): string {
  return "status" in payload && "type" in payload && "title" in payload
    ? "application/problem+json"
    : "application/json";
}

const payments = new PaymentService();
let orchestrator: TestServer;
const undone: string[] = [];

const checkout = defineSaga({
  type: "test.pay",
  timeoutSeconds: 300,
  input: {
    type: "object",
    properties: {
      remote: { type: "string" },
      fail: { type: "boolean" },
      hold: { type: "boolean" },
      endpoint: { type: "boolean" },
    },
    required: ["remote"],
  },
  async run(input: { remote: string; fail?: boolean; hold?: boolean; endpoint?: boolean }, saga) {
    await saga.step("reserve", () => "reserved", { compensate: () => void undone.push("reserve") });
    const work = { fail: input.fail, hold: input.hold };
    return saga.call(
      "charge",
      input.endpoint
        ? { endpoint: `${input.remote}/charges`, body: work }
        : { url: input.remote, type: "payments.charge", input: work },
      { maxAttempts: 1 },
    );
  },
});

interface Job {
  id: string;
  status: string;
  error: { type: string; detail: string } | null;
  links: { self: string; cancel?: string; result?: string };
}

async function submit(input: object): Promise<Job> {
  const res = await http(`${orchestrator.url}/v1/jobs`, { json: { type: "test.pay", input } });
  expect(res.status).toBe(202);
  return (await res.json()) as Job;
}

async function finished(job: Job): Promise<Job> {
  for (;;) {
    const res = await http(`${job.links.self}?onComplete=status`, { headers: { prefer: "wait=10" } });
    if (res.status === 200) return (await res.json()) as Job;
  }
}

const gaps = (seen: Seen[]): number[] => seen.slice(1).map((s, i) => s.at - seen[i]!.at);

beforeAll(async () => {
  await payments.start();
  // A deadline cap below the compensation job's own hour: a cancel still gets its compensation.
  orchestrator = await startServer({
    dev: true,
    jobs: [checkout] as JobDefinition[],
    config: { maxTimeoutSeconds: 600 },
  });
});
afterAll(async () => {
  await orchestrator?.close();
  await payments.close();
});
beforeEach(() => {
  payments.reset();
  undone.length = 0;
});

describe("saga.call against a server of the protocol", { timeout: 60_000 }, () => {
  it("polls as Retry-After says, backs off a 503 and a 429, and returns the remote result", async () => {
    const saga = await finished(await submit({ remote: payments.url }));
    expect(saga.status).toBe("succeeded");
    expect(await (await http(saga.links.result!)).json()).toEqual({ charged: true, polls: 4 });

    const posts = payments.seen.filter((s) => s.method === "POST");
    // The 503 was retried after its Retry-After, with the same key: one remote job.
    expect(posts.map((s) => s.status)).toEqual([503, 202]);
    expect(posts[1]!.idempotencyKey).toBe(posts[0]!.idempotencyKey);
    expect(gaps(posts)[0]).toBeGreaterThanOrEqual(950);
    expect(payments.jobs.size).toBe(1);

    const polls = payments.seen.filter((s) => s.method === "GET" && !s.path.endsWith("/result"));
    // The job is done at the 4th poll: four polls, no more, and one fetch of the result.
    expect(polls.map((s) => s.status)).toEqual([202, 429, 202, 303]);
    expect(payments.seen.filter((s) => s.path.endsWith("/result"))).toHaveLength(1);
    // After the first answer (which held nothing), each pause is what the answer before it
    // asked for: 2 s after a 202, 3 s after the 429 (a lower bound: a busy machine is slower).
    const [, afterRateLimit, afterLast] = gaps(polls);
    expect(afterRateLimit).toBeGreaterThanOrEqual(2_950);
    expect(afterLast).toBeGreaterThanOrEqual(1_950);
  });

  it("an endpoint of the service's own (no Tessera envelope) is followed the same way", async () => {
    const saga = await finished(await submit({ remote: payments.url, endpoint: true }));
    expect(saga.status).toBe("succeeded");
    expect(await (await http(saga.links.result!)).json()).toEqual({ charged: true, polls: 4 });
    expect(payments.seen.map((s) => `${s.method} ${s.path.replace(/pay-\d+/, "ID")} ${s.status}`)).toEqual([
      "POST /charges 503",
      "POST /charges 202",
      "GET /v1/jobs/ID 202",
      "GET /v1/jobs/ID 429",
      "GET /v1/jobs/ID 202",
      "GET /v1/jobs/ID 303",
      "GET /v1/jobs/ID/result 200",
    ]);
    const failed = await finished(await submit({ remote: payments.url, endpoint: true, fail: true }));
    expect(failed.error!.detail).toMatch(/^step "charge" failed: .*POST http:.*\/charges: .*card declined/);
  });

  it("the client's submitTo: a 200 is the result at once; a 4xx is an HttpError", async () => {
    const client = createClient({ baseUrl: payments.url });
    const instant = await client.submitTo("/instant", { n: 1 });
    expect(await instant.result()).toEqual({ done: { n: 1 } });
    await expect(client.submitTo("/nowhere", {})).rejects.toBeInstanceOf(HttpError);
  });

  it("the remote failure is the step's: the saga compensates and fails naming it", async () => {
    const saga = await finished(await submit({ remote: payments.url, fail: true }));
    expect(saga.status).toBe("failed");
    expect(saga.error!.type).toBe("/problems/saga-step-failed");
    expect(saga.error!.detail).toMatch(
      /^step "charge" failed: .*payments\.charge job at .*card declined.*; compensated: reserve$/,
    );
    expect(undone).toEqual(["reserve"]);
  });

  it("canceling the saga cancels the remote job through the cancel link it gave", async () => {
    const saga = await submit({ remote: payments.url, hold: true });
    await vi.waitFor(
      () => expect([...payments.jobs.values()].some((j) => j.input.hold && j.polls > 0)).toBe(true),
      {
        timeout: 15_000,
      },
    );
    const remote = [...payments.jobs.values()].find((j) => j.input.hold)!;
    expect((await http(saga.links.cancel!, { method: "POST" })).status).toBe(200);
    await vi.waitFor(() => expect(remote.canceled).toBe(true), { timeout: 10_000 });
    expect(payments.seen.filter((s) => s.method === "POST" && s.path.startsWith("/control/"))).toEqual([
      expect.objectContaining({ path: `/control/${remote.id}/stop`, status: 200 }),
    ]);
    expect((await finished(saga)).status).toBe("canceled");
    await vi.waitFor(() => expect(undone).toEqual(["reserve"]), { timeout: 10_000 });
  });
});
