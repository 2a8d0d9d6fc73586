-- The ids a claim takes, highest priority first, planned with sorting off: the ordered
-- jobs_claim index is then the only cheap plan, even when the statistics predate a burst of
-- submits (otherwise a bitmap scan and a sort of every queued row: 29 ms instead of 0.8 ms per
-- claim at 20,000 queued). A function's SET clause reaches the statement through any pooler;
-- a connection's startup options do not (pgbouncer refuses them).
CREATE FUNCTION {{schema}}.claimable(types text[], due bigint, n integer) RETURNS SETOF text
LANGUAGE sql VOLATILE SET enable_sort = off AS $$
  SELECT id FROM {{schema}}.jobs
  WHERE status = 'queued' AND run_at <= due AND type = ANY(types)
  ORDER BY priority DESC, run_at, id LIMIT n FOR UPDATE SKIP LOCKED
$$;
