-- A saga's journal: one row per step, by its place in the saga's run. Replay reads it to return
-- finished steps' results without running them again; it goes with its job.
CREATE TABLE saga_steps (
  job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  name TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'compensated', 'compensation_failed')),
  attempts INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  finished_at INTEGER,
  result TEXT,
  error TEXT,
  compensated_at INTEGER,
  compensation_error TEXT,
  PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;

-- Events sent to a saga (POST /v1/jobs/{id}/events/{name}): the first of each name is kept, by
-- its sender's event id; `saga.waitForEvent` reads it, however early it came.
CREATE TABLE saga_events (
  job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  event_id TEXT NOT NULL,
  data TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (job_id, name)
) WITHOUT ROWID;
