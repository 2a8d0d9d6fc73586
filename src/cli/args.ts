import { parseArgs } from "node:util";
import { OPTIONS, type OptionName } from "../config/options.js";

type ParseOptions = NonNullable<Parameters<typeof parseArgs>[0]>["options"];

/** `serve` flags, generated from the configuration table so the two never drift apart. */
export function parseServeFlags(args: string[]): Partial<Record<OptionName, string | boolean | string[]>> {
  const options: ParseOptions = {};
  for (const [name, spec] of Object.entries(OPTIONS)) {
    options[name] =
      spec.kind === "bool"
        ? { type: "boolean" }
        : spec.kind === "list"
          ? { type: "string", multiple: true }
          : { type: "string" };
  }
  const { values } = parseArgs({ args, options, allowPositionals: false, strict: true });
  return values as Partial<Record<OptionName, string | boolean | string[]>>;
}
