/**
 * The attack suite (RELIABILITY.md S1, S2, S4, S5, S6, B1 #4/#6, B4): a real server on a real
 * socket, authentication on, two tenants with real keys. Each case is an attacker's request and
 * the answer it must get.
 *
 * This file extends, and does not repeat, what is already asserted elsewhere:
 * - test/e2e/bola.test.ts: B calls every route (every onComplete/onPending, Prefer: wait, HEAD)
 *   with A's ids in every state → the 404 of a random id; listings with A's cursor; id entropy.
 * - test/e2e/tenants.test.ts: 401 matrix on the main routes, revocation, key in the URL.
 * - test/e2e/bad-input.test.ts: B2 hostile ids (homoglyphs, ±1, upper case, SQL), B3 bad
 *   Authorization headers (raw, duplicated), 10,000-deep JSON, 413 by Content-Length and chunks.
 * - test/e2e/signed-urls.test.ts: every sig character changed, sig swapped between two jobs of
 *   one tenant, expires/kid/tenant edited or repeated, wrong method, path variants, expiry.
 * - test/e2e/idempotency.test.ts: another tenant with the same key and (different) body.
 * - test/e2e/keys.test.ts, rate-limit.test.ts, protection.test.ts: key expiry and rotation,
 *   the audit log, rate limits and quotas, the poll budget, wait caps, one slowloris socket.
 * What is added here: guessed and sequential-looking ids, the whole 401 matrix (expired keys and
 * headers included, so no oracle anywhere) on every route, no parsing before authentication,
 * signed URLs across tenants, bit flips of the MAC, secret rotation, concurrent cross-tenant
 * Idempotency-Key use, floods of oversize and deep bodies, 200 slow-header sockets and a slow
 * body, an unknown `Expect`, a bad-key flood against the rate limits, and no key or job input in
 * any log line after all of it.
 */
import { randomBytes, randomUUID } from "node:crypto";
import type { Socket } from "node:net";
import { Writable } from "node:stream";
import { pino, type Logger } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateApiKey } from "../../src/auth/api-keys.js";
import type { Config } from "../../src/config.js";
import { signingKey, UrlSigner } from "../../src/http/signed-url.js";
import { newJobId } from "../../src/jobs/ids.js";
import { guessesFrom } from "../helpers/ids.js";
import { BatchGuard, countJobs, expectProblem, slugOf, type Problem } from "../helpers/pass-criteria.js";
import { answer, openSocket, rawExchange, rawHead, rawRequest, type Answer } from "../helpers/raw-http.js";
import { bearer, startServer, TEST_SECRET, type TestServer } from "../helpers/server.js";

let server: TestServer;
let base: string;
let keyA: string;
let keyB: string;
let guard: BatchGuard;
/** A's finished job (its input holds a secret B must never see) and A's running job. */
let doneA: Job;
let runningA: Job;
let doneB: Job;
/** Every key the attacks used (valid, revoked, expired, unknown): none may appear in a log. */
const keysUsed: string[] = [];
/** Everything the server logged (audit lines included). */
let logText = "";

/** A pino logger at info that keeps what it writes (the audit log is written at info). */
function capturingLogger(): Logger {
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logText += chunk.toString("utf8");
      done();
    },
  });
  return pino({ level: "info" }, stream);
}

interface Job {
  id: string;
  status: string;
  links: { self: string; result?: string; cancel?: string };
}

