import { readdirSync, readFileSync } from "node:fs";
import type pg from "pg";
import { SchemaTooNewError } from "../migrations.js";

// Resolves to src/store/postgres/migrations from both src/ (tests) and dist/ (built package).
const MIGRATIONS_DIR = new URL("../../../src/store/postgres/migrations/", import.meta.url);

/**
 * Apply the numbered migrations not yet recorded, in order, in one transaction under an
 * advisory lock so that nodes starting together migrate once. Each file is checked against the
 * recorded versions, not only the highest: numbers are taken by branches in parallel, so one
 * merged later than a higher one (015 after 017) still applies.
 */
export async function migratePostgres(pool: pg.Pool, schema: string): Promise<void> {
  const files = readdirSync(MIGRATIONS_DIR)
    .filter((f) => /^\d{3}_.+\.sql$/.test(f))
    .sort();
  const known = files.length === 0 ? 0 : Number(files[files.length - 1]!.slice(0, 3));
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`tessera-migrate-${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${schema}.schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)`,
    );
    const { rows } = await client.query<{ version: number }>(
      `SELECT version FROM ${schema}.schema_migrations`,
    );
    const applied = new Set(rows.map((r) => r.version));
    const current = Math.max(0, ...applied);
    if (current > known) throw new SchemaTooNewError(current, known);
    // Every one not recorded, in order: one numbered below the newest applied is applied too.
    for (const file of files) {
      const version = Number(file.slice(0, 3));
      if (applied.has(version)) continue;
      const sql = readFileSync(new URL(file, MIGRATIONS_DIR), "utf8").replaceAll("{{schema}}", schema);
      await client.query(sql);
      await client.query(
        `INSERT INTO ${schema}.schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
        [version, file, Date.now()],
      );
    }
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}
