import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { PROBLEMS } from "../../src/jobs/problems.js";

describe("problem registry", () => {
  const doc = readFileSync(new URL("../../docs/problems.md", import.meta.url), "utf8");
  const documented = new Map(
    [...doc.matchAll(/^\| `([a-z-]+)` +\| (\d{3}) +\|/gm)].map((m) => [m[1]!, Number(m[2])] as const),
  );

  it("documents every registered problem type with its status", () => {
    for (const [slug, entry] of Object.entries(PROBLEMS))
      expect(documented.get(slug), slug).toBe(entry.status);
  });

  it("registers every documented problem type", () => {
    for (const slug of documented.keys()) expect(Object.hasOwn(PROBLEMS, slug), slug).toBe(true);
  });
});
