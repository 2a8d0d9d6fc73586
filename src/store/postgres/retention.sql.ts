/** The statements of retention: finished jobs and results past their time (see statements.ts). */
import { TENANT_PREFIX_LENGTH } from "../../jobs/ids.js";

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

export const RETENTION_SQL = {
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
