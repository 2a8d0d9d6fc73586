import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, http, startServer, type TestServer } from "../helpers/server.js";
import { client, expectProblem, expectRepresentation, settle, type Client, type Job } from "./support.js";

describe("Idempotency-Key on submit", () => {
  let server: TestServer;
  let keyA: string;
  let keyB: string;
  let a: Client;
  beforeAll(async () => {
    server = await startServer();
    keyA = await server.key("tenant-a");
    keyB = await server.key("tenant-b");
    a = client(server.url, keyA);
  });
  afterAll(() => server.close());

  const post = (apiKey: string, idem: string | null, body: unknown, extra: Record<string, string> = {}) =>
    http(`${server.url}/v1/jobs`, {
      headers: { ...bearer(apiKey), ...(idem === null ? {} : { "idempotency-key": idem }), ...extra },
      json: body,
    });

  it("the same key and body returns the same job, marked Idempotent-Replayed", async () => {
    const idem = randomUUID();
    const body = { type: "demo.echo", input: { n: 1 } };
    const first = await post(keyA, idem, body);
    expect(first.status).toBe(202);
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    const firstJob = (await first.json()) as Job;
    const second = await post(keyA, idem, body);
    expect(second.status).toBe(202);
    expect(second.headers.get("idempotent-replayed")).toBe("true");
    expect(second.headers.get("location")).toBe(first.headers.get("location"));
    const secondJob = (await second.json()) as Job;
    expectRepresentation(secondJob);
    expect(secondJob.id).toBe(firstJob.id);
  });

  it("a replay after the job finished is 202 with the same Location and the current representation", async () => {
    const idem = randomUUID();
    const body = { type: "demo.echo", input: { n: 2 } };
    const first = await post(keyA, idem, body);
    const job = (await first.json()) as Job;
    await settle(a, job.id);
    const replay = await post(keyA, idem, body);
    expect(replay.status).toBe(202);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(replay.headers.get("location")).toBe(first.headers.get("location"));
    const current = (await replay.json()) as Job;
    expect(current.status).toBe("succeeded");
    expect(current.links.result).toBeTruthy();
  });

  it("a replay with Prefer: wait is never held and still 202", async () => {
    const idem = randomUUID();
    const body = { type: "demo.sleep", input: { ms: 30_000 } };
    const first = await post(keyA, idem, body);
    expect(first.status).toBe(202);
    const start = Date.now();
    const replay = await post(keyA, idem, body, { prefer: "wait=10" });
    expect(replay.status).toBe(202);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(Date.now() - start).toBeLessThan(3000);
    const job = (await replay.json()) as Job;
    await http(job.links.cancel!, { method: "POST", headers: bearer(keyA) });
  });

  it("the same key with a different body is 422", async () => {
    const idem = randomUUID();
    expect((await post(keyA, idem, { type: "demo.echo", input: { n: 3 } })).status).toBe(202);
    const res = await post(keyA, idem, { type: "demo.echo", input: { n: 4 } });
    await expectProblem(res, 422, "idempotency-key-mismatch");
  });

  it("key order in the body is ignored", async () => {
    const idem = randomUUID();
    const first = await http(`${server.url}/v1/jobs`, {
      headers: { ...bearer(keyA), "idempotency-key": idem, "content-type": "application/json" },
      body: '{"type":"demo.echo","input":{"x":1,"y":{"b":2,"a":1}},"metadata":{"p":"1","q":"2"}}',
    });
    expect(first.status).toBe(202);
    const second = await http(`${server.url}/v1/jobs`, {
      headers: { ...bearer(keyA), "idempotency-key": idem, "content-type": "application/json" },
      body: '{ "metadata": {"q":"2","p":"1"}, "input": {"y": {"a":1,"b":2}, "x": 1}, "type": "demo.echo" }',
    });
    expect(second.status).toBe(202);
    expect(second.headers.get("idempotent-replayed")).toBe("true");
    expect(second.headers.get("location")).toBe(first.headers.get("location"));
  });

  it("20 parallel submits with the same key create exactly one job", async () => {
    const idem = randomUUID();
    const body = { type: "demo.echo", input: { parallel: true } };
    const answers = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const res = await post(keyA, idem, body);
        return {
          status: res.status,
          location: res.headers.get("location"),
          replayed: res.headers.get("idempotent-replayed"),
          body: await res.text(),
        };
      }),
    );
    const created = answers.filter((r) => r.status === 202 && r.replayed === null);
    const replays = answers.filter((r) => r.status === 202 && r.replayed === "true");
    const inFlight = answers.filter((r) => r.status === 409);
    expect(created).toHaveLength(1);
    expect(created.length + replays.length + inFlight.length).toBe(20);
    for (const r of replays) expect(r.location).toBe(created[0]!.location);
    for (const r of inFlight) {
      const problem = JSON.parse(r.body) as { type: string; status: number };
      expect(problem.status).toBe(409);
      expect(problem.type).toMatch(/\/idempotency-in-flight$/);
    }
    // Exactly one job with that input exists for the tenant.
    const list = await http(`${server.url}/v1/jobs?type=demo.echo&limit=500`, { headers: bearer(keyA) });
    const items = ((await list.json()) as { items: (Job & { metadata: unknown })[] }).items;
    const id = created[0]!.location!.split("/").pop();
    expect(items.filter((j) => j.id === id)).toHaveLength(1);
    // A later retry is a replay.
    const later = await post(keyA, idem, body);
    expect(later.status).toBe(202);
    expect(later.headers.get("idempotent-replayed")).toBe("true");
    expect(later.headers.get("location")).toBe(created[0]!.location);
  });

  it("another tenant using the same key and body gets its own job, with no hint of the first", async () => {
    const idem = randomUUID();
    const body = { type: "demo.echo", input: { shared: "key" } };
    const resA = await post(keyA, idem, body);
    const resB = await post(keyB, idem, body);
    expect(resA.status).toBe(202);
    expect(resB.status).toBe(202);
    expect(resB.headers.get("idempotent-replayed")).toBeNull();
    expect(resB.headers.get("location")).not.toBe(resA.headers.get("location"));
    // And B's different body with A's key is not a mismatch for B either.
    const idem2 = randomUUID();
    expect((await post(keyA, idem2, { type: "demo.echo", input: 1 })).status).toBe(202);
    expect((await post(keyB, idem2, { type: "demo.echo", input: 2 })).status).toBe(202);
  });

  it("deleting the job frees its key", async () => {
    const idem = randomUUID();
    const body = { type: "demo.echo", input: { n: "freed" } };
    const first = await post(keyA, idem, body);
    const job = (await first.json()) as Job;
    await settle(a, job.id);
    expect((await http(job.links.self, { method: "DELETE", headers: bearer(keyA) })).status).toBe(204);
    const again = await post(keyA, idem, body);
    expect(again.status).toBe(202);
    expect(again.headers.get("idempotent-replayed")).toBeNull();
    expect(again.headers.get("location")).not.toBe(first.headers.get("location"));
  });

  it("a key of 255 visible ASCII characters is accepted", async () => {
    const res = await post(keyA, "k".repeat(254) + "~", { type: "demo.echo", input: 1 });
    expect(res.status).toBe(202);
  });

  it.each([
    ["256 characters", "k".repeat(256)],
    ["non-ASCII", "clé-é"],
    ["a space", "two words"],
  ])("a key with %s is 400", async (_label, idem) => {
    const res = await post(keyA, idem, { type: "demo.echo", input: 1 });
    await expectProblem(res, 400, "invalid-idempotency-key");
  });

  it("an empty key is 400", async () => {
    const res = await post(keyA, "", { type: "demo.echo", input: 1 });
    await expectProblem(res, 400, "invalid-idempotency-key");
  });

  it("an invalid body with a key is 400 and does not burn the key", async () => {
    const idem = randomUUID();
    await expectProblem(await post(keyA, idem, { type: "demo.sleep", input: { ms: "x" } }), 400);
    const res = await post(keyA, idem, { type: "demo.echo", input: 1 });
    expect(res.status).toBe(202);
    expect(res.headers.get("idempotent-replayed")).toBeNull();
  });
});
