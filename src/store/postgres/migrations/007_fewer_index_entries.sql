-- Every claim and every completion writes a new version of the job's row, and a new entry into
-- each index that holds that version. Two indexes stop taking such entries. Stop every node
-- before this migration (it locks the jobs table while it rebuilds indexes, and nodes of the
-- earlier version write leases that ignore the rule of part 2).
--
-- 1. jobs_tenant_created, the tenant listing's index, goes. A job id starts with its tenant's
--    code, then its creation time (src/jobs/ids.ts), so a tenant's jobs are one range of the
--    primary key, newest last, and the listing reads them there. Job ids compare bytewise, as
--    SQLite's do, so that the range's bounds and the order hold whatever the database's
--    collation; so do the columns that refer to them, or a join on ids could not use their
--    indexes (a comparison takes the "C" collation, an index of another collation cannot
--    serve it). Jobs created before this form of id (UUIDs) are no longer listed; they are
--    still read, canceled and deleted by id.
DROP INDEX {{schema}}.jobs_tenant_created;
ALTER TABLE {{schema}}.jobs ALTER COLUMN id TYPE text COLLATE "C";
ALTER TABLE {{schema}}.idempotency_keys ALTER COLUMN job_id TYPE text COLLATE "C";
ALTER TABLE {{schema}}.result_chunks ALTER COLUMN job_id TYPE text COLLATE "C";
ALTER TABLE {{schema}}.webhook_events ALTER COLUMN job_id TYPE text COLLATE "C";
ALTER TABLE {{schema}}.webhook_attempts ALTER COLUMN job_id TYPE text COLLATE "C";

-- 2. jobs_deadline keeps queued jobs only. A lease never outlives its job's deadline (claims,
--    heartbeats and leased inserts cap it), so a running job past its deadline has an expired
--    lease too, and jobs_lease finds it (statements.ts, sweepDeadlines). A running job always
--    has a lease expiry, or neither sweep would ever find it.
UPDATE {{schema}}.jobs SET lease_expires_at = deadline_at
  WHERE status = 'running' AND (lease_expires_at IS NULL OR lease_expires_at > deadline_at);
ALTER TABLE {{schema}}.jobs ADD CONSTRAINT jobs_lease_expiry_while_running
  CHECK (status <> 'running' OR lease_expires_at IS NOT NULL);
DROP INDEX {{schema}}.jobs_deadline;
CREATE INDEX jobs_deadline ON {{schema}}.jobs (deadline_at) WHERE status = 'queued';

-- A column's new type drops its statistics.
ANALYZE {{schema}}.jobs, {{schema}}.idempotency_keys, {{schema}}.result_chunks,
  {{schema}}.webhook_events, {{schema}}.webhook_attempts;
