/** The statements of saga journals (see statements.ts). */
import { STEP_COLUMNS } from "../shared/steps.js";

export const SAGAS_SQL = {
  // The tenant's saga's steps in order; none for another tenant's job.
  listSteps: `SELECT ${STEP_COLUMNS} FROM saga_steps s
       WHERE s.job_id = ? AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = s.job_id AND j.tenant_id = ?) ORDER BY s.seq`,
  // The step's row, written only while the attempt holds the job's lease; no change: fenced.
  recordStep: `INSERT INTO saga_steps (job_id, ${STEP_COLUMNS})
       SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM jobs WHERE id = ? AND lease_token = ?)
       ON CONFLICT (job_id, seq) DO UPDATE SET name = excluded.name, status = excluded.status,
         attempts = excluded.attempts, started_at = excluded.started_at, finished_at = excluded.finished_at,
         result = excluded.result, error = excluded.error, compensated_at = excluded.compensated_at,
         compensation_error = excluded.compensation_error`,
} as const;
