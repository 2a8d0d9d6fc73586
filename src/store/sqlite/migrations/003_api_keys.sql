-- API keys: an optional expiry (`tessera keys create --expires-in`, and the old key's overlap
-- window on `tessera keys rotate`). An expired key is refused like an unknown one.
ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;
