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
import { Batcher } from "./batcher.js";
import type { PgDb } from "./db.js";
import { arrayParam, byLeaseId } from "./params.js";
import { ASYNC_COMMIT, ID_IN } from "./sql.js";
import { retryTransient } from "./transient.js";

const stepKey = (item: StoreParams<"recordStep">) => `${item.sagaId ?? item.lease.id}|${item.step.seq}`;

/** The writes in rounds, in order, none of which writes one step of one saga twice. */
function apart(items: StoreParams<"recordStep">[]): StoreParams<"recordStep">[][] {
  const rounds: { keys: Set<string>; items: StoreParams<"recordStep">[] }[] = [];
  for (const item of items) {
    const key = stepKey(item);
    // After the last round that writes this step: the writes of one step keep their order.
    let last = -1;
    rounds.forEach((round, k) => {
      if (round.keys.has(key)) last = k;
    });
    if (last + 1 === rounds.length) rounds.push({ keys: new Set(), items: [] });
    const round = rounds[last + 1]!;
    round.keys.add(key);
    round.items.push(item);
  }
  return rounds.map((r) => r.items);
}

export class PgSagas {
  constructor(private readonly db: PgDb) {}

  /** The journals read in one turn (every saga started in it), in one statement. */
  private readonly reads = new Batcher<StoreParams<"listSteps">, StepRecord[]>(async (items) => {
    const rows = await this.db.query<StepRow & { job_id: string; tenant_id: string }>(
      `SELECT c.tenant_id, s.job_id, ${STEP_COLUMNS} FROM {{s}}.saga_steps s
       JOIN (SELECT DISTINCT * FROM unnest($1::text[], $2::text[])) AS c(job_id, tenant_id) ON c.job_id = s.job_id
       WHERE ${ID_IN("s", "$1", "job_id")}
         AND EXISTS (SELECT 1 FROM {{s}}.jobs j WHERE j.id = s.job_id AND j.tenant_id = c.tenant_id)
       ORDER BY s.job_id, s.seq`,
      [items.map((i) => i.jobId), items.map((i) => i.tenantId)],
    );
    const journals = new Map<string, StepRecord[]>();
    const key = (tenantId: string, jobId: string) => `${tenantId}|${jobId}`;
    for (const row of rows) {
      const journal = journals.get(key(row.tenant_id, row.job_id)) ?? [];
      journal.push(toStep(row));
      journals.set(key(row.tenant_id, row.job_id), journal);
    }
    return items.map((i) => journals.get(key(i.tenantId, i.jobId)) ?? []);
  });

  listSteps(params: StoreParams<"listSteps">): Promise<StepRecord[]> {
    return this.reads.add(params);
  }

  /**
   * The journal writes of one event-loop turn, every saga's, in one statement and one commit:
   * a step's outcome and the next step's start go together. A batch of starts (`running`)
   * only commits without waiting for the WAL flush, as a claim does: a crash of the database
   * may lose it, which loses a count of a step's runs, never a result.
   */
  private readonly writes = new Batcher<StoreParams<"recordStep">, boolean>(async (items) => {
    const durable = items.some((i) => i.step.status !== "running");
    const rounds = apart(items);
    if (rounds.length === 1) return this.recordMany(items, durable);
    // One step written twice in a turn (a stale attempt's write beside the current one's, two
    // compensation jobs): a statement may touch a row once, so each write of it goes in turn.
    const written = new Map<StoreParams<"recordStep">, boolean>();
    for (const round of rounds) {
      const applied = await this.recordMany(round, durable);
      round.forEach((item, k) => written.set(item, applied[k]!));
    }
    return items.map((item) => written.get(item)!);
  });

  recordStep(params: StoreParams<"recordStep">): Promise<boolean> {
    return this.writes.add(params);
  }

  /**
   * The share lock on each job's row holds off a sweep, cancel or completion that would take
   * its lease until this commits: a step is recorded only by the attempt that holds the job.
   * The saga whose journal it is (the lease's own job, or the one a compensation job names) is
   * locked too, so it cannot be deleted in between, and must be the lease's tenant's. Rows are
   * locked in id order, as every batched write here locks them. Two items of a batch may name
   * one job (a step's outcome and the next one's start), never one step (see `apart`).
   */
  private async recordMany(items: StoreParams<"recordStep">[], durable: boolean): Promise<boolean[]> {
    const sorted = byLeaseId(items);
    const values = sorted.map((i) => stepValues(i.step));
    const column = (k: number) => values.map((v) => v[k]);
    const rows = await retryTransient(() =>
      this.db.query<{ job_id: string; seq: number }>(
        `WITH c AS (
           SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::int[], $7::bigint[],
             $8::bigint[], $9::text[], $10::text[], $11::bigint[], $12::text[], $13::text[], $14::text[])
             AS c(lease_id, token, seq, name, status, attempts, started_at, finished_at, result, error, compensated_at,
               compensation_error, kind, job_id)),
         locked AS (
           SELECT j.id, j.lease_token, j.tenant_id FROM {{s}}.jobs j
           WHERE j.id = ANY(ARRAY(SELECT unnest($1::text[]) UNION SELECT unnest($14::text[])))
             AND (EXISTS (SELECT 1 FROM c WHERE c.lease_id = j.id AND c.token = j.lease_token)
               OR EXISTS (SELECT 1 FROM c WHERE c.job_id = j.id))
             ${durable ? "" : ` AND ${ASYNC_COMMIT}`}
           ORDER BY j.id FOR SHARE OF j)
         INSERT INTO {{s}}.saga_steps (job_id, ${STEP_COLUMNS})
         SELECT saga.id, c.seq, c.name, c.status, c.attempts, c.started_at, c.finished_at,
           c.result, c.error, c.compensated_at, c.compensation_error, c.kind
         FROM c JOIN locked owner ON owner.id = c.lease_id AND owner.lease_token = c.token
           JOIN locked saga ON saga.id = coalesce(c.job_id, c.lease_id) AND saga.tenant_id = owner.tenant_id
         ON CONFLICT (job_id, seq) DO UPDATE SET name = excluded.name, status = excluded.status,
           attempts = excluded.attempts, started_at = excluded.started_at, finished_at = excluded.finished_at,
           result = excluded.result, error = excluded.error, compensated_at = excluded.compensated_at,
           compensation_error = excluded.compensation_error, kind = excluded.kind
         RETURNING job_id, seq`,
        [
          sorted.map((i) => i.lease.id),
          sorted.map((i) => i.lease.leaseToken),
          sorted.map((i) => i.step.seq),
          ...Array.from({ length: 10 }, (_, k) => column(k)),
          // Null for the lease's own job (all null is sent as one NULL).
          arrayParam(sorted.map((i) => i.sagaId ?? null)),
        ],
      ),
    );
    // Each (saga, step) is written by one item of the statement at most (see `apart`).
    const written = new Set(rows.map((r) => `${r.job_id}|${r.seq}`));
    return items.map((i) => written.has(stepKey(i)));
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
