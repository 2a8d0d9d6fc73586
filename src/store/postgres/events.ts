/** Events on PostgreSQL: kept once per (tenant, id), in one statement each. */
import {
  appendOutcome,
  EVENT_COLUMNS,
  EVENT_INSERT_COLUMNS,
  eventValues,
  toEvent,
  type EventRow,
} from "../shared/events.js";
import type { EventRecord, Store, StoreParams } from "../store.js";
import type { PgDb } from "./db.js";

export class PgEvents {
  constructor(private readonly db: PgDb) {}

  async appendEvent({ event, now, received }: StoreParams<"appendEvent">): ReturnType<Store["appendEvent"]> {
    // One from the broker is kept as published already ($13), so the relay never sends it back.
    const [row] = await this.db.query<EventRow>(
      `INSERT INTO {{s}}.events (${EVENT_INSERT_COLUMNS}, published_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
       ON CONFLICT (tenant_id, id) DO NOTHING RETURNING ${EVENT_COLUMNS}`,
      [...eventValues(event, now), received ? now : null],
    );
    if (row) return { kind: "created", event: toEvent(row) };
    // Kept by another request: committed before this insert gave up, so it can be read.
    const kept = (await this.getEvent({ tenantId: event.tenantId, id: event.id }))!;
    return { kind: appendOutcome(kept, event), event: kept };
  }

  async getEvent({ tenantId, id }: StoreParams<"getEvent">): Promise<EventRecord | null> {
    const [row] = await this.db.query<EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM {{s}}.events WHERE tenant_id = $1 AND id = $2`,
      [tenantId, id],
    );
    return row ? toEvent(row) : null;
  }

  async listEvents({ tenantId, type, limit, beforeSeq }: StoreParams<"listEvents">): Promise<EventRecord[]> {
    const rows = await this.db.query<EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM {{s}}.events
       WHERE tenant_id = $1 AND ($2::text IS NULL OR type = $2) AND ($3::bigint IS NULL OR seq < $3)
       ORDER BY seq DESC LIMIT $4`,
      [tenantId, type ?? null, beforeSeq ?? null, limit],
    );
    return rows.map(toEvent);
  }

  async undispatchedEvents({
    receivedBefore,
    limit,
  }: StoreParams<"undispatchedEvents">): Promise<EventRecord[]> {
    const rows = await this.db.query<EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM {{s}}.events WHERE dispatched_at IS NULL AND received_at < $1
       ORDER BY received_at, seq LIMIT $2`,
      [receivedBefore, limit],
    );
    return rows.map(toEvent);
  }

  async markDispatched({ tenantId, id, triggered, now }: StoreParams<"markDispatched">): Promise<void> {
    await this.db.query(
      `UPDATE {{s}}.events SET dispatched_at = $1, triggered = $2 WHERE tenant_id = $3 AND id = $4`,
      [now, JSON.stringify(triggered), tenantId, id],
    );
  }
}
