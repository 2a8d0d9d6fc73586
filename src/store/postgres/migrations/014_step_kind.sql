-- What each journal entry is (a step, a sleep, a call, a wait for an event): a replay that
-- reaches another kind at a place is nondeterministic, whatever the names say. Entries written
-- before this are steps (sleeps and waits then had names of their own: sleep-N, event:NAME).
ALTER TABLE {{schema}}.saga_steps ADD COLUMN kind text NOT NULL DEFAULT 'step' CHECK (kind IN ('step', 'sleep', 'call', 'event'));
