import { readdirSync, readFileSync } from "node:fs";
import type { Database } from "better-sqlite3";
import { SchemaTooNewError } from "../migrations.js";

// Resolves to src/store/sqlite/migrations from both src/ (tests) and dist/ (built package).
const MIGRATIONS_DIR = new URL("../../../src/store/sqlite/migrations/", import.meta.url);

/**
 * Apply the numbered migrations not yet recorded, each in its own transaction, in order. Each
 * file is checked against the recorded versions, not only the highest: numbers are taken by
 * branches in parallel, so one merged later than a higher one (009 after 011) still applies.
 */
export function migrateSqlite(db: Database): void {
  db.exec(
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
  );
  const files = readdirSync(MIGRATIONS_DIR)
    .filter((f) => /^\d{3}_.+\.sql$/.test(f))
    .sort();
  const known = files.length === 0 ? 0 : Number(files[files.length - 1]!.slice(0, 3));
  const applied = new Set(
    (db.prepare("SELECT version FROM schema_migrations").all() as { version: number }[]).map(
      (r) => r.version,
    ),
  );
  const current = Math.max(0, ...applied);
  if (current > known) throw new SchemaTooNewError(current, known);

  // Every one not recorded, in order: one numbered below the newest applied is applied too.
  for (const file of files) {
    const version = Number(file.slice(0, 3));
    if (applied.has(version)) continue;
    const sql = readFileSync(new URL(file, MIGRATIONS_DIR), "utf8");
    db.transaction(() => {
      db.exec(sql);
      db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)").run(
        version,
        file,
        Date.now(),
      );
    }).immediate();
  }
}
