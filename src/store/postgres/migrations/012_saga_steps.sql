-- A saga's journal: one row per step, by its place in the saga's run. Replay reads it to return
-- finished steps' results without running them again; it goes with its job.
CREATE TABLE {{schema}}.saga_steps (
  job_id text NOT NULL REFERENCES {{schema}}.jobs (id) ON DELETE CASCADE,
  seq integer NOT NULL,
  name text NOT NULL,
  status text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'compensated', 'compensation_failed')),
  attempts integer NOT NULL,
  started_at bigint NOT NULL,
  finished_at bigint,
  result text,
  error text,
  compensated_at bigint,
  compensation_error text,
  PRIMARY KEY (job_id, seq)
);

-- Events sent to a saga (POST /v1/jobs/{id}/events/{name}): the first of each name is kept, by
-- its sender's event id; `saga.waitForEvent` reads it, however early it came.
CREATE TABLE {{schema}}.saga_events (
  job_id text NOT NULL REFERENCES {{schema}}.jobs (id) ON DELETE CASCADE,
  name text NOT NULL,
  event_id text NOT NULL,
  data text NOT NULL,
  received_at bigint NOT NULL,
  PRIMARY KEY (job_id, name)
);
