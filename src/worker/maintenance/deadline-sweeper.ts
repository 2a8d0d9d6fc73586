import type { Logger } from "pino";
import type { Store } from "../../store/store.js";
import { PeriodicTask } from "./periodic.js";

/**
 * Moves queued or running jobs past their `deadlineAt` to `timed_out`. The terminal event it
 * publishes aborts a handler still running in this process; the worker also aborts at the
 * deadline by its own timer, so a job stops on time even where no sweeper runs.
 */
export function createDeadlineSweeper(deps: {
  store: Store;
  logger: Logger;
  intervalMs: number;
  batchSize: number;
  now: () => number;
}): PeriodicTask {
  return new PeriodicTask(
    "deadline-sweeper",
    deps.intervalMs,
    async () => {
      let moved: number;
      do {
        moved = await deps.store.sweepDeadlines({ now: deps.now(), limit: deps.batchSize });
        if (moved > 0) deps.logger.info({ jobs: moved }, "jobs timed out");
      } while (moved >= deps.batchSize);
    },
    deps.logger,
  );
}
