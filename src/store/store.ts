/**
 * The Store: the one seam between Tessera and its database. The job table is also the queue.
 *
 * Glossary
 * - tenant: the owner of jobs and API keys; every read and write names one (isolation, P6).
 * - attempt: a numbered try at running a job; a claim increments it.
 * - lease: a running attempt's claim on its job, `leaseToken` + `leaseExpiresAt`; heartbeats
 *   extend it. The token is the fence: every worker write names it, and a write whose lease is
 *   gone applies to 0 rows, which the caller sees as `false` / `null` and acts on.
 * - terminal: succeeded, failed, canceled or timed_out; recorded exactly once (P4). Every
 *   terminal move of a job submitted with `lifecycleEvents` keeps its lifecycle event
 *   (src/events/lifecycle.ts) in the same commit, and every one but a completion announces it
 *   (`{ kind: "events" }`; a completion's is dispatched by its worker).
 * - now: every method that compares with the clock takes it, so tests backdate instead of sleeping.
 *
 * All times are unix epoch milliseconds. Methods are async so that a network database can
 * implement the same interface; drivers keep connections and transactions to themselves.
 */
import type { JobProblem } from "../jobs/errors.js";
import type { JobStatus } from "../jobs/states.js";
import type { Readable } from "node:stream";

export const CALLBACK_EVENTS = [
  "job.succeeded",
  "job.failed",
  "job.canceled",
  "job.timed_out",
  "job.progress",
] as const;
export type CallbackEvent = (typeof CALLBACK_EVENTS)[number];

export interface CallbackSpec {
  url: string;
  /** Events asked for; failures (failed, timed_out, canceled) are always delivered. */
  events?: CallbackEvent[];
  verify?: boolean;
  /** The origin the job was submitted through: links in callback bodies are built on it. */
  origin?: string;
}

/** A result as a worker hands it to the store; the driver decides where the bytes live. */
export type ResultPayload =
  | { kind: "none" }
  | { kind: "json"; json: string }
  | { kind: "bytes"; contentType: string; data: Uint8Array }
  | { kind: "created"; location: string; json: string }
  /** A file the driver takes over (moves, copies or streams in, then deletes): never read whole. */
  | { kind: "file"; contentType: string; path: string; size: number };

/** How a stored result is kept: a file result is stored as bytes. */
export type StoredKind = Exclude<ResultPayload["kind"], "file">;

/** A succeeded attempt's outcome, fenced by its lease. */
export interface CompleteParams {
  lease: Lease;
  result: ResultPayload;
  now: number;
  /**
   * `false` (the claimed job has no callback) lets a driver skip the outbox work of the
   * terminal move; omitted means unknown.
   */
  hasCallback?: boolean;
  /** Events the attempt emitted (`ctx.emit`): kept in the completion's own commit, or not at all. */
  events?: readonly NewEvent[];
  /**
   * `false` (the claimed job was submitted without `lifecycleEvents`) lets a driver skip the
   * lifecycle event's work; omitted means unknown.
   */
  lifecycleEvents?: boolean;
}

/** Where a saga's step stands in its journal. */
export type StepStatus = "running" | "succeeded" | "failed" | "compensated" | "compensation_failed";
/** What a journal entry is: `saga.step`, `saga.sleep`, `saga.call`, `saga.waitForEvent`. */
export type StepKind = "step" | "sleep" | "call" | "event";

/**
 * One step of a saga as its journal records it: the saga's code is replayed from the start on
 * every attempt, and a step found `succeeded` here returns its recorded result without running.
 */
export interface StepRecord {
  /** Its place in the saga's run, from 0: a replay must reach the same name at the same place. */
  seq: number;
  name: string;
  /** And the same kind. */
  kind: StepKind;
  status: StepStatus;
  /** Runs of its function so far (retries within an attempt, and across attempts). */
  attempts: number;
  startedAt: number;
  finishedAt: number | null;
  /** What its function returned (JSON), once succeeded. */
  result: unknown;
  error: JobProblem | null;
  compensatedAt: number | null;
  compensationError: JobProblem | null;
}

