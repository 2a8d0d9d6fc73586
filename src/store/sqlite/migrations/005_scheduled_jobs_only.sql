-- jobs_scheduled holds only the jobs whose run is put off past their submission (delayed
-- submits, retries after a backoff, released attempts): it serves the wake-up for the next such
-- job. A job submitted to run at once is due already; an insert of one writes an index entry
-- fewer. As PostgreSQL's migration 008.
DROP INDEX jobs_scheduled;
CREATE INDEX jobs_scheduled ON jobs (run_at) WHERE status = 'queued' AND run_at > created_at;
