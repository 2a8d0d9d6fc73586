/** Jobs on PostgreSQL: submits (batched), reads, watch, cancel and delete. */
import { jobProblem } from "../../jobs/problems.js";
import { isJobIdOf, tenantIdRange } from "../../jobs/ids.js";
import { JOB_COLUMNS, toJob, type JobRow } from "../shared/rows.js";
import type { CancelOutcome, JobRecord, ListFilter, NewJob, Store, SubmitOutcome } from "../store.js";
import { Batcher } from "./batcher.js";
import type { PgDb } from "./db.js";
import { JOBS_SQL as SQL } from "./jobs.sql.js";
import type { PgLeases } from "./leases.js";
import { isConnectionError, retryTransient } from "./transient.js";

export class PgJobs {
  /** Submits without a key or a lease, inserted together (one statement, one commit). */
  private readonly inserts: Batcher<PendingInsert, JobRow | InsertFailed>;

  constructor(
    private readonly db: PgDb,
    private readonly leases: PgLeases,
  ) {
    this.inserts = new Batcher((items) => this.insertMany(items));
  }

  async submit(params: Parameters<Store["submit"]>[0]): Promise<SubmitOutcome> {
    const { job } = params;
    // Any other id would be stored outside its tenant's range of the primary key: never listed.
    if (!isJobIdOf(job.id, job.tenantId))
      throw new TypeError(`job id "${job.id}" was not made by newJobId for tenant "${job.tenantId}"`);
    try {
      return await this.insert(params);
    } catch (error) {
      // Inserted under a worker's lease with the answer lost, the job would wait out the lease
      // and spend an attempt it never ran: queue it instead (the caller was told it failed).
      if (params.lease && isConnectionError(error)) void this.leases.releaseToken(params.lease.token);
      throw error;
    }
  }

  private async insert({
    job,
    idempotency,
    now,
    lease,
  }: Parameters<Store["submit"]>[0]): Promise<SubmitOutcome> {
    // Serialized once, here, so that a job that cannot be fails its own submit only.
    const pending: PendingInsert = {
      job,
      now,
      input: JSON.stringify(job.input),
      metadata: JSON.stringify(job.metadata),
      callback: job.callback === null ? null : JSON.stringify(job.callback),
    };
    // A large input goes alone: a batch stays far below what one statement can carry.
    if (!idempotency && !lease && pending.input.length <= BATCHED_INPUT_CHARS) {
      const inserted = await this.inserts.add(pending);
      if (inserted instanceof InsertFailed) throw inserted.error;
      return this.created(inserted);
    }
    const jobParams = this.jobParams(pending, lease);
    if (!idempotency) {
      const [row] = await this.db.query<JobRow>(SQL.insertJob, jobParams);
      return this.created(row!);
    }
    for (let tries = 0; tries < 3; tries++) {
      // The key and the job are inserted in one statement: a race makes one job, never two.
      const rows = await this.db.query<JobRow>(SQL.insertJobWithKey, [
        ...jobParams,
        idempotency.key,
        idempotency.requestHash,
      ]);
      if (rows[0]) return this.created(rows[0]);
      const [existing] = await this.db.query<{ request_hash: string; job_id: string }>(
        `SELECT request_hash, job_id FROM {{s}}.idempotency_keys WHERE tenant_id = $1 AND key = $2`,
        [job.tenantId, idempotency.key],
      );
      if (!existing) continue; // deleted meanwhile: try again
      if (existing.request_hash !== idempotency.requestHash) return { kind: "key-mismatch" };
      const replay = await this.get({ tenantId: job.tenantId, id: existing.job_id });
      if (replay) return { kind: "replayed", job: replay };
      await this.db.query(`DELETE FROM {{s}}.idempotency_keys WHERE tenant_id = $1 AND key = $2`, [
        job.tenantId,
        idempotency.key,
      ]);
    }
    throw new Error("idempotency key kept changing under a submit");
  }

  /** The parameters of SQL.insertJob (and the first 17 of SQL.insertJobWithKey). */
  private jobParams(
    { job, now, input, metadata, callback }: PendingInsert,
    lease: { token: string; expiresAt: number } | undefined,
  ): unknown[] {
    return [
      job.id,
      job.tenantId,
      job.type,
      input,
      job.priority,
      job.runAt,
      now,
      job.deadlineAt,
      job.maxAttempts,
      metadata,
      callback,
      this.db.channel,
      this.db.nodeId,
      lease?.token ?? null,
      // Capped at the job's deadline, as a claim caps the job's lease_expires_at.
      lease ? Math.min(lease.expiresAt, job.deadlineAt) : null,
      job.watched ?? false,
      job.lifecycleEvents ?? false,
    ];
  }