/** A stored result as the result resource serves it: small ones inline, large ones streamed. */
export interface StoredResult {
  kind: StoredKind;
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
  /**
   * Submitted with `lifecycleEvents`: its terminal move appends `tessera.job.<status>` (see
   * `lifecycleEvent`) in the same commit. Set only when true.
   */
  lifecycleEvents?: true;
}

/** A job handed to a worker by `claim`: the record plus its lease. */
export interface ClaimedJob extends JobRecord {
  leaseToken: string;
  leaseExpiresAt: number;
}

export interface NewJob {
  /**
   * `newJobId(now, tenantId)` with the submit's `now`: the id sorts by creation time within its
   * tenant, which is the listing's order. The PostgreSQL driver refuses any other id (it lists
   * a tenant's jobs from their range of the primary key).
   */
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
  /** A request waits for the job's end (see `watch`). @default false */
  watched?: boolean;
  /**
   * Its terminal move appends the lifecycle event `tessera.job.<status>` to the events, in the
   * same commit. Off unless someone listens: jobs without it pay nothing. @default false
   */
  lifecycleEvents?: boolean;
}

export interface IdempotencyClaim {
  key: string;
  /** SHA-256 of the canonical request (tenant, method, path, canonical JSON body). */
  requestHash: string;
}

export type SubmitOutcome =
  { kind: "created"; job: JobRecord } | { kind: "replayed"; job: JobRecord } | { kind: "key-mismatch" };

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
  /**
   * Exclusive upper bound of the page: (createdAt, id) of the last item already seen. Pages are
   * newest first, ties by id; for ids made by `newJobId` that is the ids' own order.
   */
  before?: { createdAt: number; id: string };
}

/** Published after the change it reports is committed. */
export type StoreEvent =
  | { kind: "queued"; type: string; runAt: number }
  /** A callback event is due (now or at `at`). */
  | { kind: "outbox"; at: number }
  | { kind: "terminal"; jobId: string; type: string; status: JobStatus }
  /** A running job's progress changed (this node's writes; other nodes' for watched jobs). */
  | { kind: "progress"; jobId: string }
  /** Events may have been missed (a notification connection was lost): look again. */
  | { kind: "resync" }
  /**
   * Events were kept outside a completion (a job's lifecycle event from a cancel, a failure, a
   * sweep): dispatch what is undispatched now, rather than after the sweep's grace.
   */
  | { kind: "events" };

export interface PurgeResult {
  resultsPurged: number;
  jobsDeleted: number;
  idempotencyDeleted: number;
}

/**
 * A webhook in the outbox: a job's callback event (written in the same transaction as the change
 * it reports), or an event's delivery to a subscription (written when the event is dispatched).
 */
interface OutboxEventBase {
  /** The `webhook-id`: the same on every attempt. */
  id: string;
  tenantId: string;
  url: string;
  /** When it was written: the retry window counts from here. */
  occurredAt: number;
  /** Attempts made so far. */
  attempts: number;
  /** The body, fixed at the first attempt (null before it): every retry sends the same bytes. */
  body: string | null;
}

export interface JobCallbackEvent extends OutboxEventBase {
  kind: "job";
  jobId: string;
  event: CallbackEvent;
  /** The job as it was when the event happened. */
  job: JobRecord;
}

export interface SubscriptionDelivery extends OutboxEventBase {
  kind: "subscription";
  subscriptionId: string;
  /** The CloudEvent's id. */
  eventId: string;
  /** The CloudEvent's type. */
  event: string;
  /** Rendered when it was enqueued. */
  body: string;
}

export type OutboxEvent = JobCallbackEvent | SubscriptionDelivery;

export type ClaimedDelivery = OutboxEvent & { leaseToken: string };

