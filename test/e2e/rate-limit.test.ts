/**
 * Rate limits, the per-job poll budget and the queued-jobs quota, over real sockets: SQLite
 * (counters in memory) and two Tessera instances on one PostgreSQL schema (shared counters).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { tenants } from "../../src/cli/tenants.js";
import { loadConfig, type Config } from "../../src/config.js";
import { demoJobs } from "../../src/demo/jobs.js";
import { PostgresStore } from "../../src/store/postgres/store.js";
import { createTessera, type Tessera } from "../../src/tessera.js";
import { freshSchema, PG_URL } from "../helpers/postgres.js";
import { bearer, http, issueKey, TEST_SECRET } from "../helpers/server.js";
import { expectProblem, expectRetryAfter, sleep } from "./support.js";

const WINDOW_S = 10;

/**
 * A clock shifted so that a rate window has just begun: the test has WINDOW_S seconds before
 * the counters reset (windows are aligned to multiples of their length).
 */
function windowAlignedClock(): () => number {
  const ms = WINDOW_S * 1000;
  const offset = ms - (Date.now() % ms) + 1;
  return () => Date.now() + offset;
}

interface Node {
  url: string;
  tessera: Tessera;
  key(tenant: string): Promise<string>;
  close(): Promise<void>;
}

async function start(config: Partial<Config>, now: () => number, dir?: string): Promise<Node> {
  const own = dir ?? mkdtempSync(join(tmpdir(), "tessera-rl-"));
  const tessera = await createTessera({
    jobs: demoJobs,
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }),
    now,
    config: {
      db: join(own, "tessera.db"),
      dev: false,
      secrets: [TEST_SECRET],
      leaseMs: 2000,
      heartbeatMs: 500,
      sweepIntervalMs: 200,
      pollIntervalMs: 500,
      shutdownGraceMs: 500,
      rateWindow: WINDOW_S,
      ...config,
    },
  });
  const url = await tessera.listen({ port: 0, host: "127.0.0.1" });
  return {
    url,
    tessera,
    async key(tenant) {
      return issueKey(tessera.store, tenant);
    },
    async close() {
      await tessera.close();
      if (dir === undefined) rmSync(own, { recursive: true, force: true });
    },
  };
}

const echo = { type: "demo.echo", input: { hello: "world" } };

