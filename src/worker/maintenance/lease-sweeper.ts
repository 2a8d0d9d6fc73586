import type { Logger } from "pino";
import type { Store } from "../../store/store.js";
import { PeriodicTask } from "./periodic.js";

/**
 * Requeues running jobs whose lease expired (their worker crashed, stalled or lost the
 * database), or fails them when their attempts are used up: a crash counts as an attempt.
 * Recovery time is therefore about lease + interval. A job past its deadline is the deadline
 * sweeper's: timed out, not retried.
 */
export function createLeaseSweeper(deps: {
  store: Store;
  logger: Logger;
  intervalMs: number;
  retryDelayMs: number;
  batchSize: number;
  now: () => number;
}): PeriodicTask {
  return new PeriodicTask(
    "lease-sweeper",
    deps.intervalMs,
    async () => {
      let moved: number;
      do {
        moved = await deps.store.sweepExpiredLeases({
          now: deps.now(),
          retryDelayMs: deps.retryDelayMs,
          limit: deps.batchSize,
        });
        if (moved > 0) deps.logger.info({ jobs: moved }, "expired leases swept");
      } while (moved >= deps.batchSize);
    },
    deps.logger,
  );
}
