import { randomBytes } from "node:crypto";

/**
 * The PostgreSQL the tests use: `TESSERA_TEST_DATABASE_URL` (.ci/run creates a fresh database
 * per run and sets it), else the machine's local server's `test` database.
 */
export const PG_URL = process.env.TESSERA_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** A schema name no other test uses: each store gets its own, dropped afterwards. */
export function freshSchema(prefix = "t"): string {
  return `${prefix}_${randomBytes(6).toString("hex")}`;
}