describe("e2e: rate limits (SQLite, in memory)", () => {
  let node: Node;
  beforeAll(async () => {
    // q = rate x window: 10 submits and 20 polls per 10 s window.
    node = await start({ rateSubmit: 1, ratePoll: 2, concurrency: 0 }, windowAlignedClock());
  });
  afterAll(() => node.close());

  it("counts submits per tenant: RateLimit headers on every answer, 429 after the limit, others unaffected", async () => {
    const a = await node.key("rl-a");
    const b = await node.key("rl-b");
    for (let i = 0; i < 10; i++) {
      const res = await http(`${node.url}/v1/jobs`, { headers: bearer(a), json: echo });
      expect(res.status).toBe(202);
      expect(res.headers.get("ratelimit-policy")).toBe(`"submit";q=10;w=${WINDOW_S}`);
      expect(res.headers.get("ratelimit")).toMatch(new RegExp(`^"submit";r=${9 - i};t=\\d+$`));
    }
    const limited = await http(`${node.url}/v1/jobs`, { headers: bearer(a), json: echo });
    const problem = await expectProblem(limited, 429, "rate-limited");
    expect(problem.detail).toMatch(/submits/);
    expect(expectRetryAfter(limited)).toBeLessThanOrEqual(WINDOW_S);
    expect(limited.headers.get("ratelimit-policy")).toBe(`"submit";q=10;w=${WINDOW_S}`);
    expect(limited.headers.get("ratelimit")).toMatch(/^"submit";r=0;t=\d+$/);

    // Another tenant has its own window; polls are a policy of their own.
    const other = await http(`${node.url}/v1/jobs`, { headers: bearer(b), json: echo });
    expect(other.status).toBe(202);
    const list = await http(`${node.url}/v1/jobs`, { headers: bearer(a) });
    expect(list.status).toBe(200);
    expect(list.headers.get("ratelimit-policy")).toBe(`"poll";q=20;w=${WINDOW_S}`);
    expect(list.headers.get("ratelimit")).toMatch(/^"poll";r=19;t=\d+$/);

    const metrics = await (await http(`${node.url}/metrics`)).text();
    expect(metrics).toMatch(/tessera_rate_limited_total\{policy="submit",reason="rate"\} [1-9]/);
  });

  it("events count as submits: a flood of POST /v1/events is 429 after the limit, like jobs", async () => {
    const c = await node.key("rl-events");
    const event = (i: number) => ({ specversion: "1.0", id: `flood-${i}`, source: "/t", type: "t.flood" });
    for (let i = 0; i < 10; i++)
      expect((await http(`${node.url}/v1/events`, { headers: bearer(c), json: event(i) })).status).toBe(202);
    const limited = await http(`${node.url}/v1/events`, { headers: bearer(c), json: event(10) });
    await expectProblem(limited, 429, "rate-limited");
    // And jobs share the tenant's one submit window.
    await expectProblem(
      await http(`${node.url}/v1/jobs`, { headers: bearer(c), json: echo }),
      429,
      "rate-limited",
    );
  });

  it("polls (status, result, list) share the poll policy; a tenant's own rate from the store wins", async () => {
    await node.tessera.store.setTenantLimits({
      tenantName: "rl-c",
      limits: { pollRate: 3 },
      now: Date.now(),
    });
    const c = await node.key("rl-c");
    const submitted = await http(`${node.url}/v1/jobs`, { headers: bearer(c), json: echo });
    const id = ((await submitted.json()) as { id: string }).id;
    const urls = [
      `/v1/jobs`,
      `/v1/jobs/${id}?onPending=synchronous&onComplete=status`,
      `/v1/jobs/${id}/result`,
    ];
    const statuses: number[] = [];
    for (let i = 0; i < 31; i++) {
      // Long polls and the result are exempt from the per-job budget; they count as polls.
      const res = await http(`${node.url}${urls[i % 3]!}`, {
        headers: { ...bearer(c), ...(i % 3 === 1 ? { prefer: "wait=0" } : {}) },
      });
      expect(res.headers.get("ratelimit-policy")).toBe(`"poll";q=30;w=${WINDOW_S}`);
      statuses.push(res.status);
      await res.arrayBuffer();
    }
    expect(statuses.slice(0, 30).every((s) => s !== 429)).toBe(true);
    expect(statuses[30]).toBe(429);
  });

  it("failed authentication is counted per client address", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 21; i++) {
      const res = await http(`${node.url}/v1/jobs`, { headers: bearer("tsk_not_a_real_key") });
      statuses.push(res.status);
      await res.arrayBuffer();
    }
    expect(statuses.slice(0, 20)).toEqual(Array(20).fill(401));
    expect(statuses[20]).toBe(429);
  });
});

describe("e2e: the per-job poll budget", () => {
  let node: Node;
  beforeAll(async () => {
    node = await start({ retryAfterMax: 2, concurrency: 2, pollBudget: true }, Date.now);
  });
  afterAll(() => node.close());

  it("a poll before the Retry-After it was given is 429 without a store read; one after it is answered", async () => {
    const key = await node.key("budget");
    const h = bearer(key);
    const submitted = await http(`${node.url}/v1/jobs`, {
      headers: h,
      json: { type: "demo.sleep", input: { ms: 6000 } },
    });
    const { id } = (await submitted.json()) as { id: string };
    // The submit's own Retry-After is not a budget: an immediate first poll is fine.
    const first = await http(`${node.url}/v1/jobs/${id}`, { headers: h });
    expect(first.status).toBe(202);
    const retryAfter = expectRetryAfter(first);
    expect(retryAfter).toBeLessThanOrEqual(2);

    const reads = vi.spyOn(node.tessera.store, "get");
    try {
      const early = await http(`${node.url}/v1/jobs/${id}`, { headers: h });
      await expectProblem(early, 429, "rate-limited");
      const remaining = expectRetryAfter(early);
      expect(remaining).toBeLessThanOrEqual(retryAfter);
      expect(early.headers.get("ratelimit-policy")).toMatch(/^"poll";q=\d+;w=\d+$/);
      expect(reads).not.toHaveBeenCalled();

      // Another tenant asking for the same id learns nothing from the budget: 404 as always.
      const stranger = await http(`${node.url}/v1/jobs/${id}`, { headers: bearer(await node.key("other")) });
      await expectProblem(stranger, 404, "not-found");

      // A long poll is exempt.
      const long = await http(`${node.url}/v1/jobs/${id}`, { headers: { ...h, prefer: "wait=1" } });
      expect(long.status).toBe(202);
      const again = expectRetryAfter(long);

      // Waiting as told: answered.
      await sleep(again * 1000);
      const onTime = await http(`${node.url}/v1/jobs/${id}`, { headers: h });
      expect(onTime.status).toBe(202);
    } finally {
      reads.mockRestore();
    }
  });
});

