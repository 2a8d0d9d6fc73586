/** The statements of claims, progress, completions and failures (see statements.ts). */
import { EVENT_INSERT_COLUMNS } from "../shared/events.js";
import { CLAIM_COLUMNS, JOB_COLUMNS } from "../shared/rows.js";
import { ASYNC_COMMIT, ID_IN, J, LIFECYCLE, NOTIFY_LINES, OUTBOX } from "./sql.js";

/**
 * A batch of completions in one statement: per job its id, the index ($2) of its lease token in
 * the batch's distinct tokens ($11: a claim's jobs share one, so the statement does not carry
 * it once per job), its result columns (a NULL kind is 'none') and its finish time. Other nodes
 * are told of the watched ones (a request waits for them somewhere), one notification per
 * ~7,000 bytes of lines. `outbox`: also write the callback events owed; a batch without
 * callbacks skips those CTEs (and the full row they need). `lifecycle`: also append the
 * lifecycle events of the jobs that asked for them (a batch without such jobs skips the CTE).
 */
const COMPLETE_MANY = (outbox: boolean, events = false, lifecycle = false) => `
    WITH done AS (
      UPDATE {{s}}.jobs j SET status = 'succeeded', finished_at = c.now, error = NULL, lease_token = NULL,
        lease_expires_at = NULL, progress_percent = 100, result_kind = coalesce(c.kind, 'none'),
        result_type = c.ctype, result_data = c.data, result_location = c.location, result_size = c.size
      FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::bytea[], $6::text[], $7::bigint[], $8::bigint[])
        AS c(id, t, kind, ctype, data, location, size, now)
      WHERE ${ID_IN("j", "$1")} AND j.id = c.id AND j.lease_token = ($11::text[])[c.t]
      RETURNING ${
        outbox
          ? `${J("j")}, j.watched, c.t),
    ${OUTBOX("done")}`
          : "j.id, j.type, j.callback, j.watched, c.t)"
      },
    nt AS (${NOTIFY_LINES("$9", `'t|' || $10 || '|' || id || '|succeeded|' || type`, "(SELECT * FROM done WHERE watched) w")})${
      events
        ? `,
    ev AS (
      INSERT INTO {{s}}.events (${EVENT_INSERT_COLUMNS})
      SELECT e.tenant_id, e.id, e.source, e.type, e.subject, e.time, e.ctype, e.data, e.traceparent, e.extensions,
        e.hash, e.received_at
      FROM unnest($12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::bigint[],
        $19::text[], $20::text[], $21::text[], $22::text[], $23::text[], $24::bigint[])
        AS e(job_id, tenant_id, id, source, type, subject, time, ctype, data, traceparent, extensions, hash, received_at)
      JOIN done ON done.id = e.job_id
      ORDER BY e.job_id, e.id
      ON CONFLICT (tenant_id, id) DO NOTHING)`
        : ""
    }${lifecycle ? `,${LIFECYCLE("done")}` : ""}
    SELECT id, type, t, callback IS NOT NULL AS has_callback FROM done, (SELECT count(*) FROM nt) n`;

