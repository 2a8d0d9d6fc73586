-- A lease token is set exactly while a job is running. The writes fenced by a lease rely on it:
-- they match (id, lease_token) alone, so that only the primary key can serve them (see
-- statements.ts). PostgreSQL only: SQLite's statements keep their status condition.
ALTER TABLE {{schema}}.jobs ADD CONSTRAINT jobs_lease_while_running
  CHECK ((status = 'running') = (lease_token IS NOT NULL));
