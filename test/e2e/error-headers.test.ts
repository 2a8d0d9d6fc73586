/**
 * Every error answer carries the headers every answer must (nosniff, no-referrer, the CSP and
 * `Cache-Control: no-store`), whoever wrote it: our routes, Fastify's own refusals (404, 405,
 * 413, 415, bad JSON, bad percent-encoding, 503 while closing), Node's HTTP parser (400, 408,
 * 431) and the result resource's persisted problems. One walk over all of them, real sockets.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openSocket, rawExchange, rawHead, rawRequest, type Answer } from "../helpers/raw-http.js";
import { bearer, http, startServer, type TestServer } from "../helpers/server.js";
import { settle, submit, type Client, type Job } from "./support.js";

/** An answer as a name → value lookup, from fetch or from a raw socket. */
type Headers = { get(name: string): string | null };
const rawHeaders = (a: Answer): Headers => ({ get: (name) => a.headers[name.toLowerCase()] ?? null });

function expectEveryAnswerHeader(label: string, status: number, expected: number, headers: Headers) {
  expect(status, label).toBe(expected);
  expect(headers.get("x-content-type-options"), `${label}: nosniff`).toBe("nosniff");
  expect(headers.get("referrer-policy"), `${label}: referrer-policy`).toBe("no-referrer");
  expect(headers.get("content-security-policy"), `${label}: CSP`).toBe(
    "default-src 'none'; frame-ancestors 'none'",
  );
  expect(headers.get("cache-control"), `${label}: cache-control`).toBe("no-store");
  if (status >= 400)
    expect(headers.get("content-type"), `${label}: problem`).toMatch(/^application\/problem\+json/);
}

let server: TestServer;
let c: Client;
const json = { "content-type": "application/json" };

beforeAll(async () => {
  server = await startServer({
    config: { bodyLimit: 4096, maxHeaderBytes: 2048, requestTimeout: 600, headersTimeout: 500, ratePoll: 40 },
  });
  c = { base: server.url, headers: bearer(await server.key("acme")) };
});
afterAll(() => server.close());

