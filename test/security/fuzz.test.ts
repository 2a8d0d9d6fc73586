/**
 * RELIABILITY.md B5, property-based fuzzing: random submit envelopes, header sets, ids and
 * query strings, and methods × paths, each sent over a raw socket (node:net, so header values
 * fetch would refuse still reach the server). The property for every answer:
 * - never a 5xx;
 * - every 4xx is `application/problem+json` whose `type` is `/problems/<slug>` for a slug of
 *   the registry (src/jobs/problems.ts), with `status` equal to the HTTP status;
 * - every new job the server acknowledged exists (the job count moves by exactly those);
 * and after each property the server is still up (/healthz in < 1 s), Object.prototype is
 * untouched. The seed is fixed (`0x7e55e7a`); fast-check prints it and the shrunk counterexample
 * on failure.
 */
import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Config } from "../../src/config.js";
import { PROBLEMS } from "../../src/jobs/problems.js";
import { BatchGuard, STACK_FRAME } from "../helpers/pass-criteria.js";
import { rawRequest, type Answer } from "../helpers/raw-http.js";
import { bearer, startServer, type TestServer } from "../helpers/server.js";

const SEED = 0x7e55e7a;
/** Per property; RELIABILITY.md asks 300 in CI (2,000 locally): FUZZ_RUNS overrides. */
const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

let server: TestServer;
let base: string;
let key: string;
let guard: BatchGuard;
/** Real ids (a finished and a long-running job), so fuzzed paths also reach existing jobs. */
const realIds: string[] = [];

