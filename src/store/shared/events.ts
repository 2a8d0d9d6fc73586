/** Events' rows as both drivers keep them (times as epoch ms, JSON as text). */
import type { EventRecord, NewEvent, TriggeredJob } from "../store.js";

export interface EventRow {
  seq: number;
  tenant_id: string;
  id: string;
  source: string;
  type: string;
  subject: string | null;
  time: number;
  datacontenttype: string | null;
  data: string | null;
  traceparent: string | null;
  extensions: string;
  hash: string;
  received_at: number;
  dispatched_at: number | null;
  triggered: string | null;
}

export const EVENT_COLUMNS = `seq, tenant_id, id, source, type, subject, time, datacontenttype, data, traceparent,
  extensions, hash, received_at, dispatched_at, triggered`;

/** The columns a new event is inserted with, in this order (see `eventValues`). */
export const EVENT_INSERT_COLUMNS = `tenant_id, id, source, type, subject, time, datacontenttype, data, traceparent,
  extensions, hash, received_at`;

export function eventValues(event: NewEvent, now: number): unknown[] {
  return [
    event.tenantId,
    event.id,
    event.source,
    event.type,
    event.subject,
    event.time,
    event.datacontenttype,
    event.data === undefined || event.data === null ? null : JSON.stringify(event.data),
    event.traceparent,
    JSON.stringify(event.extensions),
    event.hash,
    now,
  ];
}

export function toEvent(row: EventRow): EventRecord {
  return {
    seq: row.seq,
    tenantId: row.tenant_id,
    id: row.id,
    source: row.source,
    type: row.type,
    subject: row.subject,
    time: row.time,
    datacontenttype: row.datacontenttype,
    data: row.data === null ? null : (JSON.parse(row.data) as unknown),
    traceparent: row.traceparent,
    extensions: JSON.parse(row.extensions) as EventRecord["extensions"],
    hash: row.hash,
    receivedAt: row.received_at,
    dispatchedAt: row.dispatched_at,
    triggered: row.triggered === null ? null : (JSON.parse(row.triggered) as TriggeredJob[]),
  };
}

/** The kept event's answer to an append of `event`: the same one again, or another of its id. */
export function appendOutcome(kept: EventRecord, event: NewEvent): "duplicate" | "conflict" {
  return kept.hash === event.hash ? "duplicate" : "conflict";
}
