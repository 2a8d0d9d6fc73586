import { randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import pg from "pg";
import type { Logger } from "pino";
import { jobProblem } from "../../jobs/problems.js";
import { idTimeBound, isJobIdOf, tenantIdRange } from "../../jobs/ids.js";
import { Batcher } from "../batcher.js";
import { generateWebhookSecret } from "../../callbacks/signature.js";
import {
  PROGRESS_EVENT_INTERVAL_MS,
  secretsOf,
  toAttempt,
  toOutboxEvent,
  type AttemptRow,
  type OutboxRow,
  type SecretRow,
} from "../outbox.js";
import { EventHub } from "../event-hub.js";
import {
  claimOrder,
  KEY_COLUMNS,
  KEY_TOUCH_INTERVAL_MS,
  claimedJob,
  JOB_COLUMNS,
  type ClaimRow,
  toJob,
  toKey,
  toStoredKey,
  type JobRow,
  type KeyRow,
  type KeyRowWithHash,
} from "../rows.js";
import type {
  ApiKeyRecord,
  CancelOutcome,
  CompleteParams,
  ClaimedDelivery,
  DeliveryAttempt,
  ClaimedJob,
  JobRecord,
  Lease,
  ListFilter,
  NewJob,
  PurgeResult,
  ResultPayload,
  StoredKind,
  Store,
  StoreEvent,
  StoredApiKey,
  StoredResult,
  SubmitOutcome,
  RateHit,
  TenantLimits,
  TenantRecord,
} from "../store.js";
import {
  limitUpdates,
  NO_LIMITS,
  TENANT_COLUMNS,
  toLimits,
  toTenant,
  type TenantRow,
} from "../tenant-limits.js";
import { discardFile, fileChunks } from "../result-file.js";
import { PgListener } from "./listener.js";
import { migratePostgres } from "./migrate.js";
import { PREPARED, SQL } from "./statements.js";

export interface PostgresStoreOptions {
  /** postgres://user@host:port/database */
  connectionString: string;
  /** Schema holding Tessera's tables. @default "tessera" */
  schema?: string;
  /** Connections in the pool. @default 10 */
  poolSize?: number;
  /** Results larger than this are stored in 1 MiB chunks and streamed. @default 65536 */
  inlineResultBytes?: number;
  /** Apply pending migrations on `migrate()` / open. @default true */
  migrate?: boolean;
  /** LISTEN for other nodes' events. @default true */
  listen?: boolean;
  /**
   * Where the LISTEN connection goes. A LISTEN does not survive pgbouncer in transaction mode
   * (the next transaction may run on another server connection): give PostgreSQL's own address.
   * @default connectionString
   */
  listenConnectionString?: string;
  /**
   * Send the per-job statements as named prepared statements. Turn off behind pgbouncer in
   * transaction mode without `max_prepared_statements` (before 1.21, or that setting at 0).
   * @default true
   */
  preparedStatements?: boolean;
  logger?: Logger;
}

const CHUNK_BYTES = 1024 * 1024;
/** Chunks of a file result sent per statement (memory while streaming one in). */
const FILE_CHUNKS_PER_INSERT = 4;
/** Completions written by one statement at most (its arrays stay well below a megabyte). */
const MAX_BATCH = 1000;
/** Backoff between attempts at a write whose connection failed (up to ~8 s in all). */
const RETRY_DELAYS_MS = [50, 100, 200, 400, 800, 1600, 2000, 3000];

/** A value that an array literal can hold unquoted: no separator, brace, quote or space. */
const UNQUOTED = /^[0-9A-Za-z_.:-]+$/;

type ArrayValue = string | number | Buffer | null;

/**
 * One column of a batch as an array parameter, built as cheaply as its values allow. The
 * driver's own encoding quotes and escapes every element in turn (~1 KB of short-lived strings
 * per completed job); so: all NULL (the result columns of jobs that return nothing) is sent as
 * NULL, which `unnest` pads with NULLs; values that need no quoting (ids, lease tokens, kinds,
 * integers, NULLs) as an array literal joined at once; anything else the driver's way.
 */
function arrayParam(values: ArrayValue[]): string | ArrayValue[] | null {
  // Indexed loops: a for-of allocates an iterator result per element until the code is optimized.
  let plain = true;
  let nulls = 0;
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!;
    if (value === null) nulls++;
    else if (plain && !(typeof value === "number" ? Number.isSafeInteger(value) : isPlainText(value)))
      plain = false;
  }
  if (nulls === values.length) return null;
  if (!plain) return values;
  if (nulls === 0) return `{${values.join(",")}}`;
  let text = "";
  for (let i = 0; i < values.length; i++) text += (i === 0 ? "" : ",") + (values[i] ?? "NULL");
  return `{${text}}`;
}

function isPlainText(value: string | Buffer): boolean {
  return typeof value === "string" && UNQUOTED.test(value) && !/^null$/i.test(value);
}

/**
 * Run `write` again, with backoff, while it fails transiently (see `isTransient`); `retried`
 * tells it whether an earlier try may have committed. Other errors, and the last one, are
 * thrown. `firstTry`: the caller made the first try itself (its fast path), which failed so.
 */
async function retryTransient<T>(
  write: (retried: boolean) => Promise<T>,
  firstTry?: { error: unknown },
): Promise<T> {
  let error = firstTry?.error;
  for (let attempt = firstTry ? 1 : 0; ; attempt++) {
    if (attempt > 0) {
      const delay = RETRY_DELAYS_MS[attempt - 1];
      if (!isTransient(error) || delay === undefined) throw error;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
    try {
      return await write(attempt > 0);
    } catch (caught) {
      error = caught;
    }
  }
}

/**
 * A failure of the connection, not of the statement (SQLSTATE 08xxx connection exceptions,
 * 57P0x shutdowns and terminations, or a socket error without a SQLSTATE): the statement may
 * or may not have committed, and trying again on a fresh connection may succeed.
 */
function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return error instanceof Error;
  return code.startsWith("08") || code.startsWith("57P") || /^E[A-Z]+$/.test(code);
}

/**
 * Worth another try: a lost connection, or a deadlock (40P01) or serialization failure (40001),
 * whose statement was rolled back. Batched writes lock rows in id order and the heartbeat
 * never waits for a lock, so deadlocks are rare, but other writers (cancel, sweepers) exist.
 */