beforeAll(async () => {
  // Waits capped at 1 s, so a fuzzed `Prefer: wait` never holds a run for long; rate limits
  // high enough that the fuzzer's own pace is never limited (those have their own tests).
  const config = {
    maxWaitSeconds: 1,
    concurrency: 20,
    rateSubmit: 1_000_000,
    ratePoll: 1_000_000,
    pollBudget: false,
  } as unknown as Partial<Config>;
  server = await startServer({ config });
  base = server.url;
  key = await server.key("fuzz");
  for (const body of [
    { type: "demo.echo", input: { n: 1 } },
    { type: "demo.sleep", input: { ms: 600_000 } },
  ]) {
    const res = await fetch(`${base}/v1/jobs`, {
      method: "POST",
      headers: { ...bearer(key), "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(202);
    realIds.push(((await res.json()) as { id: string }).id);
  }
  guard = new BatchGuard(base, { fuzz: key });
  await guard.baseline();
});
afterAll(async () => {
  if (process.env.FUZZ_STATS)
    console.log(
      [...seen]
        .sort()
        .map(([k, n]) => `${k}: ${n}`)
        .join("\n"),
    );
  await server?.close();
});
afterEach(() => guard.check());

const SLUGS = new Set(Object.keys(PROBLEMS));

/** Answers seen per "status slug" (FUZZ_STATS=1 prints them: is the fuzzer reaching anything?). */
const seen = new Map<string, number>();

/** The property every answer must have; also keeps the guard's job count in step. */
function check(a: Answer, method: string, target: string): void {
  const slug = /"type":"\/problems\/([a-z0-9-]+)"/.exec(a.text)?.[1] ?? "";
  seen.set(`${a.status} ${slug}`, (seen.get(`${a.status} ${slug}`) ?? 0) + 1);
  const context = `${method} ${target.slice(0, 200)} → ${a.status} ${a.text.slice(0, 300)}`;
  expect(a.status, context).toBeGreaterThanOrEqual(100);
  expect(a.status, context).toBeLessThan(500);
  expect(a.headers["x-content-type-options"], context).toBe("nosniff");
  const path = target.split("?")[0]!;
  if (method === "POST" && path === "/v1/jobs" && a.headers["idempotent-replayed"] !== "true") {
    // A new job: 202, or a direct answer after a wait, which names the job in Content-Location.
    if (a.status === 202 || a.headers["content-location"] !== undefined) guard.accepted("fuzz");
  }
  if (method === "DELETE" && a.status === 204) guard.accepted("fuzz", -1);
  if (a.status < 400) return;
  expect(a.headers["content-type"] ?? "", context).toMatch(/^application\/problem\+json\b/);
  if (method === "HEAD") return;
  expect(a.text, context).not.toMatch(STACK_FRAME);
  const body = JSON.parse(a.text) as { type: unknown; status: unknown; title: unknown };
  expect(typeof body.type, context).toBe("string");
  const type = body.type as string;
  expect(type, context).toMatch(/^\/problems\/[a-z0-9-]+$/);
  expect(SLUGS.has(type.slice("/problems/".length)), `registered type: ${context}`).toBe(true);
  expect(body.status, context).toBe(a.status);
  expect(typeof body.title, context).toBe("string");
}

async function send(
  method: string,
  target: string,
  headers: [string, string][],
  body?: string | Buffer,
): Promise<void> {
  const a = await rawRequest(base, method, target, headers, body, { timeoutMs: 10_000 });
  check(a, method, target);
}

const PARAMS = { seed: SEED, numRuns: RUNS, endOnFailure: true } as const;

// --- arbitraries ----------------------------------------------------------------------------

const PRINTABLE = fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c));
const printable = (maxLength = 40) => fc.string({ unit: PRINTABLE, maxLength });
/** Header-safe: no CR/LF (they would change the framing, which is not what is fuzzed here). */
const headerValue = fc.oneof(
  printable(80),
  fc.string({ unit: "grapheme", maxLength: 20 }).filter((s) => !/[\r\n]/.test(s)),
  fc.string({ unit: "binary", maxLength: 20 }).filter((s) => !/[\r\n]/.test(s)),
);
const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
const nastyString = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.string({ unit: "grapheme", maxLength: 30 }),
  fc.string({ unit: "binary", maxLength: 30 }),
  fc.tuple(fc.string({ maxLength: 5 }), loneSurrogate, fc.string({ maxLength: 5 })).map((p) => p.join("")),
  fc.constantFrom(
    "__proto__",
    "constructor",
    "prototype",
    "toString",
    "hasOwnProperty",
    "\u0000",
    "demo.echo",
    "DEMO.ECHO",
    "demo.echo\u0000",
    "../../etc/passwd",
    "\u202e",
    "x".repeat(5000),
  ),
);
const number = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -0, 1, -1, 1.5, 2 ** 53 + 1, -(2 ** 63), Number.MAX_VALUE, Number.MIN_VALUE, 1e100),
);
const { value: anyValue } = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    nastyString,
    number,
    fc.boolean(),
    fc.constant(null),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(nastyString, tie("value"), { maxKeys: 4 }),
  ),
}));
/** Number literals JSON.stringify cannot produce (out of range, huge precision, exponents). */
const rawNumber = fc.constantFrom(
  "1e309",
  "-1e309",
  "1e-400",
  "123456789012345678901234567890",
  "-0",
  "0.0000000000000000000000001",
  "1E2",
  "9007199254740993",
);
const FIELDS = [
  "type",
  "input",
  "callback",
  "timeoutSeconds",
  "maxAttempts",
  "priority",
  "runAt",
  "metadata",
] as const;
const field = fc.oneof(
  fc.constantFrom(...FIELDS, "id", "status", "tenant", "attempt", "createdAt", "__proto__", "constructor"),
  nastyString,
);
/** Submit bodies: any JSON, or a valid envelope with one field replaced, dropped or added. */
const envelopeText = fc.oneof(
  anyValue.map((v) => JSON.stringify(v)),
  fc.record({ name: field, value: anyValue, drop: fc.boolean() }).map(({ name, value, drop }) => {
    const base: Record<string, unknown> = { type: "demo.echo", input: { n: 1 } };
    if (drop) delete base[name];
    else Object.defineProperty(base, name, { value, enumerable: true, writable: true, configurable: true });
    return JSON.stringify(base);
  }),
  fc
    .record({ name: field, literal: rawNumber })
    .map(({ name, literal }) => `{"type":"demo.echo","input":1,${JSON.stringify(name)}:${literal}}`),
  rawNumber.map((literal) => `{"type":"demo.echo","input":${literal}}`),
  fc.constantFrom(
    "",
    "{",
    "[",
    "null",
    '"x"',
    "{}",
    "[]",
    "NaN",
    "{'a':1}",
    '{"type":"demo.echo","input":1,}',
  ),
);

