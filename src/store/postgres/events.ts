/** Events on PostgreSQL: kept once per (tenant, id), in one statement each. */
import {
  appendOutcome,
  EVENT_COLUMNS,
  EVENT_INSERT_COLUMNS,
  eventValues,
  toEvent,
  type EventRow,
} from "../shared/events.js";
import type { AppendedEvent, EventRecord, StoreParams } from "../store.js";
import type { PgDb } from "./db.js";

/** The types of the columns `eventValues` gives, but the last (received_at, one for all). */
const EVENT_ARRAY_TYPES = [
  "text",
  "text",
  "text",
  "text",
  "text",
  "bigint",
  "text",
  "text",
  "text",
  "text",
  "text",
] as const;

export class PgEvents {
  constructor(private readonly db: PgDb) {}

  async appendEvents({ events, now, received }: StoreParams<"appendEvents">): Promise<AppendedEvent[]> {
    if (events.length === 0) return [];
    // One statement for the lot, inserted in the order given (their seqs follow it); one from
    // the broker is kept as published already, so the relay never sends it back.
    const columns = EVENT_ARRAY_TYPES.map((_, c) => events.map((event) => eventValues(event, now)[c]));
    const rows = await this.db.query<EventRow>(
      `INSERT INTO {{s}}.events (${EVENT_INSERT_COLUMNS}, published_at)
       SELECT tenant_id, id, source, type, subject, time, datacontenttype, data, traceparent, extensions, hash, $12, $13
       FROM unnest(${EVENT_ARRAY_TYPES.map((t, c) => `$${c + 1}::${t}[]`).join(", ")}) WITH ORDINALITY
         AS input (tenant_id, id, source, type, subject, time, datacontenttype, data, traceparent, extensions, hash, n)
       ORDER BY n
       ON CONFLICT (tenant_id, id) DO NOTHING RETURNING ${EVENT_COLUMNS}`,
      [...columns, now, received ? now : null],
    );
    const created = new Map(rows.map((row) => [`${row.tenant_id}\n${row.id}`, toEvent(row)]));
    const others = events.filter((e) => !created.has(`${e.tenantId}\n${e.id}`));
    // Kept by another request: committed before this insert gave up, so they can be read.
    const kept =
      others.length === 0
        ? new Map<string, EventRecord>()
        : new Map(
            (
              await this.db.query<EventRow>(
                `SELECT ${EVENT_COLUMNS} FROM {{s}}.events
                 WHERE (tenant_id, id) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
                [others.map((e) => e.tenantId), others.map((e) => e.id)],
              )
            ).map((row) => [`${row.tenant_id}\n${row.id}`, toEvent(row)]),
          );
    const seen = new Set<string>();
    return events.map((event) => {
      const key = `${event.tenantId}\n${event.id}`;
      const mine = created.get(key);
      // The first of an id in this batch is the one created; a second of it is answered as a resend.
      if (mine && !seen.has(key)) {
        seen.add(key);
        return { kind: "created" as const, event: mine };
      }
      const other = mine ?? kept.get(key)!;
      return { kind: appendOutcome(other, event), event: other };
    });
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
