-- A job submitted while someone listens to the job lifecycle (`tessera.job.*`: the
-- `lifecycleEvents` option, or a trigger on those types) appends `tessera.job.<status>` to
-- `events` in the statement of its terminal move (see LIFECYCLE in sql.ts). Asked per job at
-- submit, so that jobs nobody listens to pay nothing for it. A constant default: no rewrite.
ALTER TABLE {{schema}}.jobs ADD COLUMN lifecycle_events boolean NOT NULL DEFAULT false;
