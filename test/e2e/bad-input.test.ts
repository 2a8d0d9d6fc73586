/**
 * RELIABILITY.md (b) "Bad input": B1 hostile submit bodies, B2 hostile ids and query
 * parameters, B3 hostile headers (rate limits excepted) and the B4 transport cases "a client
 * that aborts mid-body creates no job" and "a client that disconnects during a wait frees its
 * waiter". Every refusal must pass the common criterion (expectProblem), and after every test
 * the BatchGuard checks the job counts, Object.prototype and /healthz.
 */
import { randomUUID } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import {
  BatchGuard,
  countJobs,
  errorPaths,
  expectProblem,
  metricValue,
  until,
  type Problem,
} from "../helpers/pass-criteria.js";
import { guessesFrom } from "../helpers/ids.js";
import { answer, openSocket, rawExchange, rawHead, rawRequest, type Answer } from "../helpers/raw-http.js";
import { bearer, startServer, type TestServer } from "../helpers/server.js";

const PUBLIC_URL = "https://tessera.example";
const BODY_LIMIT = 1_048_576;

let server: TestServer;
let base: string;
let key: string;
let otherKey: string;
let guard: BatchGuard;

beforeAll(async () => {
  server = await startServer({ config: { publicUrl: PUBLIC_URL, concurrency: 50, bodyLimit: BODY_LIMIT } });
  base = server.url;
  key = await server.key("acme");
  otherKey = await server.key("umbrella");
  guard = new BatchGuard(base, { acme: key, umbrella: otherKey });
  await guard.baseline();
});
afterAll(() => server.close());
afterEach(() => guard.check());

/** POST /v1/jobs as acme with exactly these body bytes (Buffer: fetch adds no Content-Type). */
async function submit(
  body: string | Buffer,
  headers: Record<string, string> = {},
  contentType: string | null = "application/json",
): Promise<Answer> {
  const all: Record<string, string> = { ...bearer(key), ...headers };
  if (contentType !== null) all["content-type"] = contentType;
  const res = await fetch(`${base}/v1/jobs`, {
    method: "POST",
    headers: all,
    body: typeof body === "string" ? Buffer.from(body, "utf8") : body,
    redirect: "manual",
  });
  return answer(res);
}

const submitJson = (value: unknown, headers: Record<string, string> = {}) =>
  submit(JSON.stringify(value), headers);

/** A 202 for a new job: the guard expects one more job for `tenant`. */
function expectAccepted(
  a: Answer,
  tenant = "acme",
): { id: string; status: string; deadlineAt: string; links: Record<string, string> } {
  expect(a.status, a.text.slice(0, 300)).toBe(202);
  guard.accepted(tenant);
  return JSON.parse(a.text) as {
    id: string;
    status: string;
    deadlineAt: string;
    links: Record<string, string>;
  };
}

/** A validation problem whose errors point at `path` (or, when given, one of several). */
function expectInvalidAt(
  a: Answer,
  path: string | RegExp,
  slug: string | readonly string[] = "validation-failed",
): Problem {
  const problem = expectProblem(a, 400, slug);
  const paths = errorPaths(problem);
  expect(
    paths.some((p) => (typeof path === "string" ? p === path : path.test(p))),
    `${String(path)} in ${JSON.stringify(paths)}`,
  ).toBe(true);
  return problem;
}

const echo = (extra = "", input = "null") => `{"type":"demo.echo","input":${input}${extra}}`;

