/** Leases on PostgreSQL: heartbeats, releases, and the sweeps of expired leases and deadlines. */
import { jobProblem } from "../../jobs/problems.js";
import type { JobRecord, Store } from "../store.js";
import type { PgDb } from "./db.js";
import { LEASES_SQL as SQL } from "./leases.sql.js";
import { byLeaseId } from "./params.js";
import { retryTransient } from "./transient.js";

export class PgLeases {
  constructor(private readonly db: PgDb) {}

  async heartbeat({ leases, leaseMs, now }: Parameters<Store["heartbeat"]>[0]): Promise<string[]> {
    if (leases.length === 0) return [];
    const rows = await this.db.query<{ id: string }>(
      SQL.heartbeat,
      [now + leaseMs, leases.map((l) => l.id), leases.map((l) => l.leaseToken)],
      this.db.leasePool,
    );
    const alive = new Set(rows.map((r) => r.id));
    return leases.filter((l) => !alive.has(l.id)).map((l) => l.id);
  }

  async release({ leases, now }: Parameters<Store["release"]>[0]): Promise<number> {
    if (leases.length === 0) return 0;
    const sorted = byLeaseId(leases);
    const rows = await this.db.query<{ type: string }>(SQL.release, [
      now,
      sorted.map((l) => l.id),
      sorted.map((l) => l.leaseToken),
      this.db.channel,
      this.db.nodeId,
    ]);
    this.db.queued(
      rows.map((r) => r.type),
      now,
    );
    return rows.length;
  }

  /** Release the jobs a claim with this token may hold, retrying while the database is away. */
  async releaseToken(token: string): Promise<void> {
    try {
      const now = Date.now();
      const rows = await retryTransient(() =>
        this.db.query<{ type: string }>(SQL.releaseToken, [token, now, this.db.channel, this.db.nodeId]),
      );
      this.db.queued(
        rows.map((r) => r.type),
        now,
      );
    } catch (error) {
      this.db.logger?.warn(
        { err: error, token },
        "could not release a failed claim; its jobs wait for their lease",
      );
    }
  }

  async sweepExpiredLeases({
    now,
    retryDelayMs,
    limit,
  }: Parameters<Store["sweepExpiredLeases"]>[0]): Promise<number> {
    // The statement writes each job's own detail over the empty one.
    const params = [
      now,
      limit,
      now + retryDelayMs,
      JSON.stringify(jobProblem("job-failed", "")),
      " lost its lease (the worker crashed, stalled or was cut off)",
      this.db.channel,
      this.db.nodeId,
    ];
    return this.sweepByLeaseRows(SQL.sweepLeases, params, limit, (row) => {
      if (row.status === "failed")
        this.db.notifyTerminal(row.id, row.type, "failed", row.callback !== null, row.lifecycle_events);
      else this.db.events.emit({ kind: "queued", type: row.type, runAt: now + retryDelayMs });
    });
  }

  async sweepDeadlines({ now, limit }: Parameters<Store["sweepDeadlines"]>[0]): Promise<number> {
    const problem = JSON.stringify(jobProblem("job-timed-out", ""));
    return this.sweepByLeaseRows(
      SQL.sweepDeadlines,
      [now, limit, problem, this.db.channel, this.db.nodeId],
      limit,
      (row) =>
        this.db.notifyTerminal(row.id, row.type, "timed_out", row.callback !== null, row.lifecycle_events),
    );
  }

  /**
   * A sweep through lease rows (`limit` of them a statement), repeated while a statement took
   * a full batch of rows yet moved fewer than `limit` jobs: the rows of claims whose jobs have
   * all ended move none, and must not hold back the rows after them. `moved` is told of each job
   * moved. Returns how many; `limit` or more tells the caller to call again.
   */
  private async sweepByLeaseRows(
    sql: string,
    params: unknown[],
    limit: number,
    moved: (row: SweptRow) => void,
  ): Promise<number> {
    // Ends: every lease row a statement takes leaves the rows it takes from (removed, left to
    // the deadline sweep, or due at a later deadline).
    let total = 0;
    while (total < limit) {
      // One row at least, carrying how many lease rows the statement took; a job's row has an id.
      const rows = await this.db.query<{ leases: number } & (SweptRow | { id: null })>(sql, params);
      for (const row of rows) {
        if (row.id === null) continue;
        total++;
        moved(row);
      }
      if (rows[0]!.leases < limit) break;
    }
    return total;
  }
}

/** A job a sweep moved, as its statement reports it. */
interface SweptRow {
  id: string;
  type: string;
  /** The lease sweep's: queued again, or failed. */
  status?: JobRecord["status"];
  callback: string | null;
  /** A lifecycle event was kept with the move. */
  lifecycle_events: boolean;
}