export interface DeliveryAttempt {
  eventId: string;
  /** A job's callback event, or the event type of a subscription's delivery. */
  event: string;
  attempt: number;
  at: number;
  statusCode: number | null;
  latencyMs: number;
  error: string | null;
  /** When the next attempt is due; null when this one ended the delivery. */
  nextAttemptAt: number | null;
}

/** A tenant's webhook for the events of some types (`POST /v1/subscriptions`). */
export interface NewSubscription {
  /** `newSubscriptionId()`. */
  id: string;
  tenantId: string;
  url: string;
  /** Event types, matched as a trigger's type is; with `filter`, one trigger per type. */
  types: string[];
  /** A trigger's filter (events/triggers.ts `AttributeFilter`, spelt out: no import cycle). */
  filter: Readonly<Record<string, string | { prefix: string } | { suffix: string }>> | null;
}

export interface SubscriptionRecord extends NewSubscription {
  createdAt: number;
}

export interface ApiKeyRecord {
  id: string;
  tenantId: string;
  tenantName: string;
  prefix: string;
  createdAt: number;
  revokedAt: number | null;
  lastUsedAt: number | null;
  /** After this time the key no longer authenticates (null: never expires). */
  expiresAt: number | null;
}

/** live: authenticates; revoked (wins over expired); expired: `expiresAt` has passed. */
export type ApiKeyState = "live" | "revoked" | "expired";

/** What authentication reads: the key with its stored hash and its state at the lookup's `now`. */
export interface StoredApiKey extends ApiKeyRecord {
  hash: string;
  state: ApiKeyState;
}

/** A tenant's own limits; null: the server's default (`--rate-submit`, …). */
export interface TenantLimits {
  /** Submits per second. */
  submitRate: number | null;
  /** Status, result and list requests per second. */
  pollRate: number | null;
  /** Jobs queued at once (0: unlimited). */
  maxQueued: number | null;
}

export interface TenantRecord {
  id: string;
  name: string;
  createdAt: number;
  limits: TenantLimits;
}

/** One increment of a shared rate counter: `key`'s window starting at `windowStart`. */
export interface RateHit {
  key: string;
  windowStart: number;
  /** When the counter may be dropped (epoch ms). */
  expiresAt: number;
}

export interface Store {
  /** Apply migrations; refuses a schema newer than this build knows. */
  migrate(): Promise<void>;
  /** Cheap liveness probe of the database, for `/readyz`. */
  ping(): Promise<void>;
  close(): Promise<void>;
  /**
   * Listen for committed changes: this process's, and other nodes' where the driver can (on
   * PostgreSQL every queued job and failure, and a success only for a job marked by `watch` or
   * submitted `watched`).
   */
  subscribe(listener: (event: StoreEvent) => void): () => void;

  // --- submit and read (API side); every read is scoped by tenant -----------------------
  /**
   * Insert a job durably, with its idempotency record in the same transaction. Resolves after
   * the commit (fsync'd). With a key already used by the same request: the existing job.
   */
  submit(params: {
    job: NewJob;
    idempotency: IdempotencyClaim | null;
    now: number;
    /**
     * Store the job already running under this lease (attempt 1, started now) instead of
     * queued: a worker with an idle slot takes it without a claim. No wake-up is announced.
     */
    lease?: { token: string; expiresAt: number };
  }): Promise<SubmitOutcome>;
  /**
   * A request waits for this job's end: have the end announced to every node, as the waiter
   * may be on another one (a driver that announces every end has nothing to do). Call it
   * before reading the job's status for the wait.
   */
  watch(params: { tenantId: string; id: string }): Promise<void>;
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
  progress(params: {
    lease: Lease;
    percent: number | null;
    message: string | null;
    now: number;
  }): Promise<boolean>;
  /** A succeeded attempt: its result stored, the job `succeeded`. False: the lease was lost. */
  complete(params: CompleteParams): Promise<boolean>;
  /**
   * `complete` for many attempts, in one write where the driver can (a worker's completions of
   * one event-loop turn); one answer per item, in order. If it rejects, some items may have
   * been written and others not: each can be tried again alone (the lease fences it; one
   * already written answers false).
   */
  completeMany(items: readonly CompleteParams[]): Promise<boolean[]>;
  /** A failed attempt: back to queued at `retryAt` when given, else terminal `failed`. */
  fail(params: { lease: Lease; error: JobProblem; retryAt: number | null; now: number }): Promise<boolean>;
  /**
   * Hand leased jobs back to the queue untouched, due at `now` (graceful shutdown), or at a later
   * time (a sleeping saga); the attempt is not counted.
   */
  release(params: { leases: Lease[]; now: number }): Promise<number>;

