/** The statements of submits, reads, cancel and delete (see statements.ts for the catalogue). */
import { JOB_COLUMNS } from "../shared/rows.js";
import { ASYNC_COMMIT, LIFECYCLE, NOTIFY_LINES, NOTIFY_QUEUED, OUTBOX } from "./sql.js";

// A new job: queued, or running under the lease a local worker took for it ($14, $15); $16:
// a request waits for its end; $17: its terminal move appends its lifecycle event.
const INSERT_COLUMNS = `id, tenant_id, type, status, input, priority, run_at, created_at, deadline_at,
  max_attempts, metadata, callback, attempt, started_at, lease_token, lease_expires_at, watched, lifecycle_events`;

const INSERT_VALUES = `$1, $2, $3, CASE WHEN $14::text IS NULL THEN 'queued' ELSE 'running' END, $4, $5, $6, $7, $8,
  $9, $10, $11, CASE WHEN $14::text IS NULL THEN 0 ELSE 1 END, CASE WHEN $14::text IS NULL THEN NULL ELSE $7::bigint END,
  $14::text, $15::bigint, $16::boolean, $17::boolean`;

const NOTIFY_QUEUED_INSERT = `CASE WHEN ins.status = 'queued' THEN ${NOTIFY_QUEUED("ins")} END`;

// A job inserted running has its lease row (migration 010), as a claim's jobs have.
const LEASE_OF_INSERT = `lease AS (
      INSERT INTO {{s}}.leases (token, job_ids, expires_at, deadline_at)
      SELECT lease_token, ARRAY[id], $15, deadline_at FROM ins WHERE lease_token IS NOT NULL)`;

