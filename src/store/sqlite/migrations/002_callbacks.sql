-- Callbacks: the outbox (written in the same transaction as the change it reports), the
-- attempts log behind GET /v1/jobs/{id}/deliveries, and per-tenant webhook secrets.
CREATE TABLE webhook_events (
  id                TEXT PRIMARY KEY,     -- webhook-id
  job_id            TEXT NOT NULL,
  tenant_id         TEXT NOT NULL,
  event             TEXT NOT NULL,
  url               TEXT NOT NULL,
  occurred_at       INTEGER NOT NULL,
  job_snapshot      TEXT NOT NULL,        -- JSON of the job row when the event happened
  body              TEXT,                 -- fixed at the first attempt
  status            TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','delivered','stopped','failed')),
  attempts          INTEGER NOT NULL DEFAULT 0,
  next_attempt_at   INTEGER NOT NULL,
  lease_token       TEXT,
  lease_expires_at  INTEGER
);
CREATE INDEX webhook_events_due ON webhook_events (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_events_job ON webhook_events (job_id);
CREATE INDEX webhook_events_finished ON webhook_events (occurred_at) WHERE status <> 'pending';

CREATE TABLE webhook_attempts (
  event_id         TEXT NOT NULL,
  attempt          INTEGER NOT NULL,
  job_id           TEXT NOT NULL,
  event            TEXT NOT NULL,
  at               INTEGER NOT NULL,
  status_code      INTEGER,
  latency_ms       INTEGER NOT NULL,
  error            TEXT,
  next_attempt_at  INTEGER,
  PRIMARY KEY (event_id, attempt)
);
CREATE INDEX webhook_attempts_job ON webhook_attempts (job_id);

CREATE TABLE webhook_secrets (
  tenant_id        TEXT PRIMARY KEY,
  secret           TEXT NOT NULL,
  previous_secret  TEXT,
  previous_until   INTEGER,
  updated_at       INTEGER NOT NULL
);
