import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, http, startServer, type TestServer } from "../helpers/server.js";
import {
  client,
  expectProblem,
  expectRepresentation,
  expectSecurityHeaders,
  settle,
  submit,
  type Client,
  type Job,
} from "./support.js";

interface Page {
  items: Job[];
  nextCursor: string | null;
}

/** Newest first, ties broken by id (descending), as the contract's "newest first (ties by id)". */
function expectNewestFirst(items: Job[]): void {
  for (let i = 1; i < items.length; i++) {
    const prev = items[i - 1]!;
    const cur = items[i]!;
    const dp = Date.parse(prev.createdAt);
    const dc = Date.parse(cur.createdAt);
    expect(dp >= dc, `${prev.createdAt} before ${cur.createdAt}`).toBe(true);
    if (dp === dc) expect(prev.id > cur.id).toBe(true);
  }
}

describe("GET /v1/jobs (listing)", () => {
  let server: TestServer;
  let key: string;
  let otherKey: string;
  let c: Client;
  const submitted: Job[] = [];
  let echoDone: Job;
  let failed: Job;
  beforeAll(async () => {
    server = await startServer();
    key = await server.key("lister");
    otherKey = await server.key("someone-else");
    c = client(server.url, key);
    const later = new Date(Date.now() + 30_000).toISOString();
    for (let i = 0; i < 23; i++) {
      // Queued in the future so they stay put while we list; submitted one by one so
      // creation order is known (ties in createdAt are broken by id).
      submitted.push((await submit(c, { type: "demo.echo", input: i, runAt: later })).job);
    }
    echoDone = await settle(c, (await submit(c, { type: "demo.echo", input: "done" })).job.id);
    failed = await settle(
      c,
      (await submit(c, { type: "demo.fail", input: { message: "x", status: 400 } })).job.id,
    );
    await submit(client(server.url, otherKey), { type: "demo.echo", input: "not yours" });
  });
  afterAll(() => server.close());

  const list = async (query = "", apiKey = key): Promise<{ res: Response; page: Page }> => {
    const res = await http(`${server.url}/v1/jobs${query}`, { headers: bearer(apiKey) });
    return { res, page: res.status === 200 ? ((await res.json()) as Page) : (undefined as unknown as Page) };
  };

  it("200, { items, nextCursor }, newest first, default limit 50, only the caller's jobs", async () => {
    const { res, page } = await list();
    expect(res.status).toBe(200);
    expectSecurityHeaders(res);
    expect(res.headers.get("cache-control")).toMatch(/no-store/);
    expect(Object.keys(page).sort()).toEqual(["items", "nextCursor"]);
    expect(page.items).toHaveLength(25);
    expect(page.nextCursor).toBeNull();
    for (const item of page.items) expectRepresentation(item);
    expectNewestFirst(page.items);
    expect(page.items.map((j) => j.id)).not.toContain(undefined);
    const mine = new Set([...submitted.map((j) => j.id), echoDone.id, failed.id]);
    for (const item of page.items) expect(mine.has(item.id)).toBe(true);
    // The first submitted is the last listed.
    expect(page.items[page.items.length - 1]!.id).toBe(submitted[0]!.id);
  });

  it("limit bounds the page and nextCursor pages through every item exactly once", async () => {
    const { page: all } = await list("?limit=500");
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const { res, page } = await list(`?limit=4${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
      expect(res.status).toBe(200);
      expect(page.items.length).toBeLessThanOrEqual(4);
      seen.push(...page.items.map((j) => j.id));
      cursor = page.nextCursor;
      if (cursor !== null) expect(typeof cursor).toBe("string");
      pages++;
    } while (cursor !== null && pages < 50);
    expect(pages).toBe(Math.ceil(all.items.length / 4));
    expect(seen).toEqual(all.items.map((j) => j.id));
    expect(new Set(seen).size).toBe(seen.length);
  });

  it("a page exactly filling the last items ends with nextCursor null", async () => {
    const { page } = await list("?limit=25");
    expect(page.items).toHaveLength(25);
    expect(page.nextCursor).toBeNull();
    const { page: short } = await list("?limit=24");
    expect(short.nextCursor).not.toBeNull();
    const { page: rest } = await list(`?limit=24&cursor=${encodeURIComponent(short.nextCursor!)}`);
    expect(rest.items).toHaveLength(1);
    expect(rest.nextCursor).toBeNull();
  });

  it("a job submitted while paging does not shift later pages", async () => {
    const { page: first } = await list("?limit=5");
    await submit(c, { type: "demo.echo", input: "new", runAt: new Date(Date.now() + 30_000).toISOString() });
    const { page: second } = await list(`?limit=5&cursor=${encodeURIComponent(first.nextCursor!)}`);
    const firstIds = new Set(first.items.map((j) => j.id));
    for (const item of second.items) expect(firstIds.has(item.id)).toBe(false);
  });

  it("filters by status and type", async () => {
    const { page: queued } = await list("?status=queued&limit=500");
    expect(queued.items.length).toBeGreaterThanOrEqual(23);
    for (const item of queued.items) expect(item.status).toBe("queued");
    const { page: succeeded } = await list("?status=succeeded");
    expect(succeeded.items.map((j) => j.id)).toEqual([echoDone.id]);
    const { page: failing } = await list("?type=demo.fail");
    expect(failing.items.map((j) => j.id)).toEqual([failed.id]);
    const { page: both } = await list("?type=demo.fail&status=failed");
    expect(both.items.map((j) => j.id)).toEqual([failed.id]);
    const { page: none } = await list("?type=demo.fail&status=succeeded");
    expect(none.items).toEqual([]);
    expect(none.nextCursor).toBeNull();
    const { page: unknownType } = await list("?type=no.such.type");
    expect(unknownType.items).toEqual([]);
  });

  it("the cursor carries over with filters", async () => {
    const { page: first } = await list("?status=queued&limit=10");
    const { page: second } = await list(
      `?status=queued&limit=10&cursor=${encodeURIComponent(first.nextCursor!)}`,
    );
    for (const item of second.items) expect(item.status).toBe("queued");
    expect(new Set([...first.items, ...second.items].map((j) => j.id)).size).toBe(
      first.items.length + second.items.length,
    );
  });

  it.each([
    "?status=bogus",
    "?status=",
    "?limit=0",
    "?limit=-1",
    "?limit=abc",
    "?limit=1.5",
    "?limit=",
    "?cursor=not-a-cursor",
    "?cursor=",
    `?cursor=${Buffer.from("[1,2]").toString("base64url")}`,
    "?status=queued&status=running",
  ])("invalid parameters %s are 400", async (query) => {
    const res = await http(`${server.url}/v1/jobs${query}`, { headers: bearer(key) });
    await expectProblem(res, 400);
  });

  it.each(["?limit=501", "?limit=100000", "?stauts=failed", "?type="])(
    "%s is 400 with a validation problem naming the parameter",
    async (query) => {
      const res = await http(`${server.url}/v1/jobs${query}`, { headers: bearer(key) });
      const problem = await expectProblem(res, 400, "invalid-parameter");
      const name = query.slice(1, query.indexOf("="));
      expect(problem.errors?.map((e) => e.path)).toEqual([name]);
    },
  );

  it("another tenant sees only its own jobs", async () => {
    const { page } = await list("?limit=500", otherKey);
    expect(page.items).toHaveLength(1);
    expect(page.items[0]!.type).toBe("demo.echo");
    const mine = new Set(submitted.map((j) => j.id));
    expect(mine.has(page.items[0]!.id)).toBe(false);
  });
});

describe("GET /v1/job-types", () => {
  let server: TestServer;
  let key: string;
  beforeAll(async () => {
    server = await startServer();
    key = await server.key("acme");
  });
  afterAll(() => server.close());

  it("lists each registered type with its input schema, default timeout and attempts", async () => {
    const res = await http(`${server.url}/v1/job-types`, { headers: bearer(key) });
    expect(res.status).toBe(200);
    expectSecurityHeaders(res);
    const body = (await res.json()) as {
      items: {
        type: string;
        description: string;
        inputSchema: unknown;
        timeoutSeconds: number;
        maxAttempts: number;
      }[];
    };
    expect(body.items.map((t) => t.type).sort()).toEqual([
      "demo.echo",
      "demo.fail",
      "demo.flaky",
      "demo.sleep",
    ]);
    for (const t of body.items) {
      expect(Object.keys(t).sort()).toEqual([
        "description",
        "inputSchema",
        "maxAttempts",
        "timeoutSeconds",
        "type",
      ]);
      expect(typeof t.description).toBe("string");
      expect(typeof t.inputSchema).toBe("object");
      expect(Number.isInteger(t.timeoutSeconds)).toBe(true);
      expect(Number.isInteger(t.maxAttempts)).toBe(true);
    }
    const sleep = body.items.find((t) => t.type === "demo.sleep")!;
    expect(sleep.timeoutSeconds).toBe(3600);
    expect(sleep.maxAttempts).toBe(3);
    expect(sleep.inputSchema).toMatchObject({ type: "object", required: ["ms"] });
  });

  it("POST /v1/job-types is 405 with Allow", async () => {
    const res = await http(`${server.url}/v1/job-types`, { method: "POST", headers: bearer(key), json: {} });
    await expectProblem(res, 405);
    expect(res.headers.get("allow")).toMatch(/GET/);
  });
});
