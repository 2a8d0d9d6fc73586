-- A job past its deadline is never started: claimable() skips it (the deadline sweep times it
-- out). Without this a job whose runAt falls after its deadline (accepted: the deadline counts
-- from submission) could be claimed in the moment between its runAt and the sweep, or by the
-- first claim of a server restarted after both had passed.
CREATE OR REPLACE FUNCTION {{schema}}.claimable(types text[], due bigint, n integer, token text, expires bigint)
RETURNS SETOF tid LANGUAGE sql VOLATILE SET enable_sort = off AS $$
  WITH locked AS (
    SELECT ctid, id, deadline_at FROM {{schema}}.jobs
    WHERE waiting AND run_at <= due AND deadline_at > due AND type = ANY(types)
    ORDER BY priority DESC, run_at, id LIMIT n FOR UPDATE SKIP LOCKED),
  lease AS (
    INSERT INTO {{schema}}.leases (token, job_ids, expires_at, deadline_at)
    SELECT token, array_agg(id), expires, min(deadline_at) FROM locked HAVING count(*) > 0)
  SELECT ctid FROM locked
$$;
