-- Tessera PostgreSQL schema v1. Times are unix epoch milliseconds (bigint), JSON is kept as
-- text so it is echoed exactly as the SQLite driver echoes it. {{schema}} is the schema name.
CREATE TABLE {{schema}}.tenants (
  id          text PRIMARY KEY,
  name        text NOT NULL UNIQUE,
  created_at  bigint NOT NULL
);

CREATE TABLE {{schema}}.api_keys (
  id           text PRIMARY KEY,
  tenant_id    text NOT NULL REFERENCES {{schema}}.tenants(id),
  prefix       text NOT NULL UNIQUE,
  hash         text NOT NULL UNIQUE,
  created_at   bigint NOT NULL,
  revoked_at   bigint,
  last_used_at bigint
);

CREATE TABLE {{schema}}.jobs (
  id                text PRIMARY KEY,
  tenant_id         text NOT NULL,
  type              text NOT NULL,
  status            text NOT NULL CHECK (status IN ('queued','running','succeeded','failed','canceled','timed_out')),
  input             text NOT NULL,
  priority          integer NOT NULL DEFAULT 0,
  run_at            bigint NOT NULL,
  created_at        bigint NOT NULL,
  started_at        bigint,
  finished_at       bigint,
  deadline_at       bigint NOT NULL,
  attempt           integer NOT NULL DEFAULT 0,
  max_attempts      integer NOT NULL,
  lease_token       text,
  lease_expires_at  bigint,
  progress_percent  double precision,
  progress_message  text,
  error             text,
  metadata          text NOT NULL DEFAULT '{}',
  callback          text,
  result_kind       text,
  result_type       text,
  result_data       bytea,
  result_location   text,
  result_size       bigint,
  result_purged     boolean NOT NULL DEFAULT false
);

CREATE INDEX jobs_claim ON {{schema}}.jobs (priority DESC, run_at, id) WHERE status = 'queued';
CREATE INDEX jobs_scheduled ON {{schema}}.jobs (run_at) WHERE status = 'queued';
CREATE INDEX jobs_lease ON {{schema}}.jobs (lease_expires_at) WHERE status = 'running';
CREATE INDEX jobs_deadline ON {{schema}}.jobs (deadline_at) WHERE status IN ('queued', 'running');
CREATE INDEX jobs_finished ON {{schema}}.jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX jobs_tenant_created ON {{schema}}.jobs (tenant_id, created_at DESC, id DESC);

CREATE TABLE {{schema}}.idempotency_keys (
  tenant_id     text NOT NULL,
  key           text NOT NULL,
  request_hash  text NOT NULL,
  job_id        text NOT NULL,
  created_at    bigint NOT NULL,
  PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_job ON {{schema}}.idempotency_keys (job_id);
CREATE INDEX idempotency_created ON {{schema}}.idempotency_keys (created_at);

-- Results over the inline threshold, in 1 MiB chunks keyed by the attempt that wrote them.
CREATE TABLE {{schema}}.result_chunks (
  job_id       text NOT NULL,
  lease_token  text NOT NULL,
  seq          integer NOT NULL,
  data         bytea NOT NULL,
  PRIMARY KEY (job_id, lease_token, seq)
);