async function createJob(tenantKey: string, body: unknown): Promise<string> {
  const res = await fetch(`${base}/v1/jobs`, {
    method: "POST",
    headers: { ...bearer(tenantKey), "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

async function statusOf(id: string, tenantKey = key): Promise<{ status: string; [k: string]: unknown }> {
  const res = await fetch(`${base}/v1/jobs/${id}?onComplete=status`, { headers: bearer(tenantKey) });
  expect([200, 202]).toContain(res.status);
  return (await res.json()) as { status: string };
}

describe("B1 hostile submit bodies", () => {
  it.each([
    ["truncated", "{"],
    ["trailing comma", '{"type":"demo.echo","input":1,}'],
    ["NaN", "NaN"],
    ["Infinity", "Infinity"],
    ["single quotes", "'single'"],
    ["single-quoted keys", "{'type':'demo.echo','input':1}"],
    ["two documents", `${echo()}${echo()}`],
    ["trailing garbage", `${echo()}x`],
    ["raw control character in a string", '{"type":"demo.echo","input":"a\u0001b"}'],
    ["empty body", ""],
  ])("#1 malformed JSON (%s) is 400", async (_label, body) => {
    expectProblem(await submit(body), 400, "invalid-json");
  });

  it.each([
    ["C3 28 inside a string", [0xc3, 0x28]],
    ["a lone continuation byte", [0x80]],
    ["an overlong '/' (C0 AF)", [0xc0, 0xaf]],
    ["a UTF-8-encoded surrogate (ED A0 80)", [0xed, 0xa0, 0x80]],
    ["a truncated 4-byte sequence", [0xf0, 0x9f, 0x98]],
  ])("#2 invalid UTF-8 (%s) is 400", async (_label, bytes) => {
    const body = Buffer.concat([
      Buffer.from('{"type":"demo.echo","input":"a'),
      Buffer.from(bytes),
      Buffer.from('b"}'),
    ]);
    expectProblem(await submit(body), 400, "invalid-json");
  });

  it("#2 invalid UTF-8 inside a key is 400", async () => {
    const body = Buffer.concat([
      Buffer.from('{"type":"demo.echo","input":{"'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('":1}}'),
    ]);
    expectProblem(await submit(body), 400, "invalid-json");
  });

  it.each([
    ["a lone high surrogate in input", echo("", '"\\ud800"'), "/input"],
    ["a lone low surrogate deep in input", echo("", '{"a":["x","\\udc00"]}'), "/input/a/1"],
    ["a reversed surrogate pair", echo("", '"\\udc00\\ud800"'), "/input"],
    ["NUL in input", echo("", '"a\\u0000b"'), "/input"],
    ["NUL in an input key", echo("", '{"a\\u0000":1}'), /^\/input\/a/],
    ["NUL in a metadata value", echo(',"metadata":{"k":"a\\u0000"}'), "/metadata/k"],
    ["a lone surrogate in a metadata value", echo(',"metadata":{"k":"\\ud800"}'), "/metadata/k"],
    ["NUL in a metadata key", echo(',"metadata":{"k\\u0000":"v"}'), /^\/metadata\/k/],
  ])("#3 %s is 400 (the same on every driver)", async (_label, body, path) => {
    expectInvalidAt(await submit(body), path);
  });

  it("#3 positive control: a valid surrogate pair is stored and echoed identically", async () => {
    const input = { s: "\ud83d\ude00 é \u2028", n: "\u00ff" };
    const { id } = expectAccepted(await submitJson({ type: "demo.echo", input }));
    const done = await fetch(`${base}/v1/jobs/${id}?onComplete=stream`, {
      headers: { ...bearer(key), prefer: "wait=10" },
    });
    expect(done.status).toBe(200);
    expect(await done.json()).toEqual(input);
  });

  it.each([
    ["arrays", "[".repeat(10_000) + "]".repeat(10_000)],
    ["objects", '{"a":'.repeat(10_000) + "1" + "}".repeat(10_000)],
    ["unbalanced arrays", "[".repeat(10_000)],
  ])("#4 10,000-deep %s are 400 input-too-deep, fast, without a stack overflow", async (_label, nested) => {
    const started = performance.now();
    const a = await submit(echo("", nested));
    expect(performance.now() - started).toBeLessThan(1000);
    expectProblem(a, 400, "input-too-deep");
  });

  it("#4 the depth limit is exactly 64 (the envelope counts) and brackets inside strings do not count", async () => {
    expectAccepted(await submit(echo("", "[".repeat(63) + "]".repeat(63))));
    expectProblem(await submit(echo("", "[".repeat(64) + "]".repeat(64))), 400, "input-too-deep");
    const brackets = JSON.stringify('x\\"' + "[{".repeat(5000));
    expectAccepted(await submit(echo("", brackets)));
  });

  it("#5 a 100,000-element array under the body limit is handled quickly", async () => {
    const body = echo("", `[${new Array(100_000).fill(0).join(",")}]`);
    expect(body.length).toBeLessThan(BODY_LIMIT);
    const started = performance.now();
    const a = await submit(body);
    expect(performance.now() - started).toBeLessThan(5000);
    if (a.status === 202) expectAccepted(a);
    else expectProblem(a, [400, 413]);
  });

  it("#5 a 100,000-key object under the body limit is handled quickly", async () => {
    const keys = Array.from({ length: 100_000 }, (_, i) => `"${i.toString(36)}":0`);
    const body = echo("", `{${keys.join(",")}}`);
    expect(body.length).toBeLessThan(BODY_LIMIT);
    const started = performance.now();
    const a = await submit(body);
    expect(performance.now() - started).toBeLessThan(5000);
    if (a.status === 202) expectAccepted(a);
    else expectProblem(a, [400, 413]);
  });

  /** A valid echo body of exactly `size` bytes. */
  const bodyOfSize = (size: number) => {
    const frame = echo("", '""');
    return echo("", `"${"x".repeat(size - frame.length)}"`);
  };

  it("#6 a body 1 byte over the limit is 413; exactly at the limit is accepted", async () => {
    expect(Buffer.byteLength(bodyOfSize(BODY_LIMIT + 1))).toBe(BODY_LIMIT + 1);
    expectProblem(await submit(bodyOfSize(BODY_LIMIT + 1)), 413, "payload-too-large");
    expectAccepted(await submit(bodyOfSize(BODY_LIMIT)));
  });

  it("#6 Content-Length: 1073741824 with a small body is 413 at once, without waiting for the body", async () => {
    const a = await rawExchange(base, [
      rawHead("POST", "/v1/jobs", [
        ["Authorization", `Bearer ${key}`],
        ["Content-Type", "application/json"],
        ["Content-Length", "1073741824"],
      ]),
      echo(),
    ]);
    expectProblem(a, 413, "payload-too-large");
  });

  it("#6 a chunked body over the limit is 413 before the last chunk", async () => {
    const head = '{"type":"demo.echo","input":"';
    const chunk = "x".repeat(65_536);
    const chunks = Array.from({ length: 17 }, () => `${chunk.length.toString(16)}\r\n${chunk}\r\n`);
    const a = await rawExchange(base, [
      rawHead("POST", "/v1/jobs", [
        ["Authorization", `Bearer ${key}`],
        ["Content-Type", "application/json"],
        ["Transfer-Encoding", "chunked"],
      ]),
      `${head.length.toString(16)}\r\n${head}\r\n`,
      ...chunks,
      // no terminating chunk: the server must answer without it
    ]);
    expectProblem(a, 413, "payload-too-large");
  });

  it.each([
    ["missing", null],
    ["text/plain", "text/plain"],
    ["application/x-www-form-urlencoded", "application/x-www-form-urlencoded"],
    ["multipart/form-data", "multipart/form-data; boundary=x"],
    ["application/json; charset=utf-16", "application/json; charset=utf-16"],
    ["application/json; charset=iso-8859-1", "application/json; charset=iso-8859-1"],
    ["application/jsonx", "application/jsonx"],
    ["text/json", "text/json"],
  ])("#7 Content-Type %s is 415", async (_label, contentType) => {
    const body = contentType?.includes("utf-16") ? Buffer.from(echo(), "utf16le") : Buffer.from(echo());
    expectProblem(await submit(body, {}, contentType), 415, "unsupported-media-type");
  });

  it.each(["gzip", "br", "deflate", "gzip, identity"])(
    "#7 Content-Encoding %s is 415 with Accept-Encoding: identity, and creates no job",
    async (coding) => {
      const a = await submit(echo(), { "content-encoding": coding });
      expectProblem(a, 415);
      expect(a.headers["accept-encoding"]).toBe("identity");
    },
  );

  it("#7 positive control: Content-Encoding identity is accepted", async () => {
    expectAccepted(await submit(echo(), { "content-encoding": "identity" }));
  });

  it("#7 positive control: application/json with charset=utf-8 is accepted", async () => {
    expectAccepted(await submit(echo(), {}, "application/json; charset=utf-8"));
    expectAccepted(await submit(echo(), {}, 'application/json; charset="UTF-8"'));
  });

  it.each([
    ["__proto__ in the envelope", '{"type":"demo.echo","input":1,"__proto__":{"isAdmin":true}}'],
    [
      "constructor.prototype in the envelope",
      '{"type":"demo.echo","input":1,"constructor":{"prototype":{"x":1}}}',
    ],
    ["__proto__ in metadata", echo(',"metadata":{"__proto__":{"isAdmin":"true"}}')],
    ["constructor.prototype in metadata", echo(',"metadata":{"constructor":{"prototype":{"x":"1"}}}')],
    ["__proto__ in input", echo("", '{"__proto__":{"isAdmin":true}}')],
    ["__proto__ spelled with escapes", echo("", '{"\\u005f_proto__":{"isAdmin":true}}')],
    ["constructor.prototype deep in input", echo("", '[{"a":{"constructor":{"prototype":{"polluted":1}}}}]')],
  ])("#8 %s is 400 and pollutes nothing", async (_label, body) => {
    expectProblem(await submit(body), 400);
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
  });

  it.each([
    ["timeoutSeconds", "-1"],
    ["timeoutSeconds", "0"],
    ["timeoutSeconds", "-0"],
    ["timeoutSeconds", "1e309"],
    ["timeoutSeconds", "1e100"],
    ["timeoutSeconds", "1.5"],
    ["timeoutSeconds", '"10"'],
    ["timeoutSeconds", "null"],
    ["timeoutSeconds", "604801"],
    ["maxAttempts", "0"],
    ["maxAttempts", "-5"],
    ["maxAttempts", "1e9"],
    ["maxAttempts", "101"],
    ["priority", String(2 ** 53 + 1)],
    ["priority", "-9223372036854775808"],
    ["priority", "0.5"],
    ["priority", "101"],
  ])("#9 %s: %s is 400 with errors[].path", async (field, literal) => {
    expectInvalidAt(await submit(echo(`,"${field}":${literal}`)), `/${field}`);
  });

  it("#9 positive control: the bounds themselves are accepted", async () => {
    expectAccepted(await submit(echo(',"timeoutSeconds":604800,"maxAttempts":100,"priority":-100')));
    expectAccepted(await submit(echo(',"timeoutSeconds":1,"maxAttempts":1,"priority":100')));
  });

  it.each([
    ["an impossible date", "2024-13-45T99:99:99Z"],
    ["a year past the JS Date range", "+275760-09-13T00:00:00.001Z"],
    ["not a date", "not a date"],
    ["a leap second", "2016-12-31T23:59:60Z"],
    ["an empty string", ""],
    ["a date only", "2030-01-01"],
  ])("#10 runAt %s is 400", async (_label, runAt) => {
    expectInvalidAt(await submitJson({ type: "demo.echo", input: null, runAt }), "/runAt");
  });

  it("#10 a runAt after the job's own deadline is accepted and queued (the deadline counts from submission)", async () => {
    for (const runAt of [new Date(Date.now() + 2 * 3600_000).toISOString(), "9999-12-31T23:59:59Z"]) {
      const job = expectAccepted(
        await submitJson({ type: "demo.echo", input: null, runAt, timeoutSeconds: 3600 }),
      );
      expect(job.status).toBe("queued");
      expect(Date.parse(job.deadlineAt)).toBeLessThan(Date.parse(runAt));
    }
  });

  it("#10 a runAt in the past (even year 0) means now: the job runs", async () => {
    const { id } = expectAccepted(
      await submitJson({ type: "demo.echo", input: 7, runAt: "0000-01-01T00:00:00Z" }),
    );
    const done = await fetch(`${base}/v1/jobs/${id}?onComplete=status`, {
      headers: { ...bearer(key), prefer: "wait=10" },
    });
    expect(((await done.json()) as { status: string }).status).toBe("succeeded");
  });

  it.each([
    ["../../etc/passwd", "../../etc/passwd"],
    ["__proto__", "__proto__"],
    ["constructor", "constructor"],
    ["toString", "toString"],
    ["hasOwnProperty", "hasOwnProperty"],
    ["valueOf", "valueOf"],
    ["a 10,000-character string", "x".repeat(10_000)],
    ["demo.echo + NUL", "demo.echo\u0000"],
    ["DEMO.ECHO", "DEMO.ECHO"],
    ["with a leading space", " demo.echo"],
    ["with a trailing space", "demo.echo "],
    ["empty", ""],
  ])("#11 type %s is 400 unknown-job-type", async (_label, type) => {
    const problem = expectInvalidAt(await submitJson({ type, input: null }), "/type", "unknown-job-type");
    expect(problem.detail.length).toBeLessThan(500);
  });

  it.each([
    ["a number", 1],
    ["null", null],
    ["an array", ["demo.echo"]],
    ["an object", { toString: "demo.echo" }],
  ])("#11 a type that is %s is 400 at /type", async (_label, type) => {
    expectInvalidAt(await submitJson({ type, input: null }), "/type");
  });

  it.each([
    ["id", '"mine"'],
    ["status", '"succeeded"'],
    ["tenant", '"other"'],
    ["tenantId", '"other"'],
    ["attempt", "99"],
    ["createdAt", '"2020-01-01T00:00:00Z"'],
    ["result", "{}"],
  ])("#12 mass assignment of %s is 400", async (field, literal) => {
    expectInvalidAt(await submit(echo(`,"${field}":${literal}`)), `/${field}`);
  });

  it.each([
    ["a number value", { a: 1 }, "/metadata/a"],
    ["a null value", { a: null }, "/metadata/a"],
    ["an object value", { a: {} }, "/metadata/a"],
    ["an empty key", { "": "v" }, /^\/metadata/],
    [
      "10,000 keys",
      Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, "v"])),
      "/metadata",
    ],
    ["a 1 MB value", { big: "x".repeat(1_000_000) }, "/metadata/big"],
    ["an array", ["a"], "/metadata"],
  ])("#13 metadata with %s is 400", async (_label, metadata, path) => {
    expectInvalidAt(await submitJson({ type: "demo.echo", input: null, metadata }), path);
  });

  it("#13 10,000 non-string metadata values: 400 with a bounded answer", async () => {
    const metadata = Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, i]));
    const started = performance.now();
    const a = await submitJson({ type: "demo.echo", input: null, metadata });
    expect(performance.now() - started).toBeLessThan(2000);
    expectInvalidAt(a, /^\/metadata/);
    expect(a.text.length, "problem size").toBeLessThan(64 * 1024);
  });

  it.each([
    ["javascript:alert(1)", "javascript:alert(1)"],
    ["file:///etc/passwd", "file:///etc/passwd"],
    ["ftp://x", "ftp://x"],
    ["data:,x", "data:,x"],
    ["a relative /x", "/x"],
    ["with user:pass", "http://user:pass@example.com/"],
    ["with a user", "http://user@example.com/"],
    ["of 5,000 characters", `https://example.com/${"a".repeat(5000)}`],
    ["empty", ""],
    ["http:// alone", "http://"],
  ])("#14 callback.url %s is 400", async (_label, url) => {
    expectInvalidAt(await submitJson({ type: "demo.echo", input: null, callback: { url } }), "/callback/url");
  });

  it("#14 unknown callback members and events are 400", async () => {
    expectInvalidAt(
      await submitJson({ type: "demo.echo", input: null, callback: { url: "https://example.com/", x: 1 } }),
      "/callback/x",
    );
    expectInvalidAt(
      await submitJson({
        type: "demo.echo",
        input: null,
        callback: { url: "https://example.com/", events: ["job.hacked"] },
      }),
      /^\/callback\/events/,
    );
  });

  it.each([
    ["a wrong type", { ms: "10" }, "/input/ms"],
    ["a missing required field", {}, /^\/input/],
    ["an extra field", { ms: 1, extra: true }, "/input/extra"],
    ["a value out of range", { ms: -1 }, "/input/ms"],
    ["null", null, "/input"],
  ])("#15 input with %s is 400 with a path into /input", async (_label, input, path) => {
    expectInvalidAt(await submitJson({ type: "demo.sleep", input }), path);
  });

  it.each([
    ["a missing input", '{"type":"demo.echo"}'],
    ["an array", "[]"],
    ["a string", '"demo.echo"'],
    ["null", "null"],
    ["a number", "1"],
    ["true", "true"],
  ])("an envelope that is %s is 400", async (_label, body) => {
    expectProblem(await submit(body), 400, ["validation-failed", "invalid-json"]);
  });
});

