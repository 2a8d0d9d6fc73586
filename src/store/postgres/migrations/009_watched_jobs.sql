-- A job's end is announced to other nodes (LISTEN/NOTIFY) only if a request waits for it
-- somewhere: a submit that asked to wait, or a wait that marked it (see SQL.watch). Failures,
-- cancels and time-outs are still always announced (a worker elsewhere may have to stop). At
-- tens of thousands of completions a second, announcing every one cost each node a stream of
-- notifications to read, and the database the work of writing them.
ALTER TABLE {{schema}}.jobs ADD COLUMN watched boolean NOT NULL DEFAULT false;
