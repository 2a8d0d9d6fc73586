/** `tessera keys` as a process: the key on stdout once, the audit line (JSON) on stderr. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isWellFormedKey } from "../../src/auth/api-keys.js";
import { runCli } from "./run-cli.js";

let dir: string;
let db: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "tessera-keys-"));
  db = join(dir, "tessera.db");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("tessera keys", { timeout: 60_000 }, () => {
  it("create prints a checksummed key once and audits key.created on stderr", async () => {
    const run = await runCli(["keys", "create", "--tenant", "acme", "--expires-in", "12h", "--db", db]);
    expect(run.code).toBe(0);
    const key = run.stdout.split("\n")[0]!;
    expect(isWellFormedKey(key)).toBe(true);
    expect(run.stdout).toMatch(/expiring \d{4}-/);
    const line = JSON.parse(run.stderr) as Record<string, unknown>;
    expect(line).toMatchObject({
      audit: true,
      event: "key.created",
      tenant: "acme",
      keyPrefix: key.slice(0, 12),
    });
    expect(run.stderr).not.toContain(key);

    const rotated = await runCli(["keys", "rotate", key.slice(0, 12), "--overlap", "30m", "--db", db]);
    expect(rotated.code).toBe(0);
    expect(rotated.stdout).toMatch(/stays valid until \d{4}-/);
    expect(JSON.parse(rotated.stderr)).toMatchObject({ event: "key.rotated", keyPrefix: key.slice(0, 12) });

    const list = await runCli(["keys", "list", "--db", db]);
    expect(list.code).toBe(0);
    expect(list.stdout.trim().split("\n")).toHaveLength(2);
    expect(list.stdout).toMatch(/created=.* last-used=never .*expires=\d{4}-.* revoked=no/);
    expect(list.stderr).toBe("");
  });

  it("usage errors exit 2 without touching the database", async () => {
    expect((await runCli(["keys", "rotate", "--db", db])).code).toBe(2);
    expect((await runCli(["keys", "create", "--tenant", "x", "--expires-in", "1y", "--db", db])).code).toBe(
      2,
    );
    expect((await runCli(["keys", "nope", "--db", db])).code).toBe(2);
  });
});
