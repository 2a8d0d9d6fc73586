import { rmSync } from "node:fs";
import type { Database } from "better-sqlite3";
import { ComposedStore } from "../shared/composed-store.js";
import type { StoreEvent } from "../store.js";
import { SqliteCallbacks } from "./callbacks.js";
import { SqliteClaims } from "./claims.js";
import { SqliteEvents } from "./events.js";
import { SqliteRelay } from "./relay.js";
import { SqliteJobs } from "./jobs.js";
import { SqliteLeases } from "./leases.js";
import { SqliteResults } from "./results.js";
import { SqliteRetention } from "./retention.js";
import { SqliteTenants } from "./tenants.js";
import { SqliteDb, type SqliteStoreOptions } from "./db.js";
import { SqliteSagas } from "./sagas.js";
import { SqliteSubscriptions } from "./subscriptions.js";
import { migrateSqlite } from "./migrate.js";
import { SqliteOutbox } from "./outbox.js";

export type { SqliteStoreOptions } from "./db.js";

/**
 * The embedded default store: one SQLite file in WAL mode, fsync'd on every commit, every
 * write of one event-loop turn in one transaction (`GroupCommit`). Each concern lives in a
 * file of its own beside its SQL (see ComposedStore); this class puts them together and owns
 * the connection.
 */
export class SqliteStore extends ComposedStore {
  private readonly driver: SqliteDb;
  /** The connection (a test reads its pragmas). */
  private readonly db: Database;

  constructor(options: SqliteStoreOptions) {
    const driver = new SqliteDb(options);
    const outbox = new SqliteOutbox(driver);
    const results = new SqliteResults(driver);
    const tenants = new SqliteTenants(driver);
    super({
      jobs: new SqliteJobs(driver, outbox),
      results,
      claims: new SqliteClaims(driver, results, outbox),
      leases: new SqliteLeases(driver, outbox),
      retention: new SqliteRetention(driver),
      callbacks: new SqliteCallbacks(driver, tenants),
      tenants,
      sagas: new SqliteSagas(driver),
      events: new SqliteEvents(driver),
      relay: new SqliteRelay(driver),
      subscriptions: new SqliteSubscriptions(driver),
    });
    this.driver = driver;
    this.db = driver.handle;
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
}
