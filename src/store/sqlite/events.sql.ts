/** The statements of events (see statements.ts). */
import { EVENT_COLUMNS, EVENT_INSERT_COLUMNS } from "../shared/events.js";

export const EVENTS_SQL = {
  // The new event; no row: one of its id is kept already.
  appendEvent: `INSERT INTO events (${EVENT_INSERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (tenant_id, id) DO NOTHING RETURNING ${EVENT_COLUMNS}`,
  // The same, from the broker: kept as published already.
  appendReceivedEvent: `INSERT INTO events (${EVENT_INSERT_COLUMNS}, published_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (tenant_id, id) DO NOTHING RETURNING ${EVENT_COLUMNS}`,
  getEvent: `SELECT ${EVENT_COLUMNS} FROM events WHERE tenant_id = ? AND id = ?`,
  // The tenant's events, newest first, of one type or all ($type null), before a place.
  listEvents: `SELECT ${EVENT_COLUMNS} FROM events
       WHERE tenant_id = $tenantId AND ($type IS NULL OR type = $type) AND ($beforeSeq IS NULL OR seq < $beforeSeq)
       ORDER BY seq DESC LIMIT $limit`,
  undispatchedEvents: `SELECT ${EVENT_COLUMNS} FROM events
       WHERE dispatched_at IS NULL AND received_at < ? ORDER BY received_at, seq LIMIT ?`,
  markDispatched: `UPDATE events SET dispatched_at = ?, triggered = ? WHERE tenant_id = ? AND id = ?`,
} as const;
