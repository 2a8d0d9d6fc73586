-- A lease token is set exactly while a job is running. The writes fenced by a lease rely on it:
-- they match (id, lease_token) alone, so that only the primary key can serve them (see
-- statements.ts). PostgreSQL only: SQLite's statements keep their status condition.
-- Every earlier statement that moved a job out of running cleared its lease; clear any stray
-- one anyway, so the constraint cannot stop an upgrade.
UPDATE {{schema}}.jobs SET lease_token = NULL, lease_expires_at = NULL
  WHERE status <> 'running' AND lease_token IS NOT NULL;
ALTER TABLE {{schema}}.jobs ADD CONSTRAINT jobs_lease_while_running
  CHECK ((status = 'running') = (lease_token IS NOT NULL));