const CONTENT_TYPES = [
  "application/json",
  "application/json; charset=utf-8",
  'application/json; charset="UTF-8"',
  "application/json; charset=utf-16",
  "application/json; charset=",
  "APPLICATION/JSON",
  "application/json;;",
  "application/problem+json",
  "application/merge-patch+json",
  "text/plain",
  "text/json",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "*/*",
  "",
];
const PREFERS = [
  "wait=1",
  "wait=0",
  "wait=-1",
  "wait=abc",
  "wait=1e3",
  "wait=999999999",
  "respond-async",
  "respond-async, wait=1",
  "return=minimal",
  "wait",
  "wait=",
  'wait="1"',
];
/** Random header sets (B3): each header present or not, from a list or random. */
const headerSet = fc
  .record({
    auth: fc.oneof(
      { weight: 8, arbitrary: fc.constant("key") },
      { weight: 1, arbitrary: fc.constant("none") },
      { weight: 1, arbitrary: headerValue },
    ),
    contentType: fc.option(fc.oneof(fc.constantFrom(...CONTENT_TYPES), headerValue), { nil: undefined }),
    prefer: fc.option(fc.oneof(fc.constantFrom(...PREFERS), headerValue), { nil: undefined }),
    preferTwice: fc.boolean(),
    idempotencyKey: fc.option(fc.oneof(printable(300), headerValue, fc.constant(""), fc.uuid()), {
      nil: undefined,
    }),
    accept: fc.option(
      fc.oneof(
        fc.constantFrom("application/json", "application/problem+json", "text/html", "*/*", "image/png"),
        headerValue,
      ),
      { nil: undefined },
    ),
    extra: fc.array(
      fc.tuple(
        fc.oneof(
          fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,19}$/),
          fc.constantFrom("Expect", "TE", "Range", "If-None-Match", "X-Forwarded-Host", "Origin"),
        ),
        headerValue,
      ),
      {
        maxLength: 4,
      },
    ),
  })
  .map((h) => {
    const out: [string, string][] = [];
    if (h.auth === "key") out.push(["Authorization", `Bearer ${key}`]);
    else if (h.auth !== "none") out.push(["Authorization", h.auth]);
    if (h.contentType !== undefined) out.push(["Content-Type", h.contentType]);
    if (h.prefer !== undefined) {
      out.push(["Prefer", h.prefer]);
      if (h.preferTwice) out.push(["Prefer", "wait=1"]);
    }
    if (h.idempotencyKey !== undefined) out.push(["Idempotency-Key", h.idempotencyKey]);
    if (h.accept !== undefined) out.push(["Accept", h.accept]);
    for (const [name, value] of h.extra) {
      // Framing and connection headers are B3's own cases, not fuzzed here.
      if (/^(content-length|transfer-encoding|host|connection|upgrade)$/i.test(name)) continue;
      out.push([name, value]);
    }
    return out;
  });

/** Every byte of the UTF-8 form percent-encoded (lone surrogates become U+FFFD, never a throw). */
function percentEncode(text: string): string {
  return [...Buffer.from(text, "utf8")].map((b) => `%${b.toString(16).padStart(2, "0")}`).join("");
}

/** Path segments as an attacker would send them: encoded, raw, malformed escapes, real ids. */
const rawSegment = fc.string({
  unit: PRINTABLE.filter((c) => !" #?".includes(c)),
  maxLength: 60,
});
const idSegment = fc.oneof(
  fc.constantFrom(
    "..",
    ".",
    "%2e%2e",
    "..%2F..%2Fetc%2Fpasswd",
    "%00",
    "%zz",
    "%",
    "%c0%af",
    "%ff%fe",
    "%E2%80%AE",
    "-1",
    "0",
    "null",
    "undefined",
    "[object Object]",
    "' OR '1'='1",
    "x".repeat(300),
  ),
  fc.uuid().map((u) => u),
  fc.constant("REAL0"),
  fc.constant("REAL1"),
  fc.constant("REAL0-upper"),
  nastyString.map(percentEncode),
  rawSegment,
);
function resolveId(segment: string): string {
  if (segment === "REAL0") return realIds[0]!;
  if (segment === "REAL1") return realIds[1]!;
  if (segment === "REAL0-upper") return realIds[0]!.toUpperCase();
  return segment;
}
const QUERY_NAMES = [
  "limit",
  "cursor",
  "status",
  "type",
  "onComplete",
  "onPending",
  "sig",
  "expires",
  "tenant",
  "kid",
  "status[]",
  "__proto__",
];
const queryValue = fc.oneof(
  fc.constantFrom(
    "-1",
    "0",
    "1e9",
    "abc",
    "1.5",
    "500",
    "501",
    "garbage",
    "__proto__",
    "queued",
    "running",
    "succeeded",
    "stream",
    "status",
    "redirect",
    "synchronous",
    "evil",
    "%zz",
    "%00",
    "",
  ),
  nastyString.map(percentEncode),
  rawSegment,
  fc.nat({ max: 10_000 }).map((n) => "A".repeat(n)),
);
const queryString = fc
  .array(fc.tuple(fc.oneof(fc.constantFrom(...QUERY_NAMES), rawSegment), queryValue), { maxLength: 5 })
  .map((pairs) => (pairs.length ? `?${pairs.map(([k, v]) => `${k}=${v}`).join("&")}` : ""));