  /**
   * A batch of submits in one statement. A lost connection is tried again (the ids tell what an
   * earlier try committed). If the statement fails otherwise, each job is inserted alone, so
   * that one bad job fails its own submit only.
   */
  private async insertMany(items: PendingInsert[]): Promise<(JobRow | InsertFailed)[]> {
    const params = [
      items.map((i) => i.job.id),
      items.map((i) => i.job.tenantId),
      items.map((i) => i.job.type),
      items.map((i) => i.input),
      items.map((i) => i.job.priority),
      items.map((i) => i.job.runAt),
      items.map((i) => i.now),
      items.map((i) => i.job.deadlineAt),
      items.map((i) => i.job.maxAttempts),
      items.map((i) => i.metadata),
      items.map((i) => i.callback),
      this.db.channel,
      this.db.nodeId,
      items.map((i) => i.job.watched ?? false),
      // NULL when no job asks (the usual batch): nothing to encode.
      items.some((i) => i.job.lifecycleEvents) ? items.map((i) => i.job.lifecycleEvents ?? false) : null,
    ];
    let retried = false;
    let rows: JobRow[];
    try {
      rows = await retryTransient((again) => {
        retried = again;
        return this.db.query<JobRow>(SQL.insertJobs, params);
      });
    } catch (error) {
      if (items.length === 1 || isConnectionError(error)) throw error;
      return Promise.all(
        items.map(async (item) => {
          try {
            const [row] = await this.db.query<JobRow>(SQL.insertJob, this.jobParams(item, undefined));
            return row!;
          } catch (alone) {
            return new InsertFailed(alone);
          }
        }),
      );
    }
    const byId = new Map(rows.map((row) => [row.id, row]));
    const missing = items.filter((i) => !byId.has(i.job.id)).map((i) => i.job.id);
    if (missing.length > 0 && retried) {
      // Inserted by a try whose answer was lost.
      const earlier = await this.db.query<JobRow>(
        `SELECT ${JOB_COLUMNS} FROM {{s}}.jobs WHERE id = ANY($1)`,
        [missing],
      );
      for (const row of earlier) byId.set(row.id, row);
    }
    return items.map(({ job }) => {
      const row = byId.get(job.id);
      return row?.tenant_id === job.tenantId
        ? row
        : new InsertFailed(new Error(`a job with the id ${job.id} exists already`));
    });
  }

  private created(row: JobRow): SubmitOutcome {
    const job = toJob(row);
    if (job.status === "queued") this.db.events.emit({ kind: "queued", type: job.type, runAt: job.runAt });
    return { kind: "created", job };
  }

  async watch({ tenantId, id }: { tenantId: string; id: string }): Promise<void> {
    const [row] = await this.db.query<{ status: string; type: string; run_at: number }>(SQL.watch, [
      tenantId,
      id,
      this.db.channel,
      this.db.nodeId,
    ]);
    // A queued row written while a claim ran may have been locked by it and left (see SQL.claim):
    // workers are told, here and on other nodes, as for any other write that queues a job.
    if (row?.status === "queued") this.db.events.emit({ kind: "queued", type: row.type, runAt: row.run_at });
  }

  async get({ tenantId, id }: { tenantId: string; id: string }): Promise<JobRecord | null> {
    const [row] = await this.db.query<JobRow>(SQL.getJob, [tenantId, id]);
    return row ? toJob(row) : null;
  }

  async list(filter: ListFilter): Promise<JobRecord[]> {
    const range = tenantIdRange(filter.tenantId);
    const rows = await this.db.query<JobRow>(SQL.listJobs, [
      filter.tenantId,
      filter.status ?? null,
      filter.type ?? null,
      range.first,
      range.last,
      filter.before?.id ?? null,
      filter.limit,
    ]);
    return rows.map(toJob);
  }

  async cancel({ tenantId, id, now }: { tenantId: string; id: string; now: number }): Promise<CancelOutcome> {
    const problem = JSON.stringify(jobProblem("job-canceled", "the job was canceled"));
    const [row] = await this.db.query<JobRow>(SQL.finishActive, [
      tenantId,
      id,
      "canceled",
      now,
      problem,
      this.db.channel,
      this.db.nodeId,
    ]);
    if (row) {
      this.db.notifyTerminal(
        row.id,
        row.type,
        "canceled",
        row.callback !== null,
        row.lifecycle_events === true,
      );
      return { kind: "canceled", job: toJob(row) };
    }
    const job = await this.get({ tenantId, id });
    if (!job) return { kind: "not-found" };
    if (job.status === "canceled") return { kind: "already-canceled", job };
    return { kind: "finished", job };
  }

  async delete({ tenantId, id, now }: { tenantId: string; id: string; now: number }): Promise<boolean> {
    const problem = JSON.stringify(jobProblem("job-canceled", "the job was canceled (deleted)"));
    const [row] = await this.db.query<{
      status: string;
      type: string;
      callback: string | null;
      lifecycle_events: boolean;
    }>(SQL.deleteJob, [tenantId, id, this.db.channel, this.db.nodeId, now, problem]);
    if (!row) return false;
    if (row.status === "queued" || row.status === "running")
      this.db.notifyTerminal(id, row.type, "canceled", row.callback !== null, row.lifecycle_events);
    return true;
  }

  async terminalIds({ ids }: { ids: string[] }): Promise<string[]> {
    if (ids.length === 0) return [];
    const rows = await this.db.query<{ id: string }>(
      `SELECT c.id FROM unnest($1::text[]) AS c(id) LEFT JOIN {{s}}.jobs j ON j.id = c.id
       WHERE j.id IS NULL OR j.status NOT IN ('queued', 'running')`,
      [ids],
    );
    return rows.map((r) => r.id);
  }
}

/** A submit on its way to an insert: the job and its JSON, serialized once. */
interface PendingInsert {
  job: NewJob;
  now: number;
  input: string;
  metadata: string;
  callback: string | null;
}

/** Inputs longer than this (characters of JSON) are inserted alone, not batched. */
const BATCHED_INPUT_CHARS = 65_536;

/** A submit of a batch that failed on its own (see insertMany). */
class InsertFailed {
  constructor(readonly error: unknown) {}
}
