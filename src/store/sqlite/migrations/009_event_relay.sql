-- The outbox relay to a broker (`--events`): an event is published once `published_at` is set
-- (an event that came from the broker is kept with it set, so it is never sent back). One
-- relay at a time per partition (`part`) holds its lease; there is one partition (0) today.
ALTER TABLE events ADD COLUMN published_at INTEGER;
CREATE INDEX events_unpublished ON events (seq) WHERE published_at IS NULL;
CREATE TABLE relay_leases (
  part INTEGER PRIMARY KEY,
  owner TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
