import type { Logger } from "pino";
import type { Store } from "../../store/store.js";
import { PeriodicTask } from "./periodic.js";

/** Idempotency records are kept this long (advertised in the docs: 24 hours). */
export const IDEMPOTENCY_RETENTION_MS = 24 * 60 * 60 * 1000;

/**
 * Deletes results (then `410`) and whole job records (then `404`) past their retention, and
 * idempotency records older than 24 hours, in batches.
 */
export function createRetentionPurge(deps: {
  store: Store;
  logger: Logger;
  intervalMs: number;
  resultRetentionMs: number;
  jobRetentionMs: number;
  batchSize: number;
  now: () => number;
}): PeriodicTask {
  return new PeriodicTask(
    "retention-purge",
    deps.intervalMs,
    async () => {
      let more = true;
      while (more) {
        const now = deps.now();
        const purged = await deps.store.purgeExpired({
          resultsBefore: now - deps.resultRetentionMs,
          jobsBefore: now - deps.jobRetentionMs,
          idempotencyBefore: now - IDEMPOTENCY_RETENTION_MS,
          limit: deps.batchSize,
        });
        if (purged.jobsDeleted + purged.resultsPurged > 0) deps.logger.info(purged, "retention purge");
        more = purged.jobsDeleted === deps.batchSize || purged.resultsPurged === deps.batchSize;
      }
    },
    deps.logger,
  );
}
