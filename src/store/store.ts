/**
 * The Store: the one seam between Tessera and its database. The job table is also the queue.
 *
 * Glossary
 * - tenant: the owner of jobs and API keys; every read and write names one (isolation, P6).
 * - attempt: a numbered try at running a job; a claim increments it.
 * - lease: a running attempt's claim on its job, `leaseToken` + `leaseExpiresAt`; heartbeats
 *   extend it. The token is the fence: every worker write names it, and a write whose lease is
 *   gone applies to 0 rows, which the caller sees as `false` / `null` and acts on.
 * - terminal: succeeded, failed, canceled or timed_out; recorded exactly once (P4).
 * - now: every method that compares with the clock takes it, so tests backdate instead of sleeping.
 *
 * All times are unix epoch milliseconds. Methods are async so that a network database can
 * implement the same interface; drivers keep connections and transactions to themselves.
 */
import type { JobProblem } from "../jobs/errors.js";
import type { JobStatus } from "../jobs/states.js";
import type { Readable } from "node:stream";

export interface CallbackSpec {
  url: string;
  events?: string[];
  verify?: boolean;
}

/** A result as a worker hands it to the store; the driver decides where the bytes live. */
export type ResultPayload =
  | { kind: "none" }
  | { kind: "json"; json: string }
  | { kind: "bytes"; contentType: string; data: Uint8Array }
  | { kind: "created"; location: string; json: string };

/** A stored result as the result resource serves it: small ones inline, large ones streamed. */
export interface StoredResult {
  kind: ResultPayload["kind"];
  contentType: string | null;
  /** Where a `created` result's resource lives. */
  location: string | null;
  size: number;
  /** The bytes when kept inline, else null and `open` streams them. */
  data: Uint8Array | null;
  open: (() => Readable) | null;
}

export interface JobRecord {
  id: string;
  tenantId: string;
  type: string;
  status: JobStatus;
  input: unknown;
  priority: number;
  runAt: number;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  deadlineAt: number;
  attempt: number;
  maxAttempts: number;
  progressPercent: number | null;
  progressMessage: string | null;
  error: JobProblem | null;
  metadata: Record<string, string>;
  callback: CallbackSpec | null;
  /** True once retention removed the result while the job record stays (result is `410`). */
  resultPurged: boolean;
}

/** A job handed to a worker by `claim`: the record plus its lease. */
export interface ClaimedJob extends JobRecord {
  leaseToken: string;
  leaseExpiresAt: number;
}

export interface NewJob {
  id: string;
  tenantId: string;
  type: string;
  input: unknown;
  priority: number;
  runAt: number;
  deadlineAt: number;
  maxAttempts: number;
  metadata: Record<string, string>;
  callback: CallbackSpec | null;
}

export interface IdempotencyClaim {
  key: string;
  /** SHA-256 of the canonical request (tenant, method, path, canonical JSON body). */
  requestHash: string;
}

export type SubmitOutcome =
  | { kind: "created"; job: JobRecord }
  | { kind: "replayed"; job: JobRecord }
  | { kind: "key-mismatch" };

export interface Lease {
  id: string;
  leaseToken: string;
}

export type CancelOutcome =
  | { kind: "canceled"; job: JobRecord }
  | { kind: "already-canceled"; job: JobRecord }
  | { kind: "finished"; job: JobRecord }
  | { kind: "not-found" };

export interface ListFilter {
  tenantId: string;
  status?: JobStatus;
  type?: string;
  limit: number;
  /** Exclusive upper bound of the page: (createdAt, id) of the last item already seen. */
  before?: { createdAt: number; id: string };
}

/** Published after the change it reports is committed. */
export type StoreEvent =
  | { kind: "queued"; type: string; runAt: number }
  | { kind: "terminal"; jobId: string; type: string; status: JobStatus }
  /** Events may have been missed (a notification connection was lost): look again. */
  | { kind: "resync" };

export interface PurgeResult {
  resultsPurged: number;
  jobsDeleted: number;
  idempotencyDeleted: number;
}

export interface ApiKeyRecord {
  id: string;
  tenantId: string;
  tenantName: string;
  prefix: string;
  createdAt: number;
  revokedAt: number | null;
  lastUsedAt: number | null;
}

