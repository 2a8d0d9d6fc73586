import { parseArgs } from "node:util";
import { openStore } from "../store/open.js";
import { dbPath, schemaName } from "./store-args.js";

/** `tessera migrate`: apply pending migrations (a server also applies them on start). */
export async function migrate(
  args: string[],
  env: Record<string, string | undefined>,
  out: NodeJS.WritableStream,
): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { db: { type: "string" }, "db-schema": { type: "string" } },
    strict: true,
  });
  const path = dbPath(values.db, env);
  const store = await openStore({
    db: path,
    schema: schemaName(values["db-schema"], env),
    migrate: false,
    listen: false,
  });
  try {
    await store.migrate();
    out.write(`migrated ${path}\n`);
    return 0;
  } finally {
    await store.close();
  }
}
