/** Retention on PostgreSQL: finished jobs, results, idempotency keys and delivered events past their time. */
import { idTimeBound } from "../../jobs/ids.js";
import type { PurgeResult, Store } from "../store.js";
import type { PgDb } from "./db.js";
import { RETENTION_SQL as SQL } from "./retention.sql.js";

export class PgRetention {
  constructor(private readonly db: PgDb) {}

  async purgeExpired(params: Parameters<Store["purgeExpired"]>[0]): Promise<PurgeResult> {
    const [deleted] = await this.db.query<{ n: number }>(SQL.deleteFinished, [
      params.jobsBefore,
      params.limit,
      idTimeBound(params.jobsBefore),
    ]);
    const [purged] = await this.db.query<{ n: number }>(SQL.purgeResults, [
      params.resultsBefore,
      params.limit,
      idTimeBound(params.resultsBefore),
    ]);
    const idem = await this.db.pool.query(
      this.db.t(`DELETE FROM {{s}}.idempotency_keys WHERE created_at < $1`),
      [params.idempotencyBefore],
    );
    await this.db.query(
      `WITH ev AS (
         DELETE FROM {{s}}.webhook_events WHERE id IN (
           SELECT id FROM {{s}}.webhook_events WHERE status <> 'pending' AND occurred_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)
         RETURNING id)
       DELETE FROM {{s}}.webhook_attempts WHERE event_id IN (SELECT id FROM ev)`,
      [params.jobsBefore, params.limit],
    );
    // Events (CloudEvents) dispatched and past the jobs' retention.
    await this.db.query(
      `DELETE FROM {{s}}.events WHERE seq IN (
         SELECT seq FROM {{s}}.events WHERE dispatched_at IS NOT NULL AND received_at < $1 LIMIT $2
         FOR UPDATE SKIP LOCKED)`,
      [params.jobsBefore, params.limit],
    );
    return {
      jobsDeleted: Number(deleted!.n),
      resultsPurged: Number(purged!.n),
      idempotencyDeleted: idem.rowCount ?? 0,
    };
  }
}
