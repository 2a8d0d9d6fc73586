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

/** A key command's stderr: the sentence for a person, and the audit line (JSON). */
function stderrParts(stderr: string): [string, string] {
  const lines = stderr.trim().split("\n");
  const json = lines.filter((l) => l.startsWith("{"));
  expect(json).toHaveLength(1);
  return [lines.filter((l) => !l.startsWith("{")).join("\n"), json[0]!];
}

describe("tessera keys", { timeout: 60_000 }, () => {
  it("create prints a checksummed key once and audits key.created on stderr", async () => {
    const run = await runCli(["keys", "create", "--tenant", "acme", "--expires-in", "12h", "--db", db]);
    expect(run.code).toBe(0);
    // Only the key on stdout: K=$(tessera keys create …) holds exactly the key.
    const key = run.stdout.trimEnd();
    expect(run.stdout).toBe(`${key}\n`);
    expect(isWellFormedKey(key)).toBe(true);
    const [sentence, audit] = stderrParts(run.stderr);
    expect(sentence).toMatch(/expiring \d{4}-.*shown only this once/);
    const line = JSON.parse(audit!) as Record<string, unknown>;
    expect(line).toMatchObject({
      audit: true,
      event: "key.created",
      tenant: "acme",
      keyPrefix: key.slice(0, 12),
    });
    expect(run.stderr).not.toContain(key);

    const rotated = await runCli(["keys", "rotate", key.slice(0, 12), "--overlap", "30m", "--db", db]);
    expect(rotated.code).toBe(0);
    expect(isWellFormedKey(rotated.stdout.trimEnd())).toBe(true);
    expect(rotated.stdout.trim().split("\n")).toHaveLength(1);
    const [rotatedSentence, rotatedAudit] = stderrParts(rotated.stderr);
    expect(rotatedSentence).toMatch(/stays valid until \d{4}-/);
    expect(JSON.parse(rotatedAudit!)).toMatchObject({ event: "key.rotated", keyPrefix: key.slice(0, 12) });

    const list = await runCli(["keys", "list", "--db", db]);
    expect(list.code).toBe(0);
    const [header, ...rows] = list.stdout.trim().split("\n");
    expect(header!.split(/\s{2,}/)).toEqual([
      "ID",
      "PREFIX",
      "TENANT",
      "STATE",
      "CREATED",
      "LAST USED",
      "EXPIRES",
      "REVOKED",
    ]);
    expect(rows).toHaveLength(2);
    // Columns line up under the header.
    expect(rows[0]!.indexOf("acme")).toBe(header!.indexOf("TENANT"));
    expect(rows.join("\n")).toMatch(/acme\s+\S+\s+\S+\s+never\s+\d{4}-\S+\s+no/);
    const json = await runCli(["keys", "list", "--db", db, "--json"]);
    expect((JSON.parse(json.stdout) as { tenantName: string }[]).map((k) => k.tenantName)).toEqual([
      "acme",
      "acme",
    ]);
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