// --- properties -----------------------------------------------------------------------------

describe("B5 property-based fuzzing (seed 0x7e55e7a)", () => {
  it("random submit envelopes: never 5xx, every 4xx a registered problem", async () => {
    await fc.assert(
      fc.asyncProperty(envelopeText, async (body) => {
        await send(
          "POST",
          "/v1/jobs",
          [
            ["Authorization", `Bearer ${key}`],
            ["Content-Type", "application/json"],
          ],
          body,
        );
      }),
      PARAMS,
    );
  }, 60_000);

  it("random header sets on submit and status: never 5xx, every 4xx a registered problem", async () => {
    await fc.assert(
      fc.asyncProperty(
        headerSet,
        fc.constantFrom("submit", "status", "list", "result"),
        envelopeText,
        async (headers, route, body) => {
          if (route === "submit") await send("POST", "/v1/jobs", headers, body);
          else if (route === "status") await send("GET", `/v1/jobs/${realIds[0]!}`, headers);
          else if (route === "result") await send("GET", `/v1/jobs/${realIds[0]!}/result`, headers);
          else await send("GET", "/v1/jobs?limit=2", headers);
        },
      ),
      PARAMS,
    );
  }, 60_000);

  it("random ids and query strings on every route: never 5xx, every 4xx a registered problem", async () => {
    await fc.assert(
      fc.asyncProperty(
        idSegment,
        fc.constantFrom("", "/result", "/cancel", "/deliveries", "/", "/result/x", "/..", "//"),
        queryString,
        fc.constantFrom("GET", "GET", "GET", "HEAD", "POST", "DELETE"),
        async (segment, sub, query, method) => {
          const id = resolveId(segment);
          await send(method, `/v1/jobs/${id}${sub}${query}`, [["Authorization", `Bearer ${key}`]]);
          if (method === "GET") await send("GET", `/v1/jobs${query}`, [["Authorization", `Bearer ${key}`]]);
        },
      ),
      PARAMS,
    );
  }, 60_000);

  it("random methods × paths (from /openapi.json and beyond): never 5xx, every 4xx a registered problem", async () => {
    const openapi = (await (await fetch(`${base}/openapi.json`)).json()) as {
      paths: Record<string, unknown>;
    };
    const templates = [...Object.keys(openapi.paths), "/", "/v1", "/v2/jobs", "/problems/x", "/favicon.ico"];
    expect(templates).toContain("/v1/jobs");
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(
          "GET",
          "HEAD",
          "POST",
          "PUT",
          "PATCH",
          "DELETE",
          "OPTIONS",
          "TRACE",
          "PROPFIND",
          "PURGE",
          "SEARCH",
          "FOO",
          "get",
        ),
        fc.constantFrom(...templates),
        idSegment,
        fc.oneof(
          fc.constant(""),
          rawSegment.map((s) => `/${s}`),
        ),
        queryString,
        fc.option(envelopeText, { nil: undefined }),
        fc.boolean(),
        async (method, template, segment, suffix, query, body, authenticated) => {
          const path = template.replace(/\{[^}]+\}/g, resolveId(segment)) + suffix + query;
          const headers: [string, string][] = authenticated ? [["Authorization", `Bearer ${key}`]] : [];
          if (body !== undefined) headers.push(["Content-Type", "application/json"]);
          await send(method, path, headers, body);
        },
      ),
      PARAMS,
    );
  }, 60_000);

  it("the server is still up and the real jobs are intact", async () => {
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    await res.text();
    const probe = await fetch(`${base}/v1/jobs/${randomUUID()}`, { headers: bearer(key) });
    expect(probe.status).toBe(404);
    await probe.text();
  });
});
