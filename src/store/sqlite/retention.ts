/** Retention on SQLite: finished jobs, results (and their blobs), idempotency keys and events past their time. */
import type { PurgeResult, Store } from "../store.js";
import type { SqliteDb } from "./db.js";
import { discardBlob } from "./results.js";

export class SqliteRetention {
  constructor(private readonly db: SqliteDb) {}

  async purgeExpired(params: Parameters<Store["purgeExpired"]>[0]): Promise<PurgeResult> {
    const { resultsBefore, jobsBefore, idempotencyBefore, limit } = params;
    const outcome = await this.db.writes.run(() => {
      const deleted = this.db.sql.deleteFinished.all(jobsBefore, limit) as {
        id: string;
        blob: string | null;
      }[];
      for (const job of deleted) this.db.sql.deleteIdempotencyForJob.run(job.id);
      // Select first: RETURNING would show result_location after it was cleared, losing the blob path.
      const purged = this.db.sql.expiredResults.all(resultsBefore, limit) as {
        id: string;
        blob: string | null;
      }[];
      for (const job of purged) this.db.sql.purgeResult.run(job.id);
      const idempotencyDeleted = this.db.sql.purgeIdempotency.run(idempotencyBefore).changes;
      for (const event of this.db.sql.purgeEvents.all(jobsBefore, limit) as { id: string }[])
        this.db.sql.purgeAttempts.run(event.id);
      this.db.sql.purgeCloudEvents.run(jobsBefore, limit);
      return { deleted, purged, idempotencyDeleted };
    });
    const blobs = [...outcome.deleted, ...outcome.purged].flatMap((job) => (job.blob ? [job.blob] : []));
    await Promise.all(blobs.map(discardBlob));
    return {
      resultsPurged: outcome.purged.length,
      jobsDeleted: outcome.deleted.length,
      idempotencyDeleted: outcome.idempotencyDeleted,
    };
  }
}
