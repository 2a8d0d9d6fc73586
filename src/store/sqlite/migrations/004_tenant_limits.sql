-- Per-tenant limits (NULL: the server's default), and a cheap count of a tenant's queued jobs
-- for the queued-jobs quota. SQLite is one node: rate counters live in memory.
ALTER TABLE tenants ADD COLUMN submit_rate INTEGER;
ALTER TABLE tenants ADD COLUMN poll_rate INTEGER;
ALTER TABLE tenants ADD COLUMN max_queued INTEGER;
CREATE INDEX jobs_tenant_queued ON jobs (tenant_id) WHERE status = 'queued';
