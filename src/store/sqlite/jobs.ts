/** Jobs on SQLite: submits (with their idempotency keys), reads, cancel and delete. */
import { jobProblem } from "../../jobs/problems.js";
import { toJob, type JobRow } from "../shared/rows.js";
import type { ResultRow } from "../shared/results.js";
import type { CallbackSpec, CancelOutcome, JobRecord, ListFilter, Store, SubmitOutcome } from "../store.js";
import type { SqliteDb } from "./db.js";
import type { SqliteOutbox } from "./outbox.js";
import { discardBlob } from "./results.js";

export class SqliteJobs {
  constructor(
    private readonly db: SqliteDb,
    private readonly outbox: SqliteOutbox,
  ) {}

  async submit({ job, idempotency, now, lease }: Parameters<Store["submit"]>[0]): Promise<SubmitOutcome> {
    const outcome = await this.db.writes.run((): SubmitOutcome => {
      if (idempotency) {
        const existing = this.db.sql.getIdempotency.get(job.tenantId, idempotency.key) as
          { request_hash: string; job_id: string } | undefined;
        if (existing) {
          if (existing.request_hash !== idempotency.requestHash) return { kind: "key-mismatch" };
          const row = this.db.sql.getJob.get(job.tenantId, existing.job_id) as JobRow | undefined;
          if (row) return { kind: "replayed", job: toJob(row) };
          this.db.sql.deleteIdempotency.run(job.tenantId, idempotency.key); // dangling: job purged
        }
        this.db.sql.insertIdempotency.run(
          job.tenantId,
          idempotency.key,
          idempotency.requestHash,
          job.id,
          now,
        );
      }
      const row = this.db.sql.insertJob.get({
        id: job.id,
        tenant: job.tenantId,
        type: job.type,
        input: JSON.stringify(job.input),
        priority: job.priority,
        runAt: job.runAt,
        now,
        deadlineAt: job.deadlineAt,
        maxAttempts: job.maxAttempts,
        metadata: JSON.stringify(job.metadata),
        callback: job.callback === null ? null : JSON.stringify(job.callback),
        token: lease?.token ?? null,
        expiresAt: lease?.expiresAt ?? null,
        lifecycle: job.lifecycleEvents ? 1 : 0,
      }) as JobRow;
      return { kind: "created", job: toJob(row) };
    });
    if (outcome.kind === "created" && !lease)
      this.db.events.emit({ kind: "queued", type: job.type, runAt: job.runAt });
    return outcome;
  }

  /** One process: every end is announced to its waiters already. */
  watch(): Promise<void> {
    return Promise.resolve();
  }

  async get({ tenantId, id }: { tenantId: string; id: string }): Promise<JobRecord | null> {
    const row = this.db.sql.getJob.get(tenantId, id) as JobRow | undefined;
    return row ? toJob(row) : null;
  }

  async list(filter: ListFilter): Promise<JobRecord[]> {
    const rows = this.db.sql.listJobs.all({
      tenant: filter.tenantId,
      status: filter.status ?? null,
      type: filter.type ?? null,
      beforeCreated: filter.before?.createdAt ?? null,
      beforeId: filter.before?.id ?? null,
      limit: filter.limit,
    }) as JobRow[];
    return rows.map(toJob);
  }

  async cancel({ tenantId, id, now }: { tenantId: string; id: string; now: number }): Promise<CancelOutcome> {
    const outcome = await this.db.writes.run((): CancelOutcome => {
      const row = this.db.sql.getJob.get(tenantId, id) as JobRow | undefined;
      if (!row) return { kind: "not-found" };
      if (row.status === "canceled") return { kind: "already-canceled", job: toJob(row) };
      if (row.status !== "queued" && row.status !== "running") return { kind: "finished", job: toJob(row) };
      const problem = jobProblem("job-canceled", "the job was canceled");
      const updated = this.db.sql.finishActive.get("canceled", now, JSON.stringify(problem), id) as JobRow;
      this.outbox.write(updated, now);
      return { kind: "canceled", job: toJob(updated) };
    });
    if (outcome.kind === "canceled") {
      const { job } = outcome;
      this.db.afterTerminal(job.id, job.type, "canceled", job.callback, now, job.lifecycleEvents === true);
    }
    return outcome;
  }

  async delete({ tenantId, id, now }: { tenantId: string; id: string; now: number }): Promise<boolean> {
    const deleted = await this.db.writes.run(() => {
      const row = this.db.sql.getJob.get(tenantId, id) as JobRow | undefined;
      if (!row) return null;
      const blob = this.db.sql.getResult.get(tenantId, id) as ResultRow;
      if (row.status === "queued" || row.status === "running") {
        // Deleting an active job cancels it first: its job.canceled event is still delivered.
        const problem = jobProblem("job-canceled", "the job was canceled (deleted)");
        this.outbox.write(
          { ...row, status: "canceled", finished_at: now, error: JSON.stringify(problem) },
          now,
        );
      }
      this.db.sql.deleteJob.run(id);
      this.db.sql.deleteIdempotencyForJob.run(id);
      return { row, blobPath: blob.result_data === null ? blob.result_location : null };
    });
    if (!deleted) return false;
    const { row, blobPath } = deleted;
    if (row.status === "queued" || row.status === "running") {
      // Its handler must stop too.
      this.db.afterTerminal(
        id,
        row.type,
        "canceled",
        row.callback === null ? null : (JSON.parse(row.callback) as CallbackSpec),
        now,
        Boolean(row.lifecycle_events),
      );
    }
    if (blobPath) await discardBlob(blobPath);
    return true;
  }

  async terminalIds({ ids }: { ids: string[] }): Promise<string[]> {
    if (ids.length === 0) return [];
    const rows = this.db.sql.terminalIds.all(JSON.stringify(ids)) as { id: string }[];
    return rows.map((r) => r.id);
  }
}
