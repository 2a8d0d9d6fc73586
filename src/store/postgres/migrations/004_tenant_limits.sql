-- Per-tenant limits (NULL: the server's default), a cheap count of a tenant's queued jobs for
-- the queued-jobs quota, and the rate counters every node shares. The counters are UNLOGGED:
-- no WAL, so counting costs little; a crash of the database empties them, which merely
-- forgives the current window.
ALTER TABLE {{schema}}.tenants ADD COLUMN submit_rate integer;
ALTER TABLE {{schema}}.tenants ADD COLUMN poll_rate integer;
ALTER TABLE {{schema}}.tenants ADD COLUMN max_queued integer;
CREATE INDEX jobs_tenant_queued ON {{schema}}.jobs (tenant_id) WHERE status = 'queued';

CREATE UNLOGGED TABLE {{schema}}.rate_counters (
  key           text NOT NULL,
  window_start  bigint NOT NULL,
  hits          integer NOT NULL,
  expires_at    bigint NOT NULL,
  PRIMARY KEY (key, window_start)
);
CREATE INDEX rate_counters_expires ON {{schema}}.rate_counters (expires_at);
