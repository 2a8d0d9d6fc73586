/** Saga journals on SQLite: a step's row is written in the group commit, fenced by the lease. */
import { stepValues, toStep, type StepRow } from "../shared/steps.js";
import type { StepRecord, StoreParams } from "../store.js";
import type { SqliteDb } from "./db.js";

export class SqliteSagas {
  constructor(private readonly db: SqliteDb) {}

  async listSteps({ tenantId, jobId }: StoreParams<"listSteps">): Promise<StepRecord[]> {
    return (this.db.sql.listSteps.all(jobId, tenantId) as StepRow[]).map(toStep);
  }

  async recordStep({ lease, step }: StoreParams<"recordStep">): Promise<boolean> {
    return this.db.writes.run(
      () =>
        this.db.sql.recordStep.run(lease.id, step.seq, ...stepValues(step), lease.id, lease.leaseToken)
          .changes > 0,
    );
  }
}
