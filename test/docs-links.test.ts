/**
 * Every relative link in the repository's Markdown resolves to a file or folder of the
 * repository (README, docs/, examples/, CHANGELOG, …): a moved or missing document fails here,
 * not in front of a reader.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "..");
const markdown = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "*.md"], {
  cwd: ROOT,
  encoding: "utf8",
})
  .split("\n")
  .filter((f) => f && !f.startsWith("node_modules/"));

/** Targets of inline links and images, outside code spans and fenced blocks. */
function links(text: string): string[] {
  const prose = text.replace(/```[\s\S]*?```/g, "").replace(/`[^`\n]*`/g, "");
  return [...prose.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1]!);
}

describe("Markdown links", () => {
  it("finds the documents", () => {
    expect(markdown).toEqual(expect.arrayContaining(["README.md", "docs/api.md", "CHANGELOG.md"]));
  });

  it.each(markdown)("%s: every relative link resolves inside the repository", (file) => {
    const broken: string[] = [];
    for (const target of links(readFileSync(join(ROOT, file), "utf8"))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith("#")) continue; // URL, anchor
      const path = resolve(ROOT, dirname(file), decodeURIComponent(target.split("#")[0]!));
      if (relative(ROOT, path).startsWith("..") || !existsSync(path)) broken.push(target);
    }
    expect(broken, `${file} links to what is not in the repository`).toEqual([]);
  });
});
