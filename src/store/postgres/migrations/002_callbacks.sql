-- Callbacks: the outbox (written in the same statement as the change it reports), the
-- attempts log behind GET /v1/jobs/{id}/deliveries, and per-tenant webhook secrets.
CREATE TABLE {{schema}}.webhook_events (
  id                text PRIMARY KEY,
  job_id            text NOT NULL,
  tenant_id         text NOT NULL,
  event             text NOT NULL,
  url               text NOT NULL,
  occurred_at       bigint NOT NULL,
  job_snapshot      text NOT NULL,
  body              text,
  status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','delivered','stopped','failed')),
  attempts          integer NOT NULL DEFAULT 0,
  next_attempt_at   bigint NOT NULL,
  lease_token       text,
  lease_expires_at  bigint
);
CREATE INDEX webhook_events_due ON {{schema}}.webhook_events (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_events_job ON {{schema}}.webhook_events (job_id);
CREATE INDEX webhook_events_finished ON {{schema}}.webhook_events (occurred_at) WHERE status <> 'pending';

CREATE TABLE {{schema}}.webhook_attempts (
  event_id         text NOT NULL,
  attempt          integer NOT NULL,
  job_id           text NOT NULL,
  event            text NOT NULL,
  at               bigint NOT NULL,
  status_code      integer,
  latency_ms       integer NOT NULL,
  error            text,
  next_attempt_at  bigint,
  PRIMARY KEY (event_id, attempt)
);
CREATE INDEX webhook_attempts_job ON {{schema}}.webhook_attempts (job_id);

CREATE TABLE {{schema}}.webhook_secrets (
  tenant_id        text PRIMARY KEY,
  secret           text NOT NULL,
  previous_secret  text,
  previous_until   bigint,
  updated_at       bigint NOT NULL
);
