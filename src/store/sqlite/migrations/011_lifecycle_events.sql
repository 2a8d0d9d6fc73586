-- A job submitted while someone listens to the job lifecycle (`tessera.job.*`: the
-- `lifecycleEvents` option, or a trigger on those types) appends `tessera.job.<status>` to
-- `events` in the commit of its terminal move. Asked per job at submit, so that jobs nobody
-- listens to pay nothing for it.
ALTER TABLE jobs ADD COLUMN lifecycle_events INTEGER NOT NULL DEFAULT 0;
