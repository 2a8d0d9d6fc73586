import { readdirSync, readFileSync } from "node:fs";
import type pg from "pg";
import { SchemaTooNewError } from "../migrations.js";

// Resolves to src/store/postgres/migrations from both src/ (tests) and dist/ (built package).
const MIGRATIONS_DIR = new URL("../../../src/store/postgres/migrations/", import.meta.url);

/**
 * Apply the numbered migrations not yet recorded, each in its own transaction, under an
 * advisory lock so that nodes starting together migrate once.
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
    const { rows } = await client.query<{ v: number | null }>(
      `SELECT max(version) AS v FROM ${schema}.schema_migrations`,
    );
    const current = rows[0]?.v ?? 0;
    if (current > known) throw new SchemaTooNewError(current, known);
    for (const file of files) {
      const version = Number(file.slice(0, 3));
      if (version <= current) continue;
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
