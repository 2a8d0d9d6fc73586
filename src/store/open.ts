import type { Logger } from "pino";
import { isPostgresUrl } from "../config.js";
import { PostgresStore } from "./postgres/store.js";
import { SqliteStore } from "./sqlite/store.js";
import type { Store } from "./store.js";

/**
 * Open the store `db` names: a `postgres://…` URL selects PostgreSQL, anything else is a SQLite
 * file. Migrations are applied unless `migrate` is false (then a newer schema is still refused).
 */
export async function openStore(options: {
  db: string;
  inlineResultBytes?: number;
  poolSize?: number;
  schema?: string;
  migrate?: boolean;
  /** PostgreSQL: LISTEN for other nodes' events (off for one-shot CLI commands). @default true */
  listen?: boolean;
  /** PostgreSQL: named prepared statements for the per-job statements. @default true */
  preparedStatements?: boolean;
  /** PostgreSQL: the URL of the LISTEN connection. @default db */
  listenUrl?: string;
  logger?: Logger;
}): Promise<Store> {
  if (isPostgresUrl(options.db)) {
    return new PostgresStore({
      connectionString: options.db,
      ...(options.inlineResultBytes !== undefined ? { inlineResultBytes: options.inlineResultBytes } : {}),
      ...(options.poolSize !== undefined ? { poolSize: options.poolSize } : {}),
      ...(options.schema !== undefined ? { schema: options.schema } : {}),
      ...(options.migrate !== undefined ? { migrate: options.migrate } : {}),
      ...(options.listen !== undefined ? { listen: options.listen } : {}),
      ...(options.preparedStatements !== undefined ? { preparedStatements: options.preparedStatements } : {}),
      ...(options.listenUrl !== undefined ? { listenConnectionString: options.listenUrl } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
    }).open();
  }
  return new SqliteStore({
    path: options.db,
    ...(options.inlineResultBytes !== undefined ? { inlineResultBytes: options.inlineResultBytes } : {}),
    ...(options.migrate !== undefined ? { migrate: options.migrate } : {}),
  });
}
