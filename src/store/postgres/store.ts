import type { CompleteParams, Store, StoreEvent, StoreParams } from "../store.js";
import { PgCallbacks } from "./callbacks.js";
import { PgClaims } from "./claims.js";
import { PgJobs } from "./jobs.js";
import { PgLeases } from "./leases.js";
import { PgRateLimits } from "./rate-limits.js";
import { PgResults } from "./results.js";
import { PgRetention } from "./retention.js";
import { PgTenants } from "./tenants.js";
import { PgDb, types, type PostgresStoreOptions } from "./db.js";
import { PgListener } from "./listener.js";
import { migratePostgres } from "./migrate.js";

export type { PostgresStoreOptions } from "./db.js";

/**
 * The PostgreSQL store: many API and worker nodes around one database. Claims use
 * `FOR UPDATE SKIP LOCKED`; a worker's completions of one turn (`completeMany`), and the
 * progress reports and heartbeats of one turn, share one statement (`… FROM unnest(…)`);
 * every committed change that another node may wait for is announced with `pg_notify` in the
 * same statement (a success only if a request waits for it: see `watch`), and relayed to this
 * process's listeners by `PgListener`. Each concern lives in a file of its own beside its SQL;
 * this class only puts them together.
 */
export class PostgresStore implements Store {
  private readonly db: PgDb;
  private readonly listener: PgListener | null;
  private readonly jobs: PgJobs;
  private readonly results: PgResults;
  private readonly claims: PgClaims;
  private readonly leases: PgLeases;
  private readonly retention: PgRetention;
  private readonly callbacks: PgCallbacks;
  private readonly tenants: PgTenants;
  private readonly rates: PgRateLimits;

  constructor(private readonly options: PostgresStoreOptions) {
    const db = (this.db = new PgDb(options));
    this.listener =
      options.listen === false
        ? null
        : new PgListener({
            connectionString: options.listenConnectionString ?? options.connectionString,
            channel: db.channel,
            types,
            ...(options.logger ? { logger: options.logger } : {}),
            self: db.nodeId,
            onEvent: (event) => db.events.emit(event),
            onReconnect: () => db.events.emit({ kind: "resync" }),
          });
    this.leases = new PgLeases(db);
    this.results = new PgResults(db);
    this.jobs = new PgJobs(db, this.leases);
    this.claims = new PgClaims(db, this.results, this.leases);
    this.retention = new PgRetention(db);
    this.tenants = new PgTenants(db);
    this.callbacks = new PgCallbacks(db, this.tenants);
    this.rates = new PgRateLimits(db);
  }

  /** This node's id in notifications. */
  get nodeId(): string {
    return this.db.nodeId;
  }

  // The pools, for tests that watch or break them.
  private get pool() {
    return this.db.pool;
  }

  private get leasePool() {
    return this.db.leasePool;
  }

  /** Migrate (unless disabled) and start listening. */
  async open(): Promise<this> {
    if (this.options.migrate ?? true) await this.migrate();
    await this.listener?.start();
    return this;
  }

  async migrate(): Promise<void> {
    await migratePostgres(this.pool, this.db.schema);
  }

  async ping(): Promise<void> {
    await this.pool.query("SELECT 1");
  }

  async close(): Promise<void> {
    await this.listener?.stop();
    await Promise.all([this.pool.end(), this.leasePool.end()]);
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    return this.db.events.subscribe(listener);
  }

  /** Drop the schema and everything in it (tests). */
  async dropSchema(): Promise<void> {
    await this.pool.query(`DROP SCHEMA IF EXISTS ${this.db.schema} CASCADE`);
  }

  // --- jobs.ts: submits, reads, watch, cancel, delete ----------------------------------------

  submit(params: StoreParams<"submit">) {
    return this.jobs.submit(params);
  }

  watch(params: StoreParams<"watch">) {
    return this.jobs.watch(params);
  }

  get(params: StoreParams<"get">) {
    return this.jobs.get(params);
  }

  list(params: StoreParams<"list">) {
    return this.jobs.list(params);
  }

