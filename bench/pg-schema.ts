/**
 * What a claim + completion pair costs PostgreSQL on Tessera's own jobs table, and on the two
 * reshapings of it that move the queue and lease state into a narrow table of its own, so that
 * the record's row is written without index entries (a HOT update). docs/benchmarks.md reads
 * the result.
 *
 *   npx tsx bench/pg-schema.ts [rounds]     (TESSERA_BENCH_PG picks the database)
 *
 * Each variant: Tessera's migrated schema in a fresh PostgreSQL schema, 20,000 queued no-op
 * jobs with Tessera's time-ordered ids; one connection claims 500 (FOR UPDATE SKIP LOCKED,
 * in priority order) and completes them in one statement, until none is left. The statements
 * are Tessera's claim and completion cut to the columns a no-op job touches (no RETURNING of
 * the whole row, no NOTIFY), the same cut for every variant. The server's CPU per job is read
 * from /proc; the variants alternate, round after round.
 */
import pg from "pg";
import { newJobId } from "../dist/jobs/ids.js";
import { migratePostgres } from "../dist/store/postgres/migrate.js";
import { POSTGRES_PROCESSES, serverCpuMicros } from "./stats.js";

const URL = process.env["TESSERA_BENCH_PG"] ?? "postgres://postgres@127.0.0.1:5432/test";
const JOBS = 20_000;
const BATCH = 500;
const S = "tessera_bench_schema";

interface Variant {
  name: string;
  /** Reshape the migrated schema; fill the narrow table from the jobs table after the insert. */
  reshape?: string;
  fill?: string;
  claim: string;
  complete: string;
}

const CLAIM_RECORD = `UPDATE ${S}.jobs j SET status = 'running', attempt = j.attempt + 1, lease_token = $1,
  lease_expires_at = $2, started_at = $3, progress_percent = NULL, progress_message = NULL`;
const COMPLETE_RECORD = `UPDATE ${S}.jobs j SET status = 'succeeded', finished_at = c.now, error = NULL,
  lease_token = NULL, lease_expires_at = NULL, progress_percent = 100, result_kind = 'none'`;
const ITEMS = `unnest($1::text[], $2::text[], $3::bigint[]) AS c(id, token, now)`;

// The narrow table: one row per unfinished job, the indexes the claim and the sweepers use; the
// jobs table keeps only indexes on what never changes (id, tenant and creation time), half of
// each page free for the new versions of its rows.
const NARROW = `
  ALTER TABLE ${S}.jobs DROP CONSTRAINT jobs_lease_while_running;
  DROP INDEX ${S}.jobs_claim, ${S}.jobs_scheduled, ${S}.jobs_lease, ${S}.jobs_deadline,
    ${S}.jobs_finished, ${S}.jobs_tenant_queued;
  CREATE INDEX jobs_created ON ${S}.jobs (created_at);
  ALTER TABLE ${S}.jobs SET (fillfactor = 50);
  CREATE TABLE ${S}.queue (id text PRIMARY KEY, type text NOT NULL, priority integer NOT NULL,
    run_at bigint NOT NULL, tenant_id text NOT NULL, deadline_at bigint NOT NULL,
    lease_token text, lease_expires_at bigint, attempt integer NOT NULL DEFAULT 0, started_at bigint);
  CREATE INDEX queue_claim ON ${S}.queue (priority DESC, run_at, id) WHERE lease_token IS NULL;
  CREATE INDEX queue_scheduled ON ${S}.queue (run_at) WHERE lease_token IS NULL;
  CREATE INDEX queue_lease ON ${S}.queue (lease_expires_at) WHERE lease_token IS NOT NULL;
  CREATE INDEX queue_deadline ON ${S}.queue (deadline_at);
  CREATE INDEX queue_tenant_queued ON ${S}.queue (tenant_id) WHERE lease_token IS NULL;
  CREATE FUNCTION ${S}.claimable_narrow(types text[], due bigint, n integer) RETURNS SETOF text
  LANGUAGE sql VOLATILE SET enable_sort = off AS $$
    SELECT id FROM ${S}.queue WHERE lease_token IS NULL AND run_at <= due AND type = ANY(types)
    ORDER BY priority DESC, run_at, id LIMIT n FOR UPDATE SKIP LOCKED $$;`;
const FILL_NARROW = `INSERT INTO ${S}.queue (id, type, priority, run_at, tenant_id, deadline_at)
  SELECT id, type, priority, run_at, tenant_id, deadline_at FROM ${S}.jobs`;
const CLAIM_NARROW = `UPDATE ${S}.queue q SET lease_token = $1, lease_expires_at = $2, attempt = q.attempt + 1,
  started_at = $3 WHERE q.id = ANY(ARRAY(SELECT ${S}.claimable_narrow($4, $3, $5)))`;