export interface Store {
  /** Apply migrations; refuses a schema newer than this build knows. */
  migrate(): Promise<void>;
  /** Cheap liveness probe of the database, for `/readyz`. */
  ping(): Promise<void>;
  close(): Promise<void>;
  /** Listen for committed changes (this process's, and other nodes' where the driver can). */
  subscribe(listener: (event: StoreEvent) => void): () => void;

  // --- submit and read (API side); every read is scoped by tenant -----------------------
  /**
   * Insert a job durably, with its idempotency record in the same transaction. Resolves after
   * the commit (fsync'd). With a key already used by the same request: the existing job.
   */
  submit(params: { job: NewJob; idempotency: IdempotencyClaim | null; now: number }): Promise<SubmitOutcome>;
  get(params: { tenantId: string; id: string }): Promise<JobRecord | null>;
  list(filter: ListFilter): Promise<JobRecord[]>;
  /** The stored result of a succeeded job; null when there is none (or it was purged). */
  getResult(params: { tenantId: string; id: string }): Promise<StoredResult | null>;
  cancel(params: { tenantId: string; id: string; now: number }): Promise<CancelOutcome>;
  /** Cancel if active, then delete the job, its result and idempotency record. False: not found. */
  delete(params: { tenantId: string; id: string; now: number }): Promise<boolean>;

  // --- workers; every write names its lease and says whether it applied ------------------
  /** Claim up to `limit` runnable jobs of `types`, highest priority first, in one statement. */
  claim(params: { types: string[]; limit: number; leaseMs: number; now: number }): Promise<ClaimedJob[]>;
  /** Extend leases; returns the ids whose lease is gone (abort their handlers). */
  heartbeat(params: { leases: Lease[]; leaseMs: number; now: number }): Promise<string[]>;
  progress(params: { lease: Lease; percent: number | null; message: string | null }): Promise<boolean>;
  complete(params: { lease: Lease; result: ResultPayload; now: number }): Promise<boolean>;
  /** A failed attempt: back to queued at `retryAt` when given, else terminal `failed`. */
  fail(params: { lease: Lease; error: JobProblem; retryAt: number | null; now: number }): Promise<boolean>;
  /** Hand leased jobs back to the queue untouched (graceful shutdown); the attempt is not counted. */
  release(params: { leases: Lease[]; now: number }): Promise<number>;

  // --- maintenance; batched, safe to run on many nodes -----------------------------------
  /** Running jobs whose lease expired: requeued (attempts left) or failed. Returns how many. */
  sweepExpiredLeases(params: { now: number; retryDelayMs: number; limit: number }): Promise<number>;
  /** Active jobs past `deadlineAt` become `timed_out`. Returns how many. */
  sweepDeadlines(params: { now: number; limit: number }): Promise<number>;
  /** Drop results finished before `resultsBefore`, jobs finished before `jobsBefore`. */
  purgeExpired(params: {
    resultsBefore: number;
    jobsBefore: number;
    idempotencyBefore: number;
    limit: number;
  }): Promise<PurgeResult>;
  /** Of these job ids, those now terminal or gone (the waits' fallback poll; one query for all). */
  terminalIds(params: { ids: string[] }): Promise<string[]>;
  /** Earliest `runAt` of a queued job among `types` (to sleep until it), or null. */
  nextRunAt(params: { types: string[] }): Promise<number | null>;

  // --- tenants and API keys --------------------------------------------------------------
  createApiKey(params: { tenantName: string; keyId: string; prefix: string; hash: string; now: number }): Promise<ApiKeyRecord>;
  /** The live key with this hash (not revoked), touching its last-used time. */
  findApiKey(params: { hash: string; now: number }): Promise<ApiKeyRecord | null>;
  listApiKeys(): Promise<ApiKeyRecord[]>;
  /** Revoke by id or prefix; returns whether a key was revoked. */
  revokeApiKey(params: { idOrPrefix: string; now: number }): Promise<boolean>;
  /** The tenant's id, creating it when missing (the `--dev` tenant, key creation). */
  ensureTenant(params: { name: string; now: number }): Promise<string>;
}
