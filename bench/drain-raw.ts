/**
 * Child process: the floor for no-op job throughput — the same work straight on better-sqlite3
 * with Tessera's schema and durability (WAL, synchronous=FULL): claim a batch of `concurrency`
 * jobs with one UPDATE … RETURNING in its own transaction, "run" them (parse the input), then
 * record every completion with the same fenced UPDATE as Tessera, all in one transaction.
 * Two fsyncs per batch, no event loop, no promises: what the disk and SQLite allow.
 */
import { randomUUID } from "node:crypto";
import Database from "better-sqlite3";
import { newJobId } from "../dist/jobs/ids.js";
import { migrateSqlite } from "../dist/store/sqlite/migrate.js";
import { finalRows, NOOP_TYPE } from "./bench-jobs.js";
import { childOptions, runChild, sendLast, type DrainOptions, type DrainResult } from "./protocol.js";
import { cpuMicros, sharedNow } from "./stats.js";

const INSERT_BATCH = 1000;
const LEASE_MS = 30_000;

function open(path: string): Database.Database {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.pragma("busy_timeout = 5000");
  db.pragma("foreign_keys = ON");
  migrateSqlite(db);
  return db;
}

function drain(path: string, jobs: number, concurrency: number): DrainResult {
  const db = open(path);
  const insert = db.prepare(
    `INSERT INTO jobs (id, tenant_id, type, status, input, priority, run_at, created_at, deadline_at,
       max_attempts, metadata, callback)
     VALUES (?, 'bench', ?, 'queued', '{}', 0, ?, ?, ?, 1, '{}', NULL)`,
  );
  const claim = db.prepare(
    `UPDATE jobs SET status = 'running', attempt = attempt + 1, lease_token = ?, lease_expires_at = ?,
       started_at = ?, progress_percent = NULL, progress_message = NULL
     WHERE id IN (
       SELECT id FROM jobs
       WHERE status = 'queued' AND run_at <= ? AND type IN (SELECT value FROM json_each(?))
       ORDER BY priority DESC, run_at, id LIMIT ?)
     RETURNING id, input`,
  );
  const complete = db.prepare(
    `UPDATE jobs SET status = 'succeeded', finished_at = ?, error = NULL, lease_token = NULL,
       lease_expires_at = NULL, progress_percent = 100, result_kind = 'none', result_type = NULL,
       result_data = NULL, result_location = NULL, result_size = 0
     WHERE id = ? AND lease_token = ? AND status = 'running'`,
  );
  const types = JSON.stringify([NOOP_TYPE]);
  const insertBatch = db.transaction((count: number, now: number) => {
    for (let i = 0; i < count; i++) insert.run(newJobId(now, "bench"), NOOP_TYPE, now, now, now + 3_600_000);
  });
  const claimBatch = db.transaction(
    (token: string, now: number) =>
      claim.all(token, now + LEASE_MS, now, now, types, concurrency) as { id: string; input: string }[],
  );
  const completeBatch = db.transaction((ids: string[], token: string, now: number) => {
    let applied = 0;
    for (const id of ids) applied += complete.run(now, id, token).changes;
    return applied;
  });

  try {
    const insertStart = sharedNow();
    for (let done = 0; done < jobs; done += INSERT_BATCH)
      insertBatch.immediate(Math.min(INSERT_BATCH, jobs - done), Date.now());
    const insertMs = sharedNow() - insertStart;

    const runs = new Map<string, number>();
    let claims = 0;
    const claimSizes: Record<string, number> = {};
    const start = sharedNow();
    const cpuStart = cpuMicros();
    for (;;) {
      const token = randomUUID();
      const rows = claimBatch.immediate(token, Date.now());
      claims++;
      claimSizes[rows.length] = (claimSizes[rows.length] ?? 0) + 1;
      if (rows.length === 0) break;
      for (const row of rows) {
        JSON.parse(row.input);
        runs.set(row.id, (runs.get(row.id) ?? 0) + 1);
      }
      const applied = completeBatch.immediate(
        rows.map((r) => r.id),
        token,
        Date.now(),
      );
      if (applied !== rows.length) throw new Error(`only ${applied} of ${rows.length} completions applied`);
    }
    const drainMs = sharedNow() - start;
    const cpuUs = cpuMicros() - cpuStart;
    return {
      label: "raw better-sqlite3",
      jobs,
      concurrency,
      insertMs,
      drainMs,
      jobsPerSec: (jobs / drainMs) * 1000,
      cpuUsPerJob: cpuUs / jobs,
      handled: runs.size,
      repeated: [...runs.values()].reduce((sum, n) => sum + (n - 1), 0),
      lost: jobs - runs.size,
      finalRows: finalRows(path),
      claims,
      meanClaimSize: jobs / claims,
      partialClaims: 0,
      claimSizes,
    };
  } finally {
    db.close();
  }
}

runChild(async () => {
  const options = childOptions<DrainOptions>();
  drain(options.warmupDb, options.warmupJobs, options.concurrency);
  const result = drain(options.db, options.jobs, options.concurrency);
  await sendLast({ kind: "drained", result });
});
