/** Leases on SQLite: heartbeats, releases, and the sweeps of expired leases and deadlines. */
import { jobProblem } from "../../jobs/problems.js";
import type { JobRow } from "../shared/rows.js";
import type { Store } from "../store.js";
import type { SqliteDb } from "./db.js";
import type { SqliteOutbox } from "./outbox.js";

export class SqliteLeases {
  constructor(
    private readonly db: SqliteDb,
    private readonly outbox: SqliteOutbox,
  ) {}

  async heartbeat({ leases, leaseMs, now }: Parameters<Store["heartbeat"]>[0]): Promise<string[]> {
    if (leases.length === 0) return [];
    return this.db.writes.run(() =>
      leases
        .filter((lease) => this.db.sql.heartbeat.run(now + leaseMs, lease.id, lease.leaseToken).changes === 0)
        .map((lease) => lease.id),
    );
  }

  async release({ leases, now }: Parameters<Store["release"]>[0]): Promise<number> {
    if (leases.length === 0) return 0;
    const types = await this.db.writes.run(() =>
      leases.flatMap((lease) => {
        const row = this.db.sql.release.get(now, lease.id, lease.leaseToken) as { type: string } | undefined;
        return row ? [row.type] : [];
      }),
    );
    this.db.queued(types, now);
    return types.length;
  }

  async sweepExpiredLeases({
    now,
    retryDelayMs,
    limit,
  }: Parameters<Store["sweepExpiredLeases"]>[0]): Promise<number> {
    const moved = await this.db.writes.run(() => {
      const expired = this.db.sql.expiredLeases.all(now, now, limit) as JobRow[];
      return expired.map((row) => {
        const detail = `attempt ${row.attempt} lost its lease (the worker crashed, stalled or was cut off)`;
        const error = JSON.stringify(jobProblem("job-failed", detail));
        if (row.attempt < row.max_attempts) {
          this.db.sql.requeueExpired.run(now + retryDelayMs, error, row.id, row.lease_token);
          return { row, status: "queued" as const };
        }
        const failed = this.db.sql.failExpired.get(now, error, row.id, row.lease_token) as JobRow;
        this.outbox.write(failed, now);
        return { row: failed, status: "failed" as const };
      });
    });
    for (const { row, status } of moved) {
      if (status === "failed") this.db.afterTerminalRow(row, now);
      else this.db.events.emit({ kind: "queued", type: row.type, runAt: now + retryDelayMs });
    }
    return moved.length;
  }

  async sweepDeadlines({ now, limit }: Parameters<Store["sweepDeadlines"]>[0]): Promise<number> {
    const rows = await this.db.writes.run(() => {
      const due = this.db.sql.pastDeadline.all(now, limit) as JobRow[];
      return due.flatMap((row) => {
        const detail = `the job passed its deadline (${new Date(row.deadline_at).toISOString()})`;
        const error = JSON.stringify(jobProblem("job-timed-out", detail));
        const updated = this.db.sql.finishActive.get("timed_out", now, error, row.id) as JobRow | undefined;
        if (updated) this.outbox.write(updated, now);
        return updated ? [updated] : [];
      });
    });
    for (const row of rows) this.db.afterTerminalRow(row, now);
    return rows.length;
  }
}
