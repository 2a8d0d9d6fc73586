/** Saga journals on PostgreSQL: a step's row, written while the job's row is share-locked by its lease. */
import { STEP_COLUMNS, stepValues, toStep, type StepRow } from "../shared/steps.js";
import type { StepRecord, StoreParams } from "../store.js";
import type { PgDb } from "./db.js";

export class PgSagas {
  constructor(private readonly db: PgDb) {}

  async listSteps({ tenantId, jobId }: StoreParams<"listSteps">): Promise<StepRecord[]> {
    const rows = await this.db.query<StepRow>(
      `SELECT ${STEP_COLUMNS} FROM {{s}}.saga_steps s
       WHERE s.job_id = $1 AND EXISTS (SELECT 1 FROM {{s}}.jobs j WHERE j.id = s.job_id AND j.tenant_id = $2)
       ORDER BY s.seq`,
      [jobId, tenantId],
    );
    return rows.map(toStep);
  }

  /**
   * The lock on the job's row holds off a sweep, cancel or completion that would take the lease
   * until this commits: a step is recorded only by the attempt that holds the job.
   */
  async recordStep({ lease, step }: StoreParams<"recordStep">): Promise<boolean> {
    const rows = await this.db.query<{ seq: number }>(
      `WITH owner AS (SELECT id FROM {{s}}.jobs WHERE id = $1 AND lease_token = $2 FOR SHARE)
       INSERT INTO {{s}}.saga_steps (job_id, ${STEP_COLUMNS})
       SELECT id, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 FROM owner
       ON CONFLICT (job_id, seq) DO UPDATE SET name = excluded.name, status = excluded.status,
         attempts = excluded.attempts, started_at = excluded.started_at, finished_at = excluded.finished_at,
         result = excluded.result, error = excluded.error, compensated_at = excluded.compensated_at,
         compensation_error = excluded.compensation_error
       RETURNING seq`,
      [lease.id, lease.leaseToken, step.seq, ...stepValues(step)],
    );
    return rows.length > 0;
  }
}