function isTransient(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "40P01" || code === "40001" || isConnectionError(error);
}

/** Batched writes take their rows' locks in id order, so two of them never deadlock each other. */
function byLeaseId<T extends { id: string } | { lease: { id: string } }>(items: readonly T[]): T[] {
  const id = (item: T) => ("lease" in item ? item.lease.id : item.id);
  return [...items].sort((a, b) => (id(a) < id(b) ? -1 : id(a) > id(b) ? 1 : 0));
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

// bigint (int8) columns hold epoch milliseconds, well inside Number's safe range.
const types = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === 20
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/**
 * The PostgreSQL store: many API and worker nodes around one database. Claims use
 * `FOR UPDATE SKIP LOCKED`; a worker's completions of one turn (`completeMany`), and the
 * progress reports and heartbeats of one turn, share one statement (`… FROM unnest(…)`);
 * every committed change that another node may wait for is announced with `pg_notify` in the
 * same statement (a success only if a request waits for it: see `watch`), and relayed to this
 * process's listeners by `PgListener`.
 */
export class PostgresStore implements Store {
  readonly nodeId = randomUUID().slice(0, 8);
  private readonly pool: pg.Pool;
  private readonly leasePool: pg.Pool;
  private readonly events = new EventHub();
  private readonly schema: string;
  private readonly channel: string;
  private readonly inlineResultBytes: number;
  private readonly listener: PgListener | null;
  /** Submits without a key or a lease, inserted together (one statement, one commit). */
  private readonly inserts: Batcher<PendingInsert, JobRow | InsertFailed>;
  private readonly progressWrites: Batcher<
    { lease: Lease; percent: number | null; message: string | null; now: number },
    boolean
  >;
  private readonly t: (sql: string) => string;
  /**
   * The per-job statements (PREPARED) with the schema filled in once, and their prepared
   * statement's name unless prepared statements are off.
   */
  private readonly perJob = new Map<string, { text: string; name?: string }>();

  constructor(private readonly options: PostgresStoreOptions) {
    this.schema = options.schema ?? "tessera";
    if (!SCHEMA_NAME.test(this.schema)) throw new Error(`invalid schema name "${this.schema}"`);
    this.channel = `tessera_${this.schema}`;
    this.inlineResultBytes = options.inlineResultBytes ?? 65_536;
    this.t = (sql) => sql.replaceAll("{{s}}", this.schema);
    const prepare = options.preparedStatements ?? true;
    for (const key of PREPARED) {
      const text = this.t(SQL[key]);
      this.perJob.set(SQL[key], prepare ? { text, name: `tessera_${key}` } : { text });
    }
    this.pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.poolSize ?? 10,
      application_name: "tessera",
      types,
      connectionTimeoutMillis: 5000,
    });
    // Claims, heartbeats, progress and the rate counters have a small pool of their own, so a
    // burst of them never queues behind submits and completions (or the other way round).
    // Claims, heartbeats and progress commit without waiting for the WAL flush (ASYNC_COMMIT in
    // statements.ts); submits, completions and failures wait for it (P1, P4).
    this.leasePool = new pg.Pool({
      connectionString: options.connectionString,
      max: 3,
      application_name: "tessera",
      types,
      connectionTimeoutMillis: 5000,
    });
    // An idle client's error (the server restarted) must not kill the process (pg-boss #365).
    for (const pool of [this.pool, this.leasePool]) {
      pool.on("error", (error) => options.logger?.warn({ err: error }, "idle PostgreSQL connection failed"));
    }
    this.listener =
      options.listen === false
        ? null
        : new PgListener({
            connectionString: options.listenConnectionString ?? options.connectionString,
            channel: this.channel,
            types,
            ...(options.logger ? { logger: options.logger } : {}),
            self: this.nodeId,
            onEvent: (event) => this.events.emit(event),
            onReconnect: () => this.events.emit({ kind: "resync" }),
          });
    this.inserts = new Batcher((items) => this.insertMany(items));
    this.progressWrites = new Batcher((items) => this.progressMany(items));
  }

  /** Migrate (unless disabled) and start listening. */
  async open(): Promise<this> {
    if (this.options.migrate ?? true) await this.migrate();
    await this.listener?.start();
    return this;
  }

  async migrate(): Promise<void> {
    await migratePostgres(this.pool, this.schema);
  }

  async ping(): Promise<void> {
    await this.pool.query("SELECT 1");
  }

  async close(): Promise<void> {
    await this.listener?.stop();
    await Promise.all([this.pool.end(), this.leasePool.end()]);
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    return this.events.subscribe(listener);
  }

  private async query<R extends pg.QueryResultRow>(
    sql: string,
    params: unknown[] = [],
    pool: pg.Pool = this.pool,
  ): Promise<R[]> {
    const perJob = this.perJob.get(sql);
    return (
      await pool.query<R>(perJob ? { ...perJob, values: params } : { text: this.t(sql), values: params })
    ).rows;
  }

  /** After a commit: wake whoever waits on the job, and the deliverer when a callback is owed. */
  private notifyTerminal(
    jobId: string,
    type: string,
    status: JobRecord["status"],
    hasCallback: boolean,
  ): void {
    this.events.emit({ kind: "terminal", jobId, type, status });
    if (hasCallback) this.events.emit({ kind: "outbox", at: Date.now() });
  }

  // --- submit and read ----------------------------------------------------------------------

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
      if (params.lease && isConnectionError(error)) void this.releaseToken(params.lease.token);
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
      const [row] = await this.query<JobRow>(SQL.insertJob, jobParams);
      return this.created(row!);
    }
    for (let tries = 0; tries < 3; tries++) {
      // The key and the job are inserted in one statement: a race makes one job, never two.
      const rows = await this.query<JobRow>(SQL.insertJobWithKey, [
        ...jobParams,
        idempotency.key,
        idempotency.requestHash,
      ]);
      if (rows[0]) return this.created(rows[0]);
      const [existing] = await this.query<{ request_hash: string; job_id: string }>(
        `SELECT request_hash, job_id FROM {{s}}.idempotency_keys WHERE tenant_id = $1 AND key = $2`,
        [job.tenantId, idempotency.key],
      );
      if (!existing) continue; // deleted meanwhile: try again
      if (existing.request_hash !== idempotency.requestHash) return { kind: "key-mismatch" };
      const replay = await this.get({ tenantId: job.tenantId, id: existing.job_id });
      if (replay) return { kind: "replayed", job: replay };
      await this.query(`DELETE FROM {{s}}.idempotency_keys WHERE tenant_id = $1 AND key = $2`, [
        job.tenantId,
        idempotency.key,
      ]);
    }
    throw new Error("idempotency key kept changing under a submit");
  }

  /** The parameters of SQL.insertJob (and the first 16 of SQL.insertJobWithKey). */
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
      this.channel,
      this.nodeId,
      lease?.token ?? null,
      // Capped at the job's deadline, as a claim caps the job's lease_expires_at.
      lease ? Math.min(lease.expiresAt, job.deadlineAt) : null,
      job.watched ?? false,
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
      this.channel,
      this.nodeId,
      items.map((i) => i.job.watched ?? false),
    ];
    let retried = false;
    let rows: JobRow[];
    try {
      rows = await retryTransient((again) => {
        retried = again;
        return this.query<JobRow>(SQL.insertJobs, params);
      });
    } catch (error) {
      if (items.length === 1 || isConnectionError(error)) throw error;
      return Promise.all(
        items.map(async (item) => {
          try {
            const [row] = await this.query<JobRow>(SQL.insertJob, this.jobParams(item, undefined));
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
      const earlier = await this.query<JobRow>(`SELECT ${JOB_COLUMNS} FROM {{s}}.jobs WHERE id = ANY($1)`, [
        missing,
      ]);
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
    if (job.status === "queued") this.events.emit({ kind: "queued", type: job.type, runAt: job.runAt });
    return { kind: "created", job };
  }

  async watch({ tenantId, id }: { tenantId: string; id: string }): Promise<void> {
    const [row] = await this.query<{ status: string; type: string; run_at: number }>(SQL.watch, [
      tenantId,
      id,
      this.channel,
      this.nodeId,
    ]);
    // A queued row written while a claim ran may have been locked by it and left (see SQL.claim):
    // workers are told, here and on other nodes, as for any other write that queues a job.
    if (row?.status === "queued") this.events.emit({ kind: "queued", type: row.type, runAt: row.run_at });
  }

  async get({ tenantId, id }: { tenantId: string; id: string }): Promise<JobRecord | null> {
    const [row] = await this.query<JobRow>(SQL.getJob, [tenantId, id]);
    return row ? toJob(row) : null;
  }

  async list(filter: ListFilter): Promise<JobRecord[]> {
    const range = tenantIdRange(filter.tenantId);
    const rows = await this.query<JobRow>(SQL.listJobs, [
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

  async getResult({ tenantId, id }: { tenantId: string; id: string }): Promise<StoredResult | null> {
    const [row] = await this.query<{
      status: string;
      result_kind: StoredKind | null;
      result_type: string | null;
      result_data: Buffer | null;
      result_location: string | null;
      result_size: number | null;
      result_purged: boolean;
    }>(
      `SELECT status, result_kind, result_type, result_data, result_location, result_size, result_purged
       FROM {{s}}.jobs WHERE tenant_id = $1 AND id = $2`,
      [tenantId, id],
    );
    if (!row || row.status !== "succeeded" || row.result_purged || row.result_kind === null) return null;
    const size = row.result_size ?? 0;
    if (row.result_data === null && row.result_kind !== "none") {
      const token = row.result_location!;
      return {
        kind: row.result_kind,
        contentType: row.result_type,
        location: null,
        size,
        data: null,
        open: () => this.chunkSource(id, token),
      };
    }
    return {
      kind: row.result_kind,
      contentType: row.result_type,
      location: row.result_kind === "created" ? row.result_location : null,
      size,
      data: row.result_data,
      open: null,
    };
  }

  /** A large result, read one chunk per query: memory stays at one chunk whatever the size. */
  private chunkSource(jobId: string, token: string): Readable {
    const read = (seq: number) =>
      this.query<{ data: Buffer }>(
        `SELECT data FROM {{s}}.result_chunks WHERE job_id = $1 AND lease_token = $2 AND seq = $3`,
        [jobId, token, seq],
      );
    async function* chunks() {
      for (let seq = 0; ; seq++) {
        const rows = await read(seq);
        if (!rows[0]) return;
        yield rows[0].data;
      }
    }
    return Readable.from(chunks());
  }

  async cancel({ tenantId, id, now }: { tenantId: string; id: string; now: number }): Promise<CancelOutcome> {
    const problem = JSON.stringify(jobProblem("job-canceled", "the job was canceled"));
    const [row] = await this.query<JobRow>(SQL.finishActive, [
      tenantId,
      id,
      "canceled",
      now,
      problem,
      this.channel,
      this.nodeId,
    ]);
    if (row) {
      this.notifyTerminal(row.id, row.type, "canceled", row.callback !== null);
      return { kind: "canceled", job: toJob(row) };
    }
    const job = await this.get({ tenantId, id });
    if (!job) return { kind: "not-found" };
    if (job.status === "canceled") return { kind: "already-canceled", job };
    return { kind: "finished", job };
  }

  async delete({ tenantId, id, now }: { tenantId: string; id: string; now: number }): Promise<boolean> {
    const problem = JSON.stringify(jobProblem("job-canceled", "the job was canceled (deleted)"));
    const [row] = await this.query<{ status: string; type: string; callback: string | null }>(SQL.deleteJob, [
      tenantId,
      id,
      this.channel,
      this.nodeId,
      now,
      problem,
    ]);
    if (!row) return false;
    if (row.status === "queued" || row.status === "running")
      this.notifyTerminal(id, row.type, "canceled", row.callback !== null);
    return true;
  }

  // --- workers ------------------------------------------------------------------------------

  async claim({
    types: jobTypes,
    limit,
    leaseMs,
    now,
  }: Parameters<Store["claim"]>[0]): Promise<ClaimedJob[]> {
    if (limit <= 0 || jobTypes.length === 0) return [];
    const token = randomUUID();
    let rows: ClaimRow[];
    try {
      rows = await this.query<ClaimRow>(
        SQL.claim,
        [token, now + leaseMs, now, jobTypes, limit],
        this.leasePool,
      );
    } catch (error) {
      // The claim may have committed with its answer lost: hand back whatever it took, so
      // those jobs run now rather than after their lease expires.
      if (isConnectionError(error)) void this.releaseToken(token);
      throw error;
    }
    return rows.map((row) => claimedJob(row, token, now + leaseMs, now)).sort(claimOrder);
  }

  async heartbeat({ leases, leaseMs, now }: Parameters<Store["heartbeat"]>[0]): Promise<string[]> {
    if (leases.length === 0) return [];
    const rows = await this.query<{ id: string }>(
      SQL.heartbeat,
      [now + leaseMs, leases.map((l) => l.id), leases.map((l) => l.leaseToken)],
      this.leasePool,
    );
    const alive = new Set(rows.map((r) => r.id));
    return leases.filter((l) => !alive.has(l.id)).map((l) => l.id);
  }

  async progress(params: Parameters<Store["progress"]>[0]): Promise<boolean> {
    return this.progressWrites.add(params);
  }

  private async progressMany(
    items: { lease: Lease; percent: number | null; message: string | null; now: number }[],
  ): Promise<boolean[]> {
    const sorted = byLeaseId(items);
    const rows = await this.query<{ id: string; lease_token: string; wants_event: boolean }>(
      SQL.progress,
      [
        sorted.map((i) => i.lease.id),
        sorted.map((i) => i.lease.leaseToken),
        sorted.map((i) => i.percent),
        sorted.map((i) => i.message),
        this.channel,
        this.nodeId,
      ],
      this.leasePool,
    );
    for (const row of rows) this.events.emit({ kind: "progress", jobId: row.id });
    const applied = new Set(rows.map((r) => `${r.id}|${r.lease_token}`));
    const withEvents = rows.filter((r) => r.wants_event).map((r) => r.id);
    if (withEvents.length > 0) {
      const now = Math.max(...items.map((i) => i.now));
      await this.query(SQL.progressEvents, [withEvents, now, PROGRESS_EVENT_INTERVAL_MS]);
      this.events.emit({ kind: "outbox", at: now });
    }
    return items.map((i) => applied.has(`${i.lease.id}|${i.lease.leaseToken}`));
  }

  /** Release the jobs a claim with this token may hold, retrying while the database is away. */
  private async releaseToken(token: string): Promise<void> {
    try {
      const now = Date.now();
      const rows = await retryTransient(() =>
        this.query<{ type: string }>(SQL.releaseToken, [token, now, this.channel, this.nodeId]),
      );
      for (const type of new Set(rows.map((r) => r.type)))
        this.events.emit({ kind: "queued", type, runAt: now });
    } catch (error) {
      this.options.logger?.warn(
        { err: error, token },
        "could not release a failed claim; its jobs wait for their lease",
      );
    }
  }

  complete(params: CompleteParams): Promise<boolean> {
    return this.completeMany([params]).then((applied) => applied[0]!);
  }

  async completeMany(items: readonly CompleteParams[]): Promise<boolean[]> {
    // Most results are stored inline, in the completion's own row: no write of their own first.
    const columns = items.map((item) => this.inlineColumns(item.result));
    if (columns.includes(null)) {
      await Promise.all(
        items.map(async (item, i) => {
          columns[i] ??= await this.placeChunks(item.lease, item.result);
        }),
      );
    }
    const writes = items.map((item, i) => ({
      lease: item.lease,
      result: columns[i]!,
      now: item.now,
      outbox: item.hasCallback !== false,
    }));
    const applied: boolean[] = [];
    for (let i = 0; i < writes.length; i += MAX_BATCH) {
      // Each statement's jobs are announced as soon as it commits, whatever the next one does.
      const part = writes.slice(i, i + MAX_BATCH);
      const done = await this.completeBatch(part);
      const fenced: Lease[] = [];
      part.forEach(({ lease, result }, k) => {
        const completed = done[k];
        if (completed) this.notifyTerminal(lease.id, completed.type, "succeeded", completed.hasCallback);
        else if (result.chunked) fenced.push(lease);
        applied.push(Boolean(completed));
      });
      // Fenced: those attempts lost their leases; their chunks must not survive (retention
      // removes any this misses, with their job).
      for (const lease of fenced) {
        await this.query(`DELETE FROM {{s}}.result_chunks WHERE job_id = $1 AND lease_token = $2`, [
          lease.id,
          lease.leaseToken,
        ]).catch((error: unknown) =>
          this.options.logger?.warn(
            { err: error, jobId: lease.id },
            "could not delete a fenced result's chunks",
          ),
        );
      }
    }
    return applied;
  }

  /** One statement for the batch; tried again while the connection fails. */
  private async completeBatch(writes: CompletionWrite[]): Promise<(Completed | null)[]> {
    try {
      return await this.writeCompletions(writes);
    } catch (error) {
      // The lease fences the write, so trying again is safe; giving up would leave the jobs
      // running until their leases expire, and then run them again.
      return retryTransient(
        async () => {
          const done = await this.writeCompletions(writes);
          // Nothing to update: did an earlier try commit before its answer was lost?
          return Promise.all(done.map((d, i) => d ?? this.completedBy(writes[i]!.lease, writes[i]!.result)));
        },
        { error },
      );
    }
  }

  /** After a lost answer: the job as this attempt completed it, or null if it did not. */
  private async completedBy(lease: Lease, columns: StoredColumns): Promise<Completed | null> {
    const [row] = await this.query<{
      type: string;
      status: string;
      result_location: string | null;
      has_callback: boolean;
    }>(
      `SELECT type, status, result_location, callback IS NOT NULL AS has_callback FROM {{s}}.jobs WHERE id = $1`,
      [lease.id],
    );
    if (row?.status !== "succeeded") return null;
    // Chunked results name their attempt; inline ones cannot tell, and another attempt can only
    // have won if this one's lease was lost, in which case its result was discarded either way.
    if (columns.chunked && row.result_location !== lease.leaseToken) return null;
    return { type: row.type, hasCallback: row.has_callback };
  }

  private async writeCompletions(writes: CompletionWrite[]): Promise<(Completed | null)[]> {
    // A batch of jobs without callbacks skips the outbox CTEs (a fifth of the database's work).
    const sorted = byLeaseId(writes);
    // The batch's distinct lease tokens (most often one: a claim's), each job naming its own.
    const tokens: string[] = [];
    const tokenIndex = new Map<string, number>();
    const indexes = sorted.map(({ lease }) => {
      let index = tokenIndex.get(lease.leaseToken);
      if (index === undefined) {
        index = tokens.push(lease.leaseToken);
        tokenIndex.set(lease.leaseToken, index);
      }
      return index;
    });
    const rows = await this.query<{ id: string; type: string; t: number; has_callback: boolean }>(
      writes.some((w) => w.outbox) ? SQL.completeMany : SQL.completeManyLean,
      [
        arrayParam(sorted.map((w) => w.lease.id)),
        arrayParam(indexes),
        arrayParam(sorted.map((w) => (w.result.kind === "none" ? null : w.result.kind))),
        arrayParam(sorted.map((w) => w.result.contentType)),
        arrayParam(sorted.map((w) => w.result.data)),
        arrayParam(sorted.map((w) => w.result.location)),
        arrayParam(sorted.map((w) => w.result.size)),
        arrayParam(sorted.map((w) => w.now)),
        this.channel,
        this.nodeId,
        arrayParam(tokens),
      ],
    );
    const done = new Map(rows.map((r) => [r.id, r]));
    return writes.map(({ lease }) => {
      const row = done.get(lease.id);
      return row && tokens[row.t - 1] === lease.leaseToken
        ? { type: row.type, hasCallback: row.has_callback }
        : null;
    });
  }

  /** The columns of a result stored in the job's row, or null for one too large for it. */
  private inlineColumns(result: ResultPayload): StoredColumns | null {
    const base = { chunked: false, contentType: null as string | null, location: null as string | null };
    switch (result.kind) {
      case "none":
        return NO_RESULT;
      case "created": {
        const data = Buffer.from(result.json);
        return {
          ...base,
          kind: "created",
          contentType: "application/json",
          data,
          location: result.location,
          size: data.length,
        };
      }
      case "file":
        return null; // always placed by placeChunks, which reads and removes the file
      case "json":
      case "bytes": {
        const size = result.kind === "json" ? Buffer.byteLength(result.json) : result.data.byteLength;
        if (size > this.inlineResultBytes) return null;
        return { ...base, kind: result.kind, ...payloadBytes(result), size };
      }
    }
  }

  /**
   * Store a large result in chunks keyed by the attempt's lease token (a fenced attempt can
   * never overwrite the winner's); the columns point at them.
   */
  private async placeChunks(lease: Lease, result: ResultPayload): Promise<StoredColumns> {
    if (result.kind === "file") {
      try {
        return await this.placeFileChunks(lease, result);
      } finally {
        await discardFile(result.path);
      }
    }
    if (result.kind !== "json" && result.kind !== "bytes")
      throw new Error(`${result.kind} results are inline`);
    const { data, contentType } = payloadBytes(result);
    const seqs: number[] = [];
    const chunks: Buffer[] = [];
    for (let offset = 0, seq = 0; offset < data.length; offset += CHUNK_BYTES, seq++) {
      seqs.push(seq);
      chunks.push(data.subarray(offset, offset + CHUNK_BYTES));
    }
    await this.query(
      `INSERT INTO {{s}}.result_chunks (job_id, lease_token, seq, data)
       SELECT $1, $2, s, d FROM unnest($3::int[], $4::bytea[]) AS c(s, d)`,
      [lease.id, lease.leaseToken, seqs, chunks],
    );
    return {
      chunked: true,
      kind: result.kind,
      contentType,
      data: null,
      location: lease.leaseToken,
      size: data.length,
    };
  }

  /**
   * A file result streamed in, a few chunks per statement: memory holds one statement's chunks
   * whatever the file's size. Chunks of an attempt that then loses its lease are deleted as a
   * fenced inline-too-large result's are.
   */
  private async placeFileChunks(
    lease: Lease,
    result: Extract<ResultPayload, { kind: "file" }>,
  ): Promise<StoredColumns> {
    let seq = 0;
    let size = 0;
    let batch: Buffer[] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      const seqs = batch.map((_, i) => seq - batch.length + i);
      await this.query(
        `INSERT INTO {{s}}.result_chunks (job_id, lease_token, seq, data)
         SELECT $1, $2, s, d FROM unnest($3::int[], $4::bytea[]) AS c(s, d)`,
        [lease.id, lease.leaseToken, seqs, batch],
      );
      batch = [];
    };
    for await (const chunk of fileChunks(result.path, CHUNK_BYTES)) {
      batch.push(chunk);
      seq++;
      size += chunk.length;
      if (batch.length === FILE_CHUNKS_PER_INSERT) await flush();
    }
    await flush();
    return {
      chunked: true,
      kind: "bytes",
      contentType: result.contentType,
      data: null,
      location: lease.leaseToken,
      size,
    };
  }

  async fail({ lease, error, retryAt, now }: Parameters<Store["fail"]>[0]): Promise<boolean> {
    const params = [
      lease.id,
      lease.leaseToken,
      retryAt === null ? now : retryAt,
      JSON.stringify(error),
      this.channel,
      this.nodeId,
    ];
    // As in complete: fenced by the lease (a retry after a lost answer finds nothing to update
    // and reports false).
    const [row] = await retryTransient(() =>
      this.query<{ type: string; callback?: string | null }>(
        retryAt === null ? SQL.failFinal : SQL.failRetry,
        params,
      ),
    );
    if (!row) return false;
    if (retryAt === null) this.notifyTerminal(lease.id, row.type, "failed", (row.callback ?? null) !== null);
    else this.events.emit({ kind: "queued", type: row.type, runAt: retryAt });
    return true;
  }

  async release({ leases, now }: Parameters<Store["release"]>[0]): Promise<number> {
    if (leases.length === 0) return 0;
    const sorted = byLeaseId(leases);
    const rows = await this.query<{ type: string }>(SQL.release, [
      now,
      sorted.map((l) => l.id),
      sorted.map((l) => l.leaseToken),
      this.channel,
      this.nodeId,
    ]);
    for (const type of new Set(rows.map((r) => r.type)))
      this.events.emit({ kind: "queued", type, runAt: now });
    return rows.length;
  }

  // --- maintenance: SKIP LOCKED, so many nodes never sweep the same row twice -----------------

  async sweepExpiredLeases({
    now,
    retryDelayMs,
    limit,
  }: Parameters<Store["sweepExpiredLeases"]>[0]): Promise<number> {
    // The statement writes each job's own detail over the empty one.
    const params = [
      now,
      limit,
      now + retryDelayMs,
      JSON.stringify(jobProblem("job-failed", "")),
      " lost its lease (the worker crashed, stalled or was cut off)",
      this.channel,
      this.nodeId,
    ];
    return this.sweepByLeaseRows(SQL.sweepLeases, params, limit, (row) => {
      if (row.status === "failed") this.notifyTerminal(row.id, row.type, "failed", row.callback !== null);
      else this.events.emit({ kind: "queued", type: row.type, runAt: now + retryDelayMs });
    });
  }

  async sweepDeadlines({ now, limit }: Parameters<Store["sweepDeadlines"]>[0]): Promise<number> {
    const problem = JSON.stringify(jobProblem("job-timed-out", ""));
    return this.sweepByLeaseRows(
      SQL.sweepDeadlines,
      [now, limit, problem, this.channel, this.nodeId],
      limit,
      (row) => this.notifyTerminal(row.id, row.type, "timed_out", row.callback !== null),
    );
  }

  /**
   * A sweep through lease rows (`limit` of them a statement), repeated while a statement took
   * a full batch of rows yet moved fewer than `limit` jobs: the rows of claims whose jobs have
   * all ended move none, and must not hold back the rows after them. `moved` is told of each job
   * moved. Returns how many; `limit` or more tells the caller to call again.
   */
  private async sweepByLeaseRows(
    sql: string,
    params: unknown[],
    limit: number,
    moved: (row: SweptRow) => void,
  ): Promise<number> {
    // Ends: every lease row a statement takes leaves the rows it takes from (removed, left to
    // the deadline sweep, or due at a later deadline).
    let total = 0;
    while (total < limit) {
      // One row at least, carrying how many lease rows the statement took; a job's row has an id.
      const rows = await this.query<{ leases: number } & (SweptRow | { id: null })>(sql, params);
      for (const row of rows) {
        if (row.id === null) continue;
        total++;
        moved(row);
      }
      if (rows[0]!.leases < limit) break;
    }
    return total;
  }

  async purgeExpired(params: Parameters<Store["purgeExpired"]>[0]): Promise<PurgeResult> {
    const [deleted] = await this.query<{ n: number }>(SQL.deleteFinished, [
      params.jobsBefore,
      params.limit,
      idTimeBound(params.jobsBefore),
    ]);
    const [purged] = await this.query<{ n: number }>(SQL.purgeResults, [
      params.resultsBefore,
      params.limit,
      idTimeBound(params.resultsBefore),
    ]);
    const idem = await this.pool.query(this.t(`DELETE FROM {{s}}.idempotency_keys WHERE created_at < $1`), [
      params.idempotencyBefore,
    ]);
    await this.query(
      `WITH ev AS (
         DELETE FROM {{s}}.webhook_events WHERE id IN (
           SELECT id FROM {{s}}.webhook_events WHERE status <> 'pending' AND occurred_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)
         RETURNING id)
       DELETE FROM {{s}}.webhook_attempts WHERE event_id IN (SELECT id FROM ev)`,
      [params.jobsBefore, params.limit],
    );
    return {
      jobsDeleted: Number(deleted!.n),
      resultsPurged: Number(purged!.n),
      idempotencyDeleted: idem.rowCount ?? 0,
    };
  }

  async nextRunAt({ types: jobTypes }: { types: string[] }): Promise<number | null> {
    const [row] = await this.query<{ run_at: number | null }>(
      `SELECT min(run_at) AS run_at FROM {{s}}.jobs WHERE waiting AND run_at > created_at AND type = ANY($1)`,
      [jobTypes],
    );
    return row?.run_at ?? null;
  }

  async terminalIds({ ids }: { ids: string[] }): Promise<string[]> {
    if (ids.length === 0) return [];
    const rows = await this.query<{ id: string }>(
      `SELECT c.id FROM unnest($1::text[]) AS c(id) LEFT JOIN {{s}}.jobs j ON j.id = c.id
       WHERE j.id IS NULL OR j.status NOT IN ('queued', 'running')`,
      [ids],
    );
    return rows.map((r) => r.id);
  }

  // --- callbacks ----------------------------------------------------------------------------

  async claimDeliveries({
    limit,
    leaseMs,
    now,
    skipTenants = [],
  }: Parameters<Store["claimDeliveries"]>[0]): Promise<ClaimedDelivery[]> {
    const token = randomUUID();
    const rows = await this.query<OutboxRow>(
      `UPDATE {{s}}.webhook_events SET lease_token = $1, lease_expires_at = $2
       WHERE id IN (
         SELECT id FROM {{s}}.webhook_events
         WHERE status = 'pending' AND next_attempt_at <= $3 AND (lease_expires_at IS NULL OR lease_expires_at <= $3)
           AND NOT (tenant_id = ANY($5::text[]))
         ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)
       RETURNING *`,
      [token, now + leaseMs, now, limit, skipTenants],
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
    const rows = await this.query<{ event_id: string }>(
      `WITH upd AS (
         UPDATE {{s}}.webhook_events SET body = coalesce(body, $3), attempts = $4, status = $5,
           next_attempt_at = coalesce($6, next_attempt_at), lease_token = NULL, lease_expires_at = NULL
         WHERE id = $1 AND lease_token = $2 RETURNING id, job_id)
       INSERT INTO {{s}}.webhook_attempts (event_id, attempt, job_id, event, at, status_code, latency_ms, error, next_attempt_at)
       SELECT id, $4, job_id, $7, $8, $9, $10, $11, $6 FROM upd RETURNING event_id`,
      [
        eventId,
        leaseToken,
        body,
        attempt.attempt,
        outcome === "retry" ? "pending" : outcome,
        attempt.nextAttemptAt,
        attempt.event,
        attempt.at,
        attempt.statusCode,
        attempt.latencyMs,
        attempt.error,
      ],
    );
    if (rows.length > 0 && attempt.nextAttemptAt !== null)
      this.events.emit({ kind: "outbox", at: attempt.nextAttemptAt });
    return rows.length > 0;
  }

  async listDeliveries({ tenantId, jobId }: { tenantId: string; jobId: string }): Promise<DeliveryAttempt[]> {
    const rows = await this.query<AttemptRow>(
      `SELECT a.* FROM {{s}}.webhook_attempts a JOIN {{s}}.webhook_events e ON e.id = a.event_id
       WHERE a.job_id = $1 AND e.tenant_id = $2 ORDER BY a.at, a.event_id, a.attempt`,
      [jobId, tenantId],
    );
    return rows.map(toAttempt);
  }

  async nextDeliveryAt(): Promise<number | null> {
    const [row] = await this.query<{ at: number | null }>(
      `SELECT min(next_attempt_at) AS at FROM {{s}}.webhook_events WHERE status = 'pending'`,
    );
    return row?.at ?? null;
  }

  async webhookSecrets({ tenantId, now }: { tenantId: string; now: number }): Promise<string[]> {
    // As in ensureTenant: a concurrent first use's row is invisible to this statement's
    // snapshot, so an empty answer means "ask again", and the next statement sees it.
    for (let attempt = 1; ; attempt++) {
      const [row] = await this.query<SecretRow>(
        `WITH ins AS (
           INSERT INTO {{s}}.webhook_secrets (tenant_id, secret, updated_at) VALUES ($1, $2, $3)
           ON CONFLICT (tenant_id) DO NOTHING RETURNING secret, previous_secret, previous_until)
         SELECT * FROM ins UNION ALL
         SELECT secret, previous_secret, previous_until FROM {{s}}.webhook_secrets WHERE tenant_id = $1`,
        [tenantId, generateWebhookSecret(), now],
      );
      if (row) return secretsOf(row, now);
      if (attempt === 3)
        throw new Error(`the webhook secret of tenant ${tenantId} could be neither created nor read`);
    }
  }

  async rotateWebhookSecret(params: Parameters<Store["rotateWebhookSecret"]>[0]): Promise<string[]> {
    const tenantId = await this.ensureTenant({ name: params.tenantName, now: params.now });
    const [row] = await this.query<SecretRow>(
      `INSERT INTO {{s}}.webhook_secrets (tenant_id, secret, updated_at) VALUES ($1, $2, $3)
       ON CONFLICT (tenant_id) DO UPDATE SET previous_secret = webhook_secrets.secret, previous_until = $4,
         secret = $2, updated_at = $3
       RETURNING secret, previous_secret, previous_until`,
      [tenantId, params.secret, params.now, params.previousUntil],
    );
    return secretsOf(row!, params.now);
  }

  // --- tenants and keys ---------------------------------------------------------------------

  async ensureTenant({ name, now }: { name: string; now: number }): Promise<string> {
    // When another transaction inserts the same name concurrently, ON CONFLICT waits for it and
    // does nothing, but this statement's snapshot predates that row: the SELECT finds nothing.
    // The next statement's snapshot sees it (READ COMMITTED).
    for (let attempt = 1; ; attempt++) {
      const [row] = await this.query<{ id: string }>(
        `WITH ins AS (INSERT INTO {{s}}.tenants (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING RETURNING id)
         SELECT id FROM ins UNION ALL SELECT id FROM {{s}}.tenants WHERE name = $2`,
        [randomUUID(), name, now],
      );
      if (row) return row.id;
      if (attempt === 3) throw new Error(`tenant ${name} could be neither created nor read`);
    }
  }

  async createApiKey(params: Parameters<Store["createApiKey"]>[0]): Promise<ApiKeyRecord> {
    const tenantId = await this.ensureTenant({ name: params.tenantName, now: params.now });
    await this.query(
      `INSERT INTO {{s}}.api_keys (id, tenant_id, prefix, hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
      [params.keyId, tenantId, params.prefix, params.hash, params.now, params.expiresAt ?? null],
    );
    const [row] = await this.query<KeyRow>(
      `SELECT ${KEY_COLUMNS} FROM {{s}}.api_keys k JOIN {{s}}.tenants t ON t.id = k.tenant_id WHERE k.id = $1`,
      [params.keyId],
    );
    return toKey(row!);
  }

  async lookupApiKey({ hash, now }: { hash: string; now: number }): Promise<StoredApiKey | null> {
    // Any state: authentication tells live, revoked and expired apart (for the audit log only).
    const [row] = await this.query<KeyRowWithHash>(
      `SELECT ${KEY_COLUMNS}, k.hash FROM {{s}}.api_keys k JOIN {{s}}.tenants t ON t.id = k.tenant_id WHERE k.hash = $1`,
      [hash],
    );
    if (!row) return null;
    const key = toStoredKey(row, now);
    if (
      key.state === "live" &&
      (row.last_used_at === null || row.last_used_at < now - KEY_TOUCH_INTERVAL_MS)
    ) {
      void this.query(`UPDATE {{s}}.api_keys SET last_used_at = $1 WHERE id = $2`, [now, row.id]).catch(
        () => undefined,
      );
    }
    return key;
  }

  async rotateApiKey(
    params: Parameters<Store["rotateApiKey"]>[0],
  ): Promise<{ previous: ApiKeyRecord; key: ApiKeyRecord } | null> {
    // One statement, so one transaction: shorten the live old key and insert the new one for
    // its tenant; neither happens when no live key matched.
    const [ids] = await this.query<{ previous: string; key: string }>(
      `WITH old AS (
         UPDATE {{s}}.api_keys
            SET expires_at = CASE WHEN expires_at IS NULL OR expires_at > $6::bigint THEN $6::bigint ELSE expires_at END
          WHERE id = (SELECT id FROM {{s}}.api_keys
                       WHERE (id = $1 OR prefix = $1) AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $7::bigint)
                       LIMIT 1)
          RETURNING id, tenant_id
       ), ins AS (
         INSERT INTO {{s}}.api_keys (id, tenant_id, prefix, hash, created_at, expires_at)
         SELECT $2::text, tenant_id, $3::text, $4::text, $7::bigint, $5::bigint FROM old
         RETURNING id
       )
       SELECT old.id AS previous, ins.id AS key FROM old, ins`,
      [
        params.idOrPrefix,
        params.keyId,
        params.prefix,
        params.hash,
        params.expiresAt,
        params.overlapUntil,
        params.now,
      ],
    );
    if (!ids) return null;
    const rows = await this.query<KeyRow>(
      `SELECT ${KEY_COLUMNS} FROM {{s}}.api_keys k JOIN {{s}}.tenants t ON t.id = k.tenant_id WHERE k.id = ANY($1)`,
      [[ids.previous, ids.key]],
    );
    const byId = new Map(rows.map((row) => [row.id, toKey(row)]));
    return { previous: byId.get(ids.previous)!, key: byId.get(ids.key)! };
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    const rows = await this.query<KeyRow>(
      `SELECT ${KEY_COLUMNS} FROM {{s}}.api_keys k JOIN {{s}}.tenants t ON t.id = k.tenant_id ORDER BY k.created_at`,
    );
    return rows.map(toKey);
  }

  async revokeApiKey({ idOrPrefix, now }: { idOrPrefix: string; now: number }): Promise<boolean> {
    const rows = await this.query<{ id: string }>(
      `UPDATE {{s}}.api_keys SET revoked_at = $1 WHERE (id = $2 OR prefix = $2) AND revoked_at IS NULL RETURNING id`,
      [now, idOrPrefix],
    );
    return rows.length > 0;
  }

  // --- limits and quotas ----------------------------------------------------------------------

  async listTenants(): Promise<TenantRecord[]> {
    const rows = await this.query<TenantRow>(`SELECT ${TENANT_COLUMNS} FROM {{s}}.tenants ORDER BY name`);
    return rows.map(toTenant);
  }

  async tenantLimits({ tenantId }: { tenantId: string }): Promise<TenantLimits> {
    const [row] = await this.query<TenantRow>(
      `SELECT submit_rate, poll_rate, max_queued FROM {{s}}.tenants WHERE id = $1`,
      [tenantId],
    );
    return row ? toLimits(row) : { ...NO_LIMITS };
  }

  async setTenantLimits(params: Parameters<Store["setTenantLimits"]>[0]): Promise<TenantRecord> {
    const id = await this.ensureTenant({ name: params.tenantName, now: params.now });
    const { columns, values } = limitUpdates(params.limits);
    const set = columns.map((c, i) => `${c} = $${i + 2}`).join(", ");
    const [row] = await this.query<TenantRow>(
      columns.length === 0
        ? `SELECT ${TENANT_COLUMNS} FROM {{s}}.tenants WHERE id = $1`
        : `UPDATE {{s}}.tenants SET ${set} WHERE id = $1 RETURNING ${TENANT_COLUMNS}`,
      [id, ...values],
    );
    return toTenant(row!);
  }

  async countQueued({ tenantId }: { tenantId: string }): Promise<number> {
    const [row] = await this.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM {{s}}.jobs WHERE tenant_id = $1 AND waiting`,
      [tenantId],
    );
    return row!.n;
  }

  private readonly rateHits = new Batcher<RateHit, number>((hits) => this.rateHitMany(hits));
  private rateCountersPurgedAt = 0;

  hitRateCounter(hit: RateHit): Promise<number> {
    return this.rateHits.add(hit);
  }

  /**
   * The hits of one event-loop turn in one statement (one round trip), on the pool that does
   * not wait for the WAL flush: a lost count merely forgives a request. Each hit gets the
   * counter's value as it was right after that hit (the batch is applied in order).
   */
  private async rateHitMany(hits: RateHit[]): Promise<number[]> {
    const group = new Map<string, { key: string; windowStart: number; n: number; expiresAt: number }>();
    for (const h of hits) {
      const id = `${h.windowStart}|${h.key}`;
      const g = group.get(id);
      if (g) {
        g.n++;
        g.expiresAt = Math.max(g.expiresAt, h.expiresAt);
      } else group.set(id, { key: h.key, windowStart: h.windowStart, n: 1, expiresAt: h.expiresAt });
    }
    const groups = [...group.values()];
    const rows = await this.query<{ key: string; window_start: string | number; hits: number }>(
      `INSERT INTO {{s}}.rate_counters AS c (key, window_start, hits, expires_at)
       SELECT * FROM unnest($1::text[], $2::bigint[], $3::int[], $4::bigint[])
       ON CONFLICT (key, window_start) DO UPDATE SET hits = c.hits + excluded.hits
       RETURNING key, window_start, hits`,
      [
        groups.map((g) => g.key),
        groups.map((g) => g.windowStart),
        groups.map((g) => g.n),
        groups.map((g) => g.expiresAt),
      ],
      this.leasePool,
    );
    // The total after the batch; hand it out backwards so each hit sees its own position.
    const after = new Map(rows.map((r) => [`${Number(r.window_start)}|${r.key}`, r.hits]));
    const out = new Array<number>(hits.length);
    for (let i = hits.length - 1; i >= 0; i--) {
      const id = `${hits[i]!.windowStart}|${hits[i]!.key}`;
      const value = after.get(id) ?? 0;
      out[i] = value;
      after.set(id, value - 1);
    }
    const now = Date.now();
    if (now - this.rateCountersPurgedAt > 60_000) {
      this.rateCountersPurgedAt = now;
      void this.query(`DELETE FROM {{s}}.rate_counters WHERE expires_at < $1`, [now], this.leasePool).catch(
        () => undefined,
      );
    }
    return out;
  }

  /** Drop the schema and everything in it (tests). */
  async dropSchema(): Promise<void> {
    await this.pool.query(`DROP SCHEMA IF EXISTS ${this.schema} CASCADE`);
  }
}

interface StoredColumns {
  kind: StoredKind;
  contentType: string | null;
  data: Buffer | null;
  location: string | null;
  /** Bytes of the result; null when there is none. */
  size: number | null;
  chunked: boolean;
}

/** A completion on its way to the statement. */
interface CompletionWrite {
  lease: Lease;
  result: StoredColumns;
  now: number;
  /** The job may have a callback: write the outbox event its terminal move owes. */
  outbox: boolean;
}

/** A job a sweep moved, as its statement reports it. */
interface SweptRow {
  id: string;
  type: string;
  /** The lease sweep's: queued again, or failed. */
  status?: JobRecord["status"];
  callback: string | null;
}

/** What a completion's statement reports of a completed job. */
interface Completed {
  type: string;
  hasCallback: boolean;
}

/** A JSON or bytes result's bytes and content type. */
function payloadBytes(result: Extract<ResultPayload, { kind: "json" | "bytes" }>): {
  data: Buffer;
  contentType: string;
} {
  return result.kind === "json"
    ? { data: Buffer.from(result.json), contentType: "application/json" }
    : { data: Buffer.from(result.data), contentType: result.contentType };
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

/** The columns of a handler that returned nothing (most of them): one shared object. */
const NO_RESULT: Readonly<StoredColumns> = Object.freeze({
  kind: "none",
  contentType: null,
  data: null,
  location: null,
  size: null,
  chunked: false,
});
