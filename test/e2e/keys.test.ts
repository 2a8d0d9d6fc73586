/**
 * API key expiry, rotation and listing, and the audit log, over real HTTP against a real
 * SQLite file; the `tessera keys` command runs in-process on the same file, with the server's
 * clock, so an overlap can end without sleeping.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { generateApiKey } from "../../src/auth/api-keys.js";
import { keys } from "../../src/cli/keys.js";
import { bearer, http, startServer, type TestServer } from "../helpers/server.js";
import { auditLines, captureLogger } from "../helpers/log-capture.js";
import { client, expectProblem, submit } from "./support.js";

const HOUR = 3_600_000;

function sink(): { stream: NodeJS.WritableStream; text: () => string } {
  let text = "";
  const stream = {
    write(chunk: string | Buffer) {
      text += chunk.toString();
      return true;
    },
  } as unknown as NodeJS.WritableStream;
  return { stream, text: () => text };
}

describe("API keys over HTTP: expiry, rotation, listing", () => {
  let server: TestServer;
  let clock = Date.now();
  const log = captureLogger();
  /** `tessera keys …` on the server's database, at the server's clock. */
  async function cli(...args: string[]) {
    const out = sink();
    const err = sink();
    const code = await keys([...args, "--db", server.dbPath], {}, out.stream, err.stream, () => clock);
    return { code, stdout: out.text(), stderr: err.text() };
  }
  const status = async (key: string) =>
    (await http(`${server.url}/v1/jobs`, { headers: bearer(key) })).status;

  beforeAll(async () => {
    server = await startServer({ logger: log.logger, now: () => clock });
  });
  afterAll(() => server.close());

  it("an expired key is 401 with the same answer as an unknown key", async () => {
    const created = await cli("create", "--tenant", "acme", "--expires-in", "30m", "--json");
    expect(created.code).toBe(0);
    const { key, expiresAt } = JSON.parse(created.stdout) as { key: string; expiresAt: string };
    expect(Date.parse(expiresAt)).toBe(clock + 30 * 60_000);
    expect(await status(key)).toBe(200);

    clock += 30 * 60_000;
    const expired = await http(`${server.url}/v1/jobs`, { headers: bearer(key) });
    const expiredBody = await expectProblem(expired, 401, "unauthorized");
    const unknown = await http(`${server.url}/v1/jobs`, { headers: bearer(generateApiKey().key) });
    expect(await expectProblem(unknown, 401, "unauthorized")).toEqual(expiredBody);
    expect(JSON.stringify(expiredBody)).not.toMatch(/expired/i);

    const lines = auditLines(log.lines).filter((l) => l.event === "auth.failed");
    expect(lines.at(-2)).toMatchObject({ reason: "expired", keyPrefix: key.slice(0, 12) });
    expect(lines.at(-1)).toMatchObject({ reason: "unknown" });
  });

  it("refuses --expires-in that is not a duration", async () => {
    const bad = await cli("create", "--tenant", "acme", "--expires-in", "soon");
    expect(bad.code).toBe(2);
    expect(bad.stdout).toMatch(/--expires-in/);
  });

  it("rotation: both keys work during the overlap, only the new one after it", async () => {
    const old = JSON.parse((await cli("create", "--tenant", "rot", "--json")).stdout) as {
      key: string;
      id: string;
      prefix: string;
    };
    expect(await status(old.key)).toBe(200);

    const rotated = await cli("rotate", old.prefix, "--overlap", "2h", "--json");
    expect(rotated.code).toBe(0);
    const fresh = JSON.parse(rotated.stdout) as {
      key: string;
      tenant: string;
      previous: { id: string; expiresAt: string };
    };
    expect(fresh.tenant).toBe("rot");
    expect(fresh.previous.id).toBe(old.id);
    expect(Date.parse(fresh.previous.expiresAt)).toBe(clock + 2 * HOUR);

    // Same tenant: the new key sees the old key's jobs.
    const job = (await submit(client(server.url, old.key), { type: "demo.echo", input: 1 })).job;
    expect(
      (await http(`${server.url}/v1/jobs/${job.id}?onComplete=status`, { headers: bearer(fresh.key) }))
        .status,
    ).not.toBe(404);

    clock += 2 * HOUR - 1;
    expect(await status(old.key)).toBe(200);
    expect(await status(fresh.key)).toBe(200);
    clock += 1;
    expect(await status(old.key)).toBe(401);
    expect(await status(fresh.key)).toBe(200);

    // An expired key cannot be rotated again.
    const again = await cli("rotate", old.id);
    expect(again.code).toBe(1);
    expect(again.stdout).toMatch(/no live key/);
  });

  it("the default overlap is 24 hours", async () => {
    const old = JSON.parse((await cli("create", "--tenant", "rot2", "--json")).stdout) as {
      key: string;
      id: string;
    };
    const fresh = JSON.parse((await cli("rotate", old.id, "--json")).stdout) as {
      previous: { expiresAt: string };
    };
    expect(Date.parse(fresh.previous.expiresAt)).toBe(clock + 24 * HOUR);
  });

  it("keys list shows created, last used, expires and revoked", async () => {
    const used = JSON.parse(
      (await cli("create", "--tenant", "lst", "--expires-in", "90d", "--json")).stdout,
    ) as {
      key: string;
      id: string;
    };
    const revoked = JSON.parse((await cli("create", "--tenant", "lst", "--json")).stdout) as { id: string };
    expect((await cli("revoke", revoked.id)).code).toBe(0);
    expect(await status(used.key)).toBe(200);

    // The table: a header, then one row per key, columns split by two or more spaces.
    const rows = (stdout: string): Record<string, string>[] => {
      const [header, ...lines] = stdout.trimEnd().split("\n");
      const names = header!.split(/ {2,}/);
      return lines.map((l) => Object.fromEntries(l.split(/ {2,}/).map((cell, i) => [names[i], cell])));
    };
    // last-used is written after the answer (at most once a minute per key).
    const row = await vi.waitFor(async () => {
      const found = rows((await cli("list")).stdout).find((r) => r.ID === used.id)!;
      expect(found["LAST USED"]).toBe(new Date(clock).toISOString());
      return found;
    });
    expect(row).toMatchObject({
      TENANT: "lst",
      STATE: "live",
      EXPIRES: new Date(clock + 90 * 24 * HOUR).toISOString(),
      REVOKED: "no",
    });
    expect(row.CREATED).toMatch(/^\d{4}-\d\d-\d\dT/);

    const list = await cli("list");
    expect(list.stdout.split("\n")[0]).toMatch(
      /^ID +PREFIX +TENANT +STATE +CREATED +LAST USED +EXPIRES +REVOKED$/,
    );
    const revokedRow = rows(list.stdout).find((r) => r.ID === revoked.id)!;
    expect(revokedRow).toMatchObject({ STATE: "revoked", "LAST USED": "never", EXPIRES: "never" });
    expect(revokedRow.REVOKED).toMatch(/^\d{4}-/);
    expect(rows(list.stdout).find((r) => r.TENANT === "acme")?.STATE).toBe("expired");

    const json = JSON.parse((await cli("list", "--json")).stdout) as {
      id: string;
      state: string;
      lastUsedAt: number;
    }[];
    expect(json.find((k) => k.id === used.id)).toMatchObject({ state: "live", lastUsedAt: clock });
    expect(json.find((k) => k.id === revoked.id)?.state).toBe("revoked");
    expect(list.stdout).not.toMatch(/tsk_[A-Za-z0-9]{20}/); // never a whole key
  });

  it("key changes write audit lines (JSON) to stderr with the prefix, never the key", async () => {
    const created = await cli("create", "--tenant", "aud", "--json");
    const { key, id, prefix } = JSON.parse(created.stdout) as { key: string; id: string; prefix: string };
    const createdLine = JSON.parse(created.stderr) as Record<string, unknown>;
    expect(createdLine).toMatchObject({
      audit: true,
      event: "key.created",
      tenant: "aud",
      keyId: id,
      keyPrefix: prefix,
    });

    const rotated = await cli("rotate", prefix, "--overlap", "1h", "--json");
    const fresh = JSON.parse(rotated.stdout) as { key: string; prefix: string };
    expect(JSON.parse(rotated.stderr)).toMatchObject({
      audit: true,
      event: "key.rotated",
      tenant: "aud",
      keyPrefix: prefix,
      newKeyPrefix: fresh.prefix,
      expiresAt: new Date(clock + HOUR).toISOString(),
    });

    const revoked = await cli("revoke", fresh.prefix);
    expect(JSON.parse(revoked.stderr)).toMatchObject({
      audit: true,
      event: "key.revoked",
      tenant: "aud",
      keyPrefix: fresh.prefix,
    });

    for (const text of [created.stderr, rotated.stderr, revoked.stderr]) {
      expect(text).not.toContain(key);
      expect(text).not.toContain(fresh.key);
      expect(text.trim().split("\n")).toHaveLength(1);
    }
  });
});

