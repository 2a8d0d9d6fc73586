-- Events (CloudEvents) a tenant sent or its jobs emitted: kept once per id, in the order they
-- came (`seq`). Each is dispatched to the triggers that match it (the jobs it started are in
-- `triggered`); `dispatched_at` is null until then, so a crash in between is caught up.
CREATE TABLE events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant_id TEXT NOT NULL,
  id TEXT NOT NULL,
  source TEXT NOT NULL,
  type TEXT NOT NULL,
  subject TEXT,
  time INTEGER NOT NULL,
  datacontenttype TEXT,
  data TEXT,
  traceparent TEXT,
  extensions TEXT NOT NULL,
  hash TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  dispatched_at INTEGER,
  triggered TEXT,
  UNIQUE (tenant_id, id)
);
CREATE INDEX events_by_tenant ON events (tenant_id, seq);
CREATE INDEX events_undispatched ON events (received_at) WHERE dispatched_at IS NULL;
-- Retention drops dispatched events by age.
CREATE INDEX events_received ON events (received_at);
