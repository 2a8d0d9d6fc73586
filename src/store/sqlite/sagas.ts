/** Saga journals on SQLite: a step's row is written in the group commit, fenced by the lease. */
import { isTerminal } from "../../jobs/states.js";
import { repeatOf, stepValues, toEvent, toStep, type EventRow, type StepRow } from "../shared/steps.js";
import type { JobStatus } from "../../jobs/states.js";
import type { SagaEvent, Store, StepRecord, StoreParams } from "../store.js";
import type { SqliteDb } from "./db.js";

export class SqliteSagas {
  constructor(private readonly db: SqliteDb) {}

  async listSteps({ tenantId, jobId }: StoreParams<"listSteps">): Promise<StepRecord[]> {
    return (this.db.sql.listSteps.all(jobId, tenantId) as StepRow[]).map(toStep);
  }

  async recordStep({ lease, step, sagaId = lease.id }: StoreParams<"recordStep">): Promise<boolean> {
    return this.db.writes.run(
      () =>
        this.db.sql.recordStep.run(sagaId, step.seq, ...stepValues(step), lease.id, lease.leaseToken, sagaId)
          .changes > 0,
    );
  }

  async deliverEvent(params: StoreParams<"deliverEvent">): ReturnType<Store["deliverEvent"]> {
    const { tenantId, jobId, name, eventId, data, now } = params;
    const outcome = await this.db.writes.run(() => {
      const job = this.db.sql.eventTarget.get(tenantId, jobId) as
        { status: JobStatus; type: string } | undefined;
      if (!job) return { kind: "not-found" as const };
      const kept = this.db.sql.sagaEvent.get(jobId, name) as EventRow | undefined;
      if (kept) return { kind: repeatOf(kept.event_id, eventId) };
      if (isTerminal(job.status)) return { kind: "finished" as const };
      this.db.sql.insertEvent.run(jobId, name, eventId, JSON.stringify(data ?? null), now);
      const woke = this.db.sql.wake.get(now, jobId, now) as { type: string } | undefined;
      return { kind: "delivered" as const, woke: woke?.type };
    });
    if ("woke" in outcome && outcome.woke) this.db.queued([outcome.woke], now);
    return outcome.kind;
  }

  async sagaEvent({ jobId, name }: StoreParams<"sagaEvent">): Promise<SagaEvent | null> {
    const row = this.db.sql.sagaEvent.get(jobId, name) as EventRow | undefined;
    return row ? toEvent(row) : null;
  }

  async wake({ jobId, now }: StoreParams<"wake">): Promise<boolean> {
    const row = await this.db.writes.run(
      () => this.db.sql.wake.get(now, jobId, now) as { type: string } | undefined,
    );
    if (row) this.db.queued([row.type], now);
    return row !== undefined;
  }
}
