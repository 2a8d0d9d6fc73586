import { randomUUID } from "node:crypto";
import { createReadStream, mkdirSync, rmSync } from "node:fs";
import { open, readFile, rename, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import Database from "better-sqlite3";
import type { Database as Db, Statement } from "better-sqlite3";
import { jobProblem } from "../../jobs/problems.js";
import type { JobStatus } from "../../jobs/states.js";
import { EventHub } from "../shared/event-hub.js";
import { discardFile, moveFileDurably } from "../shared/result-file.js";
import type {
  CompleteParams,
  ApiKeyRecord,
  CallbackSpec,
  CancelOutcome,
  ClaimedDelivery,
  DeliveryAttempt,
  ClaimedJob,
  JobRecord,
  Lease,
  ListFilter,
  PurgeResult,
  ResultPayload,
  StoredKind,
  Store,
  StoreEvent,
  StoredApiKey,
  StoredResult,
  SubmitOutcome,
  TenantLimits,
  TenantRecord,
} from "../store.js";
import {
  claimOrder,
  KEY_TOUCH_INTERVAL_MS,
  toClaimedJob,
  toJob,
  toKey,
  toStoredKey,
  type JobRow,
  type KeyRow,
  type KeyRowWithHash,
} from "../shared/rows.js";
import { generateWebhookSecret } from "../../callbacks/signature.js";
import {
  EVENT_OF_STATUS,
  newEventId,
  PROGRESS_EVENT_INTERVAL_MS,
  secretsOf,
  toAttempt,
  toOutboxEvent,
  wantsEvent,
  type AttemptRow,
  type OutboxRow,
  type SecretRow,
} from "../shared/outbox.js";
import {
  limitUpdates,
  NO_LIMITS,
  TENANT_COLUMNS,
  toLimits,
  toTenant,
  type TenantRow,
} from "../shared/tenant-limits.js";
import { GroupCommit } from "./group-commit.js";
import { STATEMENTS } from "./statements.js";
import { migrateSqlite } from "./migrate.js";

export interface SqliteStoreOptions {
  /** Database file. @default "./.tessera/tessera.db" */
  path: string;
  /** Where results larger than `inlineResultBytes` are written. @default "<db dir>/blobs" */
  blobDir?: string;
  /** Results up to this size stay in the database. @default 65536 */
  inlineResultBytes?: number;
  /** Apply pending migrations on open. @default true */
  migrate?: boolean;
}

interface ResultRow {
  status: JobStatus;
  result_kind: StoredKind | null;
  result_type: string | null;
  result_data: Buffer | null;
  result_location: string | null;
  result_size: number | null;
  result_purged: number;
}

/** The embedded default store: one SQLite file in WAL mode, fsync'd on every commit. */
export class SqliteStore implements Store {
  private readonly db: Db;
  private readonly writes: GroupCommit;
  private readonly events = new EventHub();
  private readonly blobDir: string;
  private readonly inlineResultBytes: number;
  private sql!: ReturnType<typeof prepareStatements>;

  constructor(options: SqliteStoreOptions) {
    mkdirSync(dirname(options.path), { recursive: true });
    this.blobDir = options.blobDir ?? join(dirname(options.path), "blobs");
    mkdirSync(this.blobDir, { recursive: true });
    this.inlineResultBytes = options.inlineResultBytes ?? 65_536;
    this.db = new Database(options.path);
    this.db.pragma("journal_mode = WAL");
    // FULL: a commit in WAL mode is fsync'd, so a 202 survives an OS crash or power loss (P1).
    this.db.pragma("synchronous = FULL");
    // Several processes may share the file (a crashed worker's replacement, the CLI).
    this.db.pragma("busy_timeout = 5000");
    this.db.pragma("foreign_keys = ON");
    this.writes = new GroupCommit(this.db);
    if (options.migrate ?? true) {
      try {
        this.migrateNow();
      } catch (error) {
        this.db.close(); // the caller never gets a handle to close (e.g. SchemaTooNewError)
        throw error;
      }
    }
  }

  private migrateNow(): void {
    migrateSqlite(this.db);
    this.sql = prepareStatements(this.db);
  }

  async migrate(): Promise<void> {
    this.migrateNow();
  }

  async ping(): Promise<void> {
    this.db.prepare("SELECT 1").get();
  }

  async close(): Promise<void> {
    // Let writes already enqueued commit before the handle goes away.
    await this.writes.run(() => undefined);
    this.db.close();
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    return this.events.subscribe(listener);
  }

  // --- submit and read ----------------------------------------------------------------------

  async submit({ job, idempotency, now, lease }: Parameters<Store["submit"]>[0]): Promise<SubmitOutcome> {
    const outcome = await this.writes.run((): SubmitOutcome => {
      if (idempotency) {
        const existing = this.sql.getIdempotency.get(job.tenantId, idempotency.key) as
          { request_hash: string; job_id: string } | undefined;
        if (existing) {
          if (existing.request_hash !== idempotency.requestHash) return { kind: "key-mismatch" };
          const row = this.sql.getJob.get(job.tenantId, existing.job_id) as JobRow | undefined;
          if (row) return { kind: "replayed", job: toJob(row) };
          this.sql.deleteIdempotency.run(job.tenantId, idempotency.key); // dangling: job purged
        }
        this.sql.insertIdempotency.run(job.tenantId, idempotency.key, idempotency.requestHash, job.id, now);
      }
      const row = this.sql.insertJob.get({
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
      }) as JobRow;
      return { kind: "created", job: toJob(row) };
    });
    if (outcome.kind === "created" && !lease)
      this.events.emit({ kind: "queued", type: job.type, runAt: job.runAt });
    return outcome;
  }

  /** One process: every end is announced to its waiters already. */
  watch(): Promise<void> {
    return Promise.resolve();
  }

  async get({ tenantId, id }: { tenantId: string; id: string }): Promise<JobRecord | null> {
    const row = this.sql.getJob.get(tenantId, id) as JobRow | undefined;
    return row ? toJob(row) : null;
  }

  async list(filter: ListFilter): Promise<JobRecord[]> {
    const rows = this.sql.listJobs.all({
      tenant: filter.tenantId,
      status: filter.status ?? null,
      type: filter.type ?? null,
      beforeCreated: filter.before?.createdAt ?? null,
      beforeId: filter.before?.id ?? null,
      limit: filter.limit,
    }) as JobRow[];
    return rows.map(toJob);
  }

  async getResult({ tenantId, id }: { tenantId: string; id: string }): Promise<StoredResult | null> {
    const row = this.sql.getResult.get(tenantId, id) as ResultRow | undefined;
    if (!row || row.status !== "succeeded" || row.result_purged === 1 || row.result_kind === null)
      return null;
    const kind = row.result_kind;
    const size = row.result_size ?? 0;
    if (row.result_data === null && kind !== "none") {
      const path = row.result_location!;
      return {
        kind,
        contentType: row.result_type,
        location: null,
        size,
        data: null,
        open: () => createReadStream(path),
      };
    }
    return {
      kind,
      contentType: row.result_type,
      location: kind === "created" ? row.result_location : null,
      size,
      data: row.result_data,
      open: null,
    };
  }

  async cancel({ tenantId, id, now }: { tenantId: string; id: string; now: number }): Promise<CancelOutcome> {
    const outcome = await this.writes.run((): CancelOutcome => {
      const row = this.sql.getJob.get(tenantId, id) as JobRow | undefined;
      if (!row) return { kind: "not-found" };
      if (row.status === "canceled") return { kind: "already-canceled", job: toJob(row) };
      if (row.status !== "queued" && row.status !== "running") return { kind: "finished", job: toJob(row) };
      const problem = jobProblem("job-canceled", "the job was canceled");
      const updated = this.sql.finishActive.get("canceled", now, JSON.stringify(problem), id) as JobRow;
      this.writeOutbox(updated, now);
      return { kind: "canceled", job: toJob(updated) };
    });
    if (outcome.kind === "canceled")
      this.afterTerminal(outcome.job.id, outcome.job.type, "canceled", outcome.job.callback, now);
    return outcome;
  }

  async delete({ tenantId, id, now }: { tenantId: string; id: string; now: number }): Promise<boolean> {
    const deleted = await this.writes.run(() => {
      const row = this.sql.getJob.get(tenantId, id) as JobRow | undefined;
      if (!row) return null;
      const blob = this.sql.getResult.get(tenantId, id) as ResultRow;
      if (row.status === "queued" || row.status === "running") {
        // Deleting an active job cancels it first: its job.canceled event is still delivered.
        const problem = jobProblem("job-canceled", "the job was canceled (deleted)");
        this.writeOutbox(
          { ...row, status: "canceled", finished_at: now, error: JSON.stringify(problem) },
          now,
        );
      }
      this.sql.deleteJob.run(id);
      this.sql.deleteIdempotencyForJob.run(id);
      return { row, blobPath: blob.result_data === null ? blob.result_location : null };
    });
    if (!deleted) return false;
    const { row, blobPath } = deleted;
    if (row.status === "queued" || row.status === "running") {
      // Its handler must stop too.
      this.afterTerminal(
        id,
        row.type,
        "canceled",
        row.callback === null ? null : (JSON.parse(row.callback) as CallbackSpec),
        now,
      );
    }
    if (blobPath) await unlink(blobPath).catch(() => undefined);
    return true;
  }

  // --- workers ------------------------------------------------------------------------------

  async claim({ types, limit, leaseMs, now }: Parameters<Store["claim"]>[0]): Promise<ClaimedJob[]> {
    if (limit <= 0 || types.length === 0) return [];
    const token = randomUUID();
    const rows = await this.writes.run(
      () => this.sql.claim.all(token, now + leaseMs, now, now, now, JSON.stringify(types), limit) as JobRow[],
    );
    return rows
      .map((row) => toClaimedJob(row, token, row.lease_expires_at ?? now + leaseMs))
      .sort(claimOrder);
  }

  async heartbeat({ leases, leaseMs, now }: Parameters<Store["heartbeat"]>[0]): Promise<string[]> {
    if (leases.length === 0) return [];
    return this.writes.run(() =>
      leases
        .filter((lease) => this.sql.heartbeat.run(now + leaseMs, lease.id, lease.leaseToken).changes === 0)
        .map((lease) => lease.id),
    );
  }

  async progress({ lease, percent, message, now }: Parameters<Store["progress"]>[0]): Promise<boolean> {
    const row = await this.writes.run(() => {
      const updated = this.sql.progress.get(percent, message, lease.id, lease.leaseToken) as
        JobRow | undefined;
      if (updated) this.writeProgressEvent(updated, now);
      return updated;
    });
    if (!row) return false;
    this.events.emit({ kind: "progress", jobId: row.id });
    if (row.callback && row.callback.includes("job.progress")) this.events.emit({ kind: "outbox", at: now });
    return true;
  }

  /**
   * Each through the group commit, which writes those of one turn in one transaction. Rejects
   * (with the first error) only once every write has settled.
   */
  async completeMany(items: readonly CompleteParams[]): Promise<boolean[]> {
    const settled = await Promise.allSettled(items.map((item) => this.complete(item)));
    return settled.map((s) => {
      if (s.status === "rejected") throw s.reason;
      return s.value;
    });
  }

  async complete({ lease, result, now }: CompleteParams): Promise<boolean> {
    let stored: Awaited<ReturnType<SqliteStore["placeResult"]>>;
    try {
      stored = await this.placeResult(lease, result);
    } finally {
      // A file result's source is gone once placed (moved), and must go if placing failed.
      if (result.kind === "file") await discardFile(result.path);
    }
    const applied = await this.writes.run(() => {
      const row = this.sql.complete.get(
        now,
        stored.kind,
        stored.contentType,
        stored.data,
        stored.location,
        stored.size,
        lease.id,
        lease.leaseToken,
      ) as JobRow | undefined;
      if (row) this.writeOutbox(row, now);
      return row ?? null;
    });
    if (applied === null) {
      // Fenced: this attempt lost its lease; its output must not survive.
      if (stored.blobPath) await unlink(stored.blobPath).catch(() => undefined);
      return false;
    }
    this.afterTerminalRow(applied, now);
    return true;
  }

  /** Decide where a result's bytes live: inline, or a blob file written and fsync'd first. */
  private async placeResult(lease: Lease, result: ResultPayload) {
    const none = {
      kind: result.kind as StoredKind,
      contentType: null as string | null,
      blobPath: null as string | null,
    };
    switch (result.kind) {
      case "none":
        return { ...none, data: null, location: null, size: 0 };
      case "created": {
        const data = Buffer.from(result.json);
        return {
          ...none,
          contentType: "application/json",
          data,
          location: result.location,
          size: data.length,
        };
      }
      case "file": {
        const { contentType, size } = result;
        if (size <= this.inlineResultBytes) {
          const data = await readFile(result.path);
          return { ...none, kind: "bytes" as const, contentType, data, location: null, size: data.length };
        }
        const path = join(this.blobDir, `${lease.id}.${lease.leaseToken}`);
        await moveFileDurably(result.path, path);
        return { kind: "bytes" as const, contentType, blobPath: path, data: null, location: path, size };
      }
      case "json":
      case "bytes": {
        const data = result.kind === "json" ? Buffer.from(result.json) : Buffer.from(result.data);
        const contentType = result.kind === "json" ? "application/json" : result.contentType;
        if (data.length <= this.inlineResultBytes) {
          return { ...none, contentType, data, location: null, size: data.length };
        }
        // One file per attempt, so a fenced stale attempt can never overwrite the winner's.
        const path = join(this.blobDir, `${lease.id}.${lease.leaseToken}`);
        await writeDurably(path, data);
        return {
          kind: result.kind,
          contentType,
          blobPath: path,
          data: null,
          location: path,
          size: data.length,
        };
      }
    }
  }

  async fail({ lease, error, retryAt, now }: Parameters<Store["fail"]>[0]): Promise<boolean> {
    const row = await this.writes.run(() => {
      if (retryAt !== null) {
        return this.sql.failRetry.get(retryAt, JSON.stringify(error), lease.id, lease.leaseToken) as
          JobRow | undefined;
      }
      const failed = this.sql.failFinal.get(now, JSON.stringify(error), lease.id, lease.leaseToken) as
        JobRow | undefined;
      if (failed) this.writeOutbox(failed, now);
      return failed;
    });
    if (!row) return false;
    if (retryAt === null) this.afterTerminalRow(row, now);
    else this.events.emit({ kind: "queued", type: row.type, runAt: retryAt });
    return true;
  }

  async release({ leases, now }: Parameters<Store["release"]>[0]): Promise<number> {
    if (leases.length === 0) return 0;
    const types = await this.writes.run(() =>
      leases.flatMap((lease) => {
        const row = this.sql.release.get(now, lease.id, lease.leaseToken) as { type: string } | undefined;
        return row ? [row.type] : [];
      }),
    );
    for (const type of new Set(types)) this.events.emit({ kind: "queued", type, runAt: now });
    return types.length;
  }

  // --- maintenance --------------------------------------------------------------------------

  async sweepExpiredLeases({
    now,
    retryDelayMs,
    limit,
  }: Parameters<Store["sweepExpiredLeases"]>[0]): Promise<number> {
    const moved = await this.writes.run(() => {
      const expired = this.sql.expiredLeases.all(now, now, limit) as JobRow[];
      return expired.map((row) => {
        const detail = `attempt ${row.attempt} lost its lease (the worker crashed, stalled or was cut off)`;
        const error = JSON.stringify(jobProblem("job-failed", detail));
        if (row.attempt < row.max_attempts) {
          this.sql.requeueExpired.run(now + retryDelayMs, error, row.id, row.lease_token);
          return { row, status: "queued" as const };
        }
        const failed = this.sql.failExpired.get(now, error, row.id, row.lease_token) as JobRow;
        this.writeOutbox(failed, now);
        return { row: failed, status: "failed" as const };
      });
    });
    for (const { row, status } of moved) {
      if (status === "failed") this.afterTerminalRow(row, now);
      else this.events.emit({ kind: "queued", type: row.type, runAt: now + retryDelayMs });
    }
    return moved.length;
  }

  async sweepDeadlines({ now, limit }: Parameters<Store["sweepDeadlines"]>[0]): Promise<number> {
    const rows = await this.writes.run(() => {
      const due = this.sql.pastDeadline.all(now, limit) as JobRow[];
      return due.flatMap((row) => {
        const detail = `the job passed its deadline (${new Date(row.deadline_at).toISOString()})`;
        const error = JSON.stringify(jobProblem("job-timed-out", detail));
        const updated = this.sql.finishActive.get("timed_out", now, error, row.id) as JobRow | undefined;
        if (updated) this.writeOutbox(updated, now);
        return updated ? [updated] : [];
      });
    });
    for (const row of rows) this.afterTerminalRow(row, now);
    return rows.length;
  }

  async purgeExpired(params: Parameters<Store["purgeExpired"]>[0]): Promise<PurgeResult> {
    const { resultsBefore, jobsBefore, idempotencyBefore, limit } = params;
    const outcome = await this.writes.run(() => {
      const deleted = this.sql.deleteFinished.all(jobsBefore, limit) as { id: string; blob: string | null }[];
      for (const job of deleted) this.sql.deleteIdempotencyForJob.run(job.id);
      // Select first: RETURNING would show result_location after it was cleared, losing the blob path.
      const purged = this.sql.expiredResults.all(resultsBefore, limit) as {
        id: string;
        blob: string | null;
      }[];
      for (const job of purged) this.sql.purgeResult.run(job.id);
      const idempotencyDeleted = this.sql.purgeIdempotency.run(idempotencyBefore).changes;
      for (const event of this.sql.purgeEvents.all(jobsBefore, limit) as { id: string }[])
        this.sql.purgeAttempts.run(event.id);
      return { deleted, purged, idempotencyDeleted };
    });
    const blobs = [...outcome.deleted, ...outcome.purged].flatMap((job) => (job.blob ? [job.blob] : []));
    await Promise.all(blobs.map((path) => unlink(path).catch(() => undefined)));
    return {
      resultsPurged: outcome.purged.length,
      jobsDeleted: outcome.deleted.length,
      idempotencyDeleted: outcome.idempotencyDeleted,
    };
  }

  async terminalIds({ ids }: { ids: string[] }): Promise<string[]> {
    if (ids.length === 0) return [];
    const rows = this.sql.terminalIds.all(JSON.stringify(ids)) as { id: string }[];
    return rows.map((r) => r.id);
  }

  async nextRunAt({ types }: { types: string[] }): Promise<number | null> {
    const row = this.sql.nextRunAt.get(JSON.stringify(types)) as { run_at: number | null } | undefined;
    return row?.run_at ?? null;
  }

  // --- callbacks ----------------------------------------------------------------------------

  async claimDeliveries({
    limit,
    leaseMs,
    now,
    skipTenants = [],
  }: Parameters<Store["claimDeliveries"]>[0]): Promise<ClaimedDelivery[]> {
    const token = randomUUID();
    const skip = JSON.stringify(skipTenants);
    const rows = await this.writes.run(
      () => this.sql.claimDeliveries.all(token, now + leaseMs, now, now, skip, limit) as OutboxRow[],
    );
    return rows
      .map((row) => ({ ...toOutboxEvent(row), leaseToken: token }))
      .sort((a, b) => a.occurredAt - b.occurredAt);
  }

  async recordDelivery({
    eventId,
    leaseToken,
    body,
    attempt,
    outcome,
  }: Parameters<Store["recordDelivery"]>[0]): Promise<boolean> {
    const applied = await this.writes.run(() => {
      const status = outcome === "retry" ? "pending" : outcome;
      // RETURNING: the update names the job too, no second read.
      const row = this.sql.recordDelivery.get(
        body,
        attempt.attempt,
        status,
        attempt.nextAttemptAt,
        eventId,
        leaseToken,
      ) as { job_id: string } | undefined;
      if (!row) return false;
      this.sql.insertAttempt.run(
        eventId,
        attempt.attempt,
        row.job_id,
        attempt.event,
        attempt.at,
        attempt.statusCode,
        attempt.latencyMs,
        attempt.error,
        attempt.nextAttemptAt,
      );
      return true;
    });
    if (applied && attempt.nextAttemptAt !== null)
      this.events.emit({ kind: "outbox", at: attempt.nextAttemptAt });
    return applied;
  }

  async listDeliveries({ tenantId, jobId }: { tenantId: string; jobId: string }): Promise<DeliveryAttempt[]> {
    return (this.sql.listDeliveries.all(jobId, tenantId) as AttemptRow[]).map(toAttempt);
  }

  async nextDeliveryAt(): Promise<number | null> {
    return (this.sql.nextDeliveryAt.get() as { at: number | null }).at;
  }

  async webhookSecrets({ tenantId, now }: { tenantId: string; now: number }): Promise<string[]> {
    let row = this.sql.getSecrets.get(tenantId) as SecretRow | undefined;
    if (!row) {
      await this.writes.run(() => this.sql.insertSecret.run(tenantId, generateWebhookSecret(), now));
      row = this.sql.getSecrets.get(tenantId) as SecretRow;
    }
    return secretsOf(row, now);
  }

  async rotateWebhookSecret(params: Parameters<Store["rotateWebhookSecret"]>[0]): Promise<string[]> {
    const tenantId = await this.ensureTenant({ name: params.tenantName, now: params.now });
    await this.writes.run(() =>
      this.sql.rotateSecret.run({
        tenant: tenantId,
        secret: params.secret,
        now: params.now,
        until: params.previousUntil,
      }),
    );
    return secretsOf(this.sql.getSecrets.get(tenantId) as SecretRow, params.now);
  }

  // --- tenants and keys ---------------------------------------------------------------------

  async ensureTenant({ name, now }: { name: string; now: number }): Promise<string> {
    return this.writes.run(() => {
      const existing = this.sql.getTenant.get(name) as { id: string } | undefined;
      if (existing) return existing.id;
      const id = randomUUID();
      this.sql.insertTenant.run(id, name, now);
      return id;
    });
  }

  async createApiKey(params: Parameters<Store["createApiKey"]>[0]): Promise<ApiKeyRecord> {
    const tenantId = await this.ensureTenant({ name: params.tenantName, now: params.now });
    return this.writes.run(() => {
      this.sql.insertKey.run(
        params.keyId,
        tenantId,
        params.prefix,
        params.hash,
        params.now,
        params.expiresAt ?? null,
      );
      return toKey(this.sql.getKeyById.get(params.keyId) as KeyRow);
    });
  }

  async lookupApiKey({ hash, now }: { hash: string; now: number }): Promise<StoredApiKey | null> {
    const row = this.sql.getKeyByHash.get(hash) as KeyRowWithHash | undefined;
    if (!row) return null;
    const key = toStoredKey(row, now);
    if (
      key.state === "live" &&
      (row.last_used_at === null || row.last_used_at < now - KEY_TOUCH_INTERVAL_MS)
    ) {
      void this.writes.run(() => this.sql.touchKey.run(now, row.id)).catch(() => undefined);
    }
    return key;
  }

  async rotateApiKey(
    params: Parameters<Store["rotateApiKey"]>[0],
  ): Promise<{ previous: ApiKeyRecord; key: ApiKeyRecord } | null> {
    return this.writes.run(() => {
      const old = this.sql.getLiveKey.get({ key: params.idOrPrefix, now: params.now }) as KeyRow | undefined;
      if (!old) return null;
      this.sql.insertKey.run(
        params.keyId,
        old.tenant_id,
        params.prefix,
        params.hash,
        params.now,
        params.expiresAt,
      );
      this.sql.shortenKey.run({ id: old.id, until: params.overlapUntil });
      return {
        previous: toKey(this.sql.getKeyById.get(old.id) as KeyRow),
        key: toKey(this.sql.getKeyById.get(params.keyId) as KeyRow),
      };
    });
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    return (this.sql.listKeys.all() as KeyRow[]).map(toKey);
  }

  async revokeApiKey({ idOrPrefix, now }: { idOrPrefix: string; now: number }): Promise<boolean> {
    return this.writes.run(() => this.sql.revokeKey.run(now, idOrPrefix, idOrPrefix).changes > 0);
  }

  // --- limits and quotas ----------------------------------------------------------------------

  private limitSql?: { list: Statement; limits: Statement; byName: Statement; queued: Statement };

  private get limitStatements() {
    this.limitSql ??= {
      list: this.db.prepare(`SELECT ${TENANT_COLUMNS} FROM tenants ORDER BY name`),
      limits: this.db.prepare(`SELECT submit_rate, poll_rate, max_queued FROM tenants WHERE id = ?`),
      byName: this.db.prepare(`SELECT ${TENANT_COLUMNS} FROM tenants WHERE name = ?`),
      queued: this.db.prepare(`SELECT count(*) AS n FROM jobs WHERE tenant_id = ? AND status = 'queued'`),
    };
    return this.limitSql;
  }

  async listTenants(): Promise<TenantRecord[]> {
    return (this.limitStatements.list.all() as TenantRow[]).map(toTenant);
  }

  async tenantLimits({ tenantId }: { tenantId: string }): Promise<TenantLimits> {
    const row = this.limitStatements.limits.get(tenantId) as TenantRow | undefined;
    return row ? toLimits(row) : { ...NO_LIMITS };
  }

  async setTenantLimits(params: Parameters<Store["setTenantLimits"]>[0]): Promise<TenantRecord> {
    const id = await this.ensureTenant({ name: params.tenantName, now: params.now });
    const { columns, values } = limitUpdates(params.limits);
    if (columns.length > 0) {
      const set = columns.map((c) => `${c} = ?`).join(", ");
      await this.writes.run(() =>
        this.db.prepare(`UPDATE tenants SET ${set} WHERE id = ?`).run(...values, id),
      );
    }
    return toTenant(this.limitStatements.byName.get(params.tenantName) as TenantRow);
  }

  async countQueued({ tenantId }: { tenantId: string }): Promise<number> {
    return (this.limitStatements.queued.get(tenantId) as { n: number }).n;
  }

  /** Inside a write: the callback event a terminal move owes, in the same transaction. */
  private writeOutbox(row: JobRow, now: number): void {
    if (row.callback === null) return;
    const callback = JSON.parse(row.callback) as CallbackSpec;
    const event = EVENT_OF_STATUS[row.status];
    this.sql.dropPendingProgress.run(row.id); // no progress event may follow the terminal one
    if (!event || !wantsEvent(callback, event)) return;
    this.sql.insertOutbox.run(
      newEventId(),
      row.id,
      row.tenant_id,
      event,
      callback.url,
      now,
      JSON.stringify(row),
      now,
    );
  }

  /** Inside a write: a coalesced progress event, at most one a second per job (latest state wins). */
  private writeProgressEvent(row: JobRow, now: number): void {
    if (row.callback === null) return;
    const callback = JSON.parse(row.callback) as CallbackSpec;
    if (!(callback.events ?? []).includes("job.progress")) return;
    const pending = this.sql.pendingProgress.get(row.id) as { id: string } | undefined;
    if (pending) {
      this.sql.refreshProgress.run(JSON.stringify(row), now, pending.id);
      return;
    }
    const last = (this.sql.lastProgress.get(row.id) as { at: number | null }).at;
    const due = last === null ? now : Math.max(now, last + PROGRESS_EVENT_INTERVAL_MS);
    this.sql.insertOutbox.run(
      newEventId(),
      row.id,
      row.tenant_id,
      "job.progress",
      callback.url,
      now,
      JSON.stringify(row),
      due,
    );
  }

  private afterTerminalRow(row: JobRow, now: number): void {
    const callback = row.callback === null ? null : (JSON.parse(row.callback) as CallbackSpec);
    this.afterTerminal(row.id, row.type, row.status, callback, now);
  }

  /** After the commit: wake whoever waits on this job, and the deliverer if a callback is owed. */
  private afterTerminal(
    jobId: string,
    type: string,
    status: JobStatus,
    callback: CallbackSpec | null,
    now: number,
  ): void {
    this.events.emit({ kind: "terminal", jobId, type, status });
    if (callback) this.events.emit({ kind: "outbox", at: now });
  }

  /** Remove the database files (tests). */
  static destroy(path: string): void {
    for (const suffix of ["", "-wal", "-shm"]) rmSync(path + suffix, { force: true });
  }
}

/** Write to a temporary name, fsync, then rename: a reader never sees a partial blob. */
async function writeDurably(path: string, data: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp`;
  const handle = await open(tmp, "w");
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, path);
}

/** Every statement of STATEMENTS, prepared once on this connection. */
function prepareStatements(db: Db): Record<keyof typeof STATEMENTS, Statement> {
  const entries = Object.entries(STATEMENTS).map(([name, sql]) => [name, db.prepare(sql)]);
  return Object.fromEntries(entries) as Record<keyof typeof STATEMENTS, Statement>;
}
