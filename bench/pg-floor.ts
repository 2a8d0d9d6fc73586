/**
 * What a claim + completion pair costs PostgreSQL for four minimal queue tables, none of them
 * Tessera's: how much of a queue's database CPU per job comes from keeping the job after it
 * completes (an UPDATE that writes a new row version) rather than deleting it, and from text
 * (UUID) keys rather than bigint ones. docs/benchmarks.md reads the result.
 *
 *   npx tsx bench/pg-floor.ts [rounds]     (TESSERA_BENCH_PG picks the database)
 *
 * Each variant: 20,000 queued rows, two loops that claim 32 with `FOR UPDATE SKIP LOCKED` and
 * then complete them in one statement; the database server's CPU per job is read from /proc.
 * The variants alternate, round after round, so that a busy moment spreads over all of them.
 */
import pg from "pg";
import { POSTGRES_PROCESSES, serverCpuMicros } from "./stats.js";

const URL = process.env["TESSERA_BENCH_PG"] ?? "postgres://postgres@127.0.0.1:5432/test";
const JOBS = 20_000;
const BATCH = 32;
const SCHEMA = "tessera_bench_floor";

interface Variant {
  name: string;
  uuid: boolean;
  /** Keep the row, marked done with its result (an UPDATE), instead of deleting it. */
  keep: boolean;
}

const VARIANTS: Variant[] = [
  { name: "bigint id, completion deletes", uuid: false, keep: false },
  { name: "uuid text id, completion deletes", uuid: true, keep: false },
  { name: "bigint id, completion keeps the row", uuid: false, keep: true },
  { name: "uuid text id, completion keeps the row", uuid: true, keep: true },
];

async function drain(pool: pg.Pool, variant: Variant): Promise<{ jobsPerSec: number; dbUsPerJob: number }> {
  const idType = variant.uuid ? "text" : "bigint";
  await pool.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
  await pool.query(`CREATE SCHEMA ${SCHEMA}`);
  await pool.query(
    `CREATE TABLE ${SCHEMA}.jobs (
       id ${variant.uuid ? "text PRIMARY KEY DEFAULT gen_random_uuid()::text" : "bigserial PRIMARY KEY"},
       task text NOT NULL, payload json NOT NULL, priority smallint NOT NULL DEFAULT 0,
       run_at timestamptz NOT NULL DEFAULT now(), attempts smallint NOT NULL DEFAULT 0,
       done boolean NOT NULL DEFAULT false, result json, locked_at timestamptz, locked_by text)`,
  );
  await pool.query(
    `CREATE INDEX ON ${SCHEMA}.jobs (priority, run_at) INCLUDE (id) WHERE locked_at IS NULL AND NOT done`,
  );
  await pool.query(
    `INSERT INTO ${SCHEMA}.jobs (task, payload) SELECT 'noop', '{}' FROM generate_series(1, ${JOBS})`,
  );
  await pool.query(`ANALYZE ${SCHEMA}.jobs`);
  const claim = `
    WITH c AS (
      SELECT id FROM ${SCHEMA}.jobs WHERE locked_at IS NULL AND NOT done AND run_at <= now()
      ORDER BY priority, run_at LIMIT $1 FOR UPDATE SKIP LOCKED)
    UPDATE ${SCHEMA}.jobs j SET attempts = j.attempts + 1, locked_at = now(), locked_by = 'w'
    FROM c WHERE j.id = c.id RETURNING j.id, j.task, j.payload, j.attempts`;
  const complete = variant.keep
    ? `UPDATE ${SCHEMA}.jobs SET done = true, result = '{"ok":true}', locked_at = NULL, locked_by = NULL
       WHERE id = ANY($1::${idType}[])`
    : `DELETE FROM ${SCHEMA}.jobs WHERE id = ANY($1::${idType}[])`;

  const serverStart = serverCpuMicros(POSTGRES_PROCESSES);
  const started = performance.now();
  let done = 0;
  await Promise.all(
    [0, 1].map(async () => {
      for (;;) {
        const { rows } = await pool.query<{ id: string }>(claim, [BATCH]);
        if (rows.length === 0) return;
        const result = await pool.query(complete, [rows.map((r) => r.id)]);
        if (result.rowCount !== rows.length) throw new Error("a claimed job was not completed");
        done += rows.length;
      }
    }),
  );
  const ms = performance.now() - started;
  if (done !== JOBS) throw new Error(`drained ${done} of ${JOBS} jobs`);
  return {
    jobsPerSec: (JOBS / ms) * 1000,
    dbUsPerJob: (serverCpuMicros(POSTGRES_PROCESSES) - serverStart) / JOBS,
  };
}

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 3);
  const pool = new pg.Pool({ connectionString: URL, max: 4 });
  const results = new Map<string, { jobsPerSec: number; dbUsPerJob: number }[]>();
  try {
    for (let round = 0; round < rounds; round++) {
      for (const variant of VARIANTS) {
        const list = results.get(variant.name) ?? [];
        list.push(await drain(pool, variant));
        results.set(variant.name, list);
      }
    }
  } finally {
    await pool.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
    await pool.end();
  }
  process.stdout.write(
    `Claim ${BATCH} + complete them, ${JOBS.toLocaleString("en-US")} jobs, 2 loops; ${rounds} rounds (min–max)\n\n`,
  );
  const base = results.get(VARIANTS[0]!.name)!;
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const baseCpu = median(base.map((r) => r.dbUsPerJob));
  for (const variant of VARIANTS) {
    const runs = results.get(variant.name)!;
    const cpu = runs.map((r) => r.dbUsPerJob);
    const rate = runs.map((r) => r.jobsPerSec);
    process.stdout.write(
      `${variant.name.padEnd(40)} DB CPU µs/job ${Math.round(Math.min(...cpu))}–${Math.round(Math.max(...cpu))}` +
        ` (median ${(median(cpu) / baseCpu).toFixed(2)}× the first)   jobs/s ${Math.round(Math.min(...rate))}–${Math.round(Math.max(...rate))}\n`,
    );
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exitCode = 1;
});