export const JOBS_SQL = {
  // The inserted row, announced to other nodes' workers; with a lease ($14 token, $15 expiry)
  // it is inserted running instead, unannounced.
  insertJob: `
    WITH ins AS (
      INSERT INTO {{s}}.jobs (${INSERT_COLUMNS}) VALUES (${INSERT_VALUES}) RETURNING ${JOB_COLUMNS}),
    ${LEASE_OF_INSERT}
    SELECT ins.*, ${NOTIFY_QUEUED_INSERT} FROM ins`,
  // Queued jobs without a key, many in one statement (a batch of submits): the inserted rows,
  // announced with one notification line per type (its earliest runAt). An id that exists
  // already inserts nothing (the caller tells a lost answer's commit from a clash). $15: the
  // lifecycle flags, or NULL when no job has one (unnest pads it with NULLs).
  insertJobs: `
    WITH ins AS (
      INSERT INTO {{s}}.jobs (id, tenant_id, type, status, input, priority, run_at, created_at, deadline_at,
        max_attempts, metadata, callback, attempt, watched, lifecycle_events)
      SELECT c.id, c.tenant_id, c.type, 'queued', c.input, c.priority, c.run_at, c.created_at, c.deadline_at,
        c.max_attempts, c.metadata, c.callback, 0, c.watched, coalesce(c.lifecycle, false)
      FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::bigint[], $7::bigint[],
        $8::bigint[], $9::int[], $10::text[], $11::text[], $14::boolean[], $15::boolean[])
        AS c(id, tenant_id, type, input, priority, run_at, created_at, deadline_at, max_attempts, metadata, callback,
          watched, lifecycle)
      ON CONFLICT (id) DO NOTHING
      RETURNING ${JOB_COLUMNS}),
    nt AS (${NOTIFY_LINES(
      "$12",
      `'q|' || $13 || '|' || type || '|' || run_at`,
      "(SELECT type, min(run_at) AS run_at FROM ins GROUP BY type) t",
    )})
    SELECT ins.* FROM ins, (SELECT count(*) FROM nt) n`,
  // insertJob with an Idempotency-Key ($18 key, $19 request hash); no row: the key exists
  // already (the caller reads it and replays).
  insertJobWithKey: `
    WITH idem AS (
      INSERT INTO {{s}}.idempotency_keys (tenant_id, key, request_hash, job_id, created_at)
      VALUES ($2, $18, $19, $1, $7) ON CONFLICT (tenant_id, key) DO NOTHING RETURNING job_id),
    ins AS (
      INSERT INTO {{s}}.jobs (${INSERT_COLUMNS})
      SELECT ${INSERT_VALUES} WHERE EXISTS (SELECT 1 FROM idem) RETURNING ${JOB_COLUMNS}),
    ${LEASE_OF_INSERT}
    SELECT ins.*, ${NOTIFY_QUEUED_INSERT} FROM ins`,
  // A request waits for the job's end: have it announced to every node (see COMPLETE_MANY). No
  // row: not active, or watched already. The row lock orders this against a completion: either
  // the completion sees the flag, or this sees the job finished (the waiter then reads it so).
  // A queued job is announced again, as any write that leaves a job queued is (see claim).
  watch: `
    WITH w AS (
      UPDATE {{s}}.jobs SET watched = true
      WHERE tenant_id = $1 AND id = $2 AND status IN ('queued', 'running') AND NOT watched AND ${ASYNC_COMMIT}
      RETURNING status, type, run_at)
    SELECT status, type, run_at, CASE WHEN status = 'queued' THEN pg_notify($3, 'q|' || $4 || '|' || type || '|' || run_at) END
    FROM w`,
  // The job, or no row (not found, or not this tenant's).
  getJob: `SELECT ${JOB_COLUMNS} FROM {{s}}.jobs WHERE tenant_id = $1 AND id = $2`,
  // One page, newest first: the tenant's range of the primary key ($4 to $5, see tenantIdRange)
  // read backwards from the cursor ($6). The tenant bound always applies, whatever the cursor says.
  listJobs: `
    SELECT ${JOB_COLUMNS} FROM {{s}}.jobs
    WHERE id BETWEEN $4 AND $5 AND ($6::text IS NULL OR id < $6) AND tenant_id = $1
      AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR type = $3)
    ORDER BY id DESC LIMIT $7`,
  // The moved row (cancel); no row: not active (or not this tenant's).
  finishActive: `
    WITH upd AS (
      UPDATE {{s}}.jobs SET status = $3, finished_at = $4, error = $5, lease_token = NULL, lease_expires_at = NULL
      WHERE tenant_id = $1 AND id = $2 AND status IN ('queued', 'running') RETURNING ${JOB_COLUMNS}),
    ${OUTBOX("upd")},
    ${LIFECYCLE("upd")}
    SELECT upd.*, pg_notify($6, 't|' || $7 || '|' || upd.id || '|' || upd.status || '|' || upd.type) FROM upd`,
  // The deleted row's status and type; no row: not found.
  // Deleting an active job cancels it first: its job.canceled event is still delivered.
  deleteJob: `
    WITH del AS (DELETE FROM {{s}}.jobs WHERE tenant_id = $1 AND id = $2 RETURNING ${JOB_COLUMNS}),
    ob AS (
      INSERT INTO {{s}}.webhook_events (id, job_id, tenant_id, event, url, occurred_at, job_snapshot, next_attempt_at)
      SELECT 'msg_' || replace(gen_random_uuid()::text, '-', ''), o.id, o.tenant_id, 'job.canceled',
        o.callback::jsonb ->> 'url', $5,
        (row_to_json(o)::jsonb || jsonb_build_object('status', 'canceled', 'finished_at', $5::bigint, 'error', $6::text))::text, $5
      FROM del o WHERE o.callback IS NOT NULL AND o.status IN ('queued', 'running')),
    dp AS (
      DELETE FROM {{s}}.webhook_events w USING del o
      WHERE w.job_id = o.id AND w.event = 'job.progress' AND w.status = 'pending' AND w.attempts = 0),
    di AS (DELETE FROM {{s}}.idempotency_keys WHERE job_id IN (SELECT id FROM del)),
    dc AS (DELETE FROM {{s}}.result_chunks WHERE job_id IN (SELECT id FROM del)),
    gone AS (
      SELECT id, tenant_id, type, 'canceled'::text AS status, attempt, $5::bigint AS finished_at, $6::text AS error,
        lifecycle_events
      FROM del WHERE status IN ('queued', 'running')),
    ${LIFECYCLE("gone")}
    SELECT status, type, callback, lifecycle_events, CASE WHEN status IN ('queued', 'running')
      THEN pg_notify($3, 't|' || $4 || '|' || id || '|canceled|' || type) END FROM del`,
};
