/** Events on SQLite: kept in the group commit, once per (tenant, id). */
import { appendOutcome, eventValues, toEvent, type EventRow } from "../shared/events.js";
import type { AppendedEvent, EventRecord, StoreParams } from "../store.js";
import type { SqliteDb } from "./db.js";

export class SqliteEvents {
  constructor(private readonly db: SqliteDb) {}

  async appendEvents({ events, now, received }: StoreParams<"appendEvents">): Promise<AppendedEvent[]> {
    return this.db.writes.run(() =>
      events.map((event) => {
        const row = (
          received
            ? this.db.sql.appendReceivedEvent.get(...eventValues(event, now), now)
            : this.db.sql.appendEvent.get(...eventValues(event, now))
        ) as EventRow | undefined;
        if (row) return { kind: "created" as const, event: toEvent(row) };
        const kept = toEvent(this.db.sql.getEvent.get(event.tenantId, event.id) as EventRow);
        return { kind: appendOutcome(kept, event), event: kept };
      }),
    );
  }

  async getEvent({ tenantId, id }: StoreParams<"getEvent">): Promise<EventRecord | null> {
    const row = this.db.sql.getEvent.get(tenantId, id) as EventRow | undefined;
    return row ? toEvent(row) : null;
  }

  async listEvents({ tenantId, type, limit, beforeSeq }: StoreParams<"listEvents">): Promise<EventRecord[]> {
    const rows = this.db.sql.listEvents.all({
      tenantId,
      type: type ?? null,
      beforeSeq: beforeSeq ?? null,
      limit,
    }) as EventRow[];
    return rows.map(toEvent);
  }

  async undispatchedEvents({
    receivedBefore,
    limit,
  }: StoreParams<"undispatchedEvents">): Promise<EventRecord[]> {
    return (this.db.sql.undispatchedEvents.all(receivedBefore, limit) as EventRow[]).map(toEvent);
  }

  async markDispatched({ tenantId, id, triggered, now }: StoreParams<"markDispatched">): Promise<void> {
    await this.db.writes.run(() =>
      this.db.sql.markDispatched.run(now, JSON.stringify(triggered), tenantId, id),
    );
  }
}