  // --- maintenance; batched, safe to run on many nodes -----------------------------------
  /**
   * Running jobs whose lease expired: requeued (attempts left) or failed. Jobs past their
   * deadline are left to `sweepDeadlines` (timed out, not retried). Returns how many.
   */
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
  /**
   * Earliest `runAt` among `types`' queued jobs whose run was put off past their submission
   * (delayed, retried, released, requeued after a lost lease), to sleep until it; or null.
   * Jobs due when submitted are left out: they were announced then (a `queued` event), and an
   * index of them would cost every submit an entry.
   */
  nextRunAt(params: { types: string[] }): Promise<number | null>;

  // --- callbacks: the outbox -------------------------------------------------------------
  /**
   * Lease up to `limit` due events, oldest first, skipping those another deliverer holds and
   * those of `skipTenants` (tenants whose receivers already have all the deliveries in flight
   * they may, so one tenant's backlog never keeps the others' events waiting).
   */
  claimDeliveries(params: {
    limit: number;
    leaseMs: number;
    now: number;
    skipTenants?: readonly string[];
  }): Promise<ClaimedDelivery[]>;
  /**
   * Record one attempt and what follows: `retryAt` schedules the next, null ends the delivery
   * (`delivered`, `stopped` by a 410, or `failed` for good). The body is kept from the first
   * attempt on. False: the lease was lost (another deliverer took the event).
   */
  recordDelivery(params: {
    eventId: string;
    leaseToken: string;
    body: string;
    attempt: DeliveryAttempt;
    outcome: "delivered" | "retry" | "stopped" | "failed";
  }): Promise<boolean>;
  /** The attempts of a job's events, oldest first; empty for an unknown or foreign job. */
  listDeliveries(params: { tenantId: string; jobId: string }): Promise<DeliveryAttempt[]>;
  /** Earliest `nextAttemptAt` of a pending event, or null. */
  nextDeliveryAt(): Promise<number | null>;
  /** The tenant's webhook secrets, newest first (two during a rotation), creating one if none. */
  webhookSecrets(params: { tenantId: string; now: number }): Promise<string[]>;
  /** Rotate (or set) a tenant's secret; the previous one keeps signing until `previousUntil`. */
  rotateWebhookSecret(params: {
    tenantName: string;
    secret: string;
    previousUntil: number;
    now: number;
  }): Promise<string[]>;

  // --- subscriptions: webhooks for events (src/subscriptions/) -----------------------------
  createSubscription(params: { subscription: NewSubscription; now: number }): Promise<SubscriptionRecord>;
  getSubscription(params: { tenantId: string; id: string }): Promise<SubscriptionRecord | null>;
  /** The tenant's subscriptions, newest first (ties by id), before `before` when given. */
  listSubscriptions(params: {
    tenantId: string;
    limit: number;
    before?: { createdAt: number; id: string };
  }): Promise<SubscriptionRecord[]>;
  /**
   * Delete the tenant's subscription and stop its deliveries still pending (one in flight may
   * still arrive; its result is not recorded). False: not found.
   */
  deleteSubscription(params: { tenantId: string; id: string; now: number }): Promise<boolean>;
  /**
   * Enqueue the event's delivery to each of these subscriptions of its tenant that still
   * exists, once per (subscription, event id) however often it is called; returns how many
   * were new.
   */
  enqueueEventDeliveries(params: {
    event: { tenantId: string; id: string; type: string };
    subscriptionIds: readonly string[];
    body: string;
    now: number;
  }): Promise<number>;