const VARIANTS: Variant[] = [
  {
    name: "Tessera's jobs table (migrations 001–006)",
    claim: `${CLAIM_RECORD} WHERE j.id = ANY(ARRAY(SELECT ${S}.claimable($4, $3, $5))) RETURNING j.id`,
    complete: `${COMPLETE_RECORD} FROM ${ITEMS} WHERE j.id = c.id AND j.lease_token = c.token`,
  },
  {
    name: "+ narrow queue table; claim updates both",
    reshape: NARROW,
    fill: FILL_NARROW,
    claim: `WITH q AS (${CLAIM_NARROW} RETURNING q.id)
      ${CLAIM_RECORD} FROM q WHERE j.id = q.id RETURNING j.id`,
    complete: `WITH d AS (DELETE FROM ${S}.queue q USING ${ITEMS} WHERE q.id = c.id AND q.lease_token = c.token
        RETURNING q.id, c.token, c.now)
      ${COMPLETE_RECORD.replace("c.now", "d.now")} FROM d WHERE j.id = d.id`,
  },
  {
    name: "+ narrow queue table; claim updates it only",
    reshape: NARROW,
    fill: FILL_NARROW,
    // The record learns of the attempt at its end (the API would read a running job's lease
    // from the queue row).
    claim: `WITH q AS (${CLAIM_NARROW} RETURNING q.id) SELECT j.id FROM q JOIN ${S}.jobs j ON j.id = q.id`,
    complete: `WITH d AS (DELETE FROM ${S}.queue q USING ${ITEMS} WHERE q.id = c.id AND q.lease_token = c.token
        RETURNING q.id, q.attempt, q.started_at, c.now)
      UPDATE ${S}.jobs j SET status = 'succeeded', finished_at = d.now, attempt = d.attempt,
        started_at = d.started_at, progress_percent = 100, result_kind = 'none' FROM d WHERE j.id = d.id`,
  },
  {
    name: "Tessera's table, completion deletes the row",
    claim: `${CLAIM_RECORD} WHERE j.id = ANY(ARRAY(SELECT ${S}.claimable($4, $3, $5))) RETURNING j.id`,
    complete: `DELETE FROM ${S}.jobs j USING ${ITEMS} WHERE j.id = c.id AND j.lease_token = c.token`,
  },
];

/** Server CPU µs per job: inserting the queued jobs (one statement), and draining them. */
async function drain(client: pg.Client, variant: Variant): Promise<{ insert: number; drain: number }> {
  await client.query(`DROP SCHEMA IF EXISTS ${S} CASCADE`);
  await client.query(`CREATE SCHEMA ${S}`);
  const pool = new pg.Pool({ connectionString: URL, max: 1 });
  try {
    await migratePostgres(pool, S);
  } finally {
    await pool.end();
  }
  if (variant.reshape) await client.query(variant.reshape);
  const now = Date.now();
  const insertStart = serverCpuMicros(POSTGRES_PROCESSES);
  const ids = Array.from({ length: JOBS }, (_, i) => newJobId(now + Math.floor(i / 50), "bench"));
  await client.query(
    `INSERT INTO ${S}.jobs (id, tenant_id, type, status, input, priority, run_at, created_at, deadline_at,
       max_attempts, metadata)
     SELECT id, 'bench', 'noop', 'queued', '{}', 0, $2 + (n - 1) / 50, $2 + (n - 1) / 50, $2 + 3600000, 1, '{}'
     FROM unnest($1::text[]) WITH ORDINALITY AS t(id, n)`,
    [ids, now],
  );
  if (variant.fill) await client.query(variant.fill);
  const insertUs = serverCpuMicros(POSTGRES_PROCESSES) - insertStart;
  await client.query(`ANALYZE ${S}.jobs`);
  if (variant.fill) await client.query(`ANALYZE ${S}.queue`);
  // Each variant starts without dirty pages of the one before (needs pg_checkpoint or superuser).
  await client.query(`CHECKPOINT`).catch(() => undefined);

  const start = serverCpuMicros(POSTGRES_PROCESSES);
  let done = 0;
  for (let round = 0; ; round++) {
    const token = `t${round}`;
    const claimed = await client.query<{ id: string }>(variant.claim, [
      token,
      now + 60_000,
      now + JOBS,
      ["noop"],
      BATCH,
    ]);
    if (claimed.rows.length === 0) break;
    const batch = claimed.rows.map((r) => r.id);
    const completed = await client.query(variant.complete, [
      batch,
      batch.map(() => token),
      batch.map(() => now),
    ]);
    if (completed.rowCount !== batch.length)
      throw new Error(`${variant.name}: a claimed job was not completed`);
    done += batch.length;
  }
  const us = serverCpuMicros(POSTGRES_PROCESSES) - start;
  if (done !== JOBS) throw new Error(`${variant.name}: drained ${done} of ${JOBS} jobs`);
  return { insert: insertUs / JOBS, drain: us / JOBS };
}

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 3);
  const client = new pg.Client({ connectionString: URL });
  await client.connect();
  const results = new Map<string, { insert: number; drain: number }[]>();
  try {
    for (let round = 0; round < rounds; round++)
      for (const variant of VARIANTS)
        results.set(variant.name, [...(results.get(variant.name) ?? []), await drain(client, variant)]);
  } finally {
    await client.query(`DROP SCHEMA IF EXISTS ${S} CASCADE`);
    await client.end();
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const range = (xs: number[]) => `${Math.round(Math.min(...xs))}–${Math.round(Math.max(...xs))}`;
  const base = median(results.get(VARIANTS[0]!.name)!.map((r) => r.drain));
  process.stdout.write(
    `Claim ${BATCH} + complete them, ${JOBS.toLocaleString("en-US")} jobs, one connection; ${rounds} rounds` +
      ` (DB CPU µs/job, min–max; the insert is one statement for all the jobs)\n\n`,
  );
  for (const variant of VARIANTS) {
    const runs = results.get(variant.name)!;
    const drained = runs.map((r) => r.drain);
    process.stdout.write(
      `${variant.name.padEnd(46)} claim + complete ${range(drained)} (median ${(median(drained) / base).toFixed(2)}× the first)` +
        `   insert ${range(runs.map((r) => r.insert))}\n`,
    );
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exitCode = 1;
});
