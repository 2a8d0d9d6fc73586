/** The client runs in browsers: no `node:` imports, and nothing from the server but types. */
import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

const dir = new URL("../../src/client/", import.meta.url);
const files = readdirSync(dir).filter((f) => f.endsWith(".ts"));

describe("client isolation", () => {
  it.each(files)("%s imports nothing Node-only and only types from the server", (file) => {
    const source = readFileSync(new URL(file, dir), "utf8");
    const imports = [...source.matchAll(/^(import|export)\s+(type\s+)?[^;]*?from\s+"([^"]+)"/gms)];
    for (const [statement, , typeOnly, from] of imports) {
      expect(from, statement).not.toMatch(/^node:/);
      if (from!.startsWith("./")) continue;
      expect(from, statement).toMatch(/^\.\.\/jobs\/[\w-]+\.js$/);
      expect(typeOnly, `${file}: ${statement} must be "import type"`).toBeDefined();
    }
    expect(source).not.toMatch(/\bprocess\.|\brequire\(|\bBuffer\b/);
  });
});