describe("the audit log over HTTP", () => {
  let server: TestServer;
  let key: string;
  const log = captureLogger();
  const audit = () => auditLines(log.lines);

  beforeAll(async () => {
    server = await startServer({ logger: log.logger, config: { trustProxy: true } });
    key = await server.key("acme");
  });
  afterAll(() => server.close());

  it("logs each kind of auth failure with its reason, the address and the request id; the answer is the same", async () => {
    const revoked = await server.key("acme");
    await server.tessera.store.revokeApiKey({ idOrPrefix: revoked.slice(0, 12), now: Date.now() });
    const unknown = generateApiKey().key;
    const typo = key.slice(0, -1) + (key.endsWith("A") ? "B" : "A");
    const cases: [string, Record<string, string>, string, string | null][] = [
      ["missing", {}, "missing", null],
      ["malformed", { authorization: "Bearer not-a-key" }, "malformed", null],
      [
        "wrong scheme",
        { authorization: `Basic ${Buffer.from("x:y").toString("base64")}` },
        "malformed",
        null,
      ],
      ["bad checksum", bearer(typo), "malformed", typo.slice(0, 12)],
      ["unknown", bearer(unknown), "unknown", unknown.slice(0, 12)],
      ["revoked", bearer(revoked), "revoked", revoked.slice(0, 12)],
    ];
    const bodies = new Set<string>();
    for (const [label, headers, reason, prefix] of cases) {
      const before = audit().length;
      const res = await http(`${server.url}/v1/jobs`, { headers });
      const body = await expectProblem(res, 401, "unauthorized");
      bodies.add(JSON.stringify(body));
      const lines = audit().slice(before);
      expect(lines, label).toHaveLength(1);
      expect(lines[0], label).toMatchObject({ event: "auth.failed", reason, address: "127.0.0.1" });
      expect(typeof lines[0]!.requestId, label).toBe("string");
      if (prefix === null) expect(lines[0], label).not.toHaveProperty("keyPrefix");
      else expect(lines[0]!.keyPrefix, label).toBe(prefix);
    }
    expect(bodies.size).toBe(1);
    const text = log.text();
    for (const secret of [key, revoked, unknown, typo]) expect(text).not.toContain(secret);
  });

  it("the address honours --trust-proxy (X-Forwarded-For)", async () => {
    await http(`${server.url}/v1/jobs`, { headers: { "x-forwarded-for": "203.0.113.9" } });
    expect(audit().at(-1)).toMatchObject({ event: "auth.failed", reason: "missing", address: "203.0.113.9" });
  });

  it("logs job.canceled and job.deleted with tenant, key prefix, address and request id; never input or result", async () => {
    const c = client(server.url, key);
    const running = (
      await submit(c, { type: "demo.sleep", input: { ms: 60_000, result: { secret: "s3cr3t-result" } } })
    ).job;
    const echo = (await submit(c, { type: "demo.echo", input: { secret: "s3cr3t-input" } })).job;
    expect((await http(running.links.cancel!, { method: "POST", headers: bearer(key) })).status).toBe(200);
    expect(
      (await http(`${server.url}/v1/jobs/${echo.id}`, { method: "DELETE", headers: bearer(key) })).status,
    ).toBe(204);
    const tenantId = (await server.tessera.store.listApiKeys()).find(
      (k) => k.prefix === key.slice(0, 12),
    )!.tenantId;

    const canceled = audit().find((l) => l.event === "job.canceled");
    const deleted = audit().find((l) => l.event === "job.deleted");
    for (const [line, job] of [
      [canceled, running.id],
      [deleted, echo.id],
    ] as const) {
      expect(line).toMatchObject({
        audit: true,
        tenant: tenantId,
        keyPrefix: key.slice(0, 12),
        address: "127.0.0.1",
        job,
      });
      expect(typeof line!.requestId).toBe("string");
    }
    // A refused cancel (another tenant's job: 404) changes nothing and logs no job event.
    const other = await server.key("globex");
    const before = audit().length;
    expect(
      (await http(`${server.url}/v1/jobs/${echo.id}`, { method: "DELETE", headers: bearer(other) })).status,
    ).toBe(404);
    expect(
      audit()
        .slice(before)
        .filter((l) => l.event === "job.deleted"),
    ).toEqual([]);

    const text = log.text();
    expect(text).not.toContain(key);
    expect(text).not.toContain("s3cr3t");
  });

  it("auth-failure lines are capped per address, with a count of the suppressed ones", async () => {
    const before = audit().length;
    const headers = { "x-forwarded-for": "198.51.100.77", authorization: "Bearer nope" };
    await Promise.all(Array.from({ length: 40 }, () => http(`${server.url}/v1/jobs`, { headers })));
    const lines = audit()
      .slice(before)
      .filter((l) => l.address === "198.51.100.77");
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines.length).toBeLessThanOrEqual(20); // 10 a second by default; the burst may straddle a second
  });
});