describe("headers on every error answer", () => {
  it("answers written by the routes and by Fastify itself", async () => {
    const u = server.url;
    const cases: [string, Promise<Response>, number][] = [
      ["unknown route", http(`${u}/nope`, { headers: c.headers }), 404],
      ["unknown route, HEAD", http(`${u}/nope`, { method: "HEAD", headers: c.headers }), 404],
      [
        "unknown job",
        http(`${u}/v1/jobs/job_00000000000000000000000000000000000000000000`, { headers: c.headers }),
        404,
      ],
      ["malformed id", http(`${u}/v1/jobs/x`, { headers: c.headers }), 404],
      ["method not allowed", http(`${u}/v1/jobs`, { method: "PUT", headers: c.headers }), 405],
      ["method not allowed, public route", http(`${u}/healthz`, { method: "DELETE" }), 405],
      ["no key", http(`${u}/v1/jobs`), 401],
      ["bad key", http(`${u}/v1/jobs`, { headers: bearer("tsk_nope") }), 401],
      [
        "body too large",
        http(`${u}/v1/jobs`, { headers: { ...c.headers, ...json }, body: "x".repeat(5000) }),
        413,
      ],
      [
        "wrong media type",
        http(`${u}/v1/jobs`, { headers: { ...c.headers, "content-type": "text/plain" }, body: "{}" }),
        415,
      ],
      [
        "compressed body",
        http(`${u}/v1/jobs`, { headers: { ...c.headers, ...json, "content-encoding": "gzip" }, body: "{}" }),
        415,
      ],
      ["bad JSON", http(`${u}/v1/jobs`, { headers: { ...c.headers, ...json }, body: "{" }), 400],
      ["empty JSON body", http(`${u}/v1/jobs`, { method: "POST", headers: { ...c.headers, ...json } }), 400],
      ["invalid envelope", http(`${u}/v1/jobs`, { headers: c.headers, json: { type: "demo.echo" } }), 400],
      [
        "unknown type",
        http(`${u}/v1/jobs`, { headers: c.headers, json: { type: "nope", input: null } }),
        400,
      ],
      [
        "bad Idempotency-Key",
        http(`${u}/v1/jobs`, {
          headers: { ...c.headers, "idempotency-key": "" },
          json: { type: "demo.echo", input: 1 },
        }),
        400,
      ],
      ["bad listing parameter", http(`${u}/v1/jobs?limit=501`, { headers: c.headers }), 400],
      ["bad percent-encoding", http(`${u}/v1/jobs/%zz`, { headers: c.headers }), 400],
      ["unknown problem type", http(`${u}/problems/nope`), 404],
      [
        "bad signature",
        http(`${u}/v1/jobs/job_00000000000000000000000000000000000000000000/result?sig=x`),
        403,
      ],
    ];
    for (const [label, pending, status] of cases) {
      const res = await pending;
      expectEveryAnswerHeader(label, res.status, status, res.headers);
    }
  });

  it("answers Node's HTTP parser writes before Fastify sees the request (400, 431, 408)", async () => {
    const garbage = await rawExchange(server.url, "NOT HTTP AT ALL\r\n\r\n");
    expectEveryAnswerHeader("malformed request", garbage.status, 400, rawHeaders(garbage));
    const smuggled = await rawExchange(
      server.url,
      rawHead("POST", "/v1/jobs", [
        ["Content-Length", "2"],
        ["Transfer-Encoding", "chunked"],
      ]),
    );
    expectEveryAnswerHeader(
      "Content-Length with Transfer-Encoding",
      smuggled.status,
      400,
      rawHeaders(smuggled),
    );
    const huge = await rawRequest(server.url, "GET", "/v1/jobs", [["X-Big", "x".repeat(4000)]]);
    expectEveryAnswerHeader("header too large", huge.status, 431, rawHeaders(huge));
    const slow = await rawExchange(
      server.url,
      rawHead("POST", "/v1/jobs", [
        ["Authorization", c.headers.authorization!],
        ["Content-Type", "application/json"],
        ["Content-Length", "100"],
        ["Connection", "keep-alive"],
      ]),
      { timeoutMs: 5000 },
    );
    expectEveryAnswerHeader("request timeout", slow.status, 408, rawHeaders(slow));
  });

  it("the rate limit's 429", async () => {
    let limited: Response | null = null;
    for (let i = 0; i < 200 && !limited; i++) {
      const res = await http(`${server.url}/v1/jobs?limit=1`, { headers: c.headers });
      if (res.status === 429) limited = res;
    }
    expect(limited, "no 429 within 200 polls at 40/s").not.toBeNull();
    expectEveryAnswerHeader("rate limited", limited!.status, 429, limited!.headers);
    await new Promise((r) => setTimeout(r, 1100)); // the window resets
  });

  it("the result resource's pending answer and persisted problems, with credentials and at a signed URL", async () => {
    const ended = async (body: Record<string, unknown>, expected: string): Promise<Job> => {
      const { job } = await submit(c, body);
      const done = await settle(c, job.id);
      expect(done.status).toBe(expected);
      return done;
    };
    const queued = (
      await submit(c, { type: "demo.echo", input: 1, runAt: new Date(Date.now() + 60_000).toISOString() })
    ).job;
    const rejected = await ended({ type: "demo.fail", input: { message: "no", status: 422 } }, "failed");
    const failed = await ended({ type: "demo.fail", input: { message: "boom" }, maxAttempts: 1 }, "failed");
    const timedOut = await ended({ type: "demo.sleep", input: { ms: 5000 }, timeoutSeconds: 1 }, "timed_out");
    const canceled = (await submit(c, { type: "demo.sleep", input: { ms: 60_000 } })).job;
    await http(`${server.url}/v1/jobs/${canceled.id}/cancel`, { method: "POST", headers: c.headers });
    const cancelFinished = await http(`${server.url}/v1/jobs/${failed.id}/cancel`, {
      method: "POST",
      headers: c.headers,
    });
    expectEveryAnswerHeader("cancel of a finished job", cancelFinished.status, 409, cancelFinished.headers);

    const cases: [string, Job, number][] = [
      ["pending", queued, 202],
      ["rejected", rejected, 422],
      ["failed", failed, 500],
      ["timed out", timedOut, 504],
      ["canceled", canceled, 409],
    ];
    for (const [label, job, status] of cases) {
      const res = await http(`${server.url}/v1/jobs/${job.id}/result`, { headers: c.headers });
      expectEveryAnswerHeader(`result: ${label}`, res.status, status, res.headers);
      if (job.links.result) {
        const signed = await http(job.links.result);
        expectEveryAnswerHeader(`signed result: ${label}`, signed.status, status, signed.headers);
        const tampered = await http(`${job.links.result}x`);
        expectEveryAnswerHeader(`tampered signed result: ${label}`, tampered.status, 403, tampered.headers);
      }
    }
    await http(`${server.url}/v1/jobs/${failed.id}`, { method: "DELETE", headers: c.headers });
    const gone = await http(failed.links.result!);
    expectEveryAnswerHeader("signed result of a deleted job", gone.status, 404, gone.headers);
  });

  it("the 503 of a server that is closing, to a request that arrives on a busy connection", async () => {
    const closing = await startServer({ config: { shutdownGraceMs: 200 } });
    const key = await closing.key("acme");
    const socket = await openSocket(closing.url);
    let data = "";
    socket.on("data", (chunk: Buffer) => (data += chunk.toString("latin1")));
    const ended = new Promise((resolve) => socket.once("close", resolve));
    // A submit whose body is still arriving keeps the connection busy while the server closes;
    // the request sent behind it on the same connection is read after close has begun.
    const body = JSON.stringify({ type: "demo.echo", input: 1 });
    socket.write(
      rawHead("POST", "/v1/jobs", [
        ["Authorization", `Bearer ${key}`],
        ["Content-Type", "application/json"],
        ["Content-Length", String(body.length)],
        ["Connection", "keep-alive"],
      ]) + body.slice(0, 5),
    );
    await new Promise((r) => setTimeout(r, 200));
    const closed = closing.close();
    await new Promise((r) => setTimeout(r, 300));
    socket.write(body.slice(5) + rawHead("GET", "/healthz", [["Connection", "keep-alive"]]));
    await Promise.race([ended, new Promise((r) => setTimeout(r, 3000))]);
    socket.destroy();
    await closed;
    const heads = data.split("HTTP/1.1 ").slice(1);
    expect(heads.length, data).toBe(2);
    const second = heads[1]!;
    const status = Number(second.slice(0, 3));
    const lines = second.slice(0, second.indexOf("\r\n\r\n")).split("\r\n").slice(1);
    const headers = new Map(
      lines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]),
    );
    expectEveryAnswerHeader("closing", status, 503, { get: (n) => headers.get(n) ?? null });
    expect(headers.get("retry-after")).toBe("1");
    expect(second).toContain("/problems/service-unavailable");
  });
});
