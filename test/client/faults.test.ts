/**
 * Faults between client and server, injected by a flaky proxy in front of a real server:
 * retries with backoff, Retry-After on 429, bounded give-up, no retry of other 4xx.
 */
import { createServer } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createClient, HttpError, RetryExhaustedError } from "../../src/client/index.js";
import { echo, sleepJob } from "../../src/demo/jobs.js";
import { startFlakyProxy, type FlakyProxy, type ProxyAction } from "../helpers/flaky-proxy.js";
import { startServer, type TestServer } from "../helpers/server.js";

let server: TestServer;
let proxy: FlakyProxy | undefined;
beforeAll(async () => {
  server = await startServer({ dev: true });
});
afterAll(() => server.close());
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

const FAST = { baseDelayMs: 100, maxDelayMs: 400, attempts: 6, deadlineMs: 20_000 };

describe("faults", () => {
  it("retries 503s and cut connections with backoff, then succeeds; one job only", async () => {
    const script: ProxyAction[] = [{ status: 503 }, "reset", { status: 502 }];
    proxy = await startFlakyProxy(server.url, (n) => script[n - 1] ?? "pass");
    const client = createClient({ baseUrl: proxy.url, retry: FAST });
    const key = `faults-${Date.now()}`;
    const job = await client.submit(echo, { flaky: true }, { idempotencyKey: key });
    expect(await job.result()).toEqual({ flaky: true });
    const submits = proxy.requests.filter((r) => r.method === "POST");
    expect(submits.map((r) => r.action)).toEqual([503, "reset", 502, "pass"]);
    // Backoff: the gaps are bounded by 100, 200, 400 ms (full jitter may make them short).
    const gaps = submits.slice(1).map((r, i) => r.at - submits[i]!.at);
    expect(gaps.every((g, i) => g <= [100, 200, 400][i]! + 1000)).toBe(true); // slack for a loaded machine
    const page = await createClient({ baseUrl: server.url }).list({ type: "demo.echo" }).next();
    expect(page.value && page.value.items.filter((j) => j.id === job.id)).toHaveLength(1);
  });

  it("a submit whose answer was lost is retried with the same key: still one job", async () => {
    // The first submit reaches the server and is committed, but its answer never arrives.
    const keys: string[] = [];
    let dropped = false;
    const client = createClient({
      baseUrl: server.url,
      retry: FAST,
      fetch: async (url, init) => {
        if (init.method === "POST") keys.push(new Headers(init.headers).get("idempotency-key") ?? "");
        const res = await fetch(url, init);
        if (init.method === "POST" && !dropped) {
          dropped = true;
          await res.body?.cancel();
          throw new TypeError("fetch failed (answer lost)");
        }
        return res;
      },
    });
    const before = await countJobs();
    const job = await client.submit(sleepJob, { ms: 50 });
    expect(keys).toHaveLength(2);
    expect(keys[0]).toBe(keys[1]);
    expect(job.replayed).toBe(true);
    expect(await countJobs()).toBe(before + 1);
  });

  it("honours Retry-After on 429", async () => {
    proxy = await startFlakyProxy(server.url, (n) =>
      n === 1 ? { status: 429, headers: { "retry-after": "1" } } : "pass",
    );
    const client = createClient({ baseUrl: proxy.url, retry: { ...FAST, baseDelayMs: 0 } });
    await client.submit(echo, 1);
    const [a, b] = proxy.requests;
    expect(b!.at - a!.at).toBeGreaterThanOrEqual(950);
  });

  it("gives up after the attempts allowed, saying what happened and how long it tried", async () => {
    proxy = await startFlakyProxy(server.url, () => ({ status: 503 }));
    const client = createClient({ baseUrl: proxy.url, retry: { ...FAST, attempts: 4 } });
    const error = await client.submit(echo, 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryExhaustedError);
    const gaveUp = error as RetryExhaustedError;
    expect(gaveUp).toMatchObject({ attempts: 4, lastStatus: 503, reason: "attempts" });
    expect(gaveUp.message).toMatch(
      /^POST http:\/\/127\.0\.0\.1:\d+\/v1\/jobs: gave up after 4 attempts in \d+\.\d s/,
    );
    expect(gaveUp.message).toContain("HTTP 503");
    expect(proxy.requests).toHaveLength(4);
  });

  it("gives up at the overall deadline", async () => {
    proxy = await startFlakyProxy(server.url, () => "reset");
    const client = createClient({
      baseUrl: proxy.url,
      retry: { attempts: 100, baseDelayMs: 200, maxDelayMs: 200, deadlineMs: 1000 },
    });
    const error = (await client
      .get("00000000-0000-4000-8000-000000000000")
      .catch((e: unknown) => e)) as RetryExhaustedError;
    expect(error).toBeInstanceOf(RetryExhaustedError);
    expect(error.reason).toBe("deadline");
    expect(error.lastStatus).toBeNull();
    expect(proxy.requests.length).toBeLessThan(20);
  });

  it("gives up on a server that is not there (connection refused)", async () => {
    const port = await freePort();
    const client = createClient({ baseUrl: `http://127.0.0.1:${port}`, retry: { ...FAST, attempts: 3 } });
    const error = await client.submit(echo, 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryExhaustedError);
    expect((error as Error).message).toMatch(/ECONNREFUSED/);
  });

  it("times out an attempt that gets no answer, and retries it", async () => {
    const client = createClient({
      baseUrl: server.url,
      retry: { ...FAST, timeoutMs: 300 },
      fetch: hangingOnce(),
    });
    expect(await client.run(echo, "after a hang")).toBe("after a hang");
  });

  it("does not retry a 4xx other than 408/429", async () => {
    proxy = await startFlakyProxy(server.url, () => ({ status: 403 }));
    const client = createClient({ baseUrl: proxy.url, retry: FAST });
    await expect(client.submit(echo, 1)).rejects.toBeInstanceOf(HttpError);
    expect(proxy.requests).toHaveLength(1);
  });

  it("retries a poll that fails, and the wait goes on", async () => {
    let gets = 0;
    proxy = await startFlakyProxy(server.url, (_n, req) =>
      req.method === "GET" && gets++ < 2 ? { status: 500 } : "pass",
    );
    const client = createClient({ baseUrl: proxy.url, retry: FAST });
    expect(await client.run(sleepJob, { ms: 300, result: "ok" })).toBe("ok");
    expect(proxy.requests.filter((r) => r.action === 500)).toHaveLength(2);
  });
});

async function countJobs(): Promise<number> {
  let n = 0;
  for await (const page of createClient({ baseUrl: server.url }).list({ limit: 500 })) n += page.items.length;
  return n;
}

/** fetch whose first call never answers (until its signal aborts). */
function hangingOnce() {
  let first = true;
  return (url: string, init: RequestInit): Promise<Response> => {
    if (!first) return fetch(url, init);
    first = false;
    return new Promise((_resolve, reject) =>
      init.signal?.addEventListener("abort", () => reject(init.signal?.reason)),
    );
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