  cancel(params: StoreParams<"cancel">) {
    return this.jobs.cancel(params);
  }

  delete(params: StoreParams<"delete">) {
    return this.jobs.delete(params);
  }

  terminalIds(params: StoreParams<"terminalIds">) {
    return this.jobs.terminalIds(params);
  }

  // --- results.ts: inline or in chunks -------------------------------------------------------

  getResult(params: StoreParams<"getResult">) {
    return this.results.getResult(params);
  }

  // --- claims.ts: claims, progress, completions, failures ------------------------------------

  claim(params: StoreParams<"claim">) {
    return this.claims.claim(params);
  }

  nextRunAt(params: StoreParams<"nextRunAt">) {
    return this.claims.nextRunAt(params);
  }

  progress(params: StoreParams<"progress">) {
    return this.claims.progress(params);
  }

  complete(params: StoreParams<"complete">) {
    return this.claims.complete(params);
  }

  completeMany(items: readonly CompleteParams[]) {
    return this.claims.completeMany(items);
  }

  fail(params: StoreParams<"fail">) {
    return this.claims.fail(params);
  }

  // --- leases.ts: heartbeats, releases, sweeps -----------------------------------------------

  heartbeat(params: StoreParams<"heartbeat">) {
    return this.leases.heartbeat(params);
  }

  release(params: StoreParams<"release">) {
    return this.leases.release(params);
  }

  sweepExpiredLeases(params: StoreParams<"sweepExpiredLeases">) {
    return this.leases.sweepExpiredLeases(params);
  }

  sweepDeadlines(params: StoreParams<"sweepDeadlines">) {
    return this.leases.sweepDeadlines(params);
  }

  // --- retention.ts --------------------------------------------------------------------------

  purgeExpired(params: StoreParams<"purgeExpired">) {
    return this.retention.purgeExpired(params);
  }

  // --- callbacks.ts: the outbox and webhook secrets ------------------------------------------

  claimDeliveries(params: StoreParams<"claimDeliveries">) {
    return this.callbacks.claimDeliveries(params);
  }

  recordDelivery(params: StoreParams<"recordDelivery">) {
    return this.callbacks.recordDelivery(params);
  }

  listDeliveries(params: StoreParams<"listDeliveries">) {
    return this.callbacks.listDeliveries(params);
  }

  nextDeliveryAt() {
    return this.callbacks.nextDeliveryAt();
  }

  webhookSecrets(params: StoreParams<"webhookSecrets">) {
    return this.callbacks.webhookSecrets(params);
  }

  rotateWebhookSecret(params: StoreParams<"rotateWebhookSecret">) {
    return this.callbacks.rotateWebhookSecret(params);
  }

  // --- tenants.ts: tenants, API keys, limits -------------------------------------------------

  ensureTenant(params: StoreParams<"ensureTenant">) {
    return this.tenants.ensureTenant(params);
  }

  createApiKey(params: StoreParams<"createApiKey">) {
    return this.tenants.createApiKey(params);
  }

  lookupApiKey(params: StoreParams<"lookupApiKey">) {
    return this.tenants.lookupApiKey(params);
  }

  rotateApiKey(params: StoreParams<"rotateApiKey">) {
    return this.tenants.rotateApiKey(params);
  }

  listApiKeys() {
    return this.tenants.listApiKeys();
  }

  revokeApiKey(params: StoreParams<"revokeApiKey">) {
    return this.tenants.revokeApiKey(params);
  }

  listTenants() {
    return this.tenants.listTenants();
  }

  tenantLimits(params: StoreParams<"tenantLimits">) {
    return this.tenants.tenantLimits(params);
  }

  setTenantLimits(params: StoreParams<"setTenantLimits">) {
    return this.tenants.setTenantLimits(params);
  }

  countQueued(params: StoreParams<"countQueued">) {
    return this.tenants.countQueued(params);
  }

  // --- rate-limits.ts ------------------------------------------------------------------------

  hitRateCounter(params: StoreParams<"hitRateCounter">) {
    return this.rates.hitRateCounter(params);
  }
}