describe("e2e: queued-jobs quota", () => {
  let node: Node;
  beforeAll(async () => {
    node = await start({ concurrency: 0, maxQueuedPerTenant: 100 }, Date.now);
  });
  afterAll(() => node.close());

  it("429 quota-exceeded at the tenant's max-queued; submits work again once its jobs finished", async () => {
    await node.tessera.store.setTenantLimits({
      tenantName: "quota",
      limits: { maxQueued: 3 },
      now: Date.now(),
    });
    const key = await node.key("quota");
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await http(`${node.url}/v1/jobs`, { headers: bearer(key), json: echo });
      expect(res.status).toBe(202);
      ids.push(((await res.json()) as { id: string }).id);
    }
    const over = await http(`${node.url}/v1/jobs`, { headers: bearer(key), json: echo });
    const problem = await expectProblem(over, 429, "quota-exceeded");
    expect(problem.maxQueued).toBe(3);
    expectRetryAfter(over);
    expect(await node.tessera.store.countQueued({ tenantId: (await tenantId(node, "quota"))! })).toBe(3);

    // Another tenant is not affected.
    const other = await http(`${node.url}/v1/jobs`, {
      headers: bearer(await node.key("quota-2")),
      json: echo,
    });
    expect(other.status).toBe(202);

    for (const id of ids) {
      const res = await http(`${node.url}/v1/jobs/${id}/cancel`, { method: "POST", headers: bearer(key) });
      expect(res.status).toBe(200);
    }
    // The count is re-read at most once a second.
    await sleep(1100);
    const again = await http(`${node.url}/v1/jobs`, { headers: bearer(key), json: echo });
    expect(again.status).toBe(202);
  });

  it("tenants list and limits round-trip through the store", async () => {
    const set = await node.tessera.store.setTenantLimits({
      tenantName: "limits",
      limits: { submitRate: 7, pollRate: 8, maxQueued: 9 },
      now: Date.now(),
    });
    expect(set.limits).toEqual({ submitRate: 7, pollRate: 8, maxQueued: 9 });
    const cleared = await node.tessera.store.setTenantLimits({
      tenantName: "limits",
      limits: { pollRate: null },
      now: Date.now(),
    });
    expect(cleared.limits).toEqual({ submitRate: 7, pollRate: null, maxQueued: 9 });
    const listed = (await node.tessera.store.listTenants()).find((t) => t.name === "limits");
    expect(listed?.limits).toEqual({ submitRate: 7, pollRate: null, maxQueued: 9 });
  });
});

async function tenantId(node: Node, name: string): Promise<string | undefined> {
  return (await node.tessera.store.listTenants()).find((t) => t.name === name)?.id;
}

