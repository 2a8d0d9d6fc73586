/** The statements of leases: heartbeats, releases and the two sweeps (see statements.ts). */
import { ASYNC_COMMIT, ID_IN, J, LIFECYCLE, OUTBOX } from "./sql.js";

/** A lease row's expiry that never comes (a row left for the deadline sweep only). */
const NEVER = "9223372036854775807";

export const LEASES_SQL = {
  // Ids still leased to their tokens; an id missing from the answer lost its lease. The lease
  // rows of the tokens still held are extended, the jobs' rows not written at all. A lease row
  // a sweep holds is not waited for (the sweep is removing it, or moving its deadline on): the
  // next heartbeat, a third of a lease later, extends it.
  heartbeat: `
    WITH owned AS (
      SELECT j.id, j.lease_token FROM {{s}}.jobs j JOIN unnest($2::text[], $3::text[]) AS c(id, token)
        ON j.id = c.id AND j.lease_token = c.token WHERE ${ID_IN("j", "$2")}),
    extended AS (
      UPDATE {{s}}.leases SET expires_at = $1 WHERE token IN (
        SELECT token FROM {{s}}.leases WHERE token IN (SELECT lease_token FROM owned) FOR UPDATE SKIP LOCKED)
      RETURNING token)
    SELECT id FROM owned WHERE ${ASYNC_COMMIT}`,
  // Released attempts do not count against maxAttempts.
  release: `
    WITH upd AS (
      UPDATE {{s}}.jobs j SET status = 'queued', attempt = j.attempt - 1, run_at = $1, lease_token = NULL, lease_expires_at = NULL
      FROM unnest($2::text[], $3::text[]) AS c(id, token)
      WHERE ${ID_IN("j", "$2")} AND j.id = c.id AND j.lease_token = c.token RETURNING j.type)
    SELECT type, pg_notify($4, 'q|' || $5 || '|' || type || '|' || $1) FROM upd`,
  // What a claim whose answer was lost may have taken (its token is known only to this node):
  // the jobs its lease row names that still hold its token.
  releaseToken: `
    WITH lease AS (DELETE FROM {{s}}.leases WHERE token = $1 RETURNING job_ids),
    upd AS (
      UPDATE {{s}}.jobs j SET status = 'queued', attempt = j.attempt - 1, run_at = $2, lease_token = NULL, lease_expires_at = NULL
      WHERE j.id = ANY(ARRAY(SELECT unnest(job_ids) FROM lease)) AND j.lease_token = $1 RETURNING j.type)
    SELECT type, pg_notify($3, 'q|' || $4 || '|' || type || '|' || $2) FROM upd`,
  // The moved rows with their new status. Expired lease rows (a claim whose worker stopped
  // heartbeating: it crashed, stalled, or all its jobs ended) go, and their jobs still running
  // are queued again or failed; a job past its deadline is the deadline sweep's, so a row with
  // such a job stays, due for that sweep at once.
  sweepLeases: `
    WITH gone AS (
      SELECT token, job_ids FROM {{s}}.leases WHERE expires_at <= $1
      ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED),
    held AS (
      SELECT j.id, j.deadline_at, g.token FROM {{s}}.jobs j JOIN gone g ON j.lease_token = g.token
      WHERE j.id = ANY(ARRAY(SELECT unnest(job_ids) FROM gone)) ORDER BY j.id FOR UPDATE OF j),
    expired AS (SELECT id, token FROM held WHERE deadline_at > $1),
    late AS (SELECT DISTINCT token FROM held WHERE deadline_at <= $1),
    kept AS (
      UPDATE {{s}}.leases SET expires_at = ${NEVER}, deadline_at = $1 WHERE token IN (SELECT token FROM late)),
    dropped AS (
      DELETE FROM {{s}}.leases WHERE token IN (SELECT token FROM gone) AND token NOT IN (SELECT token FROM late)),
    upd AS (
      UPDATE {{s}}.jobs j SET
        status = CASE WHEN j.attempt < j.max_attempts THEN 'queued' ELSE 'failed' END,
        run_at = CASE WHEN j.attempt < j.max_attempts THEN $3 ELSE j.run_at END,
        finished_at = CASE WHEN j.attempt < j.max_attempts THEN NULL ELSE $1 END,
        error = (($4::jsonb) || jsonb_build_object('detail', 'attempt ' || j.attempt || $5))::text,
        lease_token = NULL, lease_expires_at = NULL
      -- The token is checked again on the row as it is once its lock is ours: a completion
      -- that committed meanwhile has ended the job, and it stays ended.
      FROM expired WHERE j.id = expired.id AND j.lease_token = expired.token RETURNING ${J("j")}),
    ${OUTBOX("upd")},
    ${LIFECYCLE("upd")}
    -- One row at least: how many lease rows this took ($2 of them: more may be due).
    SELECT g.leases, id, type, status, callback, lifecycle_events, CASE WHEN id IS NULL THEN NULL WHEN status = 'failed'
      THEN pg_notify($6, 't|' || $7 || '|' || id || '|failed|' || type)
      ELSE pg_notify($6, 'q|' || $7 || '|' || type || '|' || run_at) END
    FROM (SELECT count(*)::int AS leases FROM gone) g LEFT JOIN upd ON true`,
  // Queued jobs past their deadline are found by jobs_deadline; running ones through the lease
  // rows whose earliest deadline has passed. Each such row then takes the earliest deadline of
  // its jobs still running, or goes if none is left. The lease sweep leaves jobs past their
  // deadline to this one: past its deadline, a job is timed out, not retried.
  sweepDeadlines: `
    WITH queued AS (
      SELECT id FROM {{s}}.jobs WHERE waiting AND deadline_at <= $1
      ORDER BY deadline_at LIMIT $2 FOR UPDATE SKIP LOCKED),
    due_leases AS (
      SELECT token, job_ids FROM {{s}}.leases WHERE deadline_at <= $1
      ORDER BY deadline_at LIMIT $2 FOR UPDATE SKIP LOCKED),
    held AS (
      SELECT j.id, j.deadline_at, l.token FROM {{s}}.jobs j JOIN due_leases l ON j.lease_token = l.token
      WHERE j.id = ANY(ARRAY(SELECT unnest(job_ids) FROM due_leases)) ORDER BY j.id FOR UPDATE OF j),
    due AS (
      SELECT id, NULL AS token FROM queued
      UNION ALL SELECT id, token FROM held WHERE deadline_at <= $1 LIMIT $2),
    -- What stays running of each row's jobs (the limit may leave some past their deadline).
    rest AS (
      SELECT token, min(deadline_at) AS deadline_at FROM held
      WHERE id NOT IN (SELECT id FROM due) GROUP BY token),
    moved AS (
      UPDATE {{s}}.leases l SET deadline_at = rest.deadline_at FROM rest WHERE l.token = rest.token),
    ended AS (
      DELETE FROM {{s}}.leases WHERE token IN (SELECT token FROM due_leases) AND token NOT IN (SELECT token FROM rest)),
    upd AS (
      UPDATE {{s}}.jobs j SET status = 'timed_out', finished_at = $1, lease_token = NULL, lease_expires_at = NULL,
        error = (($3::jsonb) || jsonb_build_object('detail', 'the job passed its deadline (' ||
          to_char(to_timestamp(j.deadline_at / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || ')'))::text
      -- A running job's token is checked again once its lock is ours (see sweepLeases).
      FROM due WHERE j.id = due.id AND j.lease_token IS NOT DISTINCT FROM due.token RETURNING ${J("j")}),
    ${OUTBOX("upd")},
    ${LIFECYCLE("upd")}
    -- One row at least: how many lease rows this took ($2 of them: more may be due).
    SELECT g.leases, id, type, callback, lifecycle_events,
      CASE WHEN id IS NOT NULL THEN pg_notify($4, 't|' || $5 || '|' || id || '|timed_out|' || type) END
    FROM (SELECT count(*)::int AS leases FROM due_leases) g LEFT JOIN upd ON true`,
};
