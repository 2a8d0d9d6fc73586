import { randomBytes } from "node:crypto";
import pg from "pg";

/**
 * The PostgreSQL the tests use: `TESSERA_TEST_DATABASE_URL` (.ci/run creates a fresh database
 * per run and sets it), else the machine's local server's `test` database.
 */
export const PG_URL = process.env.TESSERA_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** A schema name no other test uses: each store gets its own, dropped afterwards. */
export function freshSchema(prefix = "t"): string {
  return `${prefix}_${randomBytes(6).toString("hex")}`;
}

/** Drop a test's schema (and all in it), on a connection of its own. */
export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end();
  }
}
