-- Tessera SQLite schema v1. Times are unix epoch milliseconds.
CREATE TABLE tenants (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  created_at  INTEGER NOT NULL
);

CREATE TABLE api_keys (
  id           TEXT PRIMARY KEY,
  tenant_id    TEXT NOT NULL REFERENCES tenants(id),
  prefix       TEXT NOT NULL UNIQUE,
  hash         TEXT NOT NULL UNIQUE,  -- SHA-256 of the whole key; the key itself is never stored
  created_at   INTEGER NOT NULL,
  revoked_at   INTEGER,
  last_used_at INTEGER
);

CREATE TABLE jobs (
  id                TEXT PRIMARY KEY,
  tenant_id         TEXT NOT NULL,
  type              TEXT NOT NULL,
  status            TEXT NOT NULL CHECK (status IN ('queued','running','succeeded','failed','canceled','timed_out')),
  input             TEXT NOT NULL,        -- JSON
  priority          INTEGER NOT NULL DEFAULT 0,
  run_at            INTEGER NOT NULL,
  created_at        INTEGER NOT NULL,
  started_at        INTEGER,
  finished_at       INTEGER,
  deadline_at       INTEGER NOT NULL,
  attempt           INTEGER NOT NULL DEFAULT 0,
  max_attempts      INTEGER NOT NULL,
  lease_token       TEXT,
  lease_expires_at  INTEGER,
  progress_percent  REAL,
  progress_message  TEXT,
  error             TEXT,                 -- JSON problem of the last failed attempt
  metadata          TEXT NOT NULL DEFAULT '{}',
  callback          TEXT,                 -- JSON
  result_kind       TEXT,                 -- none | json | bytes | blob | created
  result_type       TEXT,                 -- content type (bytes, blob)
  result_data       BLOB,                 -- inline JSON text or bytes
  result_location   TEXT,                 -- blob path or created resource URL
  result_size       INTEGER,
  result_purged     INTEGER NOT NULL DEFAULT 0
);

-- The queue: claimable jobs in claim order. Partial, so finished rows cost nothing here.
CREATE INDEX jobs_claim ON jobs (priority DESC, run_at, id) WHERE status = 'queued';
-- Sweepers: running leases and active deadlines.
-- The earliest scheduled job, to sleep until it.
CREATE INDEX jobs_scheduled ON jobs (run_at) WHERE status = 'queued';
CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE status = 'running';
CREATE INDEX jobs_deadline ON jobs (deadline_at) WHERE status IN ('queued', 'running');
-- Retention.
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
-- Listing, newest first, per tenant.
CREATE INDEX jobs_tenant_created ON jobs (tenant_id, created_at DESC, id DESC);

CREATE TABLE idempotency_keys (
  tenant_id     TEXT NOT NULL,
  key           TEXT NOT NULL,
  request_hash  TEXT NOT NULL,
  job_id        TEXT NOT NULL,
  created_at    INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_job ON idempotency_keys (job_id);
CREATE INDEX idempotency_created ON idempotency_keys (created_at);
