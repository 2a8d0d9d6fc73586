/** Prints the README's configuration table from the OPTIONS table in src/config.ts. */
import { OPTIONS } from "../src/config.js";

const rows = Object.entries(OPTIONS).map(([name, spec]) => {
  const def =
    spec.default === undefined ? "–" : Array.isArray(spec.default) ? "–" : `\`${String(spec.default)}\``;
  return `| \`--${name}\` | \`${spec.env}\` | ${def} | ${spec.doc} |`;
});
process.stdout.write(
  ["| Flag | Environment | Default | Meaning |", "| --- | --- | --- | --- |", ...rows].join("\n") + "\n",
);
