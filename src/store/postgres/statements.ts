import { TENANT_PREFIX_LENGTH } from "../../jobs/ids.js";
import { CLAIM_COLUMNS, JOB_COLUMNS } from "../rows.js";

/** Columns of a job row (or the given ones) under an alias. */
const J = (alias: string, columns = JOB_COLUMNS) =>
  columns
    .split(",")
    .map((c) => `${alias}.${c.trim()}`)
    .join(", ");

/**
 * CTEs that write the callback event a terminal move owes, in the same statement (so the same
 * commit) as the move, and drop progress events still pending for those jobs. `from` is a CTE
 * returning the moved rows' job columns.
 */
const OUTBOX = (from: string) => `
  ob AS (
    INSERT INTO {{s}}.webhook_events (id, job_id, tenant_id, event, url, occurred_at, job_snapshot, next_attempt_at)
    SELECT 'msg_' || replace(gen_random_uuid()::text, '-', ''), o.id, o.tenant_id, 'job.' || o.status,
      o.callback::jsonb ->> 'url', o.finished_at, row_to_json(o)::text, o.finished_at
    FROM ${from} o
    WHERE o.callback IS NOT NULL AND o.status IN ('succeeded', 'failed', 'canceled', 'timed_out')
      AND (o.status <> 'succeeded' OR coalesce(o.callback::jsonb -> 'events', '["job.succeeded"]'::jsonb) ? 'job.succeeded')),
  dp AS (
    DELETE FROM {{s}}.webhook_events w USING ${from} o
    WHERE w.job_id = o.id AND w.event = 'job.progress' AND w.status = 'pending' AND w.attempts = 0)`;

/**
 * A condition that is always true and makes the statement's own commit asynchronous (no wait
 * for the WAL flush): for claims, heartbeats and progress, which a crash may lose without harm
 * (the job is queued again, or its lease shorter), and the fence refuses a stale attempt's
 * writes. Set in the statement, not as a connection option, so that it passes any pooler.
 */
const ASYNC_COMMIT = `(SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL`;

/**
 * CTEs: `old`, up to $2 ids of jobs created before the time whose id digits are $3 that match
 * `condition` (finished before $1: a job finished before a time was created before it). Found
 * in the primary key, with no index of their own (migration 010): `codes` walks the tenants'
 * prefixes (one index probe each), and each tenant's jobs made before the time are one range of
 * it. Ids from before migration 007 (UUIDs, which sort below `job_`) are read apart.
 */
const CREATED_BEFORE = (condition: string) => `
    codes AS (
      (SELECT left(id, ${TENANT_PREFIX_LENGTH}) AS code FROM {{s}}.jobs WHERE id > 'job_' AND id < 'job\`' ORDER BY id LIMIT 1)
      UNION ALL
      SELECT (SELECT left(j.id, ${TENANT_PREFIX_LENGTH}) FROM {{s}}.jobs j
        WHERE j.id > c.code || '{' AND j.id < 'job\`' ORDER BY j.id LIMIT 1)
      FROM codes c WHERE c.code IS NOT NULL),
    old AS (
      SELECT o.id FROM codes c CROSS JOIN LATERAL (
        SELECT id FROM {{s}}.jobs WHERE id > c.code AND id < c.code || $3 AND ${condition} LIMIT $2) o
      WHERE c.code IS NOT NULL
      UNION ALL
      SELECT id FROM {{s}}.jobs WHERE id < 'job_' AND ${condition}
      LIMIT $2)`;

// What retention takes (checked again on each row as it is locked).
const FINISHED = "finished_at < $1";
const RESULT_KEPT = "finished_at < $1 AND NOT result_purged";

/** A lease row's expiry that never comes (a row left for the deadline sweep only). */
const NEVER = "9223372036854775807";

/**
 * A match of `alias.id` against the text array `param` that every plan serves through the
 * primary key. Given the array itself, a plan made for one statement's values (PostgreSQL makes
 * five of them on each connection before it may settle on a generic plan) sees its 500 ids and,
 * on a table of tens of thousands of rows, prefers a sequential scan and a hash: twice the time
 * of a completion, and growing with the table. Read through a subquery, the ids are a value the
 * plan does not see, and a few index lookups are what it picks.
 */
const ID_IN = (alias: string, param: string) => `${alias}.id = ANY(ARRAY(SELECT unnest(${param}::text[])))`;

// Notification payloads: q|node|type|runAt and t|node|jobId|status|type, several of them joined
// by newlines in one notification where a statement moves many jobs (PgListener parses them).
const NOTIFY_QUEUED = (alias: string) =>
  `pg_notify($12, 'q|' || $13 || '|' || ${alias}.type || '|' || ${alias}.run_at)`;