export const CLAIMS_SQL = {
  // The claimed rows (any order). SKIP LOCKED (in claimable(), migrations 006 and 008):
  // concurrent claimers never wait on each other. The rows are found by the addresses
  // claimable() locked them at, which no other write can change before this update. A row
  // version written after this statement began (a submit, a requeue, a watch) is one that
  // claimable(), which reads with a fresh snapshot, may lock and this update cannot see: it
  // stays queued, and the notification every such write sends has workers claim again.
  // claimable() also writes the claim's lease row (migration 010), one for all its jobs. It
  // names every job claimable() locked, also one this update then cannot see (above): every
  // reader of a lease row matches its jobs' tokens again, so that one is simply not found.
  claim: `
    UPDATE {{s}}.jobs j SET status = 'running', attempt = j.attempt + 1, lease_token = $1,
      lease_expires_at = least($2, j.deadline_at),
      started_at = $3, progress_percent = NULL, progress_message = NULL
    WHERE j.ctid = ANY(ARRAY(SELECT {{s}}.claimable($4, $3, $5, $1, $2))) AND ${ASYNC_COMMIT}
    RETURNING ${J("j", CLAIM_COLUMNS)}`,
  // The applied (id, token); other nodes are told of the watched ones (a poll is held for them).
  progress: `
    WITH upd AS (
      UPDATE {{s}}.jobs j SET progress_percent = c.percent, progress_message = c.message
      FROM unnest($1::text[], $2::text[], $3::float8[], $4::text[]) AS c(id, token, percent, message)
      WHERE ${ID_IN("j", "$1")} AND j.id = c.id AND j.lease_token = c.token AND ${ASYNC_COMMIT}
      RETURNING j.id, j.lease_token, j.watched,
        coalesce(j.callback::jsonb -> 'events' ? 'job.progress', false) AS wants_event),
    nt AS (${NOTIFY_LINES("$5", `'p|' || $6 || '|' || id`, "(SELECT * FROM upd WHERE watched) w")})
    SELECT id, lease_token, wants_event FROM upd, (SELECT count(*) FROM nt) n`,
  // A coalesced progress event per job: the pending one takes the latest state, else a new one
  // due no sooner than a second after the last.
  progressEvents: `
    WITH src AS (SELECT ${JOB_COLUMNS} FROM {{s}}.jobs WHERE id = ANY($1) AND lease_token IS NOT NULL),
    pend AS (
      UPDATE {{s}}.webhook_events w SET job_snapshot = row_to_json(src)::text, occurred_at = $2
      FROM src WHERE w.job_id = src.id AND w.event = 'job.progress' AND w.status = 'pending' AND w.attempts = 0
        AND w.lease_token IS NULL -- one in flight has its body rendered already
      RETURNING w.job_id)
    INSERT INTO {{s}}.webhook_events (id, job_id, tenant_id, event, url, occurred_at, job_snapshot, next_attempt_at)
    SELECT 'msg_' || replace(gen_random_uuid()::text, '-', ''), src.id, src.tenant_id, 'job.progress',
      src.callback::jsonb ->> 'url', $2, row_to_json(src)::text,
      greatest($2, coalesce((SELECT max(occurred_at) FROM {{s}}.webhook_events w2
        WHERE w2.job_id = src.id AND w2.event = 'job.progress') + $3, $2))
    FROM src WHERE src.id NOT IN (SELECT job_id FROM pend)`,
  // The completed (id, type, token index); an item missing from the answer was fenced.
  completeMany: COMPLETE_MANY(true),
  // completeMany for jobs without a callback: no outbox event to write.
  completeManyLean: COMPLETE_MANY(false),
  // completeMany with the events the attempts emitted, inserted only for the jobs completed.
  completeManyWithEvents: COMPLETE_MANY(true, true),
  // completeManyWithEvents (its events maybe none) with the lifecycle events of the jobs that
  // asked for them.
  completeManyWithLifecycle: COMPLETE_MANY(true, true, true),
  failFinal: `
    WITH upd AS (
      UPDATE {{s}}.jobs SET status = 'failed', finished_at = $3, error = $4, lease_token = NULL, lease_expires_at = NULL
      WHERE id = $1 AND lease_token = $2 RETURNING ${JOB_COLUMNS}),
    ${OUTBOX("upd")},
    ${LIFECYCLE("upd")}
    SELECT type, callback, lifecycle_events, pg_notify($5, 't|' || $6 || '|' || id || '|failed|' || type) FROM upd`,
  failRetry: `
    WITH upd AS (
      UPDATE {{s}}.jobs SET status = 'queued', run_at = $3, error = $4, lease_token = NULL, lease_expires_at = NULL
      WHERE id = $1 AND lease_token = $2 RETURNING type, run_at)
    SELECT type, pg_notify($5, 'q|' || $6 || '|' || type || '|' || run_at) FROM upd`,
};