describe("e2e: rate limits across nodes (PostgreSQL)", () => {
  const schema = freshSchema("rl");
  const dirs: string[] = [];
  let a: Node;
  let b: Node;
  beforeAll(async () => {
    const clock = windowAlignedClock();
    const config = { db: PG_URL, dbSchema: schema, rateSubmit: 1, ratePoll: 2, concurrency: 0 };
    for (let i = 0; i < 2; i++) dirs.push(mkdtempSync(join(tmpdir(), "tessera-rl-pg-")));
    a = await start(config, clock, dirs[0]);
    b = await start(config, clock, dirs[1]);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    const store = new PostgresStore({ connectionString: PG_URL, schema, listen: false });
    await store.dropSchema();
    await store.close();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it("two instances share one tenant's window; concurrent requests are counted exactly", async () => {
    const key = await a.key("shared");
    // 10 submits per window, spread over both nodes.
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      const res = await http(`${(i % 2 === 0 ? a : b).url}/v1/jobs`, { headers: bearer(key), json: echo });
      statuses.push(res.status);
      await res.arrayBuffer();
    }
    expect(statuses).toEqual(Array(10).fill(202));
    for (const node of [a, b]) {
      const res = await http(`${node.url}/v1/jobs`, { headers: bearer(key), json: echo });
      await expectProblem(res, 429, "rate-limited");
      expect(res.headers.get("ratelimit")).toMatch(/^"submit";r=0;t=\d+$/);
    }

    // 50 concurrent polls over both nodes (batched into one statement per turn): exactly 20 pass.
    const polls = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const res = await http(`${(i % 2 === 0 ? a : b).url}/v1/jobs?limit=1`, { headers: bearer(key) });
        await res.arrayBuffer();
        return res.status;
      }),
    );
    expect(polls.filter((s) => s === 200).length).toBe(20);
    expect(polls.filter((s) => s === 429).length).toBe(30);

    // Another tenant is unaffected on either node.
    const other = await a.key("shared-2");
    for (const node of [a, b]) {
      const res = await http(`${node.url}/v1/jobs`, { headers: bearer(other) });
      expect(res.status).toBe(200);
      expect(res.headers.get("ratelimit")).toMatch(/^"poll";r=1[89];t=\d+$/);
    }
  });

  it("tenant limits and the queued-jobs count on PostgreSQL", async () => {
    const store = a.tessera.store;
    const t = await store.setTenantLimits({
      tenantName: "pg-limits",
      limits: { submitRate: 1, maxQueued: 2 },
      now: Date.now(),
    });
    expect(t.limits).toEqual({ submitRate: 1, pollRate: null, maxQueued: 2 });
    expect(await store.tenantLimits({ tenantId: t.id })).toEqual(t.limits);
    const listed = await store.listTenants();
    expect(listed.find((x) => x.name === "pg-limits")?.limits).toEqual(t.limits);
    // The 10 jobs submitted above wait: no node runs jobs.
    const shared = listed.find((x) => x.name === "shared")!;
    expect(await store.countQueued({ tenantId: shared.id })).toBe(10);
  });
});

describe("configuration and CLI", () => {
  it("the poll budget is on for `tessera serve`, off with --dev, and the flag wins", () => {
    const env = { TESSERA_SECRET: TEST_SECRET };
    expect(loadConfig({}, env).pollBudget).toBe(true);
    expect(loadConfig({ dev: true }, {}).pollBudget).toBe(false);
    expect(loadConfig({ dev: true, "poll-budget": true }, {}).pollBudget).toBe(true);
    expect(loadConfig({ "poll-budget": "false" }, env).pollBudget).toBe(false);
    const config = loadConfig({ "rate-submit": "0", "rate-poll": "7", "max-queued-per-tenant": "0" }, env);
    expect(config).toMatchObject({ rateSubmit: 0, ratePoll: 7, rateWindow: 1, maxQueuedPerTenant: 0 });
  });

  it("tessera tenants limits and tenants list", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tessera-rl-cli-"));
    const db = join(dir, "t.db");
    const run = async (...args: string[]) => {
      let text = "";
      const out = new Writable({
        write(chunk, _encoding, done) {
          text += String(chunk);
          done();
        },
      });
      const code = await tenants([...args, "--db", db], {}, out);
      return { code, text };
    };
    try {
      const set = await run("limits", "--tenant", "acme", "--submit-rate", "5", "--max-queued", "0");
      expect(set).toEqual({ code: 0, text: "acme  submit-rate=5  poll-rate=default  max-queued=off\n" });
      const listed = await run("list", "--json");
      expect(JSON.parse(listed.text)).toMatchObject([
        { name: "acme", limits: { submitRate: 5, pollRate: null, maxQueued: 0 } },
      ]);
      expect((await run("limits", "--tenant", "acme", "--submit-rate", "default")).text).toMatch(
        /submit-rate=default/,
      );
      expect((await run("limits", "--tenant", "acme", "--poll-rate", "-1")).code).toBe(2);
      expect((await run("limits")).code).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
