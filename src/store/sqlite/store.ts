import { rmSync } from "node:fs";
import type { Database } from "better-sqlite3";
import type { CompleteParams, Store, StoreEvent, StoreParams } from "../store.js";
import { SqliteCallbacks } from "./callbacks.js";
import { SqliteClaims } from "./claims.js";
import { SqliteJobs } from "./jobs.js";
import { SqliteLeases } from "./leases.js";
import { SqliteResults } from "./results.js";
import { SqliteRetention } from "./retention.js";
import { SqliteTenants } from "./tenants.js";
import { SqliteDb, type SqliteStoreOptions } from "./db.js";
import { migrateSqlite } from "./migrate.js";
import { SqliteOutbox } from "./outbox.js";

export type { SqliteStoreOptions } from "./db.js";

/**
 * The embedded default store: one SQLite file in WAL mode, fsync'd on every commit, every
 * write of one event-loop turn in one transaction (`GroupCommit`). Each concern lives in a
 * file of its own beside its SQL; this class only puts them together.
 */
export class SqliteStore implements Store {
  private readonly driver: SqliteDb;
  /** The connection (a test reads its pragmas). */
  private readonly db: Database;
  private readonly jobs: SqliteJobs;
  private readonly results: SqliteResults;
  private readonly claims: SqliteClaims;
  private readonly leases: SqliteLeases;
  private readonly retention: SqliteRetention;
  private readonly callbacks: SqliteCallbacks;
  private readonly tenants: SqliteTenants;

  constructor(options: SqliteStoreOptions) {
    const driver = (this.driver = new SqliteDb(options));
    this.db = driver.handle;
    if (options.migrate ?? true) {
      try {
        this.migrateNow();
      } catch (error) {
        this.db.close(); // the caller never gets a handle to close (e.g. SchemaTooNewError)
        throw error;
      }
    }
    const outbox = new SqliteOutbox(driver);
    this.results = new SqliteResults(driver);
    this.jobs = new SqliteJobs(driver, outbox);
    this.claims = new SqliteClaims(driver, this.results, outbox);
    this.leases = new SqliteLeases(driver, outbox);
    this.retention = new SqliteRetention(driver);
    this.tenants = new SqliteTenants(driver);
    this.callbacks = new SqliteCallbacks(driver, this.tenants);
  }

  private migrateNow(): void {
    migrateSqlite(this.db);
    this.driver.prepare();
  }

  async migrate(): Promise<void> {
    this.migrateNow();
  }

  async ping(): Promise<void> {
    this.db.prepare("SELECT 1").get();
  }

  async close(): Promise<void> {
    // Let writes already enqueued commit before the handle goes away.
    await this.driver.writes.run(() => undefined);
    this.db.close();
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    return this.driver.events.subscribe(listener);
  }

  /** Remove the database files (tests). */
  static destroy(path: string): void {
    for (const suffix of ["", "-wal", "-shm"]) rmSync(path + suffix, { force: true });
  }

  // --- jobs.ts: submits, reads, cancel, delete -----------------------------------------------

  submit(params: StoreParams<"submit">) {
    return this.jobs.submit(params);
  }

  watch() {
    return this.jobs.watch();
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

  // --- results.ts: inline or in blob files ---------------------------------------------------

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

  // --- callbacks.ts: deliveries and webhook secrets ------------------------------------------

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
}