  // --- tenants and API keys --------------------------------------------------------------
  createApiKey(params: {
    tenantName: string;
    keyId: string;
    prefix: string;
    hash: string;
    now: number;
    /** null or absent: never expires. */
    expiresAt?: number | null;
  }): Promise<ApiKeyRecord>;
  /**
   * The key with this hash whatever its state (the caller must check `state`: only `live`
   * authenticates), touching the last-used time of a live key at most once a minute.
   */
  lookupApiKey(params: { hash: string; now: number }): Promise<StoredApiKey | null>;
  listApiKeys(): Promise<ApiKeyRecord[]>;
  /**
   * In one transaction: a new key for the tenant of the live key `idOrPrefix`, and that key's
   * expiry set to `overlapUntil` (kept if it already expires sooner). Null: no live key matched.
   */
  rotateApiKey(params: {
    idOrPrefix: string;
    keyId: string;
    prefix: string;
    hash: string;
    expiresAt: number | null;
    overlapUntil: number;
    now: number;
  }): Promise<{ previous: ApiKeyRecord; key: ApiKeyRecord } | null>;
  /** Revoke by id or prefix; returns whether a key was revoked. */
  revokeApiKey(params: { idOrPrefix: string; now: number }): Promise<boolean>;
  /** The tenant's id, creating it when missing (the `--dev` tenant, key creation). */
  ensureTenant(params: { name: string; now: number }): Promise<string>;

  // --- limits and quotas (http/rate-limit.ts) ---------------------------------------------
  /** Every tenant with its own limits, by name. */
  listTenants(): Promise<TenantRecord[]>;
  /** The tenant's own limits (all null when it has none, or is unknown). */
  tenantLimits(params: { tenantId: string }): Promise<TenantLimits>;
  /**
   * Set (a number) or clear (null) a tenant's own limits; members left out are unchanged.
   * Creates the tenant when missing.
   */
  setTenantLimits(params: {
    tenantName: string;
    limits: Partial<TenantLimits>;
    now: number;
  }): Promise<TenantRecord>;
  /** Jobs of the tenant in `queued` (runAt in the future included). */
  countQueued(params: { tenantId: string }): Promise<number>;
  /**
   * Count one request in a counter shared by every node, returning the counter's value with it.
   * Only drivers shared by several nodes have it (PostgreSQL); without it, the HTTP layer counts
   * in memory. Calls of one event-loop turn share one statement.
   */
  hitRateCounter?(hit: RateHit): Promise<number>;

  // --- sagas ------------------------------------------------------------------------------
  /** A saga's journal, in step order; empty for another tenant's job (or none). */
  listSteps(params: { tenantId: string; jobId: string }): Promise<StepRecord[]>;
  /**
   * Write one step's row (by its `seq`: insert, or replace the one recorded), fenced by the
   * attempt's lease: false, with nothing written, when the attempt no longer holds the job.
   * `sagaId`: the saga whose journal it is, when not the lease's own job (a compensation job
   * writes the journal of the saga it compensates, fenced by its own lease).
   */
  recordStep(params: { lease: Lease; step: StepRecord; sagaId?: string }): Promise<boolean>;
  /**
   * Keep an event for a saga (the first of each name; `eventId` makes a resend harmless) and
   * wake the saga if it is queued: `not-found` for another tenant's job, `finished` for an
   * ended one, `duplicate` for the same event again, `conflict` for another of that name.
   */
  deliverEvent(params: {
    tenantId: string;
    jobId: string;
    name: string;
    eventId: string;
    data: unknown;
    now: number;
  }): Promise<"delivered" | "duplicate" | "conflict" | "not-found" | "finished">;
  /** The event of that name a saga was sent, if any. */
  sagaEvent(params: { jobId: string; name: string }): Promise<SagaEvent | null>;
  /** A queued job due now rather than later (a waiting saga whose event came); false if not queued. */
  wake(params: { jobId: string; now: number }): Promise<boolean>;

