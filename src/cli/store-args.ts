import { OPTIONS } from "../config.js";

/** The store a one-shot command works on: `--db` flag, then the environment, then the default. */
export function dbPath(flag: string | undefined, env: Record<string, string | undefined>): string {
  return flag ?? env[OPTIONS.db.env] ?? env.TESSERA_DATABASE_URL ?? (OPTIONS.db.default as string);
}

export function schemaName(flag: string | undefined, env: Record<string, string | undefined>): string {
  return flag ?? env[OPTIONS["db-schema"].env] ?? (OPTIONS["db-schema"].default as string);
}
