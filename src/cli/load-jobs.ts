import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, extname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { JobDefinition } from "../jobs/define.js";

const MODULE_EXTENSIONS = new Set([".js", ".mjs", ".cjs", ".ts", ".mts", ".cts"]);

function isJobDefinition(value: unknown): value is JobDefinition {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as JobDefinition).type === "string" &&
    typeof (value as JobDefinition).run === "function" &&
    typeof (value as JobDefinition).input === "object"
  );
}

/**
 * Load every `defineJob` result exported by a module, or by each module of a folder (not
 * recursive). TypeScript modules are loaded through tsx, registered only when one is seen.
 */
export async function loadJobModules(paths: readonly string[]): Promise<JobDefinition[]> {
  const files: string[] = [];
  for (const path of paths) {
    const full = resolve(path);
    if (statSync(full).isDirectory()) {
      for (const name of readdirSync(full).sort()) {
        if (MODULE_EXTENSIONS.has(extname(name)) && !name.endsWith(".d.ts") && !name.includes(".test."))
          files.push(join(full, name));
      }
    } else files.push(full);
  }
  if (files.some((f) => /\.[mc]?ts$/.test(f))) {
    const { register } = await import("tsx/esm/api");
    register();
  }
  const definitions: JobDefinition[] = [];
  for (const file of files) {
    let mod: Record<string, unknown>;
    try {
      mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    } catch (error) {
      throw commonJsHint(file, error) ?? error;
    }
    const found = Object.values(mod)
      .flatMap((v) => (Array.isArray(v) ? v : [v]))
      .filter(isJobDefinition);
    if (found.length === 0)
      throw commonJsHint(file, null) ?? new Error(`${file} exports no job definitions (defineJob results)`);
    definitions.push(...new Set(found));
  }
  return definitions;
}

/**
 * A `.ts` or `.js` module with `import`/`export` in a folder whose package.json does not say
 * `"type": "module"` is loaded by Node as CommonJS, and fails (`Cannot require() ES Module … in
 * a cycle`) or exports nothing: say what to change instead of Node's message.
 */
function commonJsHint(file: string, error: unknown): Error | null {
  if (!/\.(ts|js)$/.test(file)) return null; // .mts/.mjs are always ES modules, .cts/.cjs never
  const message = error instanceof Error ? error.message : "";
  if (error !== null && !/require\(\) (of )?ES Module|ERR_REQUIRE|Cannot use import statement/.test(message))
    return null;
  const scope = packageScope(file);
  if (scope?.type === "module") return null;
  const where = scope ? scope.path : "a package.json of its own";
  return new Error(
    `${file} is an ES module (import/export), but Node loads it as CommonJS: ${where} does not say "type": "module". ` +
      `Add "type": "module" to ${where}, or name the file ${file.replace(/\.(ts|js)$/, ".m$1")}.`,
  );
}

/** The nearest package.json above `file` and its "type", or null when there is none. */
function packageScope(file: string): { path: string; type: string | undefined } | null {
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    const path = join(dir, "package.json");
    if (existsSync(path)) {
      try {
        return { path, type: (JSON.parse(readFileSync(path, "utf8")) as { type?: string }).type };
      } catch {
        return { path, type: undefined };
      }
    }
    if (dirname(dir) === dir) return null;
  }
}