// A new job: queued, or running under the lease a local worker took for it ($14, $15); $16:
// a request waits for its end.
const INSERT_COLUMNS = `id, tenant_id, type, status, input, priority, run_at, created_at, deadline_at,
  max_attempts, metadata, callback, attempt, started_at, lease_token, lease_expires_at, watched`;
const INSERT_VALUES = `$1, $2, $3, CASE WHEN $14::text IS NULL THEN 'queued' ELSE 'running' END, $4, $5, $6, $7, $8,
  $9, $10, $11, CASE WHEN $14::text IS NULL THEN 0 ELSE 1 END, CASE WHEN $14::text IS NULL THEN NULL ELSE $7::bigint END,
  $14::text, $15::bigint, $16::boolean`;
const NOTIFY_QUEUED_INSERT = `CASE WHEN ins.status = 'queued' THEN ${NOTIFY_QUEUED("ins")} END`;
// A job inserted running has its lease row (migration 010), as a claim's jobs have.
const LEASE_OF_INSERT = `lease AS (
      INSERT INTO {{s}}.leases (token, job_ids, expires_at, deadline_at)
      SELECT lease_token, ARRAY[id], $15, deadline_at FROM ins WHERE lease_token IS NOT NULL)`;

/**
 * Notifications for many rows: `line` (an SQL expression over the rows of `from`) joined by
 * newlines into payloads of at most ~7,200 bytes, below PostgreSQL's 8,000-byte limit, whatever
 * the lengths of job types (a line starts a new payload once the running total passes 7,000).
 */
const NOTIFY_LINES = (channel: string, line: string, from: string) => `
      SELECT pg_notify(${channel}, string_agg(line, E'\n'))
      FROM (SELECT line, sum(octet_length(line) + 1) OVER (ROWS UNBOUNDED PRECEDING) / 7000 AS chunk
        FROM (SELECT ${line} AS line FROM ${from}) l) d
      GROUP BY chunk`;

/**
 * A batch of completions in one statement: per job its id, the index ($2) of its lease token in
 * the batch's distinct tokens ($11: a claim's jobs share one, so the statement does not carry
 * it once per job), its result columns (a NULL kind is 'none') and its finish time. Other nodes
 * are told of the watched ones (a request waits for them somewhere), one notification per
 * ~7,000 bytes of lines. `outbox`: also write the callback events owed; a batch without
 * callbacks skips those CTEs (and the full row they need).
 */
const COMPLETE_MANY = (outbox: boolean) => `
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
    nt AS (${NOTIFY_LINES("$9", `'t|' || $10 || '|' || id || '|succeeded|' || type`, "(SELECT * FROM done WHERE watched) w")})
    SELECT id, type, t, callback IS NOT NULL AS has_callback FROM done, (SELECT count(*) FROM nt) n`;

/**
 * Every statement, once. Each header says what it returns and what 0 rows means.
 *
 * A lease token is set exactly while a job is running (a CHECK constraint holds it), so the
 * writes fenced by a lease match on (id, token) alone, which only the primary key can serve.
 * (Before migration 010, with `status = 'running'` in them, a plan made while the statistics
 * counted few running jobs walked a partial index of running jobs instead, through a dead entry
 * for every job run since the last vacuum: 94 µs a completion instead of 26, and growing.)
 *
 * The sweeps lock the jobs of the lease rows they take in id order and wait for them, as the
 * batched writes lock theirs in id order: no deadlock with a completion. They do not skip a
 * locked job: a lease row they remove must leave no job running behind it.
 */
