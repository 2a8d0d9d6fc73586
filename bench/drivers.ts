/**
 * Run a benchmark on each driver: SQLite (a fresh file per store, in a temp dir) and the local
 * PostgreSQL when it is reachable (a fresh schema per store, all dropped afterwards). `only`
 * ("sqlite" or "postgres") measures one.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { PostgresStore } from "../dist/store/postgres/store.js";
import { SqliteStore } from "../dist/store/sqlite/store.js";
import type { Store } from "../dist/store/store.js";

export const PG_URL = process.env.TESSERA_BENCH_PG ?? "postgres://postgres@127.0.0.1:5432/test";

export async function onEachDriver(
  name: string,
  measure: (label: string, makeStore: () => Promise<Store>) => Promise<void>,
  only?: string,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `tessera-bench-${name}-`));
  let stores = 0;
  try {
    if (only !== "postgres")
      await measure("SQLite", async () => new SqliteStore({ path: join(dir, `b${stores++}.db`) }));
    if (only === "sqlite") return console.log(`PostgreSQL: skipped (${name}: sqlite only)`);
    const probe = new pg.Client({ connectionString: PG_URL });
    const reachable = await probe.connect().then(
      () => true,
      () => false,
    );
    await probe.end().catch(() => undefined);
    if (!reachable) return console.log("PostgreSQL: not reachable, skipped");
    const schemas: string[] = [];
    try {
      await measure("PostgreSQL", async () => {
        const schema = `bench_${name}_${process.pid}_${stores++}`;
        schemas.push(schema);
        return new PostgresStore({ connectionString: PG_URL, schema }).open();
      });
    } finally {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
