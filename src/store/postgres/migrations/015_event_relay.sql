-- The outbox relay to a broker (`--events`): an event is published once `published_at` is set
-- (an event that came from the broker is kept with it set, so it is never sent back). One
-- relay at a time per partition (`part`) holds its lease; there is one partition (0) today.
ALTER TABLE {{schema}}.events ADD COLUMN published_at bigint;
CREATE INDEX events_unpublished ON {{schema}}.events (seq) WHERE published_at IS NULL;
CREATE TABLE {{schema}}.relay_leases (
  part integer PRIMARY KEY,
  owner text NOT NULL,
  expires_at bigint NOT NULL
);