  // --- events (src/events/) ---------------------------------------------------------------
  /**
   * Keep an event, once per (tenant, id), durably: `duplicate` for the same event again (its
   * `hash`), `conflict` for another with that id; either way the one kept.
   */
  appendEvent(params: {
    event: NewEvent;
    now: number;
    /** It came from the broker (`--events`): kept as published, so the relay never sends it back. */
    received?: boolean;
  }): Promise<AppendedEvent>;
  /** `appendEvent` of several, kept in this order in one commit; the answers in the same order. */
  appendEvents(params: {
    events: readonly NewEvent[];
    now: number;
    received?: boolean;
  }): Promise<AppendedEvent[]>;
  getEvent(params: { tenantId: string; id: string }): Promise<EventRecord | null>;
  /** The tenant's events, newest first, before `beforeSeq` when given. */
  listEvents(params: {
    tenantId: string;
    type?: string;
    limit: number;
    beforeSeq?: number;
  }): Promise<EventRecord[]>;
  /** Events of any tenant not dispatched yet that came before `receivedBefore`, oldest first. */
  undispatchedEvents(params: { receivedBefore: number; limit: number }): Promise<EventRecord[]>;
  /** Record what the event started; a later dispatch of it writes the same again. */
  markDispatched(params: {
    tenantId: string;
    id: string;
    triggered: TriggeredJob[];
    now: number;
  }): Promise<void>;

  // --- the outbox relay to a broker (src/events/relay.ts) ---------------------------------
  /** Take or renew the relay's lease of partition `part` until `now + leaseMs`; false: another holds it. */
  holdRelayLease(params: { part: number; owner: string; leaseMs: number; now: number }): Promise<boolean>;
  /** Give the lease up (a clean stop), so another node takes over at once. */
  releaseRelayLease(params: { part: number; owner: string }): Promise<void>;
  /** Events not published to the broker yet, in the order they came. */
  unpublishedEvents(params: { limit: number }): Promise<EventRecord[]>;
  markPublished(params: { seqs: readonly number[]; now: number }): Promise<void>;
  /** When the oldest event not published yet came; null when none waits. */
  oldestUnpublished(): Promise<number | null>;
}

/** A CloudEvent as the store keeps it (src/events/cloud-event.ts makes and shows it). */
export interface NewEvent {
  tenantId: string;
  /** The event's own id: one event per id and tenant. */
  id: string;
  source: string;
  type: string;
  subject: string | null;
  /** When it happened (ms); the time it came when it did not say. */
  time: number;
  datacontenttype: string | null;
  /** Its data (JSON), or null. */
  data: unknown;
  traceparent: string | null;
  /** Its other extension attributes. */
  extensions: Record<string, string | number | boolean>;
  /** Of its attributes as sent: a resend of the same event is told from another with its id. */
  hash: string;
}

/** An append's answer: the event kept (this one, or the one of its id kept before). */
export interface AppendedEvent {
  kind: "created" | "duplicate" | "conflict";
  event: EventRecord;
}

/** What an event started: a job of a trigger's type, or why it did not. */
export type TriggeredJob = { type: string; jobId: string } | { type: string; error: string };

export interface EventRecord extends NewEvent {
  /** Its place in the order events came in (all tenants'). */
  seq: number;
  receivedAt: number;
  /** When its triggers were run; null until then. */
  dispatchedAt: number | null;
  triggered: TriggeredJob[] | null;
}

export interface SagaEvent {
  eventId: string;
  data: unknown;
  receivedAt: number;
}

/** The parameters of a Store operation: what a driver's method takes. */
export type StoreParams<K extends keyof Store> = Parameters<NonNullable<Store[K]>>[0];
