import { readdirSync, statSync } from "node:fs";
import { extname, join, resolve } from "node:path";
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
    const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    const found = Object.values(mod)
      .flatMap((v) => (Array.isArray(v) ? v : [v]))
      .filter(isJobDefinition);
    if (found.length === 0) throw new Error(`${file} exports no job definitions (defineJob results)`);
    definitions.push(...new Set(found));
  }
  return definitions;
}
