-- Events (CloudEvents) a tenant sent or its jobs emitted: kept once per id, in the order they
-- came (`seq`). Each is dispatched to the triggers that match it (the jobs it started are in
-- `triggered`); `dispatched_at` is null until then, so a crash in between is caught up.
CREATE TABLE {{schema}}.events (
  seq bigserial PRIMARY KEY,
  tenant_id text NOT NULL,
  id text NOT NULL,
  source text NOT NULL,
  type text NOT NULL,
  subject text,
  time bigint NOT NULL,
  datacontenttype text,
  data text,
  traceparent text,
  extensions text NOT NULL,
  hash text NOT NULL,
  received_at bigint NOT NULL,
  dispatched_at bigint,
  triggered text,
  UNIQUE (tenant_id, id)
);
CREATE INDEX events_by_tenant ON {{schema}}.events (tenant_id, seq);
CREATE INDEX events_undispatched ON {{schema}}.events (received_at) WHERE dispatched_at IS NULL;
-- Retention drops dispatched events by age.
CREATE INDEX events_received ON {{schema}}.events (received_at);