export const SQL = {
  // The inserted row, announced to other nodes' workers; with a lease ($14 token, $15 expiry)
  // it is inserted running instead, unannounced.
  insertJob: `
    WITH ins AS (
      INSERT INTO {{s}}.jobs (${INSERT_COLUMNS}) VALUES (${INSERT_VALUES}) RETURNING ${JOB_COLUMNS}),
    ${LEASE_OF_INSERT}
    SELECT ins.*, ${NOTIFY_QUEUED_INSERT} FROM ins`,
  // Queued jobs without a key, many in one statement (a batch of submits): the inserted rows,
  // announced with one notification line per type (its earliest runAt). An id that exists
  // already inserts nothing (the caller tells a lost answer's commit from a clash).
  insertJobs: `
    WITH ins AS (
      INSERT INTO {{s}}.jobs (id, tenant_id, type, status, input, priority, run_at, created_at, deadline_at,
        max_attempts, metadata, callback, attempt, watched)
      SELECT c.id, c.tenant_id, c.type, 'queued', c.input, c.priority, c.run_at, c.created_at, c.deadline_at,
        c.max_attempts, c.metadata, c.callback, 0, c.watched
      FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::bigint[], $7::bigint[],
        $8::bigint[], $9::int[], $10::text[], $11::text[], $14::boolean[])
        AS c(id, tenant_id, type, input, priority, run_at, created_at, deadline_at, max_attempts, metadata, callback, watched)
      ON CONFLICT (id) DO NOTHING
      RETURNING ${JOB_COLUMNS}),
    nt AS (${NOTIFY_LINES(
      "$12",
      `'q|' || $13 || '|' || type || '|' || run_at`,
      "(SELECT type, min(run_at) AS run_at FROM ins GROUP BY type) t",
    )})
    SELECT ins.* FROM ins, (SELECT count(*) FROM nt) n`,
  // insertJob with an Idempotency-Key ($17 key, $18 request hash); no row: the key exists
  // already (the caller reads it and replays).
  insertJobWithKey: `
    WITH idem AS (
      INSERT INTO {{s}}.idempotency_keys (tenant_id, key, request_hash, job_id, created_at)
      VALUES ($2, $17, $18, $1, $7) ON CONFLICT (tenant_id, key) DO NOTHING RETURNING job_id),
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
    ${OUTBOX("upd")}
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
    dc AS (DELETE FROM {{s}}.result_chunks WHERE job_id IN (SELECT id FROM del))
    SELECT status, type, callback, CASE WHEN status IN ('queued', 'running')
      THEN pg_notify($3, 't|' || $4 || '|' || id || '|canceled|' || type) END FROM del`,
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
  failFinal: `
    WITH upd AS (
      UPDATE {{s}}.jobs SET status = 'failed', finished_at = $3, error = $4, lease_token = NULL, lease_expires_at = NULL
      WHERE id = $1 AND lease_token = $2 RETURNING ${JOB_COLUMNS}),
    ${OUTBOX("upd")}
    SELECT type, callback, pg_notify($5, 't|' || $6 || '|' || id || '|failed|' || type) FROM upd`,
  failRetry: `
    WITH upd AS (
      UPDATE {{s}}.jobs SET status = 'queued', run_at = $3, error = $4, lease_token = NULL, lease_expires_at = NULL
      WHERE id = $1 AND lease_token = $2 RETURNING type, run_at)
    SELECT type, pg_notify($5, 'q|' || $6 || '|' || type || '|' || run_at) FROM upd`,
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
    ${OUTBOX("upd")}
    -- One row at least: how many lease rows this took ($2 of them: more may be due).
    SELECT g.leases, id, type, status, callback, CASE WHEN id IS NULL THEN NULL WHEN status = 'failed'
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
    ${OUTBOX("upd")}
    -- One row at least: how many lease rows this took ($2 of them: more may be due).
    SELECT g.leases, id, type, callback,
      CASE WHEN id IS NOT NULL THEN pg_notify($4, 't|' || $5 || '|' || id || '|timed_out|' || type) END
    FROM (SELECT count(*)::int AS leases FROM due_leases) g LEFT JOIN upd ON true`,
  deleteFinished: `
    WITH RECURSIVE ${CREATED_BEFORE(FINISHED)},
    del AS (
      DELETE FROM {{s}}.jobs WHERE id IN (
        SELECT id FROM {{s}}.jobs WHERE id IN (SELECT id FROM old) AND ${FINISHED} FOR UPDATE SKIP LOCKED)
      RETURNING id),
    di AS (DELETE FROM {{s}}.idempotency_keys WHERE job_id IN (SELECT id FROM del)),
    dc AS (DELETE FROM {{s}}.result_chunks WHERE job_id IN (SELECT id FROM del))
    SELECT count(*) AS n FROM del`,
  purgeResults: `
    WITH RECURSIVE ${CREATED_BEFORE(RESULT_KEPT)},
    upd AS (
      UPDATE {{s}}.jobs SET result_purged = true, result_data = NULL, result_location = NULL WHERE id IN (
        SELECT id FROM {{s}}.jobs WHERE id IN (SELECT id FROM old) AND ${RESULT_KEPT} FOR UPDATE SKIP LOCKED)
      RETURNING id),
    dc AS (DELETE FROM {{s}}.result_chunks WHERE job_id IN (SELECT id FROM upd))
    SELECT count(*) AS n FROM upd`,
};

/**
 * The statements run once or more per job, sent as named prepared statements (parsed and
 * planned once per connection, not on every call) unless the store is told not to. Each has one
 * good plan whatever its parameters, so the generic plan PostgreSQL may settle on after five
 * runs is a good one: an insert, or lookups by primary key (the claim's rows come from
 * claimable(), which plans its own query on every call, by their addresses).
 */
export const PREPARED: ReadonlySet<keyof typeof SQL> = new Set([
  "insertJob",
  "insertJobs",
  "insertJobWithKey",
  "getJob",
  "claim",
  "heartbeat",
  "progress",
  "completeMany",
  "completeManyLean",
  "failFinal",
  "failRetry",
  "release",
] as const);
