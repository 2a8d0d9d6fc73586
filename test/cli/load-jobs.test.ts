/**
 * `tessera serve --jobs` (the built binary, as users run it) with a TypeScript job module in a
 * folder whose package.json does not say "type": "module": an error that says what to change;
 * with "type": "module", or named .mts, it loads.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { cleanEnv, killAll, ROOT, spawnTessera } from "../helpers/cluster.js";
import { http } from "../helpers/server.js";

const dirs: string[] = [];
afterEach(killAll);
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const INDEX = join(ROOT, "dist/index.js");
const moduleText = (type: string) =>
  `import { defineJob } from ${JSON.stringify(INDEX)};\n` +
  `export const job = defineJob({ type: ${JSON.stringify(type)}, input: {}, async run() { return 1; } });\n`;

function folder(pkg: Record<string, unknown>, files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "tessera-jobs-"));
  dirs.push(dir);
  writeFileSync(join(dir, "package.json"), JSON.stringify(pkg));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

describe("serve --jobs with TypeScript modules", { timeout: 60_000 }, () => {
  it("a .ts module in a CommonJS folder: exit 1, naming the package.json and both fixes", () => {
    const dir = folder({ name: "app" }, { "jobs.ts": moduleText("app.cjs-folder") });
    const run = spawnSync(
      process.execPath,
      [join(ROOT, "dist/main.js"), "serve", "--dev", "--jobs", "./jobs.ts", "--db", join(dir, "t.db")],
      { cwd: dir, env: cleanEnv(), encoding: "utf8", timeout: 30_000 },
    );
    expect(run.status, run.stderr).toBe(1);
    expect(run.stderr).toContain(join(dir, "package.json"));
    expect(run.stderr).toMatch(/"type": "module"/);
    expect(run.stderr).toContain("jobs.mts");
    expect(run.stderr).not.toMatch(/in a cycle/);
  });

  it.each([
    ['a .ts module in a folder with "type": "module"', { type: "module" }, "jobs.ts"],
    ["a .mts module in a CommonJS folder", {}, "jobs.mts"],
  ])("%s loads", async (_label, pkg, name) => {
    const dir = folder({ name: "app", ...pkg }, { [name]: moduleText("app.hello") });
    const node = await spawnTessera(["--dev", "--jobs", join(dir, name), "--db", join(dir, "t.db")], {
      built: true,
    });
    const res = await http(`${node.url}/v1/jobs`, {
      json: { type: "app.hello", input: {} },
      headers: { prefer: "wait=10" },
    });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json()).toBe(1);
  });
});