async function submit(key: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${base}/v1/jobs`, {
    method: "POST",
    headers: { ...bearer(key), "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
    redirect: "manual",
  });
}

async function created(key: string, body: unknown): Promise<Job> {
  const res = await submit(key, body);
  expect(res.status, await res.clone().text()).toBe(202);
  return (await res.json()) as Job;
}

/** The job once terminal (server-side waits, no busy loop). */
async function settled(key: string, id: string): Promise<Job> {
  for (let i = 0; i < 20; i++) {
    const res = await fetch(`${base}/v1/jobs/${id}?onComplete=status`, {
      headers: { ...bearer(key), prefer: "wait=2" },
    });
    const job = (await res.json()) as Job;
    if (res.status === 200) return job;
  }
  throw new Error(`job ${id} did not finish`);
}

async function get(path: string, init: RequestInit = {}): Promise<Answer> {
  return answer(await fetch(`${base}${path}`, { redirect: "manual", ...init }));
}

/** Headers that differ between any two responses (date, connection management, length, the
 * remaining rate-limit budget, which falls with every request whatever its answer). */
const VOLATILE = new Set(["date", "keep-alive", "connection", "content-length", "ratelimit"]);

/** An answer with `id` replaced by `{id}` and the volatile headers dropped, for comparison. */
function normalise(a: Answer, id: string): Answer {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(a.headers))
    if (!VOLATILE.has(name)) headers[name] = value.split(id).join("{id}");
  return { status: a.status, headers, text: a.text.split(id).join("{id}") };
}

beforeAll(async () => {
  server = await startServer({ config: { concurrency: 10 }, logger: capturingLogger() });
  base = server.url;
  keyA = await server.key("tenant-a");
  keyB = await server.key("tenant-b");
  keysUsed.push(keyA, keyB);
  doneA = await settled(keyA, (await created(keyA, { type: "demo.echo", input: { secret: "a's data" } })).id);
  runningA = await created(keyA, { type: "demo.sleep", input: { ms: 120_000 } });
  doneB = await settled(keyB, (await created(keyB, { type: "demo.echo", input: { mine: "b" } })).id);
  guard = new BatchGuard(base, { a: keyA, b: keyB });
  await guard.baseline();
});
afterAll(() => server?.close());

/** Every route that takes a job id, with the method an attacker would use. */
const ID_ROUTES: { label: string; method: string; path: (id: string) => string }[] = [
  { label: "GET status", method: "GET", path: (id) => `/v1/jobs/${id}` },
  { label: "GET status (stream)", method: "GET", path: (id) => `/v1/jobs/${id}?onComplete=stream` },
  { label: "GET result", method: "GET", path: (id) => `/v1/jobs/${id}/result` },
  { label: "GET deliveries", method: "GET", path: (id) => `/v1/jobs/${id}/deliveries` },
  { label: "POST cancel", method: "POST", path: (id) => `/v1/jobs/${id}/cancel` },
  { label: "DELETE", method: "DELETE", path: (id) => `/v1/jobs/${id}` },
];

describe("object-level authorization: guessed, sequential and foreign ids", () => {
  /** Ids an attacker would try without knowing any: counters, nil, time-ordered, neighbours. */
  function guesses(): string[] {
    return [
      "1",
      "2",
      "1000",
      "0",
      "00000000-0000-0000-0000-000000000000",
      "00000000-0000-4000-8000-000000000001",
      "00000000-0000-4000-8000-000000000002",
      "ffffffff-ffff-4fff-bfff-ffffffffffff",
      // UUIDv7-looking (timestamp first, as time-ordered ids would be)
      `${Date.now()
        .toString(16)
        .padStart(12, "0")
        .replace(/^(.{8})(.{4})$/, "$1-$2")}-7000-8000-000000000001`,
      // Ids close to one of A's: neighbours, its tenant and creation time, new ids of both forms.
      ...guessesFrom(doneA.id).map(([, id]) => id),
    ];
  }

  it("every {id} route answers guessed ids exactly as it answers a random missing id", async () => {
    for (const route of ID_ROUTES) {
      const reference = await get(route.path(newJobId(Date.now(), randomUUID())), {
        method: route.method,
        headers: bearer(keyB),
      });
      const ref = expectProblem(reference, 404, "not-found");
      for (const id of guesses()) {
        const a = await get(route.path(id), { method: route.method, headers: bearer(keyB) });
        const context = `${route.label} ${id}`;
        const problem = expectProblem(a, 404, "not-found");
        // Same body but for the instance (the path itself), and the same headers.
        const { instance, ...rest } = problem;
        const { instance: _i, ...refRest } = ref;
        expect(rest, context).toEqual(refRest);
        expect(instance, context).toBe(route.path(id).split("?")[0]);
        // A 404 carries no id in its headers: compare them as they are.
        const headersOf = (x: Answer) =>
          Object.fromEntries(Object.entries(x.headers).filter(([name]) => !VOLATILE.has(name)));
        expect(headersOf(a), context).toEqual(headersOf(reference));
      }
    }
  });

  it("B's credentials on A's ids (finished and running) never act on them: 404 on every route", async () => {
    for (const route of ID_ROUTES) {
      for (const target of [doneA, runningA]) {
        const random = randomUUID();
        const [forA, forRandom] = await Promise.all([
          get(route.path(target.id), { method: route.method, headers: bearer(keyB) }),
          get(route.path(random), { method: route.method, headers: bearer(keyB) }),
        ]);
        expectProblem(forA, 404, "not-found");
        expect(forA.text).not.toContain("a's");
        expect(normalise(forA, target.id)).toEqual(normalise(forRandom, random));
      }
    }
    // A's running job was neither canceled nor deleted by B's POST cancel / DELETE.
    const still = await get(`/v1/jobs/${runningA.id}?onComplete=status`, { headers: bearer(keyA) });
    expect(still.status).toBe(202);
    expect((JSON.parse(still.text) as Job).status).toMatch(/^(queued|running)$/);
  });

  it("list filters cannot reach A's jobs: every status, type and id-shaped garbage shows only B's", async () => {
    const queries = [
      "",
      `type=demo.echo`,
      `type=demo.sleep`,
      `status=running`,
      `status=succeeded&type=demo.echo`,
      `id=${doneA.id}`,
      `tenant=tenant-a`,
      `tenantId=${new URL(doneA.links.result!).searchParams.get("tenant")!}`,
    ];
    for (const q of queries) {
      const a = await get(`/v1/jobs?${q}`, { headers: bearer(keyB) });
      if (a.status !== 200) {
        // Unknown parameters may be refused; then as a problem, with nothing of A's.
        expectProblem(a, 400);
      } else {
        const ids = (JSON.parse(a.text) as { items: Job[] }).items.map((j) => j.id);
        for (const id of ids) expect([doneB.id], q).toContain(id);
      }
      expect(a.text, q).not.toContain(doneA.id);
      expect(a.text, q).not.toContain(runningA.id);
    }
  });
});

describe("authentication: one 401 for every failure, on every route (no oracle)", () => {
  const ROUTES: [string, string][] = [
    ["GET", "/v1/jobs"],
    ["POST", "/v1/jobs"],
    ["GET", "/v1/job-types"],
    ...ID_ROUTES.map((r): [string, string] => [r.method, r.path("{id}").split("?")[0]!]),
  ];

  it("missing, malformed, unknown, revoked, wrong-scheme and duplicated credentials", async () => {
    const revoked = await server.key("tenant-a");
    expect(
      await server.tessera.store.revokeApiKey({ idOrPrefix: revoked.slice(0, 12), now: Date.now() }),
    ).toBe(true);
    const unknown = generateApiKey().key;
    const expired = generateApiKey();
    await server.tessera.store.createApiKey({
      tenantName: "tenant-a",
      keyId: expired.keyId,
      prefix: expired.prefix,
      hash: expired.hash,
      now: Date.now() - 3_600_000,
      expiresAt: Date.now() - 60_000,
    });
    keysUsed.push(revoked, unknown, expired.key);
    const cases: [string, [string, string][]][] = [
      ["missing", []],
      ["empty", [["Authorization", ""]]],
      ["scheme only", [["Authorization", "Bearer"]]],
      ["not a key", [["Authorization", "Bearer not-a-key"]]],
      ["tsk_ prefix, wrong length", [["Authorization", `Bearer tsk_${"A".repeat(42)}`]]],
      ["tsk_ prefix, forbidden characters", [["Authorization", `Bearer tsk_${"+".repeat(43)}`]]],
      ["unknown well-formed key", [["Authorization", `Bearer ${unknown}`]]],
      ["revoked key", [["Authorization", `Bearer ${revoked}`]]],
      ["expired key", [["Authorization", `Bearer ${expired.key}`]]],
      [
        "key with a bad checksum",
        [["Authorization", `Bearer ${keyA.slice(0, -1)}${keyA.endsWith("A") ? "B" : "A"}`]],
      ],
      ["A's prefix, B's secret part", [["Authorization", `Bearer ${keyA.slice(0, 12)}${keyB.slice(12)}`]]],
      ["Basic", [["Authorization", `Basic ${Buffer.from(`${keyA}:`).toString("base64")}`]]],
      ["Token scheme", [["Authorization", `Token ${keyA}`]]],
      ["no scheme", [["Authorization", keyA]]],
      ["Bearer in another header", [["X-Api-Key", keyA]]],
      [
        "A's key twice",
        [
          ["Authorization", `Bearer ${keyA}`],
          ["Authorization", `Bearer ${keyA}`],
        ],
      ],
      [
        "A's key and B's key",
        [
          ["Authorization", `Bearer ${keyA}`],
          ["Authorization", `Bearer ${keyB}`],
        ],
      ],
      [
        "revoked key then A's key",
        [
          ["Authorization", `Bearer ${revoked}`],
          ["Authorization", `Bearer ${keyA}`],
        ],
      ],
    ];
    for (const [method, template] of ROUTES) {
      const path = template.replace("{id}", doneA.id);
      const seen = new Map<string, string>();
      for (const [label, headers] of cases) {
        const body = method === "POST" && path === "/v1/jobs" ? '{"type":"demo.echo","input":1}' : undefined;
        const all: [string, string][] = body ? [...headers, ["Content-Type", "application/json"]] : headers;
        const a = await rawRequest(base, method, path, all, body);
        const context = `${method} ${path}: ${label}`;
        const problem = expectProblem(a, 401, "unauthorized");
        expect(problem.instance, context).toBe(path);
        expect(a.headers["www-authenticate"], context).toMatch(/^Bearer\b/);
        seen.set(JSON.stringify(normalise(a, doneA.id)), label);
      }
      // Byte-identical answers (status, headers but Date, body) across all the cases.
      expect([...seen.values()], `${method} ${path}`).toHaveLength(1);
    }
  });

  it("nothing is parsed before authentication: hostile bodies without a key all get the same 401", async () => {
    const bodies: [string, [string, string][], string | Buffer][] = [
      ["invalid JSON", [["Content-Type", "application/json"]], "{"],
      ["unknown type", [["Content-Type", "application/json"]], '{"type":"nope","input":1}'],
      ["10,000-deep", [["Content-Type", "application/json"]], "[".repeat(10_000) + "]".repeat(10_000)],
      ["wrong media type", [["Content-Type", "text/plain"]], "hello"],
      ["prototype poisoning", [["Content-Type", "application/json"]], '{"__proto__":{"x":1}}'],
      [
        "bad Idempotency-Key",
        [
          ["Content-Type", "application/json"],
          ["Idempotency-Key", ""],
        ],
        '{"type":"demo.echo","input":1}',
      ],
      [
        "Content-Length of 1 GiB",
        [
          ["Content-Type", "application/json"],
          ["Content-Length", "1073741824"],
        ],
        '{"type":"demo.echo","input":1}',
      ],
    ];
    const texts = new Set<string>();
    for (const [label, headers, body] of bodies) {
      const a = await rawRequest(base, "POST", "/v1/jobs", headers, body);
      expectProblem(a, 401, "unauthorized");
      texts.add(a.text);
      expect(a.text, label).not.toContain("depth");
    }
    expect(texts.size).toBe(1);
    await guard.check();
  });
});

describe("signed result URLs across tenants, bit flips and secret rotation", () => {
  const signer = new UrlSigner([signingKey(TEST_SECRET)], 600);
  const tenantOf = (job: Job) => new URL(job.links.result!).searchParams.get("tenant")!;
  const pathOf = (job: Job) => `/v1/jobs/${job.id}/result`;
  const forbidden = (a: Answer) => {
    const problem = expectProblem(a, 403, "signature-invalid");
    expect(a.text).not.toContain("a's data");
    expect(problem.instance).not.toContain("?");
  };

  it("A's signature replayed on B's job, B's on A's, or with the other tenant swapped in: 403", async () => {
    const urlA = new URL(doneA.links.result!);
    const urlB = new URL(doneB.links.result!);
    expect(tenantOf(doneA)).not.toBe(tenantOf(doneB));
    forbidden(await get(`${pathOf(doneB)}${urlA.search}`));
    forbidden(await get(`${pathOf(doneA)}${urlB.search}`));
    const swapped = new URLSearchParams(urlB.search);
    swapped.set("tenant", tenantOf(doneA));
    forbidden(await get(`${pathOf(doneB)}?${swapped}`));
    // With B's valid key as well: a request with `sig` is judged by the signature alone.
    forbidden(await get(`${pathOf(doneA)}${urlB.search}`, { headers: bearer(keyB) }));
    // The genuine URLs still work, without credentials.
    expect((await get(`${urlA.pathname}${urlA.search}`)).status).toBe(200);
    expect((await get(`${urlB.pathname}${urlB.search}`)).status).toBe(200);
  });

  it("a URL genuinely signed for B's tenant over A's job path is the 404 of a missing job", async () => {
    // What a leak of the signing secret alone would give: still no cross-tenant read.
    const missing = randomUUID();
    const forA = await get(`${pathOf(doneA)}?${signer.sign(pathOf(doneA), tenantOf(doneB), Date.now())}`);
    const forMissing = await get(
      `/v1/jobs/${missing}/result?${signer.sign(`/v1/jobs/${missing}/result`, tenantOf(doneB), Date.now())}`,
    );
    expectProblem(forA, 404, "not-found");
    expect(forA.text).not.toContain("a's data");
    expect(normalise(forA, doneA.id)).toEqual(normalise(forMissing, missing));
  });

  it("every single-bit flip of the MAC is 403, never 500", async () => {
    const url = new URL(doneA.links.result!);
    const mac = Buffer.from(url.searchParams.get("sig")!, "base64url");
    expect(mac).toHaveLength(32);
    const statuses = new Map<number, number>();
    for (let bit = 0; bit < mac.length * 8; bit++) {
      const flipped = Buffer.from(mac);
      flipped[bit >> 3]! ^= 1 << (bit & 7);
      const q = new URLSearchParams(url.search);
      q.set("sig", flipped.toString("base64url"));
      const a = await get(`${url.pathname}?${q}`);
      statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
      if (a.status !== 403) forbidden(a); // fails with the answer in the message
    }
    expect([...statuses]).toEqual([[403, 256]]);
  });

  it("path, expiry and key id tampering; expiry in the past", async () => {
    const url = new URL(doneA.links.result!);
    const q = () => new URLSearchParams(url.search);
    const variants: string[] = [];
    // Path: the status monitor, another of A's jobs, a sibling route.
    variants.push(`/v1/jobs/${runningA.id}/result${url.search}`);
    variants.push(`/v1/jobs/${doneA.id}/result/${url.search}`);
    // Expiry far in the future, 0, negative, huge, in the past.
    for (const expires of ["9999999999", "0", "-1", "1e10", String(Math.floor(Date.now() / 1000) - 1)]) {
      const p = q();
      p.set("expires", expires);
      variants.push(`${url.pathname}?${p}`);
    }
    // Key id: unknown, empty, another secret's id with its own valid MAC over the same string.
    const stranger = new UrlSigner([signingKey(randomBytes(32).toString("hex"))], 600);
    for (const kid of ["00000000", "", signingKey("x".repeat(40)).kid]) {
      const p = q();
      p.set("kid", kid);
      variants.push(`${url.pathname}?${p}`);
    }
    variants.push(`${url.pathname}?${stranger.sign(url.pathname, tenantOf(doneA), Date.now())}`);
    // Signed correctly but already expired (ttl 1 s, issued 10 s ago).
    const shortLived = new UrlSigner([signingKey(TEST_SECRET)], 1);
    variants.push(`${url.pathname}?${shortLived.sign(url.pathname, tenantOf(doneA), Date.now() - 10_000)}`);
    for (const v of variants) {
      const a = await get(v);
      const context = `${v.slice(0, 120)} → ${a.status}`;
      if (v.includes(`/result/?`)) {
        // A trailing slash is no route (so the key is asked for): a refusal, never the result.
        expectProblem(a, [401, 403, 404]);
        expect(a.text, context).not.toContain("a's data");
      } else forbidden(a);
    }
  });

  it("secret rotation: the old secret verifies while configured, the new one signs", async () => {
    const NEW_SECRET = `new-${randomBytes(24).toString("hex")}`;
    const rotated = await startServer({ config: { secrets: [NEW_SECRET, TEST_SECRET] } });
    const retired = await startServer({ config: { secrets: [NEW_SECRET] } });
    try {
      for (const s of [rotated, retired]) {
        const k = await s.key("r");
        const res = await fetch(`${s.url}/v1/jobs`, {
          method: "POST",
          headers: { ...bearer(k), "content-type": "application/json" },
          body: JSON.stringify({ type: "demo.echo", input: "rotated" }),
        });
        expect(res.status).toBe(202);
        const { id } = (await res.json()) as Job;
        let job: Job | undefined;
        for (let i = 0; i < 20 && !job; i++) {
          const r = await fetch(`${s.url}/v1/jobs/${id}?onComplete=status`, {
            headers: { ...bearer(k), prefer: "wait=2" },
          });
          if (r.status === 200) job = (await r.json()) as Job;
          else await r.arrayBuffer();
        }
        const issued = new URL(job!.links.result!);
        // Newly issued URLs carry the new secret's key id.
        expect(issued.searchParams.get("kid")).toBe(signingKey(NEW_SECRET).kid);
        const tenant = issued.searchParams.get("tenant")!;
        const old = new UrlSigner([signingKey(TEST_SECRET)], 600).sign(issued.pathname, tenant, Date.now());
        const oldAnswer = await answer(await fetch(`${s.url}${issued.pathname}?${old}`));
        if (s === rotated) expect(oldAnswer.status).toBe(200);
        else expectProblem(oldAnswer, 403, "signature-invalid");
        // An old-secret MAC presented under the new key id is 403 on both.
        const relabelled = new URLSearchParams(old);
        relabelled.set("kid", signingKey(NEW_SECRET).kid);
        expectProblem(
          await answer(await fetch(`${s.url}${issued.pathname}?${relabelled}`)),
          403,
          "signature-invalid",
        );
      }
    } finally {
      await Promise.all([rotated.close(), retired.close()]);
    }
  });
});

describe("Idempotency-Key across tenants", () => {
  it("A and B racing with the same key make one job each; neither ever sees the other's", async () => {
    const idem = `shared-${randomUUID()}`;
    const body = { type: "demo.echo", input: { race: idem } };
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        submit(i % 2 === 0 ? keyA : keyB, body, { "idempotency-key": idem }),
      ),
    );
    const locations: Record<string, Set<string>> = { a: new Set(), b: new Set() };
    for (const [i, res] of answers.entries()) {
      const tenant = i % 2 === 0 ? "a" : "b";
      const text = await res.text();
      if (res.status === 409) {
        expect(slugOf(JSON.parse(text) as Problem)).toBe("idempotency-in-flight");
        continue;
      }
      expect(res.status, text).toBe(202);
      locations[tenant]!.add(res.headers.get("location")!);
    }
    expect(locations.a!.size).toBe(1);
    expect(locations.b!.size).toBe(1);
    const [locA] = [...locations.a!];
    const [locB] = [...locations.b!];
    expect(locA).not.toBe(locB);
    guard.accepted("a");
    guard.accepted("b");
    // Each can read its own and not the other's.
    expect((await fetch(locB!, { headers: bearer(keyA), redirect: "manual" })).status).toBe(404);
    expect((await fetch(locA!, { headers: bearer(keyB), redirect: "manual" })).status).toBe(404);

    // B deleting its job frees B's key only: A's replay still answers A's job.
    const idB = locB!.split("/").pop()!;
    await fetch(`${base}/v1/jobs/${idB}?onComplete=status`, {
      headers: { ...bearer(keyB), prefer: "wait=5" },
    });
    expect((await fetch(locB!, { method: "DELETE", headers: bearer(keyB) })).status).toBe(204);
    guard.accepted("b", -1);
    const replayA = await submit(keyA, body, { "idempotency-key": idem });
    expect(replayA.status).toBe(202);
    expect(replayA.headers.get("idempotent-replayed")).toBe("true");
    expect(replayA.headers.get("location")).toBe(locA);
    await replayA.arrayBuffer();
    // B with A's key and another body: a new job of B's, not A's 422 or A's job.
    const againB = await submit(keyB, { type: "demo.echo", input: "different" }, { "idempotency-key": idem });
    const textB = await againB.text();
    expect(againB.status, textB).toBe(202);
    guard.accepted("b");
    expect(againB.headers.get("idempotent-replayed")).toBeNull();
    expect(againB.headers.get("location")).not.toBe(locA);
    expect(textB).not.toContain(locA!.split("/").pop()!);
    await guard.check();
  });
});

describe("oversize and deeply nested bodies under load", () => {
  it("40 parallel oversize and 10,000-deep bodies: fast problem+json, no job, /healthz < 1 s", async () => {
    const oversize = Buffer.alloc(2 * 1_048_576, 0x61);
    const body = Buffer.concat([Buffer.from('{"type":"demo.echo","input":"'), oversize, Buffer.from('"}')]);
    const deepArrays = "[".repeat(10_000) + "]".repeat(10_000);
    const deepObjects = '{"a":'.repeat(10_000) + "1" + "}".repeat(10_000);
    const started = performance.now();
    const timed = async (send: () => Promise<Answer>) => {
      const t0 = performance.now();
      const a = await send();
      return { a, ms: performance.now() - t0 };
    };
    const requests = Array.from({ length: 40 }, (_, i) =>
      timed(() => {
        const headers: [string, string][] = [
          ["Authorization", `Bearer ${i % 2 === 0 ? keyA : keyB}`],
          ["Content-Type", "application/json"],
        ];
        if (i % 4 === 0) return rawRequest(base, "POST", "/v1/jobs", headers, body);
        if (i % 4 === 1)
          return rawRequest(base, "POST", "/v1/jobs", headers, `{"type":"demo.echo","input":${deepArrays}}`);
        if (i % 4 === 2)
          return rawRequest(base, "POST", "/v1/jobs", headers, `{"type":"demo.echo","input":${deepObjects}}`);
        // A small head announcing a huge body, then nothing: answered without waiting for it.
        return rawExchange(base, [
          rawHead("POST", "/v1/jobs", [...headers, ["Content-Length", "1073741824"]]),
          "{",
        ]);
      }),
    );
    const health = (async () => {
      const t0 = performance.now();
      const res = await fetch(`${base}/healthz`);
      await res.text();
      return { status: res.status, ms: performance.now() - t0 };
    })();
    const results = await Promise.all(requests);
    for (const [i, { a, ms }] of results.entries()) {
      if (i % 4 === 1 || i % 4 === 2) expectProblem(a, 400, "input-too-deep");
      else expectProblem(a, 413, "payload-too-large");
      expect(ms, `request ${i}`).toBeLessThan(2000);
    }
    const h = await health;
    expect(h.status).toBe(200);
    expect(h.ms).toBeLessThan(1000);
    expect(performance.now() - started).toBeLessThan(5000);
    await guard.check();
  });
});

describe("headers Node itself would answer", () => {
  it("an Expect other than 100-continue is served as usual, never a bare 417 without our headers", async () => {
    for (const expectation of ["foo", "x=y", "200-ok"]) {
      const a = await rawRequest(base, "GET", "/v1/jobs?limit=1", [
        ["Authorization", `Bearer ${keyB}`],
        ["Expect", expectation],
      ]);
      expect(a.status, expectation).toBe(200);
      expect(a.headers["x-content-type-options"]).toBe("nosniff");
      const anonymous = await rawRequest(base, "GET", "/v1/jobs", [["Expect", expectation]]);
      expectProblem(anonymous, 401, "unauthorized");
    }
  });
});

describe("slow and idle transport (slowloris)", () => {
  /**
   * A server of its own with short transport limits. `headersTimeout` / `requestTimeout` are
   * server options (milliseconds); on a build without them they are ignored and Node's
   * defaults as Tessera sets them apply (30 s, checked every 30 s): the bounds below are read
   * from the running server, not assumed, so the test holds either way (it is only slower).
   */
  let slow: TestServer;
  let slowKey: string;
  beforeAll(async () => {
    const limits = { headersTimeout: 2000, requestTimeout: 4000 } as unknown as Partial<Config>;
    slow = await startServer({ config: { ...limits } });
    slowKey = await slow.key("slow");
  });
  afterAll(() => slow?.close());

  /** The Node server's own limits, as Tessera configured them. */
  function transportLimits(): { headersTimeout: number; requestTimeout: number; checkInterval: number } {
    const http = slow.tessera.app.server as unknown as {
      headersTimeout: number;
      requestTimeout: number;
      connectionsCheckingInterval?: number;
    };
    return {
      headersTimeout: http.headersTimeout,
      requestTimeout: http.requestTimeout,
      // Node finds expired requests on this interval, so a cut-off comes between the timeout
      // and the timeout plus one interval.
      checkInterval: http.connectionsCheckingInterval ?? 30_000,
    };
  }

  interface Trickle {
    closedAt: Promise<number>;
    received: () => string;
    stop: () => void;
  }

  /** A socket that sends `prefix` at once, then `rest` one byte every `stepMs`, never finishing. */
  async function trickle(prefix: string, rest: string, stepMs: number): Promise<Trickle> {
    const socket: Socket = await openSocket(slow.url);
    let data = "";
    let at = 0;
    socket.on("data", (chunk: Buffer) => (data += chunk.toString("latin1")));
    socket.on("error", () => undefined);
    if (prefix) socket.write(prefix);
    const timer = setInterval(() => {
      if (socket.destroyed || !socket.writable) return;
      socket.write(rest[at % rest.length]!);
      at++;
    }, stepMs);
    const closedAt = new Promise<number>((resolve) =>
      socket.once("close", () => {
        clearInterval(timer);
        resolve(performance.now());
      }),
    );
    return {
      closedAt,
      received: () => data,
      stop: () => {
        clearInterval(timer);
        socket.destroy();
      },
    };
  }

  /** Probe /healthz every 100 ms until `done`; returns each latency (ms). */
  async function probeHealth(done: () => boolean, deadline: number): Promise<number[]> {
    const latencies: number[] = [];
    while (!done() && performance.now() < deadline) {
      const t0 = performance.now();
      const res = await fetch(`${slow.url}/healthz`, { signal: AbortSignal.timeout(5000) });
      await res.text();
      expect(res.status).toBe(200);
      latencies.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 100));
    }
    return latencies;
  }

  /** A 408 problem written by Tessera's clientError handler, or nothing (a plain close). */
  function expectTimeoutOrClose(text: string, context: string): void {
    if (text.length === 0) return;
    expect(text, context).toMatch(/^HTTP\/1\.1 408 /);
    expect(text, context).toMatch(/content-type: application\/problem\+json/i);
    expect(text, context).toContain("/problems/request-timeout");
  }

  it("200 parallel slow-header sockets (a byte every 200-600 ms) are cut off; /healthz < 1 s throughout", async () => {
    const limits = transportLimits();
    const timeout = Math.min(limits.headersTimeout, limits.requestTimeout || Infinity);
    expect(timeout).toBeGreaterThan(0);
    const bound = timeout + limits.checkInterval + 3_000;
    const head = `GET /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${slowKey}\r\nX-Pad: ${"p".repeat(10_000)}`;
    const started = performance.now();
    const sockets = await Promise.all(
      Array.from({ length: 200 }, (_, i) => trickle("", head, 200 + (i % 5) * 100)),
    );
    try {
      let done = false;
      const allClosed = Promise.all(sockets.map((s) => s.closedAt)).then((t) => ((done = true), t));
      const latencies = await probeHealth(() => done, started + bound);
      expect(done, `all 200 slow sockets closed within ${bound} ms`).toBe(true);
      expect(latencies.length).toBeGreaterThanOrEqual(3);
      expect(Math.max(...latencies), "slowest /healthz (ms)").toBeLessThan(1000);
      const closedAt = await allClosed;
      for (const [i, s] of sockets.entries()) {
        expectTimeoutOrClose(s.received(), `socket ${i}`);
        // Cut off by the timeout, not before it (a slow client is not refused on sight).
        expect(closedAt[i]! - started, `socket ${i} closed early`).toBeGreaterThan(timeout - 500);
      }
      const res = await fetch(`${slow.url}/healthz`);
      expect(res.status).toBe(200);
      await res.text();
    } finally {
      for (const s of sockets) s.stop();
    }
  }, 120_000);

  it("a body sent at a byte every 300 ms is cut off by the request timeout and creates no job", async () => {
    const limits = transportLimits();
    const timeout = limits.requestTimeout || limits.headersTimeout;
    const bound = timeout + limits.checkInterval + 3_000;
    const body = `{"type":"demo.echo","input":"${"x".repeat(10_000)}"}`;
    const head = rawHead("POST", "/v1/jobs", [
      ["Authorization", `Bearer ${slowKey}`],
      ["Content-Type", "application/json"],
      ["Content-Length", String(body.length)],
    ]);
    const started = performance.now();
    const s = await trickle(head, body, 300);
    try {
      let done = false;
      const closed = s.closedAt.then((t) => ((done = true), t));
      const latencies = await probeHealth(() => done, started + bound);
      expect(done, `slow body cut off within ${bound} ms`).toBe(true);
      expect(Math.max(...latencies)).toBeLessThan(1000);
      expect((await closed) - started).toBeGreaterThan(timeout - 500);
      expectTimeoutOrClose(s.received(), "slow body");
      expect(await countJobs(slow.url, slowKey)).toBe(0);
    } finally {
      s.stop();
    }
  }, 120_000);
});

describe("floods against the rate limits", () => {
  /**
   * The per-tenant and per-address limits themselves (RateLimit headers, submit and poll
   * policies, the poll budget, the queued quota, across nodes) are in test/e2e/rate-limit.test.ts;
   * key expiry, rotation and the audit log in test/e2e/keys.test.ts; the wait caps and a job
   * type's maxInputBytes in test/e2e/protection.test.ts. Here: an attacker's flood of bad keys.
   */
  let limited: TestServer;
  let limitedKey: string;
  beforeAll(async () => {
    const config = { ratePoll: 100, rateSubmit: 100, rateWindow: 1 } as unknown as Partial<Config>;
    limited = await startServer({ config });
    limitedKey = await limited.key("victim");
  });
  afterAll(() => limited?.close());

  it("1,000 bad keys from one address get 401 then 429 problems; a valid tenant on that address is never limited", async () => {
    const statuses = new Map<number, number>();
    const victim: number[] = [];
    let healthMax = 0;
    for (let batch = 0; batch < 10; batch++) {
      const flood = Array.from({ length: 100 }, async () => {
        const a = await answer(
          await fetch(`${limited.url}/v1/jobs`, { headers: bearer(generateApiKey().key) }),
        );
        statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
        if (a.status === 429) {
          expectProblem(a, 429, "rate-limited");
          expect(Number(a.headers["retry-after"])).toBeGreaterThanOrEqual(1);
          expect(a.headers["ratelimit-policy"]).toBeTruthy();
          expect(a.headers["ratelimit"]).toBeTruthy();
        } else expectProblem(a, 401, "unauthorized");
      });
      // The tenant's own requests, interleaved with the flood, from the same address.
      const own = (async () => {
        const res = await fetch(`${limited.url}/v1/jobs?limit=1`, { headers: bearer(limitedKey) });
        victim.push(res.status);
        await res.arrayBuffer();
      })();
      const health = (async () => {
        const t0 = performance.now();
        const res = await fetch(`${limited.url}/healthz`);
        expect(res.status).toBe(200);
        await res.arrayBuffer();
        healthMax = Math.max(healthMax, performance.now() - t0);
      })();
      await Promise.all([...flood, own, health]);
    }
    expect([...statuses.keys()].sort()).toEqual([401, 429]);
    expect(statuses.get(429)!).toBeGreaterThan(500);
    expect(victim).toEqual(Array(10).fill(200));
    expect(healthMax, "slowest /healthz during the flood (ms)").toBeLessThan(1000);
  });
});

describe("after the attacks", () => {
  it("job counts moved only by accepted submits, Object.prototype intact, /healthz fast", async () => {
    await guard.check();
  });

  it("no log line holds a key (or its secret part) or a job's input; failed keys show at most a prefix", async () => {
    expect(logText).toContain('"auth.failed"');
    for (const k of keysUsed) {
      expect(logText).not.toContain(k);
      expect(logText).not.toContain(k.slice(12));
    }
    expect(logText).not.toContain("a's data");
  });
});
