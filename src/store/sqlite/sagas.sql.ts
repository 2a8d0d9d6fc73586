/** The statements of saga journals (see statements.ts). */
import { STEP_COLUMNS } from "../shared/steps.js";

export const SAGAS_SQL = {
  // The tenant's saga's steps in order; none for another tenant's job.
  listSteps: `SELECT ${STEP_COLUMNS} FROM saga_steps s
       WHERE s.job_id = ? AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = s.job_id AND j.tenant_id = ?) ORDER BY s.seq`,
  // The step's row, written only while the attempt holds its job's lease, into a saga of the
  // lease's tenant (its own job, or the saga a compensation job names); no change: fenced.
  recordStep: `INSERT INTO saga_steps (job_id, ${STEP_COLUMNS})
       SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (
         SELECT 1 FROM jobs o JOIN jobs saga ON saga.tenant_id = o.tenant_id
         WHERE o.id = ? AND o.lease_token = ? AND saga.id = ?)
       ON CONFLICT (job_id, seq) DO UPDATE SET name = excluded.name, status = excluded.status,
         attempts = excluded.attempts, started_at = excluded.started_at, finished_at = excluded.finished_at,
         result = excluded.result, error = excluded.error, compensated_at = excluded.compensated_at,
         compensation_error = excluded.compensation_error, kind = excluded.kind`,
  // The job's state, for a delivery; none: another tenant's or no job.
  eventTarget: `SELECT status, type FROM jobs WHERE tenant_id = ? AND id = ?`,
  // The event of that name the saga was sent, if any.
  sagaEvent: `SELECT event_id, data, received_at FROM saga_events WHERE job_id = ? AND name = ?`,
  insertEvent: `INSERT INTO saga_events (job_id, name, event_id, data, received_at) VALUES (?, ?, ?, ?, ?)`,
  // The woken job's type; none: not queued, or due already.
  wake: `UPDATE jobs SET run_at = ? WHERE id = ? AND status = 'queued' AND run_at > ? RETURNING type`,
} as const;
