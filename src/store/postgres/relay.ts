/** The outbox relay's lease and marks on PostgreSQL: one statement each. */
import { EVENT_COLUMNS, toEvent, type EventRow } from "../shared/events.js";
import type { EventRecord, StoreParams } from "../store.js";
import type { PgDb } from "./db.js";

export class PgRelay {
  constructor(private readonly db: PgDb) {}

  async holdRelayLease({ part, owner, leaseMs, now }: StoreParams<"holdRelayLease">): Promise<boolean> {
    // Taken when free or lapsed, renewed by its owner; no row: another node holds it.
    const rows = await this.db.query(
      `INSERT INTO {{s}}.relay_leases (part, owner, expires_at) VALUES ($1, $2, $3)
       ON CONFLICT (part) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
       WHERE relay_leases.owner = excluded.owner OR relay_leases.expires_at <= $4
       RETURNING part`,
      [part, owner, now + leaseMs, now],
    );
    return rows.length > 0;
  }

  async releaseRelayLease({ part, owner }: StoreParams<"releaseRelayLease">): Promise<void> {
    await this.db.query(`DELETE FROM {{s}}.relay_leases WHERE part = $1 AND owner = $2`, [part, owner]);
  }

  async unpublishedEvents({ limit }: StoreParams<"unpublishedEvents">): Promise<EventRecord[]> {
    const rows = await this.db.query<EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM {{s}}.events WHERE published_at IS NULL ORDER BY seq LIMIT $1`,
      [limit],
    );
    return rows.map(toEvent);
  }

  async markPublished({ seqs, now }: StoreParams<"markPublished">): Promise<void> {
    if (seqs.length === 0) return;
    await this.db.query(`UPDATE {{s}}.events SET published_at = $1 WHERE seq = ANY($2::bigint[])`, [
      now,
      seqs,
    ]);
  }

  async oldestUnpublished(): Promise<number | null> {
    const [row] = await this.db.query<{ received_at: number }>(
      `SELECT received_at FROM {{s}}.events WHERE published_at IS NULL ORDER BY seq LIMIT 1`,
    );
    return row?.received_at ?? null;
  }
}
