/**
 * L3 (CI scale) from RELIABILITY.md: one tenant floods the status monitor at well over ten
 * times its poll limit (autocannon, loopback, ~4 s) while another tenant polls normally and
 * /healthz is probed. The flood is answered 429 (no 5xx), its 429s read no job, the other
 * tenant is served throughout and /healthz answers within 1 s. No throughput assertions.
 */
import autocannon from "autocannon";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { bearer, http, startServer, type TestServer } from "../helpers/server.js";
import { expectProblem, expectRetryAfter, sleep } from "./support.js";

const POLL_LIMIT = 20; // per second, tenant A's own limit
const SECONDS = 4;

describe("load: a poll flood against the rate limiter", { timeout: 30_000 }, () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ config: { concurrency: 0 } });
  });
  afterAll(() => server.close());

  it("A's flood is mostly 429 and never 5xx; B and /healthz are served throughout", async () => {
    await server.tessera.store.setTenantLimits({
      tenantName: "flood-a",
      limits: { pollRate: POLL_LIMIT },
      now: Date.now(),
    });
    const keyA = await server.key("flood-a");
    const keyB = await server.key("flood-b");
    const submitA = await http(`${server.url}/v1/jobs`, {
      headers: bearer(keyA),
      json: { type: "demo.echo", input: "a" },
    });
    const submitB = await http(`${server.url}/v1/jobs`, {
      headers: bearer(keyB),
      json: { type: "demo.echo", input: "b" },
    });
    const idA = ((await submitA.json()) as { id: string }).id;
    const idB = ((await submitB.json()) as { id: string }).id;

    const reads = vi.spyOn(server.tessera.store, "get");
    const keyLookups = vi.spyOn(server.tessera.store, "lookupApiKey");
    let stop = false;
    const bStatuses: number[] = [];
    const healthMs: number[] = [];
    const tenantB = (async () => {
      while (!stop) {
        const res = await http(`${server.url}/v1/jobs/${idB}`, { headers: bearer(keyB) });
        bStatuses.push(res.status);
        await res.arrayBuffer();
        await sleep(50);
      }
    })();
    const health = (async () => {
      while (!stop) {
        const started = performance.now();
        const res = await http(`${server.url}/healthz`);
        await res.arrayBuffer();
        healthMs.push(performance.now() - started);
        expect(res.status).toBe(200);
        await sleep(100);
      }
    })();

    const flood = await autocannon({
      url: `${server.url}/v1/jobs/${idA}`,
      headers: bearer(keyA),
      connections: 16,
      duration: SECONDS,
      timeout: 5,
    });
    stop = true;
    await Promise.all([tenantB, health]);
    const getCalls = reads.mock.calls.length;
    const lookupCalls = keyLookups.mock.calls.length;
    reads.mockRestore();
    keyLookups.mockRestore();

    const codes = Object.fromEntries(
      Object.entries(flood.statusCodeStats).map(([code, stat]) => [code, stat.count]),
    ) as Record<string, number>;
    const total = Object.values(codes).reduce((a, b) => a + b, 0);
    const limited = codes["429"] ?? 0;
    console.log(
      `L3: A sent ${total} polls in ${SECONDS} s (${(total / SECONDS / POLL_LIMIT).toFixed(0)}× its limit of ${POLL_LIMIT}/s): ` +
        `${((limited / total) * 100).toFixed(1)} % 429, codes ${JSON.stringify(codes)}; job reads ${getCalls}, key lookups ${lookupCalls}; ` +
        `B ${bStatuses.filter((x) => x === 202).length}/${bStatuses.length} 202; /healthz max ${Math.max(...healthMs).toFixed(0)} ms`,
    );
    // The premise: A asked for at least ten times what it may have.
    expect(total, JSON.stringify(codes)).toBeGreaterThanOrEqual(10 * POLL_LIMIT * SECONDS);
    expect(flood.errors, "connection errors").toBe(0);
    expect(flood.timeouts, "timeouts").toBe(0);
    expect(
      Object.keys(codes).filter((c) => c.startsWith("5")),
      JSON.stringify(codes),
    ).toEqual([]);
    expect(
      Object.keys(codes).every((c) => c === "202" || c === "429"),
      JSON.stringify(codes),
    ).toBe(true);
    expect(limited / total).toBeGreaterThanOrEqual(0.85);

    // A 429 reads no job: the store was asked only for A's admitted polls and B's (and for at
    // most one request per connection still in flight when autocannon stopped counting).
    expect(getCalls).toBeLessThanOrEqual(total - limited + bStatuses.length + 16);
    // Nor a key lookup: a verified key is trusted for --auth-cache-ms (1 s), so two keys over
    // SECONDS seconds are looked up a handful of times, not once per request (L3: 0 store queries).
    expect(lookupCalls).toBeLessThanOrEqual(2 * (SECONDS + 2));

    // B was never limited; /healthz stayed responsive.
    expect(bStatuses.length).toBeGreaterThan(10);
    expect(bStatuses.every((s) => s === 202)).toBe(true);
    expect(healthMs.length).toBeGreaterThan(10);
    expect(Math.max(...healthMs)).toBeLessThan(1000);

    // The 429 carries what a client needs to back off.
    const last = await http(`${server.url}/v1/jobs/${idA}`, { headers: bearer(keyA) });
    if (last.status === 429) {
      await expectProblem(last, 429, "rate-limited");
      expectRetryAfter(last);
      expect(last.headers.get("ratelimit-policy")).toBe(`"poll";q=${POLL_LIMIT};w=1`);
      expect(last.headers.get("ratelimit")).toMatch(/^"poll";r=0;t=1$/);
    }
  });
});
