import type { JsonSchema } from "../../jobs/define.js";

/**
 * A command's argument template: literal text with placeholders, expanded per attempt into one
 * argv entry each (never split, never seen by a shell):
 *
 * - `{input.name}` (or a nested `{input.a.b}`): a scalar of the job's input that the input schema
 *   declares as a required string, number, integer or boolean (checked when the job is defined);
 * - `{outputDir}`, `{jobId}`, `{attempt}`: the attempt's output folder, id and number;
 * - `{{` and `}}`: a literal brace.
 *
 * An argument that is a placeholder alone could be read as an option by the program (`-rf`,
 * `--output=/etc/x`): such input values are refused at submit, by a schema added to the job
 * type's own (`argumentSafety`), so a `400` names the field before anything runs. Arguments
 * after a literal `--` (the usual end of options) are exempt.
 */
export type ArgPart = { literal: string } | { input: readonly string[] } | { context: ContextName };
export type ContextName = "outputDir" | "jobId" | "attempt";

export interface ArgTemplate {
  parts: readonly ArgPart[];
  /** The argument is one `{input.…}` placeholder and nothing else. */
  wholeInput: readonly string[] | null;
}

const CONTEXT_NAMES: readonly ContextName[] = ["outputDir", "jobId", "attempt"];
const PLACEHOLDER = /^(?:input((?:\.[A-Za-z_$][\w$-]*)+)|([A-Za-z]+))$/;

export class TemplateError extends TypeError {
  override name = "TemplateError";
}

/** Parse one argument; throws TemplateError naming what is wrong. */
export function parseArg(arg: string): ArgTemplate {
  const parts: ArgPart[] = [];
  let literal = "";
  for (let i = 0; i < arg.length; i++) {
    const c = arg[i]!;
    if ((c === "{" || c === "}") && arg[i + 1] === c) {
      literal += c;
      i++;
      continue;
    }
    if (c === "}") throw new TemplateError(`argument ${JSON.stringify(arg)}: a lone "}" (write "}}")`);
    if (c !== "{") {
      literal += c;
      continue;
    }
    const end = arg.indexOf("}", i);
    if (end === -1)
      throw new TemplateError(`argument ${JSON.stringify(arg)}: "{" is never closed (write "{{")`);
    const name = arg.slice(i + 1, end);
    const match = PLACEHOLDER.exec(name);
    if (!match || (match[2] !== undefined && !CONTEXT_NAMES.includes(match[2] as ContextName))) {
      throw new TemplateError(
        `argument ${JSON.stringify(arg)}: {${name}} is not a placeholder (use {input.field}, ${CONTEXT_NAMES.map((n) => `{${n}}`).join(", ")})`,
      );
    }
    if (literal) parts.push({ literal });
    literal = "";
    parts.push(
      match[1] !== undefined ? { input: match[1].slice(1).split(".") } : { context: match[2] as ContextName },
    );
    i = end;
  }
  if (literal || parts.length === 0) parts.push({ literal });
  const only = parts.length === 1 ? parts[0]! : null;
  return { parts, wholeInput: only && "input" in only ? only.input : null };
}

const SCALAR_TYPES = new Set(["string", "number", "integer", "boolean"]);

/**
 * Check that every `{input.…}` of the templates names a required scalar of `schema`: a value the
 * validator guarantees at submit, so an attempt never meets a missing or structured one.
 */
export function checkAgainstSchema(
  templates: readonly ArgTemplate[],
  schema: JsonSchema,
  type: string,
): void {
  for (const template of templates) {
    for (const part of template.parts) {
      if (!("input" in part)) continue;
      let node: JsonSchema | undefined = schema;
      for (const key of part.input) {
        const required: unknown[] = Array.isArray(node?.required) ? (node.required as unknown[]) : [];
        const properties = node?.properties as Record<string, JsonSchema> | undefined;
        node =
          properties && Object.hasOwn(properties, key) && required.includes(key)
            ? properties[key]
            : undefined;
        if (!node) break;
      }
      const declared = node?.type;
      const scalar =
        (typeof declared === "string" && SCALAR_TYPES.has(declared)) ||
        (Array.isArray(node?.enum) &&
          node.enum.every((v) => ["string", "number", "boolean"].includes(typeof v)));
      if (!scalar) {
        throw new TemplateError(
          `command job "${type}": {input.${part.input.join(".")}} must name a required string, number, integer or boolean property of the input schema`,
        );
      }
    }
  }
}

/**
 * A schema (to combine with the type's own by `allOf`) refusing, at submit, a value that would
 * stand alone as an argument and starts with "-" (a string, or a negative number). Null when no argument is a lone placeholder.
 */
export function argumentSafety(templates: readonly ArgTemplate[]): JsonSchema | null {
  // After a literal "--" the program reads no more options: "-5 degrees" is text there.
  const end = templates.findIndex(
    (t) => t.parts.length === 1 && (t.parts[0] as { literal?: string }).literal === "--",
  );
  const options = end === -1 ? templates : templates.slice(0, end);
  const paths = options.flatMap((t) => (t.wholeInput ? [t.wholeInput] : []));
  if (paths.length === 0) return null;
  let root: JsonSchema = {};
  const optionLike = {
    anyOf: [
      { type: "string", pattern: "^-" },
      { type: "number", exclusiveMaximum: 0 },
    ],
  };
  for (const path of paths) root = merge(root, nest(path, { not: optionLike }));
  return root;
}

function nest(path: readonly string[], leaf: JsonSchema): JsonSchema {
  return path.reduceRight<JsonSchema>((inner, key) => ({ properties: { [key]: inner } }), leaf);
}

function merge(a: JsonSchema, b: JsonSchema): JsonSchema {
  const props = { ...(a.properties as Record<string, JsonSchema> | undefined) };
  for (const [key, value] of Object.entries((b.properties as Record<string, JsonSchema> | undefined) ?? {}))
    props[key] = props[key] ? merge(props[key], value) : value;
  return { ...a, ...b, properties: props };
}

/** Expand a template for one attempt (the input was validated at submit). */
export function expandArg(
  template: ArgTemplate,
  input: unknown,
  context: Readonly<Record<ContextName, string>>,
): string {
  let out = "";
  for (const part of template.parts) {
    if ("literal" in part) out += part.literal;
    else if ("context" in part) out += context[part.context];
    else {
      let value: unknown = input;
      for (const key of part.input)
        value =
          value !== null && typeof value === "object" ? (value as Record<string, unknown>)[key] : undefined;
      if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") {
        // The schema check at definition time makes this unreachable unless the schema changed.
        throw new TemplateError(`{input.${part.input.join(".")}} is not a scalar in this job's input`);
      }
      out += String(value);
    }
  }
  return out;
}
