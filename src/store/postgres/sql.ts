/**
 * SQL fragments the statements of several concerns share: column lists, the outbox CTEs a
 * terminal move writes, the commit mode of lease writes, primary-key matches and notifications.
 */
import { LIFECYCLE_TYPE_PREFIX } from "../../events/lifecycle.js";
import { RESERVED_KEY_PREFIX } from "../../http/idempotency.js";
import { EVENT_INSERT_COLUMNS } from "../shared/events.js";
import { JOB_COLUMNS } from "../shared/rows.js";

/** Columns of a job row (or the given ones) under an alias. */
export const J = (alias: string, columns = JOB_COLUMNS) =>
  columns
    .split(",")
    .map((c) => `${alias}.${c.trim()}`)
    .join(", ");

/**
 * CTEs that write the callback event a terminal move owes, in the same statement (so the same
 * commit) as the move, and drop progress events still pending for those jobs. `from` is a CTE
 * returning the moved rows' job columns.
 */
export const OUTBOX = (from: string) => `
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
 * A CTE that appends the lifecycle event of each moved row whose job asked for one at submit
 * (`lifecycle_events`, migration 017), as `lifecycleEvent` (src/events/lifecycle.ts) makes it,
 * in the statement of the move, so in its commit. Rows without the flag write nothing; the
 * statement tells its caller which rows had it, to announce them (`{ kind: "events" }`). `from`
 * is a CTE returning the moved rows' job columns, their time in `finished_at`.
 */
export const LIFECYCLE = (from: string) => `
  lc AS (
    INSERT INTO {{s}}.events (${EVENT_INSERT_COLUMNS})
    SELECT o.tenant_id, '${RESERVED_KEY_PREFIX}' || o.id || '-' || o.status, '/jobs/' || o.type,
      '${LIFECYCLE_TYPE_PREFIX}' || o.status, o.id, o.finished_at, 'application/json',
      (jsonb_build_object('id', o.id, 'type', o.type, 'status', o.status, 'attempt', o.attempt) ||
        CASE WHEN o.status = 'succeeded' THEN jsonb_build_object('result', '/v1/jobs/' || o.id || '/result')
          WHEN o.error IS NOT NULL THEN jsonb_build_object('error', o.error::jsonb) ELSE '{}'::jsonb END)::text,
      NULL, '{}',
      translate(encode(sha256(convert_to('${RESERVED_KEY_PREFIX}' || o.id || '-' || o.status, 'UTF8')), 'base64'), '+/=', '-_'),
      o.finished_at
    FROM ${from} o
    WHERE o.lifecycle_events AND o.status IN ('succeeded', 'failed', 'canceled', 'timed_out')
    ON CONFLICT (tenant_id, id) DO NOTHING)`;

/**
 * A condition that is always true and makes the statement's own commit asynchronous (no wait
 * for the WAL flush): for claims, heartbeats and progress, which a crash may lose without harm
 * (the job is queued again, or its lease shorter), and the fence refuses a stale attempt's
 * writes. Set in the statement, not as a connection option, so that it passes any pooler.
 */
export const ASYNC_COMMIT = `(SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL`;

/**
 * A match of `alias.id` against the text array `param` that every plan serves through the
 * primary key. Given the array itself, a plan made for one statement's values (PostgreSQL makes
 * five of them on each connection before it may settle on a generic plan) sees its 500 ids and,
 * on a table of tens of thousands of rows, prefers a sequential scan and a hash: twice the time
 * of a completion, and growing with the table. Read through a subquery, the ids are a value the
 * plan does not see, and a few index lookups are what it picks.
 */
export const ID_IN = (alias: string, param: string, column = "id") =>
  `${alias}.${column} = ANY(ARRAY(SELECT unnest(${param}::text[])))`;

/**
 * Notifications for many rows: `line` (an SQL expression over the rows of `from`) joined by
 * newlines into payloads of at most ~7,200 bytes, below PostgreSQL's 8,000-byte limit, whatever
 * the lengths of job types (a line starts a new payload once the running total passes 7,000).
 */
export const NOTIFY_LINES = (channel: string, line: string, from: string) => `
      SELECT pg_notify(${channel}, string_agg(line, E'\n'))
      FROM (SELECT line, sum(octet_length(line) + 1) OVER (ROWS UNBOUNDED PRECEDING) / 7000 AS chunk
        FROM (SELECT ${line} AS line FROM ${from}) l) d
      GROUP BY chunk`;

// Notification payloads: q|node|type|runAt and t|node|jobId|status|type, several of them joined
// by newlines in one notification where a statement moves many jobs (PgListener parses them).
export const NOTIFY_QUEUED = (alias: string) =>
  `pg_notify($12, 'q|' || $13 || '|' || ${alias}.type || '|' || ${alias}.run_at)`;
