/** The statements of the outbox relay (see statements.ts). */
import { EVENT_COLUMNS } from "../shared/events.js";

export const RELAY_SQL = {
  // The lease, taken when free or lapsed, renewed by its owner; no row: another holds it.
  holdRelayLease: `INSERT INTO relay_leases (part, owner, expires_at) VALUES ($part, $owner, $expiresAt)
       ON CONFLICT (part) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
       WHERE relay_leases.owner = excluded.owner OR relay_leases.expires_at <= $now
       RETURNING part`,
  releaseRelayLease: `DELETE FROM relay_leases WHERE part = ? AND owner = ?`,
  unpublishedEvents: `SELECT ${EVENT_COLUMNS} FROM events WHERE published_at IS NULL ORDER BY seq LIMIT ?`,
  // An event's seqs as a JSON array: one statement however many were published.
  markPublished: `UPDATE events SET published_at = ? WHERE seq IN (SELECT value FROM json_each(?))`,
  oldestUnpublished: `SELECT received_at FROM events WHERE published_at IS NULL ORDER BY seq LIMIT 1`,
} as const;
