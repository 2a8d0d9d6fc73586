import { OPTIONS } from "../config/options.js";
import { openStore } from "../store/open.js";
import type { Store } from "../store/store.js";

/** The store a one-shot command works on: `--db` flag, then the environment, then the default. */
export function dbPath(flag: string | undefined, env: Record<string, string | undefined>): string {
  return flag ?? env[OPTIONS.db.env] ?? env.TESSERA_DATABASE_URL ?? (OPTIONS.db.default as string);
}

export function schemaName(flag: string | undefined, env: Record<string, string | undefined>): string {
  return flag ?? env[OPTIONS["db-schema"].env] ?? (OPTIONS["db-schema"].default as string);
}

/** The store a one-shot command works on, opened without a notification listener. */
export function openCommandStore(
  values: { db?: string; "db-schema"?: string },
  env: Record<string, string | undefined>,
): Promise<Store> {
  return openStore({
    db: dbPath(values.db, env),
    schema: schemaName(values["db-schema"], env),
    listen: false,
  });
}

/** Tenant names the CLI accepts: letters, digits, `.`, `_`, `-`; at most 64. */
export function isTenantName(name: string | undefined): name is string {
  return name !== undefined && /^[A-Za-z0-9._-]{1,64}$/.test(name);
}
