/** The outbox relay's lease and marks on SQLite. */
import type { EventRow } from "../shared/events.js";
import { toEvent } from "../shared/events.js";
import type { EventRecord, StoreParams } from "../store.js";
import type { SqliteDb } from "./db.js";

export class SqliteRelay {
  constructor(private readonly db: SqliteDb) {}

  async holdRelayLease({ part, owner, leaseMs, now }: StoreParams<"holdRelayLease">): Promise<boolean> {
    return this.db.writes.run(
      () => this.db.sql.holdRelayLease.get({ part, owner, expiresAt: now + leaseMs, now }) !== undefined,
    );
  }

  async releaseRelayLease({ part, owner }: StoreParams<"releaseRelayLease">): Promise<void> {
    await this.db.writes.run(() => this.db.sql.releaseRelayLease.run(part, owner));
  }

  async unpublishedEvents({ limit }: StoreParams<"unpublishedEvents">): Promise<EventRecord[]> {
    return (this.db.sql.unpublishedEvents.all(limit) as EventRow[]).map(toEvent);
  }

  async markPublished({ seqs, now }: StoreParams<"markPublished">): Promise<void> {
    if (seqs.length === 0) return;
    await this.db.writes.run(() => this.db.sql.markPublished.run(now, JSON.stringify(seqs)));
  }

  async oldestUnpublished(): Promise<number | null> {
    const row = this.db.sql.oldestUnpublished.get() as { received_at: number } | undefined;
    return row?.received_at ?? null;
  }
}
