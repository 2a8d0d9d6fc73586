-- Subscriptions: a tenant's webhook for the events of some types. An outbox row is now either a
-- job's callback (job_id, job_snapshot) or an event's delivery to a subscription
-- (subscription_id, event_id, its body rendered when enqueued), unique per (subscription, event)
-- so that a dispatch done again delivers nothing twice. New nullable columns without a default
-- and dropped NOT NULLs change the catalog only: no table rewrite.
CREATE TABLE {{schema}}.subscriptions (
  id          text PRIMARY KEY,
  tenant_id   text NOT NULL,
  url         text NOT NULL,
  types       text NOT NULL,
  filter      text,
  created_at  bigint NOT NULL
);
CREATE INDEX subscriptions_by_tenant ON {{schema}}.subscriptions (tenant_id, created_at, id);

ALTER TABLE {{schema}}.webhook_events
  ALTER COLUMN job_id DROP NOT NULL,
  ALTER COLUMN job_snapshot DROP NOT NULL,
  ADD COLUMN subscription_id text,
  ADD COLUMN event_id text;
-- Partial: a job's callback (most rows) costs this index nothing.
CREATE UNIQUE INDEX webhook_events_subscription ON {{schema}}.webhook_events (subscription_id, event_id)
  WHERE subscription_id IS NOT NULL;
ALTER TABLE {{schema}}.webhook_attempts ALTER COLUMN job_id DROP NOT NULL;
