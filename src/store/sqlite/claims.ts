/** Work on SQLite: claims, progress, completions (fenced by the lease) and failures. */
import { randomUUID } from "node:crypto";
import { discardFile } from "../shared/result-file.js";
import { claimOrder, toClaimedJob, type JobRow } from "../shared/rows.js";
import type { ClaimedJob, CompleteParams, Store } from "../store.js";
import { eventValues } from "../shared/events.js";
import type { SqliteDb } from "./db.js";
import type { SqliteOutbox } from "./outbox.js";
import { discardBlob, type PlacedResult, type SqliteResults } from "./results.js";

export class SqliteClaims {
  constructor(
    private readonly db: SqliteDb,
    private readonly results: SqliteResults,
    private readonly outbox: SqliteOutbox,
  ) {}

  async claim({ types, limit, leaseMs, now }: Parameters<Store["claim"]>[0]): Promise<ClaimedJob[]> {
    if (limit <= 0 || types.length === 0) return [];
    const token = randomUUID();
    const rows = await this.db.writes.run(
      () =>
        this.db.sql.claim.all(token, now + leaseMs, now, now, now, JSON.stringify(types), limit) as JobRow[],
    );
    return rows
      .map((row) => toClaimedJob(row, token, row.lease_expires_at ?? now + leaseMs))
      .sort(claimOrder);
  }

  async nextRunAt({ types }: { types: string[] }): Promise<number | null> {
    const row = this.db.sql.nextRunAt.get(JSON.stringify(types)) as { run_at: number | null } | undefined;
    return row?.run_at ?? null;
  }

  async progress({ lease, percent, message, now }: Parameters<Store["progress"]>[0]): Promise<boolean> {
    const row = await this.db.writes.run(() => {
      const updated = this.db.sql.progress.get(percent, message, lease.id, lease.leaseToken) as
        JobRow | undefined;
      if (updated) this.outbox.writeProgress(updated, now);
      return updated;
    });
    if (!row) return false;
    this.db.events.emit({ kind: "progress", jobId: row.id });
    if (row.callback && row.callback.includes("job.progress"))
      this.db.events.emit({ kind: "outbox", at: now });
    return true;
  }

  /**
   * Each through the group commit, which writes those of one turn in one transaction. Rejects
   * (with the first error) only once every write has settled.
   */
  async completeMany(items: readonly CompleteParams[]): Promise<boolean[]> {
    const settled = await Promise.allSettled(items.map((item) => this.complete(item)));
    return settled.map((s) => {
      if (s.status === "rejected") throw s.reason;
      return s.value;
    });
  }

  async complete({ lease, result, now, events }: CompleteParams): Promise<boolean> {
    let stored: PlacedResult;
    try {
      stored = await this.results.place(lease, result);
    } finally {
      // A file result's source is gone once placed (moved), and must go if placing failed.
      if (result.kind === "file") await discardFile(result.path);
    }
    const applied = await this.db.writes.run(() => {
      const row = this.db.sql.complete.get(
        now,
        stored.kind,
        stored.contentType,
        stored.data,
        stored.location,
        stored.size,
        lease.id,
        lease.leaseToken,
      ) as JobRow | undefined;
      if (row) this.outbox.write(row, now);
      // Its events commit with it: never before the work that produced them, never without it.
      if (row && events) for (const event of events) this.db.sql.appendEvent.get(...eventValues(event, now));
      return row ?? null;
    });
    if (applied === null) {
      // Fenced: this attempt lost its lease; its output must not survive.
      if (stored.blobPath) await discardBlob(stored.blobPath);
      return false;
    }
    this.db.afterTerminalRow(applied, now, { completion: true });
    return true;
  }

  async fail({ lease, error, retryAt, now }: Parameters<Store["fail"]>[0]): Promise<boolean> {
    const row = await this.db.writes.run(() => {
      if (retryAt !== null) {
        return this.db.sql.failRetry.get(retryAt, JSON.stringify(error), lease.id, lease.leaseToken) as
          JobRow | undefined;
      }
      const failed = this.db.sql.failFinal.get(now, JSON.stringify(error), lease.id, lease.leaseToken) as
        JobRow | undefined;
      if (failed) this.outbox.write(failed, now);
      return failed;
    });
    if (!row) return false;
    if (retryAt === null) this.db.afterTerminalRow(row, now);
    else this.db.events.emit({ kind: "queued", type: row.type, runAt: retryAt });
    return true;
  }
}
