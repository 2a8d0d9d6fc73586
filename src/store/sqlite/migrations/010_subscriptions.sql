-- Subscriptions: a tenant's webhook for the events of some types. An outbox row is now either a
-- job's callback (job_id, job_snapshot) or an event's delivery to a subscription
-- (subscription_id, event_id, its body rendered when enqueued), unique per (subscription, event)
-- so that a dispatch done again delivers nothing twice. SQLite cannot drop a NOT NULL in place:
-- the outbox and its attempts are rebuilt, rows and indexes as they were.
CREATE TABLE subscriptions (
  id          TEXT PRIMARY KEY,
  tenant_id   TEXT NOT NULL,
  url         TEXT NOT NULL,
  types       TEXT NOT NULL,              -- JSON array of event types
  filter      TEXT,                       -- JSON object of attribute filters, or null
  created_at  INTEGER NOT NULL
);
CREATE INDEX subscriptions_by_tenant ON subscriptions (tenant_id, created_at, id);

CREATE TABLE webhook_events_010 (
  id                TEXT PRIMARY KEY,     -- webhook-id
  job_id            TEXT,                 -- a job's callback ...
  tenant_id         TEXT NOT NULL,
  event             TEXT NOT NULL,
  url               TEXT NOT NULL,
  occurred_at       INTEGER NOT NULL,
  job_snapshot      TEXT,                 -- JSON of the job row when the event happened
  body              TEXT,                 -- fixed at the first attempt (a subscription's: at once)
  status            TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','delivered','stopped','failed')),
  attempts          INTEGER NOT NULL DEFAULT 0,
  next_attempt_at   INTEGER NOT NULL,
  lease_token       TEXT,
  lease_expires_at  INTEGER,
  subscription_id   TEXT,                 -- ... or an event's delivery to a subscription
  event_id          TEXT
);
INSERT INTO webhook_events_010 (id, job_id, tenant_id, event, url, occurred_at, job_snapshot, body, status,
    attempts, next_attempt_at, lease_token, lease_expires_at)
  SELECT id, job_id, tenant_id, event, url, occurred_at, job_snapshot, body, status,
    attempts, next_attempt_at, lease_token, lease_expires_at FROM webhook_events;
DROP TABLE webhook_events;
ALTER TABLE webhook_events_010 RENAME TO webhook_events;
CREATE INDEX webhook_events_due ON webhook_events (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_events_job ON webhook_events (job_id);
CREATE INDEX webhook_events_finished ON webhook_events (occurred_at) WHERE status <> 'pending';
-- Partial: a job's callback (most rows) costs this index nothing.
CREATE UNIQUE INDEX webhook_events_subscription ON webhook_events (subscription_id, event_id)
  WHERE subscription_id IS NOT NULL;

CREATE TABLE webhook_attempts_010 (
  event_id         TEXT NOT NULL,
  attempt          INTEGER NOT NULL,
  job_id           TEXT,                  -- null for a subscription's delivery
  event            TEXT NOT NULL,
  at               INTEGER NOT NULL,
  status_code      INTEGER,
  latency_ms       INTEGER NOT NULL,
  error            TEXT,
  next_attempt_at  INTEGER,
  PRIMARY KEY (event_id, attempt)
);
INSERT INTO webhook_attempts_010 SELECT event_id, attempt, job_id, event, at, status_code, latency_ms, error,
  next_attempt_at FROM webhook_attempts;
DROP TABLE webhook_attempts;
ALTER TABLE webhook_attempts_010 RENAME TO webhook_attempts;
CREATE INDEX webhook_attempts_job ON webhook_attempts (job_id);
