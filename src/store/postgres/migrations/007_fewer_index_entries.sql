-- Every claim and every completion writes a new version of the job's row, and a new entry into
-- each index that holds that version. Two indexes stop taking such entries:
--
-- 1. jobs_tenant_created, the tenant listing's index, goes. A job id starts with its tenant's
--    code, then its creation time (src/jobs/ids.ts), so a tenant's jobs are one range of the
--    primary key, newest last, and the listing reads them there. Job ids compare bytewise, as
--    SQLite's do, so that the range's bounds and the order hold whatever the database's
--    collation (compared with a column of the database's default collation, "C" prevails).
--    Jobs whose ids predate this form (UUIDs, or ids without a tenant code) are no longer
--    listed; they are still read, canceled and deleted by id.
ALTER TABLE {{schema}}.jobs ALTER COLUMN id TYPE text COLLATE "C";
DROP INDEX {{schema}}.jobs_tenant_created;

-- 2. jobs_deadline keeps queued jobs only. A lease never outlives its job's deadline (claims,
--    heartbeats and leased inserts cap it), so a running job past its deadline has an expired
--    lease too, and jobs_lease finds it (statements.ts, sweepDeadlines).
UPDATE {{schema}}.jobs SET lease_expires_at = deadline_at
  WHERE status = 'running' AND lease_expires_at > deadline_at;
DROP INDEX {{schema}}.jobs_deadline;
CREATE INDEX jobs_deadline ON {{schema}}.jobs (deadline_at) WHERE status = 'queued';
