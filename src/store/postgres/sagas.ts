/** Saga journals on PostgreSQL: a step's row, written while the job's row is share-locked by its lease. */
import {
  repeatOf,
  STEP_COLUMNS,
  stepValues,
  toEvent,
  toStep,
  type EventRow,
  type StepRow,
} from "../shared/steps.js";
import type { SagaEvent, Store, StepRecord, StoreParams } from "../store.js";
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

  /**
   * One statement: the job's row locked first (deliveries of one saga queue behind each other,
   * and behind a release of it), the event kept, and the saga woken if it is queued.
   */
  async deliverEvent(params: StoreParams<"deliverEvent">): ReturnType<Store["deliverEvent"]> {
    const { tenantId, jobId, name, eventId, data, now } = params;
    const [row] = await this.db.query<{
      status: string;
      inserted: number;
      kept: string | null;
      type: string;
    }>(
      `WITH j AS (SELECT id, status, type FROM {{s}}.jobs WHERE tenant_id = $1 AND id = $2 FOR UPDATE),
       kept AS (SELECT event_id FROM {{s}}.saga_events WHERE job_id = (SELECT id FROM j) AND name = $3),
       ins AS (
         INSERT INTO {{s}}.saga_events (job_id, name, event_id, data, received_at)
         SELECT id, $3, $4, $5, $6 FROM j WHERE status IN ('queued', 'running') AND NOT EXISTS (SELECT 1 FROM kept)
         ON CONFLICT (job_id, name) DO NOTHING RETURNING job_id),
       woke AS (
         UPDATE {{s}}.jobs SET run_at = $6 WHERE id IN (SELECT job_id FROM ins) AND status = 'queued' AND run_at > $6
         RETURNING pg_notify($7, 'q|' || $8 || '|' || type || '|' || $6))
       SELECT j.status, j.type, (SELECT count(*)::int FROM ins) AS inserted, (SELECT event_id FROM kept) AS kept,
         (SELECT count(*) FROM woke) AS woke
       FROM j`,
      [tenantId, jobId, name, eventId, JSON.stringify(data ?? null), now, this.db.channel, this.db.nodeId],
    );
    if (!row) return "not-found";
    if (row.kept !== null) return repeatOf(row.kept, eventId);
    if (row.inserted === 0) return "finished";
    this.db.queued([row.type], now);
    return "delivered";
  }

  async sagaEvent({ jobId, name }: StoreParams<"sagaEvent">): Promise<SagaEvent | null> {
    const [row] = await this.db.query<EventRow>(
      `SELECT event_id, data, received_at FROM {{s}}.saga_events WHERE job_id = $1 AND name = $2`,
      [jobId, name],
    );
    return row ? toEvent(row) : null;
  }

  async wake({ jobId, now }: StoreParams<"wake">): Promise<boolean> {
    const rows = await this.db.query<{ type: string }>(
      `UPDATE {{s}}.jobs SET run_at = $2 WHERE id = $1 AND status = 'queued' AND run_at > $2
       RETURNING type, pg_notify($3, 'q|' || $4 || '|' || type || '|' || $2)`,
      [jobId, now, this.db.channel, this.db.nodeId],
    );
    for (const row of rows) this.db.queued([row.type], now);
    return rows.length > 0;
  }
}