describe("B2 hostile ids, paths and query parameters", () => {
  let real: string[];

  beforeAll(async () => {
    real = [];
    for (let i = 0; i < 3; i++) real.push(await createJob(key, { type: "demo.echo", input: i }));
    real.push(await createJob(key, { type: "demo.sleep", input: { ms: 60_000 } }));
    guard.accepted("acme", real.length);
  });

  const ROUTES = [
    ["GET", ""],
    ["GET", "/result"],
    ["POST", "/cancel"],
    ["DELETE", ""],
  ] as const;

  /** [label, path segment as sent, whether it is a well-formed id (so the store is asked)]. */
  function hostileIds(): [string, string, boolean][] {
    const withLetter =
      real.find((id) => /[ace]/.test(id.slice(0, 8))) ?? real.find((id) => /[ace]/.test(id))!;
    const homoglyph = withLetter.replace(/[ace]/, (c) => ({ a: "\u0430", c: "\u0441", e: "\u0435" })[c]!);
    return [
      ["..%2F..%2Fetc%2Fpasswd", "..%2F..%2Fetc%2Fpasswd", false],
      ["../", "../", false],
      ["%00", "%00", false],
      ["%2e%2e", "%2e%2e", false],
      ["a 10,000-character id", "a".repeat(10_000), false],
      ["' OR '1'='1", encodeURIComponent("' OR '1'='1"), false],
      ["1;DROP TABLE jobs", encodeURIComponent("1;DROP TABLE jobs"), false],
      ["a Cyrillic homoglyph of a real id", encodeURIComponent(homoglyph), false],
      ["RTL override + a real id", encodeURIComponent(`\u202e${real[0]!}`), false],
      ["an emoji", encodeURIComponent("\u{1F600}"), false],
      ["the upper-cased real id", real[0]!.toUpperCase(), false],
      ["a real id with a trailing NUL", `${real[0]!}%00`, false],
      ["a real id with a trailing space", `${real[0]!}%20`, false],
      ["a lone %", "%", false],
      ["%zz", "%zz", false],
      ["a truncated percent-encoded character", "%E0%A4%A", false],
      ["0", "0", false],
      ["-1", "-1", false],
      ["null", "null", false],
      ["undefined", "undefined", false],
      ["[object Object]", encodeURIComponent("[object Object]"), false],
      ...guessesFrom(real[0]!).map(([label, id]): [string, string, boolean] => [label, id, true]),
    ];
  }

  it("every {id} route answers hostile ids with 404 (or 400/414) and never a job's data", async () => {
    const get = vi.spyOn(server.tessera.store, "get");
    try {
      for (const [label, segment, wellFormed] of hostileIds()) {
        for (const [method, suffix] of ROUTES) {
          get.mockClear();
          const a = await rawRequest(base, method, `/v1/jobs/${segment}${suffix}`, [
            ["Authorization", `Bearer ${key}`],
          ]);
          const context = `${method} ${label}${suffix}`;
          expect([400, 404, 414], `${context}: ${a.status}`).toContain(a.status);
          const problem = expectProblem(a, [400, 404, 414]);
          const { instance: _instance, ...rest } = problem;
          const leaked = JSON.stringify(rest).toLowerCase();
          for (const id of real) expect(leaked, context).not.toContain(id);
          if (!wellFormed) expect(get, `${context} must not reach the store`).not.toHaveBeenCalled();
          // A well-formed id is looked up (and not found), so the look-alikes above test the store.
          else if (method === "GET" && suffix === "")
            expect(get, `${context} must be looked up`).toHaveBeenCalled();
        }
      }
    } finally {
      get.mockRestore();
    }
    // The real jobs are untouched: none was canceled or deleted through a look-alike id.
    for (const id of real) expect(["queued", "running", "succeeded"]).toContain((await statusOf(id)).status);
  });

  it.each(["-1", "0", "1e9", "abc", "1.5", "", "+5", "0x10", "1,2", "501", "00501"])(
    "limit=%j is 400 invalid-parameter",
    async (limit) => {
      const a = await answer(
        await fetch(`${base}/v1/jobs?limit=${encodeURIComponent(limit)}`, { headers: bearer(key) }),
      );
      expectInvalidAt(a, "limit", "invalid-parameter");
    },
  );

  it("limit 500 is the largest page; above it is 400 invalid-parameter naming limit", async () => {
    const bulkKey = await server.key("bulk");
    const ids: string[] = [];
    for (let batch = 0; batch < 6; batch++) {
      const n = batch < 5 ? 100 : 1;
      ids.push(
        ...(await Promise.all(
          Array.from({ length: n }, (_, i) => createJob(bulkKey, { type: "demo.echo", input: i })),
        )),
      );
    }
    expect(new Set(ids).size).toBe(501);
    const res = await fetch(`${base}/v1/jobs?limit=500`, { headers: bearer(bulkKey) });
    expect(res.status).toBe(200);
    const page = (await res.json()) as { items: { id: string }[]; nextCursor: string | null };
    expect(page.items).toHaveLength(500);
    expect(page.nextCursor).not.toBeNull();
    for (const limit of ["501", "1000", "1000000000", "999999999999"]) {
      const a = await answer(await fetch(`${base}/v1/jobs?limit=${limit}`, { headers: bearer(bulkKey) }));
      expectInvalidAt(a, "limit", "invalid-parameter");
    }
    expect(await countJobs(base, bulkKey)).toBe(501);
  });

  it.each([
    ["garbage", "garbage"],
    ["base64 of garbage JSON", Buffer.from("[1,2,3]").toString("base64url")],
    [
      "a cursor with a non-UUID id",
      Buffer.from(JSON.stringify([Date.now(), "x' OR 1=1"])).toString("base64url"),
    ],
    [
      "a cursor with a huge timestamp",
      Buffer.from(JSON.stringify([1e300, randomUUID()])).toString("base64url"),
    ],
    ["a 10 KB cursor", "A".repeat(10_000)],
  ])("cursor=%s is 400 invalid-parameter", async (_label, cursor) => {
    const a = await answer(
      await fetch(`${base}/v1/jobs?cursor=${encodeURIComponent(cursor)}`, { headers: bearer(key) }),
    );
    expectInvalidAt(a, "cursor", "invalid-parameter");
  });

  it("a 100 KB cursor is refused (400, 414 or 431) without a 5xx", async () => {
    const a = await rawRequest(base, "GET", `/v1/jobs?cursor=${"A".repeat(100_000)}`, [
      ["Authorization", `Bearer ${key}`],
    ]);
    expectProblem(a, [400, 414, 431]);
  });

  it("another tenant's cursor, or a forged one, never widens the listing beyond the caller", async () => {
    const theirs: string[] = [];
    for (let i = 0; i < 3; i++) theirs.push(await createJob(otherKey, { type: "demo.echo", input: i }));
    guard.accepted("umbrella", theirs.length);
    const page = (await (await fetch(`${base}/v1/jobs?limit=1`, { headers: bearer(otherKey) })).json()) as {
      nextCursor: string;
    };
    expect(page.nextCursor).toBeTruthy();
    const forged = Buffer.from(JSON.stringify([Number.MAX_SAFE_INTEGER, randomUUID()])).toString("base64url");
    const mine = new Set<string>();
    for (const cursor of [page.nextCursor, forged]) {
      const res = await fetch(`${base}/v1/jobs?limit=500&cursor=${encodeURIComponent(cursor)}`, {
        headers: bearer(key),
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { items: { id: string }[] };
      for (const item of body.items) {
        expect(theirs).not.toContain(item.id);
        mine.add(item.id);
      }
    }
    for (const id of mine) expect((await statusOf(id)).status).toBeTruthy();
  });

  it.each([
    ["status=__proto__", "status"],
    ["status=constructor", "status"],
    ["status=a&status=b", "status"],
    ["status=queued&status=running", "status"],
    ["status=QUEUED", "status"],
    [`type=${"x".repeat(129)}`, "type"],
    ["type=a&type=b", "type"],
    ["limit=1&limit=2", "limit"],
    ["cursor=a&cursor=b", "cursor"],
    ["type=", "type"],
    ["stauts=failed", "stauts"],
    ["onComplete=status", "onComplete"],
  ])("listing with %s is 400 invalid-parameter", async (query, path) => {
    const a = await answer(await fetch(`${base}/v1/jobs?${query}`, { headers: bearer(key) }));
    expectInvalidAt(a, path, "invalid-parameter");
  });

  it.each(["type[]=x", "__proto__[x]=1", "constructor[prototype][x]=1", "onComplete=evil", "unknown=1"])(
    "listing with %s answers only the caller's jobs",
    async (query) => {
      const res = await fetch(`${base}/v1/jobs?${query}`, { headers: bearer(key) });
      if (res.status === 200) {
        const body = (await res.json()) as { items: { id: string }[] };
        expect(Array.isArray(body.items)).toBe(true);
      } else expectProblem(await answer(res), 400);
      expect(({} as Record<string, unknown>).x).toBeUndefined();
    },
  );

  it.each([
    ["onComplete=evil", "onComplete"],
    ["onComplete=REDIRECT", "onComplete"],
    ["onComplete=stream&onComplete=status", "onComplete"],
    ["onPending=evil", "onPending"],
    ["onPending=__proto__", "onPending"],
    ["onPending=synchronous&onPending=synchronous", "onPending"],
  ])("the status monitor with %s is 400 invalid-parameter", async (query, path) => {
    const a = await answer(await fetch(`${base}/v1/jobs/${real[0]!}?${query}`, { headers: bearer(key) }));
    expectInvalidAt(a, path, "invalid-parameter");
  });
});

describe("B3 hostile headers", () => {
  let pending: string;

  beforeAll(async () => {
    pending = await createJob(key, { type: "demo.sleep", input: { ms: 60_000 } });
    guard.accepted("acme");
  });

  const authHeader = (): [string, string] => ["Authorization", `Bearer ${key}`];
  const json: [string, string] = ["Content-Type", "application/json"];

  describe("Idempotency-Key", () => {
    it.each([
      ["256 characters", "k".repeat(256)],
      ["empty", ""],
      ["a control character", "a\u0001b"],
      ["a tab", "a\tb"],
      ["a space", "a b"],
      ["DEL", "a\u007fb"],
      ["non-ASCII (UTF-8 bytes)", Buffer.from("ключ", "utf8").toString("latin1")],
      ["a Latin-1 character", "caf\u00e9"],
    ])("%s is 400 and creates no job", async (_label, value) => {
      const a = await rawRequest(
        base,
        "POST",
        "/v1/jobs",
        [authHeader(), json, ["Idempotency-Key", value]],
        echo(),
      );
      // Node's parser already refuses control characters in header values (bad-request).
      expectProblem(a, 400, ["invalid-idempotency-key", "bad-request"]);
    });

    it("two Idempotency-Key headers are 400, equal or not", async () => {
      for (const second of ["same-key", "other-key"]) {
        const a = await rawRequest(
          base,
          "POST",
          "/v1/jobs",
          [authHeader(), json, ["Idempotency-Key", "same-key"], ["Idempotency-Key", second]],
          echo(),
        );
        expectProblem(a, 400, "invalid-idempotency-key");
      }
    });

    it("positive control: 255 visible ASCII characters are accepted and replayed", async () => {
      const value = "!~".repeat(127) + "k";
      expect(value).toHaveLength(255);
      const first = await submit(echo(), { "idempotency-key": value });
      expectAccepted(first);
      const again = await submit(echo(), { "idempotency-key": value });
      expect(again.status).toBe(202);
      expect(again.headers["idempotent-replayed"]).toBe("true");
      expect(again.headers.location).toBe(first.headers.location);
    });
  });

  describe("Prefer", () => {
    it.each(["wait=-1", "wait=abc", "wait=1e3", "wait=", "wait=1.5", "wait=0x10", "wait"])(
      "Prefer: %s is ignored: 202 at once, no Preference-Applied",
      async (prefer) => {
        const started = performance.now();
        const a = await submit(JSON.stringify({ type: "demo.sleep", input: { ms: 5000 } }), { prefer });
        expectAccepted(a);
        expect(performance.now() - started).toBeLessThan(2000);
        expect(a.headers["preference-applied"]).toBeUndefined();
      },
    );

    it("Prefer: wait=999999999 is capped at the configured maximum", async () => {
      const a = await submit(JSON.stringify({ type: "demo.sleep", input: { ms: 100, result: "ok" } }), {
        prefer: "wait=999999999",
      });
      expect(a.status).toBe(200);
      guard.accepted("acme");
      expect(a.headers["preference-applied"]).toBe("wait=60");
      expect(JSON.parse(a.text)).toBe("ok");
      const status = await fetch(`${base}/v1/jobs/${pending}`, {
        headers: { ...bearer(key), prefer: "wait=999999999999" },
      });
      // 12 digits is not a valid wait (at most 9): ignored, so the pending job answers at once.
      expect(status.status).toBe(202);
      expect(status.headers.get("preference-applied")).toBeNull();
    });

    it("Prefer: wait=999999999 is held for at most the cap (1 s here)", async () => {
      const small = await startServer({ config: { maxWaitSeconds: 1 } });
      try {
        const smallKey = await small.key("acme");
        const started = performance.now();
        const res = await fetch(`${small.url}/v1/jobs`, {
          method: "POST",
          headers: { ...bearer(smallKey), "content-type": "application/json", prefer: "wait=999999999" },
          body: JSON.stringify({ type: "demo.sleep", input: { ms: 30_000 } }),
        });
        const elapsed = performance.now() - started;
        expect(res.status).toBe(202);
        expect(res.headers.get("preference-applied")).toBe("wait=1");
        expect(elapsed).toBeLessThan(4000);
      } finally {
        await small.close();
      }
    });

    it("two Prefer headers are parsed deterministically (the first valid wait wins)", async () => {
      const cases: [string[], string][] = [
        [["wait=1", "wait=5"], "wait=1"],
        [["wait=abc", "wait=1"], "wait=1"],
        [["respond-async", "wait=1"], "wait=1"],
        [["respond-async, wait=1", "handling=lenient"], "wait=1"],
      ];
      // Each case twice, all at once: the same answer every time.
      const answers = await Promise.all(
        [...cases, ...cases].map(([values]) =>
          rawRequest(base, "GET", `/v1/jobs/${pending}`, [
            authHeader(),
            ...values.map((v) => ["Prefer", v] as [string, string]),
          ]),
        ),
      );
      answers.forEach((a, i) => {
        const [values, applied] = cases[i % cases.length]!;
        expect(a.status, values.join(" + ")).toBe(202);
        expect(a.headers["preference-applied"], values.join(" + ")).toBe(applied);
      });
    });
  });

  describe("Authorization", () => {
    const refused: [string, (k: string) => [string, string][]][] = [
      ["missing", () => []],
      ["Bearer with no token", () => [["Authorization", "Bearer"]]],
      ["Bearer with a blank token", () => [["Authorization", "Bearer    "]]],
      ["Basic credentials", (k) => [["Authorization", `Basic ${Buffer.from(`${k}:`).toString("base64")}`]]],
      ["the key without a scheme", (k) => [["Authorization", k]]],
      ["another scheme", (k) => [["Authorization", `Token ${k}`]]],
      [
        "two valid Authorization headers",
        (k) => [
          ["Authorization", `Bearer ${k}`],
          ["Authorization", `Bearer ${k}`],
        ],
      ],
      [
        "a valid and an empty Authorization header",
        (k) => [
          ["Authorization", `Bearer ${k}`],
          ["Authorization", ""],
        ],
      ],
      ["an 8 KB token", () => [["Authorization", `Bearer tsk_${"a".repeat(8192)}`]]],
      ["the key with a character appended", (k) => [["Authorization", `Bearer ${k}x`]]],
      ["the key with a second token", (k) => [["Authorization", `Bearer ${k} ${k}`]]],
      [
        "the key with one character changed",
        (k) => [["Authorization", `Bearer ${k.slice(0, -1)}${k.endsWith("A") ? "B" : "A"}`]],
      ],
      ["the key upper-cased", (k) => [["Authorization", `Bearer ${k.toUpperCase()}`]]],
    ];

    it("every bad credential is the same 401 problem with WWW-Authenticate: Bearer", async () => {
      const bodies = new Set<string>();
      for (const [label, headers] of refused) {
        const a = await rawRequest(base, "GET", "/v1/jobs", headers(key));
        const problem = expectProblem(a, 401, "unauthorized");
        expect(a.headers["www-authenticate"] ?? "", label).toMatch(/^Bearer\b/);
        bodies.add(JSON.stringify(problem));
      }
      expect(bodies.size).toBe(1);
    });

    it("a key in the query string is refused", async () => {
      const a = await rawRequest(base, "GET", `/v1/jobs?api_key=${key}`);
      const problem = expectProblem(a, 401, "unauthorized");
      expect(JSON.stringify(problem)).not.toContain(key);
    });

    it.each(["bearer", "BEARER", "BeArEr"])(
      "the scheme is case-insensitive: %s <key> is accepted",
      async (scheme) => {
        const a = await rawRequest(base, "GET", "/v1/jobs?limit=1", [["Authorization", `${scheme} ${key}`]]);
        expect(a.status).toBe(200);
      },
    );
  });

  describe("size", () => {
    it("a header block over 16 KiB is 431", async () => {
      const big = await rawRequest(base, "GET", "/v1/jobs", [authHeader(), ["X-Big", "a".repeat(17 * 1024)]]);
      expectProblem(big, 431, "header-too-large");
      const many = await rawRequest(base, "GET", "/v1/jobs", [
        authHeader(),
        ...Array.from({ length: 100 }, (_, i) => [`X-Filler-${i}`, "b".repeat(200)] as [string, string]),
      ]);
      expectProblem(many, 431, "header-too-large");
    });

    it("200 distinct headers are accepted or 431, never 5xx", async () => {
      const a = await rawRequest(base, "GET", "/v1/jobs?limit=1", [
        authHeader(),
        ...Array.from({ length: 200 }, (_, i) => [`X-H-${i}`, String(i)] as [string, string]),
      ]);
      if (a.status !== 200) expectProblem(a, 431);
    });
  });

  describe("Host and forwarding headers (trust proxy off)", () => {
    const poison: [string, string][] = [
      ["Host", "evil.example"],
      ["X-Forwarded-Host", "evil.example"],
      ["X-Forwarded-Proto", "javascript"],
      ["Forwarded", "host=evil.example;proto=javascript"],
    ];

    it("Location, links and signed URLs use the configured public URL", async () => {
      const submitted = await rawRequest(
        base,
        "POST",
        "/v1/jobs",
        [authHeader(), json, ...poison],
        echo("", '"poison"'),
      );
      const job = expectAccepted(submitted);
      const urls = [submitted.headers.location!, ...Object.values(job.links)];
      await until(
        async () => (await statusOf(job.id)).status,
        (s) => s === "succeeded",
        5000,
      );
      const done = await rawRequest(base, "GET", `/v1/jobs/${job.id}`, [authHeader(), ...poison]);
      expect(done.status).toBe(303);
      urls.push(
        done.headers.location!,
        ...Object.values((JSON.parse(done.text) as { links: Record<string, string> }).links),
      );
      const pendingAnswer = await rawRequest(base, "GET", `/v1/jobs/${pending}`, [authHeader(), ...poison]);
      urls.push(pendingAnswer.headers.location!);
      expect(urls.length).toBeGreaterThanOrEqual(6);
      for (const url of urls) {
        expect(url.startsWith(`${PUBLIC_URL}/`), url).toBe(true);
        expect(url).not.toMatch(/evil|javascript/);
      }
    });

    it("without a public URL, X-Forwarded-* is ignored and a malformed Host falls back", async () => {
      const plain = await startServer();
      try {
        const plainKey = await plain.key("acme");
        const own = new URL(plain.url).host;
        const forwarded = await rawRequest(
          plain.url,
          "POST",
          "/v1/jobs",
          [
            ["Host", own],
            ["Authorization", `Bearer ${plainKey}`],
            json,
            ["X-Forwarded-Host", "evil.example"],
            ["X-Forwarded-Proto", "javascript"],
          ],
          echo(),
        );
        expect(forwarded.status).toBe(202);
        expect(forwarded.headers.location!.startsWith(`http://${own}/`)).toBe(true);
        const malformed = await rawRequest(
          plain.url,
          "POST",
          "/v1/jobs",
          [["Host", 'evil.example/"><script>'], ["Authorization", `Bearer ${plainKey}`], json],
          echo(),
        );
        if (malformed.status === 202) expect(malformed.headers.location!).not.toMatch(/evil|script|"/);
        else expectProblem(malformed, 400);
      } finally {
        await plain.close();
      }
    });
  });

  describe("framing", () => {
    const body = echo("", '"framing"');
    it.each([
      ["Content-Length: -1", [["Content-Length", "-1"]]],
      ["Content-Length: abc", [["Content-Length", "abc"]]],
      ["Content-Length: 1e3", [["Content-Length", "1e3"]]],
      [
        "two different Content-Length headers",
        [
          ["Content-Length", String(body.length)],
          ["Content-Length", String(body.length + 1)],
        ],
      ],
      ["Content-Length: n, n+1", [["Content-Length", `${body.length}, ${body.length + 1}`]]],
      [
        "Transfer-Encoding: chunked with Content-Length",
        [
          ["Transfer-Encoding", "chunked"],
          ["Content-Length", String(body.length)],
        ],
      ],
      [
        "Content-Length with Transfer-Encoding: chunked",
        [
          ["Content-Length", "4"],
          ["Transfer-Encoding", "chunked"],
        ],
      ],
      [
        "Transfer-Encoding: identity",
        [
          ["Transfer-Encoding", "identity"],
          ["Content-Length", String(body.length)],
        ],
      ],
      ["Transfer-Encoding: xchunked", [["Transfer-Encoding", "xchunked"]]],
      ["Transfer-Encoding: chunked, identity", [["Transfer-Encoding", "chunked, identity"]]],
    ] as [string, [string, string][]][])("%s is 400 and creates no job", async (_label, framing) => {
      const a = await rawExchange(base, [
        rawHead("POST", "/v1/jobs", [authHeader(), json, ...framing]),
        body,
      ]);
      expectProblem(a, 400);
    });

    it("a smuggled request behind TE + CL is never executed", async () => {
      const smuggled = `POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
      const a = await rawExchange(base, [
        rawHead("POST", "/v1/jobs", [
          authHeader(),
          json,
          ["Content-Length", "5"],
          ["Transfer-Encoding", "chunked"],
          ["Connection", "keep-alive"],
        ]),
        `0\r\n\r\n${smuggled}`,
      ]);
      expectProblem(a, 400);
      await new Promise((resolve) => setTimeout(resolve, 200));
    });

    it("an obs-folded header is 400", async () => {
      const a = await rawExchange(base, [
        `POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nContent-Type: application/json\r\nX-Folded: a\r\n b\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
        body,
      ]);
      expectProblem(a, 400);
    });
  });
});

describe("B4 broken transport", () => {
  it("a client that aborts mid-body creates no job", async () => {
    const body = echo("", '"aborted"');
    const variants: (string | Buffer)[][] = [
      // Content-Length framing: half the body, then the last byte missing.
      [
        rawHead("POST", "/v1/jobs", [
          ["Authorization", `Bearer ${key}`],
          ["Content-Type", "application/json"],
          ["Content-Length", String(body.length)],
        ]),
        body.slice(0, body.length / 2),
      ],
      [
        rawHead("POST", "/v1/jobs", [
          ["Authorization", `Bearer ${key}`],
          ["Content-Type", "application/json"],
          ["Content-Length", String(body.length)],
        ]),
        body.slice(0, -1),
      ],
      // A complete JSON document, but Content-Length promised one byte more.
      [
        rawHead("POST", "/v1/jobs", [
          ["Authorization", `Bearer ${key}`],
          ["Content-Type", "application/json"],
          ["Content-Length", String(body.length + 1)],
        ]),
        body,
      ],
      // Chunked: the whole document in one chunk, but no terminating chunk.
      [
        rawHead("POST", "/v1/jobs", [
          ["Authorization", `Bearer ${key}`],
          ["Content-Type", "application/json"],
          ["Transfer-Encoding", "chunked"],
        ]),
        `${body.length.toString(16)}\r\n${body}\r\n`,
      ],
    ];
    for (const parts of variants) {
      const socket = await openSocket(base);
      for (const part of parts) socket.write(part);
      await new Promise((resolve) => setTimeout(resolve, 100));
      socket.destroy();
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    // guard.check() (afterEach) verifies that no job appeared.
  });

  const waiters = () => metricValue(base, "tessera_waiters");

  it.each([
    [
      "GET with Prefer: wait",
      (id: string) =>
        rawHead("GET", `/v1/jobs/${id}`, [
          ["Authorization", `Bearer ${key}`],
          ["Prefer", "wait=30"],
        ]),
    ],
    [
      "GET with onPending=synchronous",
      (id: string) =>
        rawHead("GET", `/v1/jobs/${id}?onPending=synchronous`, [["Authorization", `Bearer ${key}`]]),
    ],
    [
      "GET with onComplete=stream and Prefer: wait",
      (id: string) =>
        rawHead("GET", `/v1/jobs/${id}?onComplete=stream`, [
          ["Authorization", `Bearer ${key}`],
          ["Prefer", "wait=30"],
        ]),
    ],
  ])("a client that disconnects during a wait (%s) frees its waiter within 1 s", async (_label, head) => {
    const id = await createJob(key, { type: "demo.sleep", input: { ms: 30_000 } });
    guard.accepted("acme");
    expect(await waiters()).toBe(0);
    const socket = await openSocket(base);
    socket.write(head(id));
    expect(await until(waiters, (n) => n === 1, 2000)).toBe(1);
    socket.destroy();
    const started = performance.now();
    expect(await until(waiters, (n) => n === 0, 1000)).toBe(0);
    expect(performance.now() - started).toBeLessThan(1000);
    await fetch(`${base}/v1/jobs/${id}/cancel`, { method: "POST", headers: bearer(key) });
  });

  it("a client that disconnects during a submit with Prefer: wait frees its waiter; the job stays accepted", async () => {
    const body = JSON.stringify({ type: "demo.sleep", input: { ms: 30_000 } });
    const socket = await openSocket(base);
    socket.write(
      rawHead("POST", "/v1/jobs", [
        ["Authorization", `Bearer ${key}`],
        ["Content-Type", "application/json"],
        ["Content-Length", String(body.length)],
        ["Prefer", "wait=30"],
      ]) + body,
    );
    expect(await until(waiters, (n) => n === 1, 2000)).toBe(1);
    guard.accepted("acme"); // committed before the wait began
    socket.destroy();
    expect(await until(waiters, (n) => n === 0, 1000)).toBe(0);
  });
});
